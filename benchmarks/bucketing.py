r"""Width bucketing vs the reference system's batch size 1, on the same variable-width logs.

  python benchmarks/bucketing.py [--num_logs=24 --epochs=2 --variant=small] [--out=FILE.json]

Both approaches run the real jitted CurveNet train step of `configs/welllog_demo.py`'s
`finetune_cold` stage over the same rendered logs for the same number of epochs:
  batch1    each log alone, padded only to the next multiple of 32 (CurveNet's stride):
            one XLA compilation per distinct padded width, as the reference system paid;
  bucketed  the project's pipeline: DP-chosen bucket widths, per-bucket batch sizes that keep
            pixels per batch about constant, partial batches kept (empty rows masked).
Figures: pixels_per_s (real log pixels / wall seconds, compilation included: what a user
waits for), pixels_per_s_steady (last epoch only), compiles (traces of the step), padding_waste
(padded share of the pixels processed). No persistent compilation cache, so compiles are real.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from flax import nnx  # noqa: E402
from tqdm import tqdm  # noqa: E402

from configs import welllog_demo  # noqa: E402
from ssl_seg import optim, state as state_lib, step as step_lib, tasks  # noqa: E402
from ssl_seg.data import buckets, welllogs  # noqa: E402
from ssl_seg.models import curvenet  # noqa: E402

_NUM_LOGS = flags.DEFINE_integer("num_logs", 24, "Logs rendered (the same for both runs).")
_HEIGHT = flags.DEFINE_integer("height", 64, "Log height in pixels (a multiple of 32).")
_MIN_W = flags.DEFINE_integer("min_width", 256, "Narrowest log.")
_MAX_W = flags.DEFINE_integer("max_width", 1536, "Widest log.")
_BUCKETS = flags.DEFINE_integer("num_buckets", 4, "Bucket widths chosen by the DP.")
_BATCH = flags.DEFINE_integer("base_batch_size", 2, "Batch size of the widest bucket.")
_VARIANT = flags.DEFINE_string("variant", "small", "CurveNet size: tiny, small, base.")
_EPOCHS = flags.DEFINE_integer("epochs", 2, "Passes over the logs.")
_OUT = flags.DEFINE_string("out", None, "Write the JSON rows here.")


def _stage():
  stage = welllog_demo.get_config(f"variant={_VARIANT.value}").stages.finetune_cold
  stage.augment.enabled = False  # Same work per pixel in both runs.
  return stage


def _fresh_step(stage, traces):
  task = tasks.make_task(stage)

  def counting_loss(*args, **kw):
    traces.append(1)  # Python runs this once per trace, i.e. per compilation.
    return task.loss_fn(*args, **kw)

  graphdef, params, rest = state_lib.split_model(task.build_model(nnx.Rngs(params=0)))
  tx, _ = optim.make_optimizer(stage.optim, stage.encoder, 100, 10_000, params)
  return step_lib.make_train_step(graphdef, tx, counting_loss), state_lib.create_state(
      params, rest, tx)


def _run(name, stage, epoch_batches):
  """Times all epochs (compiles included) and the last one alone; returns a result row."""
  traces = []
  train_step, state = _fresh_step(stage, traces)
  key = jax.random.key(0)
  real_px = processed_px = 0
  t0 = time.perf_counter()
  for epoch, batches in enumerate(epoch_batches):
    t_epoch = time.perf_counter()
    for batch in tqdm(batches, desc=f"{name} epoch {epoch + 1}", leave=False):
      state, metrics = train_step(state, batch, key)
      real_px += int(batch["valid_px"].sum())
      processed_px += batch["valid_px"].size
    jax.block_until_ready(metrics)
    last_epoch_s = time.perf_counter() - t_epoch
    last_epoch_px = sum(int(b["valid_px"].sum()) for b in batches)
  total_s = time.perf_counter() - t0
  return {"name": name, "pixels_per_s": real_px / total_s,
          "pixels_per_s_steady": last_epoch_px / last_epoch_s, "compiles": len(traces),
          "padding_waste": 1.0 - real_px / processed_px, "steps": sum(map(len, epoch_batches)),
          "wall_s": total_s, "device": jax.devices()[0].device_kind}


def _batch1_epochs(logs, epochs, seed):
  """Each log alone, right-padded to a multiple of 32; a seeded order per epoch."""
  out = []
  for epoch in range(epochs):
    order = np.random.default_rng([seed, epoch]).permutation(len(logs))
    batches = []
    for i in order:
      width = logs[i]["image"].shape[1]
      padded = -(-width // curvenet.STRIDE) * curvenet.STRIDE
      batches.append(buckets.pad_batch(logs, np.array([i]), padded))
    out.append(batches)
  return out


def _bucketed_epochs(logs, widths, epochs, seed):
  plan = buckets.BucketPlan.from_widths(widths, base_batch_size=_BATCH.value,
                                        max_buckets=_BUCKETS.value, seed=seed,
                                        drop_remainder=False)
  ds = buckets.plan_dataset(logs, plan, num_epochs=epochs)
  steps = plan.batches_per_shard
  return [[ds[e * steps + i] for i in range(steps)] for e in range(epochs)], plan


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  logs = [dict(zip(("image", "seg"), welllogs.render_example(
      0, i, height=_HEIGHT.value, min_width=_MIN_W.value, max_width=_MAX_W.value)))
      for i in range(_NUM_LOGS.value)]
  widths = buckets.source_widths(logs)
  stage = _stage()
  # Batches are built before timing: both runs measure the step, not the loader.
  rows = [_run("batch1", stage, _batch1_epochs(logs, _EPOCHS.value, seed=0))]
  bucketed, plan = _bucketed_epochs(logs, widths, _EPOCHS.value, seed=0)
  rows.append(_run("bucketed", stage, bucketed))
  base, fast = rows
  rows.append({"name": "ratio", "pixels_per_s": fast["pixels_per_s"] / base["pixels_per_s"],
               "pixels_per_s_steady": fast["pixels_per_s_steady"] / base["pixels_per_s_steady"],
               "compiles": fast["compiles"] / base["compiles"], "device": base["device"]})

  print(f"{len(logs)} logs, height {_HEIGHT.value}, widths {widths.min()}-{widths.max()}, "
        f"{_EPOCHS.value} epochs, CurveNet-{_VARIANT.value}; buckets {plan.bucket_widths}, "
        f"batch sizes {plan.batch_sizes}")
  cols = ("pixels_per_s", "pixels_per_s_steady", "compiles", "padding_waste", "steps", "wall_s")
  print(f"{'':10s}" + "".join(f"{c:>21s}" for c in cols))
  for row in rows:
    cells = [row.get(c) for c in cols]
    print(f"{row['name']:10s}" + "".join(
        f"{'-':>21s}" if v is None else f"{v:21.3f}" if isinstance(v, float) else f"{v:21d}"
        for v in cells))
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  app.run(main)
