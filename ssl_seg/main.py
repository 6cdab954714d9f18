"""Runs a config's stages in order: python -m ssl_seg.main --config=configs/X.py --workdir=DIR.

Override any field from the shell, e.g. --config.stages.segment.epochs=5 (fields are locked:
a mistyped name is an error, never a silent new field).
"""

import os
import sys
import time

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from ssl_seg import checkpoint, config_utils, distributed, metrics, plots, train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics.")
_STAGES = flags.DEFINE_list("stages", None, "Run only these stages (default: all, in order).")
_CACHE = flags.DEFINE_string(
    "compilation_cache", os.path.expanduser("~/.cache/ssl_seg/jax"),
    "Persistent XLA compilation cache ('' disables): stages and reruns that share step shapes "
    "skip recompiling.")
flags.mark_flags_as_required(["config", "workdir"])

SUMMARY_METRICS = ("miou", "pixel_acc", "f1/curve1", "f1/curve2", "f1_tol1/curve1",
                   "f1_tol1/curve2", "acc", "loss")
RULE_ROW = "threshold rule"  # curve_segment's baseline on the same eval logs.
CONVERGENCE_METRICS = ("f1/curve1", "f1/curve2", "miou")


def run(config, workdir, only=None, log=print):
  """Validates, writes config.json, runs the stages; returns {stage: final eval metrics}."""
  config_utils.validate(config)
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise PermissionError(f"workdir {workdir} cannot be created ({e.strerror or e}); choose a "
                          "writable --workdir") from e
  if not os.access(workdir, os.W_OK):
    raise PermissionError(f"workdir {workdir} is not writable; fix its permissions or choose "
                          "another --workdir")
  lead = jax.process_index() == 0  # Multi-host: one process writes the workdir's files.
  if lead:
    _, kept = config_utils.write_resolved(config, workdir)
    if kept:
      log(f"config differs from this workdir's earlier run; its config.json is kept as {kept}")
  writer = metrics.MetricsWriter(workdir)
  results = {}
  try:
    for name in config.stage_order:
      if only and name not in only:
        continue
      t0 = time.time()
      results[name] = train.run_stage(config, name, workdir, writer, log=log)
      log(f"[{name}] done in {time.time() - t0:.0f} s")
  finally:
    writer.close()
  rows = [(name, {k: r.get(k) for k in SUMMARY_METRICS}) for name, r in results.items() if r]
  rule = [r for r in results.values() if r and metrics.RULE_PREFIX + "f1/curve1" in r]
  if rule:  # The last curve stage's; stages that share eval logs share this row.
    rows.append((RULE_ROW, {k: rule[-1].get(metrics.RULE_PREFIX + k) for k in SUMMARY_METRICS}))
  log(metrics.format_table(rows, list(SUMMARY_METRICS), title="final eval per stage"))
  plot = lead and plots.convergence(metrics.read_jsonl(writer.path), CONVERGENCE_METRICS,
                                    os.path.join(workdir, "convergence.png"))
  if plot:
    log(f"convergence plot: {plot}")
  return results


def main(argv):
  del argv
  # Orbax and grain log every save at INFO; a person wants the progress bars and tables.
  logging.set_verbosity(logging.WARNING)
  if _CACHE.value:
    jax.config.update("jax_compilation_cache_dir", _CACHE.value)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  try:
    distributed.maybe_initialize()  # Multi-host runs only; before any device is used.
    run(_CONFIG.value, _WORKDIR.value, _STAGES.value)
  except train.Preempted as e:
    print(f"preempted: {e}", file=sys.stderr)
    sys.exit(train.PREEMPTED_EXIT_CODE)
  except (config_utils.ConfigError, checkpoint.CheckpointMismatchError, train.NonFiniteError,
          OSError, ValueError) as e:  # OSError: missing files, permissions, disk full.
    if os.environ.get("SSL_SEG_DEBUG"):
      raise  # The full traceback, for developers.
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2 if isinstance(e, config_utils.ConfigError) else 1)


if __name__ == "__main__":
  app.run(main)
