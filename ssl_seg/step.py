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

from ssl_seg import sharding

# XLA CPU options for convolutional models: convolutions as oneDNN custom calls (by default XLA
# sends convs with <= 16 channels to Eigen, wider ones to YNNPACK). CurveNet-small train step,
# batch 8 x 128 x 256, one process, interleaved: 310 -> 255 ms (0.82x) on the 2-core CPU; the
# ViT step is 1.06-1.09x slower with them (its dots run slower off YNNPACK), so only CurveNet.
CPU_CONV_OPTIONS = {"xla_cpu_use_onednn": True, "xla_cpu_experimental_onednn_custom_call": True,
                    "xla_cpu_experimental_ynn_fusion_type": ""}


def compiler_options(model_name):
  """XLA options for a model's steps on this backend (None: XLA's defaults)."""
  if model_name == "curvenet" and jax.default_backend() == "cpu":
    return CPU_CONV_OPTIONS
  return None


def make_train_step(graphdef, tx, loss_fn, *, state_sharding=None, batch_sharding=None,
                    options=None, leaves_of=None):
  """loss_fn(model, batch, key, train) -> (loss, metrics dict of scalars).

  state_sharding: a NamedSharding per state leaf (or None: let jit place everything);
  batch_sharding: one NamedSharding for every batch leaf. Give both or neither.
  options: XLA compiler options (`compiler_options`).
  leaves_of: the state's tree structure (`jax.tree_util.tree_structure`): the step then takes
    and returns the state as its list of leaves. Passed as a pytree, every call rebuilt the
    ~200 nnx Variables of params and optimizer state on the host (Python, beside the step on
    the same cores): 3-6 % of the CurveNet-small step on the 2-core CPU (benchmarks/RESULTS.md).
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

  def train_leaves_step(state, batch, key):
    new_state, metrics = train_step(jax.tree_util.tree_unflatten(leaves_of, state), batch, key)
    return jax.tree_util.tree_leaves(new_state), metrics

  step = train_step
  if leaves_of is not None:
    step = train_leaves_step
    if state_sharding is not None:
      state_sharding = jax.tree_util.tree_leaves(state_sharding)
  if state_sharding is None:
    return jax.jit(step, donate_argnames="state", compiler_options=options)
  rep = sharding.replicated(batch_sharding.mesh)
  return jax.jit(step, donate_argnames="state", in_shardings=(state_sharding, batch_sharding, rep),
                 out_shardings=(state_sharding, rep), compiler_options=options)


def make_eval_step(graphdef, eval_fn, *, state_sharding=None, batch_sharding=None,
                   options=None):
  """eval_fn(model, batch, key) -> dict of arrays summed over the data set by the host."""

  def eval_step(params, rest, batch, key):
    return eval_fn(nnx.merge(graphdef, params, rest), batch, key)

  if state_sharding is None:
    return jax.jit(eval_step, compiler_options=options)
  rep = sharding.replicated(batch_sharding.mesh)
  return jax.jit(eval_step, out_shardings=rep, in_shardings=(
      state_sharding["params"], state_sharding["rest"], batch_sharding, rep),
      compiler_options=options)
