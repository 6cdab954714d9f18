"""The Python loop for one stage: build, resume or graft, iterate, evaluate, save, log.

Start-up order (big_vision): a checkpoint in this stage's directory resumes exactly; otherwise
`init_from` grafts an earlier stage's encoder into fresh params; otherwise a fresh init.
"""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from ssl_seg import checkpoint, metrics, optim, plots, state as state_lib, step as step_lib, tasks
from ssl_seg.data import pipeline, sources


class NonFiniteError(RuntimeError):
  """A stage hit a non-finite loss or gradient norm and stopped (last good checkpoint kept)."""


def resolve_init_from(workdir, init_from):
  """An earlier stage's name in this workdir, or (containing a '/') a stage directory path."""
  if os.sep in init_from:
    return init_from
  return os.path.join(workdir, init_from)


def _sum_trees(a, b):
  return b if a is None else jax.tree.map(jnp.add, a, b)


def evaluate(eval_step, task, params, rest, eval_ds, key):
  """Data-set-level metrics: statistics summed on device, finished on the host."""
  totals = None
  for i, batch in enumerate(pipeline.iterate(eval_ds)):
    totals = _sum_trees(totals, eval_step(params, rest, batch, jax.random.fold_in(key, i)))
  return task.summarize(jax.device_get(totals))


def _mean_metrics(history):
  """Mean of each scalar over the steps since the last log (one device->host transfer)."""
  host = jax.device_get(history)
  return {k: float(np.mean([h[k] for h in host])) for k in host[0]}


@dataclasses.dataclass
class StageRun:
  """Everything one stage's loop needs, built once by `run_stage`."""
  name: str
  stage: object
  stage_dir: str
  task: tasks.Task
  data: sources.StageData
  graphdef: object
  train_step: object
  eval_step: object
  schedule: object
  mngr: object
  key: jax.Array
  writer: metrics.MetricsWriter
  log: object


def run_stage(config, name, workdir, writer, *, log=print):
  """Trains one stage to completion (or resumes it); returns its final eval metrics."""
  stage = config.stages[name]
  stage_dir = os.path.join(workdir, name)
  task = tasks.make_task(stage)
  data = sources.stage_data(stage)
  spe, total = data.steps_per_epoch, data.steps_per_epoch * stage.epochs

  graphdef, params, rest = state_lib.split_model(task.build_model(nnx.Rngs(params=stage.seed)))
  tx, schedule = optim.make_optimizer(stage.optim, stage.encoder, spe, total, params)
  mngr = checkpoint.manager(stage_dir, stage.checkpoint.keep)
  try:
    if mngr.latest_step() is not None:
      state, meta = checkpoint.restore_state(mngr, state_lib.abstract_state(params, rest, tx))
      log(f"[{name}] resuming from step {int(state['step'])} of {total} ({mngr.directory})")
      if int(state["step"]) >= total and "final_eval" in meta:
        log(f"[{name}] already complete")
        return meta["final_eval"]
    else:
      if stage.init_from.stage:
        source = resolve_init_from(workdir, stage.init_from.stage)
        params = checkpoint.graft(params, source, tuple(stage.init_from.subtrees))
        log(f"[{name}] grafted {list(stage.init_from.subtrees)} from {source}")
      state = state_lib.create_state(params, rest, tx)
    del params, rest
    stage_index = list(config.stage_order).index(name)
    run = StageRun(
        name=name, stage=stage, stage_dir=stage_dir, task=task, data=data, graphdef=graphdef,
        train_step=step_lib.make_train_step(graphdef, tx, task.loss_fn),
        eval_step=step_lib.make_eval_step(graphdef, task.eval_fn), schedule=schedule,
        mngr=mngr, key=jax.random.fold_in(jax.random.key(stage.seed), stage_index),
        writer=writer, log=log)
    return _train_loop(run, state)
  finally:
    mngr.close()


def _train_loop(run: StageRun, state):
  stage, data, spe = run.stage, run.data, run.data.steps_per_epoch
  eval_key = jax.random.fold_in(run.key, 2**30)
  base = {"stage": run.name, "task": stage.task, "seed": stage.seed}
  start = int(state["step"])
  batches = pipeline.iterate(data.train, start)
  final = None
  for epoch in range(start // spe, stage.epochs):
    history, epoch_means = [], []
    first = max(start - epoch * spe, 0)
    bar = tqdm(total=spe, initial=first, desc=f"{run.name} {epoch + 1}/{stage.epochs}",
               leave=False, dynamic_ncols=True)
    for i in range(first, spe):
      state, step_metrics = run.train_step(state, next(batches), run.key)
      history.append(step_metrics)
      bar.update(1)
      if len(history) >= stage.log_every_steps or i == spe - 1:
        means = _mean_metrics(history)
        epoch_means.append((len(history), means))
        history = []
        _check_finite(run, state)
        bar.set_postfix(loss=f"{means['loss']:.4f}")
    bar.close()
    step = int(state["step"])
    n = sum(c for c, _ in epoch_means)
    train_rec = {k: sum(c * m[k] for c, m in epoch_means) / n for k in epoch_means[0][1]}
    train_rec["lr"] = float(run.schedule(step - 1))
    if stage.on_nonfinite == "skip":
      train_rec["skipped_steps"] = int(state["skipped"])
    run.writer.write({**base, "split": "train", "epoch": epoch + 1, "step": step, **train_rec})
    last = epoch + 1 == stage.epochs
    if data.eval is not None and (last or (epoch + 1) % stage.eval.every_epochs == 0):
      final = evaluate(run.eval_step, run.task, state["params"], state["rest"], data.eval,
                       eval_key)
      run.writer.write({**base, "split": "eval", "epoch": epoch + 1, "step": step, **final})
      shown = ("loss", "identity_loss", "miou", "acc", "f1/curve1", "f1/curve2")
      run.log(f"[{run.name}] epoch {epoch + 1}: train loss {train_rec['loss']:.4f}, eval "
              + ", ".join(f"{k} {final[k]:.4f}" for k in shown if k in final))
    if last or (epoch + 1) % stage.checkpoint.every_epochs == 0:
      meta = {"stage": run.name, "epoch": epoch + 1, "step": step, "config": stage.to_dict()}
      if last:
        meta["final_eval"] = final
      checkpoint.save(run.mngr, state, _jsonable(meta))

  if run.task.pictures is not None and data.eval is not None:
    save_pictures(run, state, eval_key)
  if final is not None:
    run.log(metrics.summary_table(final, run.task.class_names,
                                  title=f"[{run.name}] final eval"))
  return final


def save_pictures(run: StageRun, state, key, max_examples=4):
  """PNGs of the first eval batch's examples: WORKDIR/<stage>/example_<i>.png."""
  batch = run.data.eval[0]
  panels = jax.device_get(jax.jit(
      lambda p, r, b: run.task.pictures(nnx.merge(run.graphdef, p, r), b, key))(
          state["params"], state["rest"], batch))
  paths = []
  for i in range(min(max_examples, int(np.sum(batch["_valid"])))):
    width = int(batch["width"][i]) if "width" in batch else None
    panel = {k: v[i][:, :width] for k, v in panels.items()}
    paths.append(os.path.join(run.stage_dir, f"example_{i}.png"))
    plots.save_panel(paths[-1], panel)
  return paths


def _check_finite(run: StageRun, state):
  bad = int(state["bad_step"])
  if bad >= 0 and run.stage.on_nonfinite == "stop":
    last = run.mngr.latest_step()
    kept = (f"last good checkpoint: step {last} in {run.mngr.directory}" if last is not None
            else "no checkpoint was written yet")
    raise NonFiniteError(f"stage {run.name!r}: non-finite loss or gradient norm at step {bad + 1} "
                         f"(1-based); stopped without saving; {kept}")


def _jsonable(x):
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, (np.generic,)):
    return x.item()
  return x
