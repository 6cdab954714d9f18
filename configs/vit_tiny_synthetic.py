r"""The paper's three stages, tiny, on in-repo synthetic images: minutes on a 2-core CPU.

  python -m ssl_seg.main --config=configs/vit_tiny_synthetic.py --workdir=runs/tiny

pretrain (SimMIM) -> classify (6 texture classes, MixUp); segmentation (3-class trimaps, 128
labels) grafted from pretrain (`segment`) and from classify (`segment_via_classify`), beside
`segment_scratch`: the same budget from random init.
Arguments: labels=N (segmentation training images), epochs_scale=x, intermediate=false,
probe (linear probe of the segmentation stages, as in configs/vit_paper.py), smoke (every
stage 16 training and 8 eval images, batch 8, 1 epoch: 2 steps a stage, seconds each; the
README's recipes run this).
"""

from configs import common, vit_paper


def get_config(arg=None):
  arg = common.parse_arg(arg, labels=128, epochs_scale=1.0, intermediate=True, probe=False,
                         smoke=False)
  cfg = vit_paper.get_config(f"data=synthetic,intermediate={arg.intermediate},probe={arg.probe}")
  sizes = {"pretrain": (2048, 256, 12), "classify": (1024, 256, 6)}
  for name in cfg.stage_order:
    st = cfg.stages[name]
    num_train, num_eval, epochs = sizes.get(name, (arg.labels, 256, 30))
    st.model = common.vit_model("tiny", dropout=st.model.dropout)
    st.data.size = st.model.img_size
    st.data.num_train, st.data.num_eval, st.data.num_labels = num_train, num_eval, -1
    st.batch_size = st.eval_batch_size = 32
    st.epochs = max(1, int(round(epochs * arg.epochs_scale)))
    st.log_every_steps = 10
    # Decay epochs scale with the shortened schedules (paper positions as a fraction).
    full = {"pretrain": 100, "classify": 200}.get(name, 100)
    st.optim.decay_epochs = tuple(int(e * st.epochs / full) for e in st.optim.decay_epochs)
  cfg.stages.pretrain.optim.lr = 1e-3  # The code's rate: 1e-4 barely moves in 12 epochs.
  for st in cfg.stages.values() if arg.smoke else ():
    st.data.num_train, st.data.num_eval = 16, 8
    st.batch_size = st.eval_batch_size = 8
    st.epochs, st.log_every_steps = 1, 1
  return cfg

