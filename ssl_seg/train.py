"""The Python loop for one stage: build, resume or graft, iterate, evaluate, save, log.

Start-up order (big_vision): a checkpoint in this stage's directory resumes exactly; otherwise
`init_from` grafts an earlier stage's encoder into fresh params; otherwise a fresh init.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from ssl_seg import checkpoint, metrics, optim, state as state_lib, step as step_lib, tasks
from ssl_seg.data import pipeline, sources


class NonFiniteError(RuntimeError):
  """A stage hit a non-finite loss or gradient norm and stopped (last good checkpoint kept)."""


def resolve_init_from(workdir, init_from):
  """An earlier stage's name in this workdir, or a path to a stage directory."""
  if os.sep in init_from or os.path.isdir(init_from):
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


def run_stage(config, name, workdir, writer, *, log=print):
  """Trains one stage to completion (or resumes it); returns its final eval metrics."""
  stage = config.stages[name]
  stage_dir = os.path.join(workdir, name)
  task = tasks.make_task(stage)
  data = sources.stage_data(stage)
  spe, total = data.steps_per_epoch, data.steps_per_epoch * stage.epochs

  model = task.build_model(nnx.Rngs(params=stage.seed))
  graphdef, params, rest = state_lib.split_model(model)
  del model
  tx, schedule = optim.make_optimizer(stage.optim, stage.encoder, spe, total, params)
  mngr = checkpoint.manager(stage_dir, stage.checkpoint.keep)
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

  train_step = step_lib.make_train_step(graphdef, tx, task.loss_fn)
  eval_step = step_lib.make_eval_step(graphdef, task.eval_fn)
  stage_index = list(config.stage_order).index(name)
  key = jax.random.fold_in(jax.random.key(stage.seed), stage_index)

  try:
    return _train_loop(stage, name, task, data, state, train_step, eval_step, schedule, mngr,
                       key, writer, log)
  finally:
    mngr.close()


def _train_loop(stage, name, task, data, state, train_step, eval_step, schedule, mngr, key,
                writer, log):
  spe = data.steps_per_epoch
  eval_key = jax.random.fold_in(key, 2**30)
  base = {"stage": name, "task": stage.task, "seed": stage.seed}
  start = int(state["step"])
  batches = pipeline.iterate(data.train, start)
  final = None
  for epoch in range(start // spe, stage.epochs):
    history, epoch_means = [], []
    first = max(start - epoch * spe, 0)
    bar = tqdm(total=spe, initial=first, desc=f"{name} {epoch + 1}/{stage.epochs}",
               leave=False, dynamic_ncols=True)
    for i in range(first, spe):
      state, step_metrics = train_step(state, next(batches), key)
      history.append(step_metrics)
      bar.update(1)
      if len(history) >= stage.log_every_steps or i == spe - 1:
        means = _mean_metrics(history)
        epoch_means.append((len(history), means))
        history = []
        _check_finite(stage, name, state, mngr)
        bar.set_postfix(loss=f"{means['loss']:.4f}")
    bar.close()
    step = int(state["step"])
    n = sum(c for c, _ in epoch_means)
    train_rec = {k: sum(c * m[k] for c, m in epoch_means) / n for k in epoch_means[0][1]}
    train_rec["lr"] = float(schedule(step - 1))
    if stage.on_nonfinite == "skip":
      train_rec["skipped_steps"] = int(state["skipped"])
    writer.write({**base, "split": "train", "epoch": epoch + 1, "step": step, **train_rec})
    last = epoch + 1 == stage.epochs
    if data.eval is not None and (last or (epoch + 1) % stage.eval.every_epochs == 0):
      final = evaluate(eval_step, task, state["params"], state["rest"], data.eval, eval_key)
      writer.write({**base, "split": "eval", "epoch": epoch + 1, "step": step, **final})
      log(f"[{name}] epoch {epoch + 1}: train loss {train_rec['loss']:.4f}, eval "
          + ", ".join(f"{k} {final[k]:.4f}" for k in ("loss", "miou", "acc") if k in final))
    if last or (epoch + 1) % stage.checkpoint.every_epochs == 0:
      meta = {"stage": name, "epoch": epoch + 1, "step": step, "config": stage.to_dict()}
      if last:
        meta["final_eval"] = final
      checkpoint.save(mngr, state, _jsonable(meta))

  if final is not None:
    log(metrics.summary_table(final, task.class_names, title=f"[{name}] final eval"))
  return final


def _check_finite(stage, name, state, mngr):
  bad = int(state["bad_step"])
  if bad >= 0 and stage.on_nonfinite == "stop":
    last = mngr.latest_step()
    kept = f"last good checkpoint: step {last} in {mngr.directory}" if last is not None else \
        "no checkpoint was written yet"
    raise NonFiniteError(f"stage {name!r}: non-finite loss or gradient norm at step {bad + 1} "
                         f"(1-based); stopped without saving; {kept}")


def _jsonable(x):
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, (np.generic,)):
    return x.item()
  return x
