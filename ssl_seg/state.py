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

from ssl_seg import optim, tasks


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
