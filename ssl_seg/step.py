"""Pure, jitted train and eval steps shared by every task.

train_step(state, batch, key) -> (state, metrics): the state is donated, masks and dropout
come from fold_in(key, step) so a resumed run redraws step k exactly, and a non-finite loss or
gradient norm leaves the params untouched and records the step in `state["bad_step"]` (the host
reads it at log time: no per-step device sync).

With shardings given (`sharding.py`) the steps are jitted with explicit in/out shardings: the
batch split over the `data` mesh axis, the state keeping its own layout from step to step, so
the same code runs on 1 ... N devices and XLA adds the gradient all-reduce.
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P


def make_train_step(graphdef, tx, loss_fn, *, state_sharding=None, batch_sharding=None):
  """loss_fn(model, batch, key, train) -> (loss, metrics dict of scalars).

  state_sharding: a NamedSharding per state leaf (or None: let jit place everything);
  batch_sharding: one NamedSharding for every batch leaf. Give both or neither.
  """

  def train_step(state, batch, key):
    key = jax.random.fold_in(key, state["step"])

    def objective(params):
      model = nnx.merge(graphdef, params, state["rest"], copy=True)
      loss, metrics = loss_fn(model, batch, key, train=True)
      return loss, (metrics, nnx.state(model, nnx.Not(nnx.Param)))

    (loss, (metrics, rest)), grads = jax.value_and_grad(objective, has_aux=True)(state["params"])
    grad_norm = optax.tree.norm(grads)
    updates, opt = tx.update(grads, state["opt"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)
    new_state = {
        "params": keep(params, state["params"]),
        "rest": keep(rest, state["rest"]),
        "opt": keep(opt, state["opt"]),
        "step": state["step"] + 1,
        "bad_step": jnp.where((state["bad_step"] < 0) & ~ok, state["step"], state["bad_step"]),
        "skipped": state["skipped"] + (~ok).astype(jnp.int32),
    }
    return new_state, {**metrics, "loss": loss, "grad_norm": grad_norm}

  if state_sharding is None:
    return jax.jit(train_step, donate_argnames="state")
  rep = _replicated(batch_sharding)
  return jax.jit(train_step, donate_argnames="state",
                 in_shardings=(state_sharding, batch_sharding, rep),
                 out_shardings=(state_sharding, rep))


def make_eval_step(graphdef, eval_fn, *, state_sharding=None, batch_sharding=None):
  """eval_fn(model, batch, key) -> dict of arrays summed over the data set by the host."""

  def eval_step(params, rest, batch, key):
    return eval_fn(nnx.merge(graphdef, params, rest), batch, key)

  if state_sharding is None:
    return jax.jit(eval_step)
  rep = _replicated(batch_sharding)
  return jax.jit(eval_step, out_shardings=rep, in_shardings=(
      state_sharding["params"], state_sharding["rest"], batch_sharding, rep))


def _replicated(sharding):
  return NamedSharding(sharding.mesh, P())
