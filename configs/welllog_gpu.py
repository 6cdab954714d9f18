r"""The well-log recipe at GPU size: CurveNet `base`, the seed's 50 epochs of fine-tuning,
taller and wider windows, bigger batches.

  python -m ssl_seg.main --config=configs/welllog_gpu.py --workdir=runs/gpu

Stages as in `welllog_demo` (pretrain -> synthetic -> finetune_warm / finetune_cold). The
fine-tunes run the seed's 50 epochs over their labelled logs (one window per log per epoch, so
`labels` logs at batch 32 make ceil(labels / 32) steps an epoch; the default 96 labelled logs
give 150 steps). Not run on a GPU yet: no GPU was lent to the task that wrote it.
Arguments: labels=N (default 96), variant (default base), las_fraction=x.
"""

from configs import common, welllog_demo


def get_config(arg=None):
  arg = common.parse_arg(arg, labels=96, variant="base", las_fraction=0.0, batch=32)
  epochs = 50
  steps_per_epoch = -(-arg.labels // arg.batch)
  cfg = welllog_demo.get_config(
      f"labels={arg.labels},variant={arg.variant},las_fraction={arg.las_fraction},"
      f"batch={arg.batch},crop=512,pretrain_steps=5000,synthetic_steps=20000,"
      f"finetune_steps={epochs * steps_per_epoch}")
  for st in cfg.stages.values():
    st.data.height = 256
    st.data.min_width, st.data.max_width = 384, 3072
    st.data.max_batch_size = 64
  for name in ("finetune_warm", "finetune_cold"):
    cfg.stages[name].epochs = epochs
    cfg.stages[name].eval.every_epochs = 5
  return cfg
