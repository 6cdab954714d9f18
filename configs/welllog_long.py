r"""The demo's recipe run longer on a 2-core CPU: 3x the denoising steps, 3.75x the supervised
synthetic stage (6,000 steps) and 3x the fine-tunes, same stages and data as the demo. 41 min
40 s measured on the 2-core CPU with other jobs beside it (synthetic stage 0.883 / 0.812 strict
F1, 0.958 / 0.917 within 1 px; README); alone it is shorter.

  python -m ssl_seg.main --config=configs/welllog_long.py --workdir=runs/long

Arguments: labels=N (default 12), variant=small|tiny|base, las_fraction=x (share of the
synthetic stage's renders drawn from LAS curves listed in stages.synthetic.data.las_paths).
"""

from configs import common, welllog_demo


def get_config(arg=None):
  arg = common.parse_arg(arg, labels=12, variant="small", las_fraction=0.0)
  return welllog_demo.get_config(
      f"labels={arg.labels},variant={arg.variant},las_fraction={arg.las_fraction},"
      "pretrain_steps=600,synthetic_steps=6000,finetune_steps=300")
