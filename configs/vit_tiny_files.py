r"""The study's chain on image files, tiny: folder pretraining -> Intel classify -> Pet segment.

  python -m ssl_seg.main --workdir=runs/tiny_files \
    --config=configs/vit_tiny_files.py:images=DIR,intel=DIR,pet=DIR[,cache=DIR]

`images` is any folder of images (unlabeled SimMIM pretraining), `intel` the Intel Image
Classification layout (seg_train/<class>/*.jpg, seg_test/<class>/*.jpg), `pet` the Oxford-IIIT
Pet layout (images/, annotations/trimaps/, annotations/{trainval,test}.txt). Every stage uses
the tiny ViT at 32 px, batch 4, `epochs` epochs; the segmentation stage is grafted from the
classifier. The tests run it on generated fixtures in seconds; on the real data it is a smoke
test of the whole path (a few minutes per epoch on a 2-core CPU, most of it the first caching).
Arguments: labels=N (Pet training images, -1 all), pet_eval=N (Pet test images), epochs=N.
"""

from configs import common, vit_paper


def get_config(arg=None):
  arg = common.parse_arg(arg, images="", intel="", pet="", cache="", labels=-1, pet_eval=4,
                         epochs=1, batch_size=4)
  cfg = vit_paper.get_config(f"imagenet={arg.images},intel={arg.intel},pet={arg.pet},"
                             f"cache={arg.cache},labels={arg.labels}")
  # Only the chain pretrain -> classify -> segment_via_classify; the other two Pet stages of
  # the paper config (from pretrain, from scratch) are left out to keep it short.
  cfg.stage_order = ("pretrain", "classify", "segment_via_classify")
  for name in ("segment", "segment_scratch"):
    del cfg.stages[name]
  cfg.stages.pretrain.data.name = "image_folder"
  cfg.stages.pretrain.data.subset = -1
  cfg.stages.pretrain.data.num_eval = -1  # One image in twenty, at least one.
  cfg.stages.segment_via_classify.data.num_eval = arg.pet_eval
  for name in cfg.stage_order:
    st = cfg.stages[name]
    st.model = common.vit_model("tiny", dropout=st.model.dropout)
    st.data.size = st.model.img_size
    st.batch_size = st.eval_batch_size = arg.batch_size
    st.epochs = arg.epochs
    st.log_every_steps = 1
    st.optim.decay_epochs = ()
  cfg.stages.pretrain.optim.lr = 1e-3
  return cfg
