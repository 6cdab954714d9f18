"""Train state as a plain dict of pytrees: {"params", "rest", "opt", "step", "bad_step"}.

The nnx module is split once; the graphdef is closed over by the jitted steps and never
travels with the state (Flax performance guide, functional training loop).
"""

import jax
import jax.numpy as jnp
from flax import nnx


def split_model(model):
  """(graphdef, params, rest): rest holds non-Param variables (empty for our models)."""
  return nnx.split(model, nnx.Param, ...)


def create_state(params, rest, tx):
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
