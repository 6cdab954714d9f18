"""Runs a config's stages in order: python -m ssl_seg.main --config=configs/X.py --workdir=DIR.

Override any field from the shell, e.g. --config.stages.segment.epochs=5 (fields are locked:
a mistyped name is an error, never a silent new field). A workdir whose stages were trained
with another config is refused (exit 2) unless --force, which moves their results aside.
"""

import os
import sys
import time
import warnings

import jax
from absl import app, flags, logging
from jax.experimental import multihost_utils
from ml_collections import config_flags

from ssl_seg import (
  checkpoint,
  config_utils,
  distributed,
  host_memory,
  metrics,
  paths,
  plots,
  preemption,
  profiling,
  run_log,
  train,
)

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics.")
_STAGES = flags.DEFINE_list("stages", None, "Run only these stages (default: all, in order).")
_FORCE = flags.DEFINE_bool(
    "force", False, "Rerun stages this workdir trained with another config: their results "
    "move to WORKDIR/replaced-TIME/ first (without it such a rerun is refused).")
_CACHE = flags.DEFINE_string(
    "compilation_cache", os.path.expanduser("~/.cache/ssl_seg/jax"),
    "Persistent XLA compilation cache ('' disables): stages and reruns that share step shapes "
    "skip recompiling.")
_PROFILE = flags.DEFINE_string(
    "profile_steps", "", "N,M: a jax.profiler trace of train steps N to M (1-based) of the first "
    "stage that runs them, into WORKDIR/profile (ssl_seg/profiling.py).")
flags.mark_flags_as_required(["config", "workdir"])

SUMMARY_METRICS = ("miou", "pixel_acc", "f1/curve1", "f1/curve2", "f1_tol1/curve1",
                   "f1_tol1/curve2", "acc", "loss")
RULE_ROW = "threshold rule"  # curve_segment's baseline on the same eval logs.
CONVERGENCE_METRICS = ("f1/curve1", "f1/curve2", "miou")


def run(config, workdir, only=None, log=print, force=False, profile_steps=None):
  """Validates, writes config.json, runs the stages; returns {stage: final eval metrics}.

  profile_steps: (N, M) to trace train steps N..M (`profiling.py`), or None.
  """
  config_utils.validate(config)
  config_utils.check_stages(config, only)
  _prepare_workdir(config, workdir, force, log)
  writer = run_log.Writer(workdir)
  if writer.enabled:
    run_log.drop_torn_record(writer.path, log)
  results = {}
  trace = profile_steps and profiling.Trace(profile_steps, os.path.join(workdir, paths.PROFILE),
                                            log)
  try:
    for name in config.stage_order:
      if only and name not in only:
        continue
      t0 = time.time()
      results[name] = train.run_stage(config, name, workdir, writer, log=log, profile=trace)
      log(f"[{name}] done in {time.time() - t0:.0f} s")
  except BaseException:
    # A failing TensorBoard flush (disk full) must not replace the error that stopped the run.
    try:
      writer.close()
    except OSError:
      pass
    raise
  writer.close()
  _summarize(results, workdir, writer.path, log)
  return results


def _prepare_workdir(config, workdir, force, log):
  """A writable workdir whose earlier stages were trained with this config (or, with --force,
  moved aside), holding this run's config.json."""
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise PermissionError(f"workdir {workdir} cannot be created ({e.strerror or e}); choose a "
                          "writable --workdir") from e
  if not os.access(workdir, os.W_OK):
    raise PermissionError(f"workdir {workdir} is not writable; fix its permissions or choose "
                          "another --workdir")
  changed = _changed_stages(config, workdir)
  if changed and not force:
    diff = [d for ds in changed.values() for d in ds]
    more = f"; and {len(diff) - 4} more" if len(diff) > 4 else ""
    raise config_utils.ConfigError(
        f"stage(s) {', '.join(map(repr, changed))} in {workdir} were trained with another "
        f"config ({'; '.join(diff[:4])}{more}); rerun with the same config, use another "
        "--workdir, or add --force to move their results aside and train them again")
  if jax.process_index() == 0:  # Multi-host: one process writes the workdir's files.
    if changed:
      aside = _move_aside(config, workdir, changed)
      log(f"--force: results of stage(s) trained with another config moved to {aside}")
    _, kept = config_utils.write_resolved(config, workdir)
    if kept:
      log(f"config differs from this workdir's earlier run; its config.json is kept as {kept}")
  if changed and jax.process_count() > 1:  # No process starts a stage before the move is done.
    multihost_utils.sync_global_devices("ssl_seg.main: --force moved stages aside")


def _summarize(results, workdir, metrics_path, log):
  """The final table (with the threshold rule's row), report.html and the convergence plot."""
  lead = jax.process_index() == 0
  rows = [(name, {k: r.get(k) for k in SUMMARY_METRICS}) for name, r in results.items() if r]
  rule = [r for r in results.values() if r and metrics.RULE_PREFIX + "f1/curve1" in r]
  if rule:  # The last curve stage's; stages that share eval logs share this row.
    rows.append((RULE_ROW, {k: rule[-1].get(metrics.RULE_PREFIX + k) for k in SUMMARY_METRICS}))
  if lead:  # WORKDIR/report.html, the page a person opens (launch/report_html.py).
    from launch import report_html
    report_html.write_for_workdir(workdir, log)
  # Only the columns some stage reports: a ViT run shows no curve F1, a well-log run no acc.
  columns = [k for k in SUMMARY_METRICS if any(r.get(k) is not None for _, r in rows)]
  log(metrics.format_table(rows, columns, title="final eval per stage"))
  plot = lead and plots.convergence(run_log.read(metrics_path), CONVERGENCE_METRICS,
                                    os.path.join(workdir, paths.CONVERGENCE_PNG))
  if plot:
    log(f"convergence plot: {plot}")


def _changed_stages(config, workdir):
  """{stage: [field: old -> new, ...]} for stages whose checkpoints were trained with another
  stage config: resuming or skipping them would mix two configs' results, and config.json
  would claim values they were not trained with (also for stages --stages leaves out)."""
  changed = {}
  for name in config.stage_order:
    saved = checkpoint.saved_config(paths.stage_dir(workdir, name))
    diff = saved and config_utils.config_changes(saved, config.stages[name].to_dict())
    if diff:
      changed[name] = [f"stages.{name}.{d}" for d in diff]
  return changed


def _move_aside(config, workdir, changed):
  """--force: the changed stages, those grafted from them, their metrics records and the
  TensorBoard events move to WORKDIR/replaced-TIME/, so the rerun starts clean."""
  stale = set(changed)
  for name in config.stage_order:  # Sources run first: one pass finds every dependant.
    if config.stages[name].init_from.stage in stale:
      stale.add(name)
  aside = os.path.join(workdir, time.strftime("replaced-%Y%m%d-%H%M%S"))
  os.makedirs(aside)
  moving = [paths.stage_dir(workdir, name) for name in sorted(stale)] + [
      os.path.join(workdir, paths.TENSORBOARD), os.path.join(workdir, paths.CONVERGENCE_PNG)]
  for path in moving:
    if os.path.exists(path):
      os.replace(path, os.path.join(aside, os.path.basename(path)))
  run_log.move_stages(run_log.path(workdir), run_log.path(aside), stale)
  return aside


def main(argv):
  del argv
  # Before JAX starts its threads (they would keep their own malloc arenas): host_memory.py.
  host_memory.reuse_freed_memory()
  # Orbax and grain log every save at INFO; a person wants the progress bars and tables.
  logging.set_verbosity(logging.WARNING)
  if _CACHE.value:
    jax.config.update("jax_compilation_cache_dir", _CACHE.value)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    # XLA cannot serialise executables with oneDNN custom calls (CurveNet on CPU,
    # step.CPU_CONV_OPTIONS) and JAX reports it as a MemoryError warning: nothing is wrong,
    # those steps are just compiled again next run (benchmarks/RESULTS.md).
    warnings.filterwarnings("ignore", r"Error writing persistent compilation cache entry .*"
                            r"std::bad_alloc", UserWarning)
  try:
    try:
      profile_steps = profiling.parse(_PROFILE.value)
    except ValueError as e:
      raise config_utils.ConfigError(str(e)) from None
    distributed.maybe_initialize()  # Multi-host runs only; before any device is used.
    run(_CONFIG.value, _WORKDIR.value, _STAGES.value, force=_FORCE.value,
        profile_steps=profile_steps)
  except train.Preempted as e:
    print(f"preempted: {e}", file=sys.stderr)
    sys.exit(preemption.EXIT_CODE)
  except (config_utils.ConfigError, checkpoint.CheckpointMismatchError, train.NonFiniteError,
          OSError, ValueError) as e:  # OSError: missing files, permissions, disk full.
    if os.environ.get("SSL_SEG_DEBUG"):
      raise  # The full traceback, for developers.
    print(f"error: {e}", file=sys.stderr, flush=True)
    # What tears down after it (TensorBoard's writer failing its flush again on a full disk,
    # Orbax's threads) would print tracebacks under this line: that goes to /dev/null.
    sys.stdout.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    sys.exit(2 if isinstance(e, config_utils.ConfigError) else 1)


def cli():
  """The `ssl-seg-train` console script."""
  app.run(main, flags_parser=config_utils.parse_flags)


if __name__ == "__main__":
  cli()
