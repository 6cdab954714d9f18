"""Pure train steps of every task: learning, frozen encoder, NaN guard, determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssl_seg import state as state_lib, step as step_lib, tasks
from ssl_seg.data import sources


def _setup(stage, policy="train"):
  stage.encoder.policy = policy
  built = state_lib.build(stage, 10, 100)
  batch = sources.stage_data(stage, tasks.batch_keys(stage.task)).train[0]
  return built.task, built.graphdef, built.tx, built.state(), batch


def _run(train_step, state, batch, n, key=jax.random.key(0)):
  losses = []
  for _ in range(n):
    state, m = train_step(state, batch, key)
    losses.append(float(m["loss"]))
  return state, losses


@pytest.mark.parametrize("stage_name", ["pretrain", "classify", "segment"])
def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(tiny_config, stage_name):
  stage = tiny_config.stages[stage_name]
  stage.optim.lr = 3e-3
  stage.augment.enabled = False
  stage.augment.mixup_alpha = 0.0
  task, graphdef, tx, state, batch = _setup(stage)
  _, losses = _run(step_lib.make_train_step(graphdef, tx, task.loss_fn), state, batch, 8)
  assert losses[-1] < 0.8 * losses[0], losses


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_the_step_over_the_state_leaves_is_the_same_step(tiny_config):
  task, graphdef, tx, state, batch = _setup(tiny_config.stages.segment)
  leaves_of = jax.tree.structure(state)
  copy = jax.tree.map(jnp.copy, state)  # Each step donates its state.
  want, want_losses = _run(step_lib.make_train_step(graphdef, tx, task.loss_fn), state, batch, 3)
  got, losses = _run(step_lib.make_train_step(graphdef, tx, task.loss_fn, leaves_of=leaves_of),
                     jax.tree.leaves(copy), batch, 3)
  assert isinstance(got, list) and losses == want_losses
  for a, b in zip(_leaves(want), _leaves(jax.tree.unflatten(leaves_of, got)), strict=True):
    np.testing.assert_array_equal(a, b)


def test_frozen_encoder_is_unchanged_and_head_moves(tiny_config):
  task, graphdef, tx, state, batch = _setup(tiny_config.stages.segment, policy="frozen")
  before = jax.device_get(state["params"])
  state, _ = _run(step_lib.make_train_step(graphdef, tx, task.loss_fn), state, batch, 3)
  for a, b in zip(_leaves(before["encoder"]), _leaves(state["params"]["encoder"])):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in
             zip(_leaves(before["head"]), _leaves(state["params"]["head"])))


def test_frozen_then_unfrozen_encoder_starts_moving_after_the_frozen_epochs(tiny_config):
  stage = tiny_config.stages.segment
  stage.encoder.frozen_epochs = 1  # 10 steps per epoch in _setup.
  task, graphdef, tx, state, batch = _setup(stage, policy="lr_scale=0.1")
  train_step = step_lib.make_train_step(graphdef, tx, task.loss_fn)
  before = jax.device_get(state["params"]["encoder"])
  state, _ = _run(train_step, state, batch, 10)
  for a, b in zip(_leaves(before), _leaves(state["params"]["encoder"])):
    np.testing.assert_array_equal(a, b)
  state, _ = _run(train_step, state, batch, 2)
  assert any(not np.array_equal(a, b) for a, b in
             zip(_leaves(before), _leaves(state["params"]["encoder"])))


def test_nonfinite_loss_keeps_params_and_records_the_step(tiny_config):
  task, graphdef, tx, state, batch = _setup(tiny_config.stages.classify)
  train_step = step_lib.make_train_step(graphdef, tx, task.loss_fn)
  state, _ = _run(train_step, state, batch, 2)
  poison = lambda path, x: jnp.full_like(x, jnp.nan) if "head" in str(path) else x
  poisoned = dict(state, params=jax.tree_util.tree_map_with_path(poison, state["params"]))
  good = jax.device_get(poisoned["params"])
  poisoned, m = train_step(poisoned, batch, jax.random.key(0))
  assert not np.isfinite(float(m["loss"]))
  assert int(poisoned["bad_step"]) == 2 and int(poisoned["skipped"]) == 1
  for a, b in zip(_leaves(good["encoder"]), _leaves(poisoned["params"]["encoder"])):
    np.testing.assert_array_equal(a, b)


def test_same_seed_same_losses_other_seed_different(tiny_config):
  stage = tiny_config.stages.pretrain
  runs = []
  for key in (0, 0, 1):
    task, graphdef, tx, state, batch = _setup(stage)
    step = step_lib.make_train_step(graphdef, tx, task.loss_fn)
    runs.append(_run(step, state, batch, 3, jax.random.key(key))[1])
  assert runs[0] == runs[1]
  assert runs[0] != runs[2]
