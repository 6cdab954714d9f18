"""The Python loop for one stage: build, resume or graft, iterate, evaluate, save, log.

Start-up order (big_vision): a checkpoint in this stage's directory resumes exactly; otherwise
`init_from` grafts an earlier stage's encoder into fresh params; otherwise a fresh init.

Exact resume: the data order is a pure function of (seed, step), the rng is folded with the
step, and a checkpoint written inside an epoch (SIGTERM, `checkpoint.every_steps`) carries the
per-step metrics of that epoch so far, so the resumed epoch's train record equals the
uninterrupted one. Records a killed run wrote after its last checkpoint are dropped on resume.
"""

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ssl_seg import (
  checkpoint,
  config_utils,
  metrics,
  models,
  paths,
  pictures,
  preemption,
  run_log,
  sharding,
  state as state_lib,
  step as step_lib,
  tasks,
)
from ssl_seg.data import pipeline, sources

# Wall-clock figures in the train records: they differ from run to run, so determinism checks
# compare records without them.
TIMING_KEYS = ("items_per_s", "epoch_s")
# Eval metrics shown in the per-epoch log line, where the task reports them.
SHOWN = ("loss", "identity_loss", "miou", "acc", "f1/curve1", "f1/curve2", "f1_tol1/curve1",
         "f1_tol1/curve2")


class NonFiniteError(RuntimeError):
  """A stage hit a non-finite loss or gradient norm and stopped (last good checkpoint kept)."""


class Preempted(Exception):
  """SIGTERM or SIGINT: a checkpoint was saved at the current step; re-run to resume."""


def without_timing(records):
  """Records without their wall-clock keys: what two runs of one config must agree on."""
  return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def _sum_trees(a, b):
  return b if a is None else jax.tree.map(jnp.add, a, b)


def evaluate(eval_step, task, params, rest, eval_ds, key, mesh):
  """Data-set-level metrics: statistics summed on device, finished on the host."""
  totals = None
  batches = sharding.prefetch_to_device(pipeline.iterate(eval_ds), mesh)
  for i, batch in enumerate(batches):
    totals = _sum_trees(totals, eval_step(params, rest, batch, jax.random.fold_in(key, i)))
  return task.summarize(jax.device_get(totals))


@dataclasses.dataclass
class StageRun:
  """Everything one stage's loop needs, built once by `run_stage`."""
  name: str
  stage: object
  stage_dir: str
  task: tasks.Task
  data: sources.StageData
  graphdef: object
  train_step: object  # Over the state's leaves (`leaves_of`): see `step.make_train_step`.
  leaves_of: object  # The train state's tree structure.
  eval_step: object
  schedule: object
  mngr: object
  key: jax.Array
  writer: run_log.Writer
  log: object
  mesh: object
  stop: dict  # {"signal": name of the signal that asked us to stop, or None}
  profile: object = None  # profiling.Trace (--profile_steps) or None


def _stage_data(stage, name, mesh):
  """The stage's data, batch sizes checked against the devices; errors name the stage."""
  f = f"config.stages.{name}"
  sharding.local_batch_size(stage.batch_size, mesh, f"{f}.batch_size")
  sharding.local_batch_size(stage.eval_batch_size, mesh, f"{f}.eval_batch_size")
  try:
    return sources.stage_data(stage, tasks.batch_keys(stage.task),
                              devices_per_process=jax.local_device_count(),
                              process_index=jax.process_index(),
                              process_count=jax.process_count())
  except ValueError as e:
    raise ValueError(f"stage {name!r}: {e}") from e


def run_stage(config, name, workdir, writer, *, log=print, mesh=None, profile=None):
  """Trains one stage to completion (or resumes it); returns its final eval metrics."""
  stage = config.stages[name]
  stage_dir = paths.stage_dir(workdir, name)
  mesh = sharding.make_mesh() if mesh is None else mesh
  task = tasks.make_task(stage)
  overrides = models.describe_overrides(stage.model)  # Size fields that replace the variant's.
  if overrides:
    log(f"[{name}] {overrides}")
  data = _stage_data(stage, name, mesh)
  total = data.steps_per_epoch * stage.epochs
  built = state_lib.build(stage, data.steps_per_epoch, total, task=task)
  graphdef, tx, schedule = built.graphdef, built.tx, built.schedule
  abstract = state_lib.abstract_state(built.params, built.rest, tx)
  shardings = sharding.state_shardings(abstract, mesh, fsdp=stage.sharding.fsdp,
                                       min_size=stage.sharding.fsdp_min_size)
  mngr = checkpoint.manager(stage_dir, stage.checkpoint.keep)
  try:
    state, partial, complete = _start(stage, name, workdir, built, abstract, mngr, total, log)
    del built  # The fresh params: replaced by a resume or a graft, or now held by `state`.
    if complete is not None:
      return complete
    state = sharding.place(state, shardings)
    # Records a killed run wrote after its last checkpoint are redone by this run.
    if writer.enabled:
      run_log.drop_records_after(writer.path, name, int(state["step"]))
    stage_index = list(config.stage_order).index(name)
    batch_sh = sharding.batch_sharding(mesh)
    options = step_lib.compiler_options(stage.model.get("name", ""))
    leaves_of = jax.tree_util.tree_structure(state)
    with preemption.stop_on_signals() as stop:
      run = StageRun(
          name=name, stage=stage, stage_dir=stage_dir, task=task, data=data, graphdef=graphdef,
          train_step=step_lib.make_train_step(graphdef, tx, task.loss_fn,
                                              state_sharding=shardings, batch_sharding=batch_sh,
                                              options=options, leaves_of=leaves_of),
          leaves_of=leaves_of,
          eval_step=step_lib.make_eval_step(graphdef, task.eval_fn, state_sharding=shardings,
                                            batch_sharding=batch_sh, options=options),
          schedule=schedule, mngr=mngr,
          key=jax.random.fold_in(jax.random.key(stage.seed), stage_index),
          writer=writer, log=log, mesh=mesh, stop=stop, profile=profile)
      return _train_loop(run, state, partial)
  finally:
    mngr.close()


def _start(stage, name, workdir, built, abstract, mngr, total, log):
  """(state, the step records of its epoch so far, final eval or None): the start-up order of
  the module docstring. The final eval is set when the checkpoint is of a complete stage."""
  def stage_log(msg):
    log(f"[{name}] {msg}")

  if mngr.latest_step() is None:
    params = built.params
    if stage.init_from.stage:
      source = paths.init_from_dir(workdir, stage.init_from.stage)
      # epochs=0 evaluates the source as it is: every param (encoder and head) is loaded.
      subtrees = tuple(stage.init_from.subtrees) if stage.epochs else tuple(params.keys())
      params = checkpoint.graft(
          params, source, subtrees, log=stage_log,
          allow_partial=stage.init_from.get("allow_partial", False),
          partial_flag=f"--config.stages.{name}.init_from.allow_partial")
    return state_lib.create_state(params, built.rest, built.tx), [], None
  state, meta = checkpoint.restore_state(mngr, abstract, log=stage_log)
  step = int(state["step"])
  if mngr.latest_step() > step and jax.process_index() == 0:
    # Newer steps were unreadable: out of the way, so this run can write them again.
    for path in checkpoint.set_aside_after(mngr, step):
      stage_log(f"moved the unreadable checkpoint to {path}")
  log(f"[{name}] resuming from step {step} of {total} ({mngr.directory})")
  if step >= total and "final_eval" in meta:
    log(f"[{name}] already complete")
    return state, [], meta["final_eval"]
  return state, meta.get("partial_epoch", []), None


def _batch_rows(batch):
  return jax.tree.leaves(batch)[0].shape[0]


def _train_loop(run: StageRun, state, partial):
  """Epochs from the state's step to the end: train records, evals, checkpoints, pictures."""
  stage, spe = run.stage, run.data.steps_per_epoch
  eval_key = jax.random.fold_in(run.key, 2**30)
  base = {"stage": run.name, "task": stage.task, "seed": stage.seed}
  if stage.epochs == 0:
    return _eval_only(run, state, eval_key, base)
  start = int(state["step"])
  batches = sharding.prefetch_to_device(pipeline.iterate(run.data.train, start), run.mesh)
  final = None
  for epoch in range(start // spe, stage.epochs):
    first = max(start - epoch * spe, 0)
    # Host copies of every step's metrics this epoch (a checkpoint inside it carries them).
    steps = list(partial) if first else []
    if len(steps) != first:
      raise ValueError(f"stage {run.name!r}: the checkpoint at step {start} holds "
                       f"{len(steps)} step records of its epoch, expected {first}")
    skipped_before, t0 = int(state["skipped"]), time.perf_counter()
    state, items = _train_epoch(run, state, batches, epoch, first, steps)
    epoch_s = time.perf_counter() - t0
    _check_learned(run, state, epoch, first, skipped_before)
    train_rec = _train_record(run, state, steps, items_per_s=items / epoch_s, epoch_s=epoch_s)
    step, last = int(state["step"]), epoch + 1 == stage.epochs
    run.writer.write({**base, "split": "train", "epoch": epoch + 1, "step": step, **train_rec})
    if run.data.eval is not None and (last or (epoch + 1) % stage.eval.every_epochs == 0):
      final = evaluate(run.eval_step, run.task, state["params"], state["rest"], run.data.eval,
                       eval_key, run.mesh)
      run.writer.write({**base, "split": "eval", "epoch": epoch + 1, "step": step, **final})
      run.log(f"[{run.name}] epoch {epoch + 1}: train loss {train_rec['loss']:.4f}, eval "
              + ", ".join(f"{k} {final[k]:.4f}" for k in SHOWN if k in final))
    # Records first, checkpoint second: a run killed in between redoes this epoch and drops
    # the records it wrote (run_log.drop_records_after).
    if last or (epoch + 1) % stage.checkpoint.every_epochs == 0 or run.stop["signal"]:
      _save(run, state, epoch + 1, final=final if last else None)
    _stop_if_asked(run, state)
  if run.task.pictures is not None and run.data.eval is not None:
    _save_pictures(run, state, eval_key)
  if final is not None:
    run.writer.hparams(f"hparams/{run.name}", hparams(stage), final)
    run.log(metrics.summary_table(final, run.task.class_names,
                                  title=f"[{run.name}] final eval"))
  return final


def _train_epoch(run: StageRun, state, batches, epoch, first, steps):
  """Steps `first`.. of `epoch`; their host metrics land in `steps`. Returns (state, items)."""
  stage, spe = run.stage, run.data.steps_per_epoch
  every = stage.checkpoint.every_steps
  history, items = [], 0
  bar = tqdm(total=spe, initial=first, desc=f"{run.name} {epoch + 1}/{stage.epochs}",
             leave=False, dynamic_ncols=True)
  # The steps pass the state as its leaves; the tree is rebuilt only where it is read.
  leaves = jax.tree_util.tree_leaves(state)
  del state  # Its arrays are donated to the first step.

  def tree():
    return jax.tree_util.tree_unflatten(run.leaves_of, leaves)

  for i in range(first, spe):
    batch = next(batches)
    items += _batch_rows(batch)
    step = epoch * spe + i + 1  # 1-based, as the state's step after this one.
    end = i == spe - 1
    if run.profile:
      run.profile.before(step)
    leaves, step_metrics = run.train_step(leaves, batch, run.key)
    if run.profile:
      run.profile.after(step, leaves, end=end and epoch + 1 == stage.epochs)
    history.append(step_metrics)
    bar.update(1)
    save_now = not end and (run.stop["signal"] or every and step % every == 0)
    if end or save_now or (i + 1) % stage.log_every_steps == 0:
      # The only device->host transfer: every log_every_steps steps, not every step.
      means = _flush(history, steps)
      run.writer.scalars(f"{run.name}/train_steps/", means, step)  # TensorBoard only.
      _check_finite(run, tree())
      bar.set_postfix(loss=f"{means['loss']:.4f}")
    if save_now:
      _save(run, tree(), epoch, partial=steps)
      _stop_if_asked(run, tree())
  bar.close()
  return tree(), items


def _check_learned(run: StageRun, state, epoch, first, skipped_before):
  """on_nonfinite='skip': an epoch whose every step was skipped learned nothing; its records
  and eval would be NaN, not results, so the stage stops."""
  spe, step = run.data.steps_per_epoch, int(state["step"])
  if run.stage.on_nonfinite == "skip" and int(state["skipped"]) - skipped_before == spe - first:
    a = epoch * spe + first + 1
    span = f"step {a}" if a == step else f"steps {a}-{step}"
    raise NonFiniteError(f"stage {run.name!r}: every step of epoch {epoch + 1} ({span}) had a "
                         f"non-finite loss or gradient norm and was skipped (on_nonfinite="
                         f"'skip'); stopped without saving; {_kept(run)}; lower optim.lr, set "
                         "optim.clip_norm, or check the data")


def _train_record(run: StageRun, state, steps, **timing):
  """An epoch's train record: the means of its step metrics (float64), lr, skips, timing."""
  rec = {k: float(np.mean(np.asarray([s[k] for s in steps], np.float64))) for k in steps[0]}
  rec["lr"] = float(run.schedule(int(state["step"]) - 1))
  if run.stage.on_nonfinite == "skip":
    rec["skipped_steps"] = int(state["skipped"])
  return {**rec, **timing}


def hparams(stage):
  """A stage config's scalar settings, flat ('optim.lr': 0.001), for TensorBoard's HParams."""
  flat = config_utils.flat(stage.to_dict())
  return {k: v for k, v in flat.items()
          if isinstance(v, (bool, int, float)) or isinstance(v, str) and v}


def _eval_only(run: StageRun, state, eval_key, base):
  """epochs=0: one eval of the loaded params, recorded as epoch 0, step 0, and saved (with
  its final eval) so a rerun of the workdir skips it as complete."""
  if run.data.eval is None:
    raise ValueError(f"stage {run.name!r}: epochs=0 evaluates, but the stage has no eval data")
  final = evaluate(run.eval_step, run.task, state["params"], state["rest"], run.data.eval,
                   eval_key, run.mesh)
  run.writer.write({**base, "split": "eval", "epoch": 0, "step": 0, **final})
  _save(run, state, 0, final=final)
  if run.task.pictures is not None:
    _save_pictures(run, state, eval_key)
  run.writer.hparams(f"hparams/{run.name}", hparams(run.stage), final)
  run.log(metrics.summary_table(final, run.task.class_names,
                                title=f"[{run.name}] eval only (epochs=0)"))
  return final


def _flush(history, steps):
  """Pulls the pending step metrics to the host (one transfer); returns their means."""
  host = jax.device_get(history)
  steps.extend({k: float(v) for k, v in h.items()} for h in host)
  history.clear()
  return {k: float(np.mean([h[k] for h in host])) for k in host[0]}


def _save(run: StageRun, state, epoch, *, partial=None, final=None):
  """Checkpoint at the state's step; `partial`: this epoch's step metrics when inside one."""
  _check_finite(run, state)
  step = int(state["step"])
  if run.mngr.latest_step() == step:
    return
  meta = {"stage": run.name, "epoch": epoch, "step": step, "config": run.stage.to_dict()}
  if partial:
    meta["partial_epoch"] = partial
  if final is not None:
    meta["final_eval"] = final
  checkpoint.save(run.mngr, state, meta)


def _stop_if_asked(run: StageRun, state):
  if run.stop["signal"]:
    raise Preempted(f"stage {run.name!r} stopped by {run.stop['signal']} at step "
                    f"{int(state['step'])}; checkpoint saved in {run.mngr.directory}; run the "
                    "same command again to resume")


def _save_pictures(run: StageRun, state, key):
  pictures.save(run.task, run.graphdef, state, run.data.eval[0], key, stage_dir=run.stage_dir,
                writer=run.writer, name=run.name)


def _check_finite(run: StageRun, state):
  bad = int(state["bad_step"])
  if bad >= 0 and run.stage.on_nonfinite == "stop":
    raise NonFiniteError(f"stage {run.name!r}: non-finite loss or gradient norm at step {bad + 1} "
                         f"(1-based); stopped without saving; {_kept(run)}; lower optim.lr, set "
                         "optim.clip_norm, or set on_nonfinite='skip'")


def _kept(run: StageRun):
  last = run.mngr.latest_step()
  return (f"last good checkpoint: step {last} in {run.mngr.directory}" if last is not None
          else "no checkpoint was written yet")
