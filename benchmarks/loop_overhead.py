r"""The training loop's input path against the bare step, in one process, blocks alternated.

  python benchmarks/loop_overhead.py [--config=configs/welllog_demo.py]
      [--stages=pretrain,synthetic,finetune_cold] [--rounds=5 --block=24 --drop=6] [--out=F]

For each stage the real pieces of `ssl_seg.train.run_stage` are built: the stage's data
(`train._stage_data`: fresh renders, random crops or grain batches), its state and its compiled
train step. Then `--rounds` times, one block of `--block` steps fed the way the loop feeds them
(`pipeline.iterate` -> `sharding.prefetch_to_device`, the host producing batches while the step
runs) and one block on a single device-resident batch (the bare step of `step_time.py`); the
first `--drop` steps of every block are not timed, so neither block profits from, or pays
for, the other's queued batches. Every step ends with `block_until_ready`.

Rows: ms_per_step of both arms (median of the timed steps) and `loop_over_bare` (bare ms /
loop ms: 1.0 means the input path costs nothing; the issue's target is >= 0.95), plus the
host cost of one batch alone (`host_ms_per_batch`, one thread, nothing else running), which
on a CPU competes with the step for the same cores.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from benchmarks import output  # noqa: E402
from ssl_seg import host_memory, sharding, state, step, tasks, train  # noqa: E402
from ssl_seg.data import pipeline  # noqa: E402


def define_flags():
  """Command-line flags; defined only when run as a script (tests import this module)."""
  config_flags.DEFINE_config_file("config", "configs/welllog_demo.py", "Experiment config.")
  flags.DEFINE_list("stages", ["pretrain", "synthetic", "finetune_cold"],
                    "Stages of the config to measure (each from its own fresh state).")
  flags.DEFINE_integer("rounds", 5, "Alternations of the two arms.")
  flags.DEFINE_integer("block", 24, "Steps per arm and round.")
  flags.DEFINE_integer("drop", 6, "Untimed steps at the start of every block.")
  flags.DEFINE_string("out", None, "Write the JSON rows here.")


def _timed(fn, n):
  times = []
  for _ in range(n):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return times


def _forever(train_ds):
  """The stage's batches from step 0, again from 0 when a short stage runs out."""
  while True:
    yield from pipeline.iterate(train_ds, 0)


def measure(config, name, *, rounds, block, drop):
  """One stage's row: both arms' ms per step and their ratio."""
  stage = config.stages[name]
  mesh = sharding.make_mesh()
  data = train._stage_data(stage, name, mesh)
  task = tasks.make_task(stage)
  built = state.build(stage, data.steps_per_epoch, data.steps_per_epoch * stage.epochs,
                      task=task)
  train_state = built.state()
  # The state as the loop passes it: its leaves (`step.make_train_step`, `leaves_of`).
  train_step = step.make_train_step(
      built.graphdef, built.tx, task.loss_fn, batch_sharding=sharding.batch_sharding(mesh),
      options=step.compiler_options(stage.model.get("name", "")),
      leaves_of=jax.tree.structure(train_state))
  train_state = jax.tree.leaves(train_state)
  key = jax.random.key(0)
  # Host cost of a batch on its own (one thread, the step idle): what the loop must hide.
  data.train[0]  # Warm-up (caches, lazy imports).
  host_times = [_timed(lambda i=i: data.train[i], 1)[0] for i in range(1, 6)]
  batches = sharding.prefetch_to_device(_forever(data.train), mesh)
  fixed = next(batches)
  train_state, _ = train_step(train_state, fixed, key)  # Compiles.

  def loop_step():
    nonlocal train_state
    train_state, metrics = train_step(train_state, next(batches), key)
    return metrics

  def bare_step():
    nonlocal train_state
    train_state, metrics = train_step(train_state, fixed, key)
    return metrics

  loop, bare = [], []
  for _ in range(rounds):
    loop += _timed(loop_step, block)[drop:]
    bare += _timed(bare_step, block)[drop:]
  rows = int(jax.tree.leaves(fixed)[0].shape[0])
  loop_ms, bare_ms = 1e3 * float(np.median(loop)), 1e3 * float(np.median(bare))
  return {"name": f"{name}/{stage.task}", "stage": name, "task": stage.task, "batch": rows,
          "image_shape": list(fixed["image"].shape[1:]),
          "loop_ms_per_step": loop_ms, "bare_ms_per_step": bare_ms,
          "loop_over_bare": bare_ms / loop_ms,
          "loop_items_per_s": 1e3 * rows / loop_ms, "bare_items_per_s": 1e3 * rows / bare_ms,
          "host_ms_per_batch": 1e3 * float(np.median(host_times)),
          "timed_steps_per_arm": len(loop), "load_avg_1m": os.getloadavg()[0],
          "device": jax.devices()[0].device_kind}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  memory = "reuse" if host_memory.reuse_freed_memory() else "system"
  fv = flags.FLAGS
  unknown = [s for s in fv.stages if s not in fv.config.stages]
  if unknown:
    raise app.UsageError(f"--stages: {unknown} not in the config's {list(fv.config.stages)}")
  if fv.block <= fv.drop or fv.rounds < 1:
    raise app.UsageError("need --block > --drop and --rounds >= 1")
  print(f"{fv.rounds} rounds of {fv.block} steps per arm ({fv.drop} untimed), host memory "
        f"{memory}")
  rows = []
  for name in fv.stages:
    rows.append(measure(fv.config, name, rounds=fv.rounds, block=fv.block, drop=fv.drop))
    r = rows[-1]
    print(f"  {r['name']}: loop {r['loop_ms_per_step']:.1f} ms, bare {r['bare_ms_per_step']:.1f}"
          f" ms, loop/bare {r['loop_over_bare']:.3f}, host {r['host_ms_per_batch']:.1f} ms/batch",
          flush=True)
  print_table(rows)
  output.write_rows(fv.out, rows)


def print_table(rows):
  print(f"{'stage':16s}{'task':15s}{'batch':>6s}{'loop ms':>9s}{'bare ms':>9s}{'loop/bare':>10s}"
        f"{'host ms/batch':>14s}")
  for r in rows:
    print(f"{r['stage']:16s}{r['task']:15s}{r['batch']:6d}{r['loop_ms_per_step']:9.1f}"
          f"{r['bare_ms_per_step']:9.1f}{r['loop_over_bare']:10.3f}{r['host_ms_per_batch']:14.1f}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
