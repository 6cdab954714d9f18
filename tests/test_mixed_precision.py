"""Mixed precision (model.dtype=bfloat16): float32 params and optimizer state, bf16 matmuls and
convolutions, float32 losses; a bf16 step trains, and its loss stays near float32's."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import vit_tiny_synthetic, welllog_demo
from ssl_seg import state as state_lib, step as step_lib
from ssl_seg.data import buckets, synthetic, welllogs


def _vit_stage(dtype):
  stage = vit_tiny_synthetic.get_config().stages.pretrain
  stage.model.dtype = dtype
  stage.augment.enabled = False  # Same input every step: the loss curve is the model's alone.
  return stage


def _curvenet_stage(dtype):
  stage = welllog_demo.get_config("variant=tiny").stages.pretrain
  stage.model.dtype = dtype
  return stage


@functools.cache
def _vit_batch(n=8):
  images, _, _ = synthetic.make_images(0, n, 32)
  return {"image": jnp.asarray(images)}


@functools.cache
def _log_batch():
  logs = [dict(zip(("image", "seg"), welllogs.render_example(0, i, height=64, min_width=128,
                                                              max_width=128))) for i in range(2)]
  return jax.tree.map(jnp.asarray, buckets.pad_batch(logs, np.arange(2), 128))


CASES = {"vit": (_vit_stage, _vit_batch), "curvenet": (_curvenet_stage, _log_batch)}


def _build(stage):
  """(task, graphdef, params, rest) of the stage's model, params drawn from seed 0."""
  return state_lib.build(stage, 10, 100, seed=0)[:4]


def _eval_loss(task, graphdef, rest, batch, key):
  """Jitted params -> the task's loss on `batch` (train=False: no dropout or augmentation)."""
  return jax.jit(lambda p: task.loss_fn(nnx.merge(graphdef, p, rest), batch, key,
                                        train=False)[0])


def _dtypes_of(hlo_text, op):
  """Result element types of every `op` (dot_general / convolution) in StableHLO text."""
  return re.findall(rf"stablehlo\.{op}.*-> tensor<[^>]*?x?([a-z]+[0-9]+)>", hlo_text)


@pytest.mark.parametrize("family", ["vit", "curvenet"])
def test_bf16_model_keeps_float32_params_and_computes_in_bf16(family):
  make_stage, make_batch = CASES[family]
  task, graphdef, params, rest = _build(make_stage("bfloat16"))
  assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
  batch, key = make_batch(), jax.random.key(0)
  forward = _eval_loss(task, graphdef, rest, batch, key)
  hlo = forward.lower(params).as_text()
  ops = _dtypes_of(hlo, "dot_general") + _dtypes_of(hlo, "convolution")
  # Every matmul and convolution of the model (heads included) runs in bf16...
  assert ops and set(ops) == {"bf16"}, sorted(set(ops))
  # ...while the loss comes out in float32.
  assert forward(params).dtype == jnp.float32


@pytest.mark.parametrize("family", ["vit", "curvenet"])
def test_float32_model_has_no_bf16(family):
  make_stage, make_batch = CASES[family]
  task, graphdef, params, rest = _build(make_stage("float32"))
  batch, key = make_batch(), jax.random.key(0)
  hlo = _eval_loss(task, graphdef, rest, batch, key).lower(params).as_text()
  assert "bf16" not in hlo


@pytest.mark.parametrize("family", ["vit", "curvenet"])
def test_bf16_loss_is_close_to_float32(family):
  make_stage, make_batch = CASES[family]
  batch, key = make_batch(), jax.random.key(3)
  losses = {}
  for dtype in ("float32", "bfloat16"):
    task, graphdef, params, rest = _build(make_stage(dtype))  # Same seed: same float32 params.
    losses[dtype] = float(_eval_loss(task, graphdef, rest, batch, key)(params))
  assert losses["bfloat16"] != losses["float32"]  # bf16 really ran.
  np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=0.01)


def test_bf16_train_step_keeps_float32_state_and_reduces_the_loss():
  stage = _vit_stage("bfloat16")
  built = state_lib.build(stage, 10, 100, seed=0)
  task, graphdef, rest, tx, state = (built.task, built.graphdef, built.rest, built.tx,
                                     built.state())
  train_step = step_lib.make_train_step(graphdef, tx, task.loss_fn)
  batch, key = _vit_batch(), jax.random.key(0)
  evaluate = _eval_loss(task, graphdef, rest, batch, jax.random.key(7))
  before = float(evaluate(state["params"]))
  for _ in range(25):
    state, metrics = train_step(state, batch, key)
  after = float(evaluate(state["params"]))
  floats = [x.dtype for x in jax.tree.leaves((state["params"], state["opt"]))
            if jnp.issubdtype(x.dtype, jnp.floating)]
  assert set(floats) == {jnp.dtype(jnp.float32)}  # Master weights and Adam moments.
  assert int(state["skipped"]) == 0 and np.isfinite(float(metrics["loss"]))
  assert after < 0.9 * before, (before, after)
