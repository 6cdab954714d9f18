r"""The SimMIM small-data study at paper scale (seed 001, Table 1 and Section 2).

  python -m ssl_seg.main --config=configs/vit_paper.py --workdir=runs/paper

Stages: SimMIM pretraining on an ImageNet subset (100 epochs, AdamW lr 1e-4, wd 0.05, x0.1 at
epochs 50 and 85, mask ratio 0.5, patch 16), the optional intermediate classification on Intel
scenes (200 epochs, lr 8e-4, x0.1 at 180 and 190, dropout 0.1, MixUp), and segmentation of
Oxford-IIIT Pet trimaps (100 epochs, lr 2e-3, wd 1e-4, x0.5 at 70, 90, 95, dropout 0.1) grafted
from the previous stage, beside the same segmentation from random init (the baseline).

Arguments after the colon:
  code          the study's public code for pretraining instead of its text: lr 1e-3, x0.5.
  intermediate  include the Intel classification stage (default true).
  labels=N      Pet labelled-training subset (250, 500, 1000, 2000, 4000, 6000).
  pretrain_size=N  ImageNet images for pretraining (45000, 100000, 200000), class-balanced.
  imagenet=DIR, intel=DIR, pet=DIR  the data directories (data.dir of the stages; README,
                "Natural images"); cache=DIR where the decoded array_record caches go
                (default ~/.cache/ssl_seg/records).
  data=synthetic  run the same schedule on the in-repo synthetic data (no downloads).
  probe         linear probe: every segmentation stage keeps its encoder frozen (no dropout)
                and trains only the linear per-token head (segment_scratch: random features).
The Pet test set is a fixed 1,000 images and the label subsets nest; both follow data.seed
(--config.stages.NAME.data.seed), not the training seed, so replicates share the splits.
Expected (paper, Fig. 2): mIoU grows with labels and pretraining size; pretraining helps most
at 250-1000 labels; the intermediate Intel stage lowers mIoU slightly.
"""

import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, code=False, intermediate=True, labels=6000, data="real",
                         batch_size=64, pretrain_size=200_000, imagenet="", intel="", pet="",
                         cache="", probe=False)
  if arg.data not in ("real", "synthetic"):
    raise ValueError(f"config argument data must be real or synthetic, got {arg.data!r}")
  synthetic = arg.data == "synthetic"

  def data(name, directory, **kw):
    # num_eval / num_labels / subset: -1 = all (num_eval: the data set's default split).
    fields = dict(name="synthetic_shapes" if synthetic else name, dir=directory, size=128,
                  num_train=8192 if synthetic else -1, num_eval=1000 if synthetic else -1,
                  num_labels=-1, seed=0, subset=-1, cache_dir=arg.cache, workers=0)
    return ml_collections.ConfigDict({**fields, **kw})

  pretrain_optim = (common.optim(1e-3, weight_decay=0.05, decay_epochs=(50, 85), decay_factor=0.5)
                    if arg.code else
                    common.optim(1e-4, weight_decay=0.05, decay_epochs=(50, 85), decay_factor=0.1))
  stages = {
      "pretrain": common.stage(
          "mim", model=common.vit_model("paper"),
          data=data("imagenet_subset", arg.imagenet, subset=arg.pretrain_size, num_eval=1000),
          optim=pretrain_optim, epochs=100, batch_size=arg.batch_size,
          mim=ml_collections.ConfigDict(dict(mask_ratio=0.5, loss="l1",
                                             # px; 0 = the ViT patch (the study's choice).
                                             mask_patch_size=0))),
  }
  if arg.intermediate:
    stages["classify"] = common.stage(
        "classify", model=common.vit_model("paper", dropout=0.1),
        data=data("intel_scenes", arg.intel),
        optim=common.optim(8e-4, weight_decay=1e-4, decay_epochs=(180, 190), decay_factor=0.1),
        epochs=200, batch_size=arg.batch_size, init_from="pretrain", num_classes=6)
    stages["classify"].augment.mixup_alpha = 0.2
  seg = lambda init: common.stage(
      "segment", model=common.vit_model("paper", dropout=0.1),
      data=data("oxford_iiit_pet", arg.pet, num_labels=arg.labels, num_eval=1000),
      optim=common.optim(2e-3, weight_decay=1e-4, decay_epochs=(70, 90, 95), decay_factor=0.5),
      epochs=100, batch_size=arg.batch_size, init_from=init, class_names=common.PET_CLASSES,
      class_weights=())
  stages["segment"] = seg("pretrain")
  if arg.intermediate:
    stages["segment_via_classify"] = seg("classify")
  stages["segment_scratch"] = seg("")
  for name in stages if arg.probe else ():
    if stages[name].task == "segment":  # The head is already linear per token.
      stages[name].encoder.policy = "frozen"
      stages[name].model.dropout = 0.0
  return common.experiment(stages)
