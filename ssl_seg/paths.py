"""Where a run's files live: the one owner of a workdir's folder layout.

  WORKDIR/config.json                   the resolved config (config_utils.write_resolved)
  WORKDIR/metrics.jsonl                 one record per stage, split and epoch (run_log)
  WORKDIR/tensorboard/                  the same scalars, per-step curves, pictures, HParams
  WORKDIR/convergence.png               eval metrics per epoch, all stages (main)
  WORKDIR/report.html                   the page a person opens (launch/report_html)
  WORKDIR/profile/                      a jax.profiler trace, with --profile_steps (main)
  WORKDIR/<stage>/checkpoints/<step>/   Orbax items params, train_state, meta (checkpoint)
  WORKDIR/<stage>/broken_checkpoints/   unreadable steps a resume moved aside, kept for a person
  WORKDIR/<stage>/example_<i>.png       the first eval examples after training (pictures)
  WORKDIR/replaced-<time>/              what --force moved aside (main)

A stage directory is all a checkpoint reader needs (`predict`, `export`, `init_from`).
"""

import os

CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
CONVERGENCE_PNG = "convergence.png"
PROFILE = "profile"


def stage_dir(workdir, stage):
  return os.path.join(workdir, stage)


def init_from_dir(workdir, init_from):
  """An earlier stage's name in this workdir, or (containing a '/') a stage directory path."""
  if os.sep in init_from:
    return init_from
  return stage_dir(workdir, init_from)


def checkpoints_dir(stage_dir_):
  return os.path.join(stage_dir_, CHECKPOINTS)


def broken_checkpoints_dir(stage_dir_):
  return os.path.join(stage_dir_, "broken_checkpoints")


def example_png(stage_dir_, i):
  return os.path.join(stage_dir_, f"example_{i}.png")
