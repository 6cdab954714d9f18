"""Train state as a plain dict of pytrees: {"params", "rest", "opt", "step", "bad_step", ...},
and `build`, the one place a stage's task, split model and optimizer are assembled.

The nnx module is split once; the graphdef is closed over by the jitted steps and never
travels with the state (Flax performance guide, functional training loop).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from ssl_seg import checkpoint, optim, tasks


def split_model(model):
  """(graphdef, params, rest): rest holds non-Param variables (empty for our models)."""
  return nnx.split(model, nnx.Param, ...)


def create_state(params, rest, tx):
  """The train state at step 0."""
  return {
      "params": params,
      "rest": rest,
      "opt": tx.init(params),
      "step": jnp.zeros((), jnp.int32),
      # First step whose loss or gradient norm was not finite, -1 while all are.
      "bad_step": jnp.full((), -1, jnp.int32),
      "skipped": jnp.zeros((), jnp.int32),
  }


def abstract_state(params, rest, tx):
  """ShapeDtypeStructs of the state: the target Orbax restores into."""
  return jax.eval_shape(lambda p, r: create_state(p, r, tx), params, rest)


class Built(NamedTuple):
  """A stage's task, split model and optimizer: what its train state is made from."""
  task: tasks.Task
  graphdef: nnx.GraphDef
  params: nnx.State
  rest: nnx.State
  tx: optax.GradientTransformation
  schedule: optax.Schedule

  def state(self):
    """The fresh train state at step 0 (a graft replaces params first: `create_state`)."""
    return create_state(self.params, self.rest, self.tx)


def build(stage, steps_per_epoch, total_steps, *, seed=None, task=None):
  """Task -> model (params drawn from `seed`, default the stage's) -> split -> optimizer.

  The one place a stage's state is assembled: the train loop, tests and benchmarks call it.
  `task`: the stage's task when the caller made it already.
  """
  task = tasks.make_task(stage) if task is None else task
  seed = stage.seed if seed is None else seed
  graphdef, params, rest = split_model(task.build_model(nnx.Rngs(params=seed)))
  tx, schedule = optim.make_optimizer(stage.optim, stage.encoder, steps_per_epoch, total_steps,
                                      params)
  return Built(task, graphdef, params, rest, tx, schedule)


class Restored(NamedTuple):
  """A trained stage read back for use: its config, task, split model and checkpoint step."""
  stage: object
  task: tasks.Task
  graphdef: nnx.GraphDef
  params: nnx.State  # On the default device.
  rest: nnx.State  # Abstract (shapes only): our models hold no non-Param state.
  step: int


def restore(path, step=None, *, log=None, check=None):
  """The params of a stage directory (or its checkpoints/) in the model its saved config builds.

  Without `step`, the newest step that can be read (an unreadable newer one is named through
  `log`). `check(stage, stage_dir)` may refuse the saved stage config before anything is read.
  """
  stage_dir = checkpoint.stage_dir_of(path)
  mngr = checkpoint.manager(stage_dir)

  def read(s):
    stage = checkpoint.stage_config(mngr, s)
    if check is not None:
      check(stage, stage_dir)
    task = tasks.make_task(stage)
    abstract = nnx.eval_shape(lambda: task.build_model(nnx.Rngs(params=0)))
    graphdef, params, rest = split_model(abstract)
    return stage, task, graphdef, checkpoint.restore_params(mngr, params, s), rest

  try:
    if step is None:
      step, got = checkpoint.read_newest(mngr, read, log=log)
      if step is None:
        raise FileNotFoundError(f"no checkpoint in {mngr.directory}: its stage has not saved one")
    else:
      got = read(step)
  finally:
    mngr.close()
  stage, task, graphdef, params, rest = got
  return Restored(stage, task, graphdef, jax.device_put(params), rest, step)
