"""The PyTorch twins of benchmarks/torch_reference.py are our models: same parameter count, and
with JAX's weights copied in the same forward pass, loss and (CurveNet) gradients. Skipped
where the optional `torch` extra is not installed."""

import importlib.util
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import jax  # noqa: E402
from flax import nnx  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tr():
  sys.path.insert(0, ROOT)  # torch_reference imports `benchmarks.*` as the script does.
  spec = importlib.util.spec_from_file_location(
      "benchmarks.torch_reference", os.path.join(ROOT, "benchmarks", "torch_reference.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def log_batch(tr):
  """Two rendered 64 x 128 logs, the second padded over its right 40 %."""
  host = tr.step_time.make_batch("curve_segment", tr.curvenet_stage("tiny"), 2, 64, 128)
  return tr.with_padding(host, 2)


def test_curvenet_twin_matches_forward_and_loss(tr, log_batch):
  (n_jax, n_torch), diff_logits, diff_bottleneck, (loss_jax, loss_torch) = tr.check_curvenet(
      torch, "tiny", log_batch)
  print(f"CurveNet-tiny: max |logit diff| {diff_logits:.2e}, bottleneck {diff_bottleneck:.2e}")
  assert n_jax == n_torch
  assert diff_logits < 1e-5 and diff_bottleneck < 1e-4
  assert abs(loss_jax - loss_torch) < 1e-5


def test_curvenet_twin_gradients_match(tr, log_batch):
  """Same backward too: every parameter's gradient of the weighted CE, copied weights."""
  stage = tr.curvenet_stage("tiny")
  task = tr.tasks.make_task(stage)
  model = task.build_model(nnx.Rngs(params=0))
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  twin = tr.torch_curvenet.build_curvenet(torch, tr.curvenet.VARIANTS["tiny"], out_channels=3)
  tr.load_jax_params(torch, twin, params)

  def loss(p):
    return task.loss_fn(nnx.merge(graphdef, p, rest), batch, jax.random.key(0), train=False)[0]

  batch = jax.device_put(log_batch)
  grads = nnx.to_pure_dict(jax.jit(jax.grad(loss))(params))
  tb = tr.torch_curvenet.torch_batch(torch, log_batch, torch.device("cpu"))
  tr.torch_curvenet.make_loss(torch, twin, stage.class_weights, torch.device("cpu"))(tb).backward()
  torch_grads = {name: p.grad.numpy() for name, p in twin.named_parameters()}
  for name, g in [(".".join(str(getattr(k, "key", k)) for k in path), np.asarray(leaf))
                  for path, leaf in jax.tree_util.tree_leaves_with_path(grads)]:
    torch_name = name.replace(".kernel", ".weight").replace(".scale", ".weight")
    if g.ndim == 4:
      g = g.transpose(3, 2, 0, 1)
    elif g.ndim == 2:
      g = g.T
    scale = max(float(np.abs(g).max()), 1e-3)
    np.testing.assert_allclose(torch_grads[torch_name], g, atol=1e-4 * scale, rtol=1e-3,
                               err_msg=name)


def test_vit_twin_matches_forward(tr):
  images_u8, _, _ = tr.synthetic.make_images(0, 2, tr.vit.VARIANTS["tiny"].img_size)
  (n_jax, n_torch), diff = tr.check_vit(torch, "tiny", images_u8)
  assert n_jax == n_torch and diff < 1e-4
