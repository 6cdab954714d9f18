r"""The demo's recipe run longer on a 2-core CPU: 3x the denoising steps, 6.25x the supervised
synthetic stage (10,000 steps) and 3x the fine-tunes, same stages and data as the demo. 30 min
44 s measured on the 2-core CPU (synthetic stage 0.891 / 0.827 strict F1, 0.964 / 0.933 within
1 px; warm 0.883 / 0.824 and 0.960 / 0.935, with the test-time flip the evals now use 0.892 /
0.835 and 0.965 / 0.943; README). With 6,000 synthetic steps it was 0.883 / 0.812 and 0.958 /
0.917: the curves still gain from steps at this length. Since CurveNet's full-resolution convs
run at half resolution: 26 min 44 s, warm 0.897 / 0.829 and 0.968 / 0.938 with the flip.

  python -m ssl_seg.main --config=configs/welllog_long.py --workdir=runs/long

Arguments: labels=N (default 12), variant=small|tiny|base, las_fraction=x (share of the
synthetic stage's renders drawn from LAS curves listed in stages.synthetic.data.las_paths).
"""

from configs import common, welllog_demo


def get_config(arg=None):
  arg = common.parse_arg(arg, labels=12, variant="small", las_fraction=0.0)
  return welllog_demo.get_config(
      f"labels={arg.labels},variant={arg.variant},las_fraction={arg.las_fraction},"
      "pretrain_steps=600,synthetic_steps=10000,finetune_steps=300")
