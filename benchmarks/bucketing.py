r"""Width bucketing vs the reference system's batch size 1, on the same variable-width logs.

  python benchmarks/bucketing.py [--num_logs=48 --epochs=2 --variant=small] [--out=FILE.json]

Both approaches train a fresh CurveNet with the real jitted train step of the `finetune_cold`
stage of `configs/welllog_demo.py` (weighted cross-entropy, AdamW, augmentation as configured),
over the same rendered logs for the same number of epochs:
  batch1    each log alone, padded only to the next multiple of 32 (CurveNet's stride): one XLA
            compilation per distinct padded width, as the reference system paid;
  bucketed  the training loop's pipeline (`sources._bucketed_stage_data`): DP-chosen bucket
            widths, per-bucket batch sizes keeping pixels per batch about constant (capped at the
            stage's data.max_batch_size and shrunk to the bucket's log count), last batch of a
            bucket filled by wrapping around within it, batches from `buckets.plan_dataset`.
Figures: pixels_per_s (the data set's log pixels x epochs / wall seconds of all epochs,
compilation included: how fast a user gets through the data), pixels_per_s_steady (epochs after
the first: nothing left to compile), compiles (traces of the step, counted in loss_fn) and
distinct_shapes (their cross-check), compile_s (seconds in the step calls that compiled),
padding_waste (share of the pixels processed that are not the epoch's logs seen once: padding
columns, empty rows and wrap-around repeats all count as waste). Batches are built before timing,
so both runs time the step, not the loader. The persistent compilation cache is off, so every
compilation is paid.

One compilation of the small CurveNet step takes ~18 s on an idle 2-core CPU: batch1 compiles
once per distinct padded width, so its cost grows with --num_logs (up to 57 widths for 256-2048
px) while bucketed stays at --num_buckets programs. Defaults take ~15 minutes there.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from tqdm import tqdm  # noqa: E402

from benchmarks import output  # noqa: E402
from configs import welllog_demo  # noqa: E402
from ssl_seg import state as state_lib, step as step_lib  # noqa: E402
from ssl_seg.data import buckets, welllogs  # noqa: E402
from ssl_seg.models import curvenet  # noqa: E402

_NUM_LOGS = flags.DEFINE_integer("num_logs", 48, "Logs rendered (the same for both runs).")
_HEIGHT = flags.DEFINE_integer("height", 128, "Log height in pixels (a multiple of 32).")
_MIN_W = flags.DEFINE_integer("min_width", 256, "Narrowest log (widths are log-uniform).")
_MAX_W = flags.DEFINE_integer("max_width", 2048, "Widest log.")
_BUCKETS = flags.DEFINE_integer("num_buckets", 4, "Most bucket widths the DP may choose.")
_BATCH = flags.DEFINE_integer("base_batch_size", 2, "Batch size of the widest bucket.")
_VARIANT = flags.DEFINE_enum("variant", "small", sorted(curvenet.VARIANTS), "CurveNet size.")
_EPOCHS = flags.DEFINE_integer("epochs", 2, "Passes over the logs (>= 2: later ones are steady).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the logs, the model, the orders and the step.")
_OUT = flags.DEFINE_string("out", None, "Write the JSON rows here.")

# Figures of the printed table, in order; the ratio column is bucketed / batch1 for these.
_FIGURES = ("pixels_per_s", "pixels_per_s_steady", "compiles", "distinct_shapes", "compile_s",
            "wall_s", "steady_s", "ms_per_step_steady", "padding_waste", "steps")
_RATIOS = ("pixels_per_s", "pixels_per_s_steady")


def _stage():
  """The demo's cold fine-tune stage (CurveNet segmentation) at the chosen size and seed."""
  stage = welllog_demo.get_config(f"variant={_VARIANT.value}").stages.finetune_cold
  stage.seed = _SEED.value
  return stage


def _fresh_step(stage, traces, steps_per_epoch, total_steps):
  """A fresh model, state and jitted train step whose traces append to `traces`."""
  built = state_lib.build(stage, steps_per_epoch, total_steps)

  def counting_loss(*args, **kwargs):
    traces.append(1)  # Python runs the loss once per trace, i.e. once per compilation.
    return built.task.loss_fn(*args, **kwargs)

  return step_lib.make_train_step(built.graphdef, built.tx, counting_loss), built.state()


def _run(name, stage, epochs):
  """Trains over `epochs` (lists of host batches) and returns the row of figures."""
  traces = []
  steps = sum(map(len, epochs))
  train_step, state = _fresh_step(stage, traces, len(epochs[0]), steps)
  key = jax.random.key(stage.seed)
  compile_s, epoch_s, epoch_traces = 0.0, [], []
  start = time.perf_counter()
  for e, batches in enumerate(epochs):
    t_epoch, n_traces = time.perf_counter(), len(traces)
    for batch in tqdm(batches, desc=f"{name} epoch {e + 1}/{len(epochs)}", leave=False):
      before, t = len(traces), time.perf_counter()
      state, metrics = train_step(state, {k: v for k, v in batch.items() if k != "log_id"}, key)
      if len(traces) > before:
        # The call returns once traced, compiled and enqueued, so its time is the compile cost.
        compile_s += time.perf_counter() - t
    jax.block_until_ready((state, metrics))
    epoch_s.append(time.perf_counter() - t_epoch)
    epoch_traces.append(len(traces) - n_traces)
  wall_s = time.perf_counter() - start
  if sum(epoch_traces[1:]):
    raise RuntimeError(f"{name}: {epoch_traces[1:]} compilations after epoch 1; steady time "
                       "would include them")
  real = [_epoch_log_pixels(batches) for batches in epochs]
  processed = sum(b["valid_px"].size for batches in epochs for b in batches)
  steady_s = sum(epoch_s[1:])
  return {
      "name": name,
      "pixels_per_s": sum(real) / wall_s,
      "pixels_per_s_steady": sum(real[1:]) / steady_s,
      "compiles": len(traces),
      "distinct_shapes": len({b["image"].shape for batches in epochs for b in batches}),
      "compile_s": compile_s,
      "wall_s": wall_s,
      "steady_s": steady_s,
      "ms_per_step_steady": 1e3 * steady_s / sum(map(len, epochs[1:])),
      "padding_waste": 1.0 - sum(real) / processed,
      "steps": steps,
      "real_pixels": sum(real),
      "device": jax.devices()[0].device_kind,
  }


def _epoch_log_pixels(batches):
  """Real pixels of the epoch's logs, each log once: wrap-around repeats earn no throughput."""
  seen, total = set(), 0
  for b in batches:
    for r, (valid, log_id) in enumerate(zip(b["_valid"], b["log_id"])):
      if valid and int(log_id) not in seen:
        seen.add(int(log_id))
        total += int(b["valid_px"][r].sum())
  return total


def _batch1_epochs(logs, num_epochs, seed):
  """Each log alone, right-padded to a multiple of 32, in a seeded order per epoch."""
  padded = lambda i: -(-logs[i]["image"].shape[1] // curvenet.STRIDE) * curvenet.STRIDE
  epochs = []
  for epoch in range(num_epochs):
    order = np.random.default_rng([seed, epoch]).permutation(len(logs))
    epochs.append([_with_ids(buckets.pad_batch(logs, np.array([i]), padded(i)), [i])
                   for i in order])
  return epochs


def _with_ids(batch, indices):
  """Tags rows with their log index, so repeats can be told apart (not fed to the step)."""
  return {**batch, "log_id": np.asarray(indices)}


def _bucketed_epochs(stage, logs, widths, num_epochs, seed):
  """Batches of the training loop's bucket plan (as `sources._bucketed_stage_data` builds it)."""
  bucket_widths = buckets.bucket_widths_for(widths, multiple=curvenet.STRIDE,
                                            max_buckets=_BUCKETS.value)
  counts = np.bincount(buckets.assign_buckets(widths, bucket_widths),
                       minlength=len(bucket_widths))
  sizes = buckets.batch_sizes_for(bucket_widths, base_batch_size=_BATCH.value, counts=counts,
                                  max_batch_size=stage.data.max_batch_size or None)
  plan = buckets.BucketPlan(widths, bucket_widths, sizes, seed=seed, drop_remainder=False,
                            fill_remainder=True)
  ds = buckets.plan_dataset(logs, plan, num_epochs=num_epochs)
  steps = plan.batches_per_shard
  ids = [idx for e in range(num_epochs) for _, idx in plan.batches(e)]
  return [[_with_ids(ds[e * steps + i], ids[e * steps + i]) for i in range(steps)]
          for e in range(num_epochs)], plan


def _cell(value):
  """A table cell: thousands separators for counts and large rates, 3 decimals otherwise."""
  if value is None:
    return ""
  if isinstance(value, int):
    return f"{value:,d}"
  return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"


def _print_table(rows, ratio):
  """One line per figure, one column per row, then the bucketed / batch1 ratio where defined."""
  names = [row["name"] for row in rows]
  print(f"{'figure':21s}" + "".join(f"{n:>14s}" for n in names) + f"{'bucketed/batch1':>17s}")
  for fig in _FIGURES:
    cells = "".join(f"{_cell(row[fig]):>14s}" for row in rows)
    r = ratio.get(fig)
    print(f"{fig:21s}{cells}{'' if r is None else f'{r:16.2f}x'}")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  if _EPOCHS.value < 2:
    raise app.UsageError("--epochs must be >= 2: steady figures time the epochs after the first")
  if _HEIGHT.value % curvenet.STRIDE:
    raise app.UsageError(f"--height must be a multiple of {curvenet.STRIDE}")
  # Compile counts and times must be real: no persistent cache, even if the environment sets one.
  jax.config.update("jax_enable_compilation_cache", False)

  logs = [dict(zip(("image", "seg"), welllogs.render_example(
      _SEED.value, i, height=_HEIGHT.value, min_width=_MIN_W.value, max_width=_MAX_W.value)))
      for i in range(_NUM_LOGS.value)]
  widths = buckets.source_widths(logs)
  stage = _stage()
  bucketed, plan = _bucketed_epochs(stage, logs, widths, _EPOCHS.value, _SEED.value)
  batch1 = _batch1_epochs(logs, _EPOCHS.value, _SEED.value)
  bucket_pad = buckets.padding_waste(widths, plan.bucket_widths)
  print(f"{len(logs)} logs {_HEIGHT.value} x {widths.min()}-{widths.max()} px "
        f"(seed {_SEED.value}), {_EPOCHS.value} epochs, CurveNet-{_VARIANT.value} finetune_cold "
        f"step on {jax.devices()[0].device_kind}; buckets {plan.bucket_widths}, batch sizes "
        f"{plan.batch_sizes}, bucket padding {bucket_pad:.3f}")
  # Bucketed runs first, so any one-time warm-up of the process counts against it, not batch1.
  fast = _run("bucketed", stage, bucketed)
  base = _run("batch1", stage, batch1)
  rows = [base, fast]
  if base["real_pixels"] != fast["real_pixels"]:
    raise RuntimeError(f"runs saw different pixels: {base['real_pixels']} vs "
                       f"{fast['real_pixels']}")
  ratio = {fig: fast[fig] / base[fig] for fig in _RATIOS}
  _print_table(rows, ratio)
  output.write_rows(_OUT.value, rows + [{"name": "ratio", **ratio}])


if __name__ == "__main__":
  app.run(main)
