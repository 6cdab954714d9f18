"""CurveNet: any-width shapes, input checks, dropout, gradients, grafting, padding exactness."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import ssl_seg.models.curvenet as cn
from ssl_seg.models import heads

TINY = dataclasses.asdict(cn.VARIANTS["tiny"])
# XLA compile time dominates these tiny runs: at the default optimisation level the RNG-heavy
# init alone compiles for tens of seconds on a 2-core CPU, so every program here is compiled
# at level 0 and shared (one init per out_channels, one forward per input shape and config).
FAST = {"xla_backend_optimization_level": 0}


def make(out_channels=3, seed=0, **kwargs):
  return cn.CurveNetModel(out_channels=out_channels, **{**TINY, **kwargs},
                          rngs=nnx.Rngs(jax.random.key(seed)))


@functools.partial(jax.jit, static_argnums=0, compiler_options=FAST)
def _init_state(out_channels, seed):
  return nnx.state(make(out_channels, seed))


def tiny(out_channels=3, seed=0, **kwargs):
  """The tiny CurveNet, initialised by its own initialisers; kwargs must leave params alone."""
  graphdef = nnx.graphdef(nnx.eval_shape(lambda: make(out_channels, **kwargs)))
  return nnx.merge(graphdef, _init_state(out_channels, seed))


@functools.partial(jax.jit, static_argnums=(0, 5), compiler_options=FAST)
def _apply(graphdef, state, x, valid, key, train):
  return nnx.merge(graphdef, state)(x, valid=valid, train=train, key=key)


def apply(model, x, *, valid=None, train=False, key=None):
  """Jitted `model(x, ...)`; models of one configuration share compiled programs."""
  return _apply(*nnx.split(model), x, valid, key, train)


@functools.partial(jax.jit, static_argnums=0, compiler_options=FAST)
def _train_grads(graphdef, state, x, labels, key):
  def loss_fn(state):
    logits = nnx.merge(graphdef, state)(x, train=True, key=key)[0]
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[..., None], -1)), logits
  return jax.grad(loss_fn, has_aux=True)(state)


def train_grads(model, x, labels, key):
  """(grads of a cross-entropy loss in train mode, logits); shared by two tests."""
  return _train_grads(*nnx.split(model), x, labels, key)


def images(key, width, batch=2, height=32):
  return jax.random.normal(jax.random.key(key), (batch, height, width, 1))


def test_parameter_counts():
  # Default norm="none": each conv has a bias instead of a LayerNorm's scale and bias.
  # Default logit_strides=(1, 4): a 1x1 class head on the 16-channel stride-4 decoder stage.
  assert heads.param_count(nnx.eval_shape(lambda: make(1))) == 105_074
  assert heads.param_count(nnx.eval_shape(lambda: make(3))) == 105_118
  assert heads.param_count(nnx.eval_shape(lambda: make(3, logit_strides=(1,)))) == 105_067
  assert heads.param_count(nnx.eval_shape(lambda: make(3)).encoder) == 58_392
  # norm="layer", logit_strides=(1,): checkpoints made before the defaults changed.
  assert heads.param_count(nnx.eval_shape(
      lambda: make(1, norm="layer", logit_strides=(1,)))) == 105_417
  assert heads.param_count(nnx.eval_shape(lambda: make(3, norm="layer")).encoder) == 58_604
  assert heads.param_count(nnx.eval_shape(lambda: make(3, stem_width=8))) > 105_118


def test_configs_saved_before_the_new_fields_rebuild_their_old_model():
  import ml_collections

  from configs import common
  from ssl_seg import models
  cfg = common.curvenet_model("tiny")
  # Saved before the newer fields existed: the sizes of their time copied in, those missing.
  old = ml_collections.ConfigDict({k: v for k, v in {**cfg.to_dict(), **TINY}.items()
                                   if k not in ("norm", "stem_width", "logit_strides")})
  model = nnx.eval_shape(lambda: models.build(old, nnx.Rngs(0), out_channels=3))
  assert model.encoder.stem.norm is not None and not model.decoder.coarse_heads
  now = nnx.eval_shape(lambda: models.build(cfg, nnx.Rngs(0), out_channels=3))
  assert now.encoder.stem.norm is None and len(now.decoder.coarse_heads) == 1


def test_variant_is_the_source_of_sizes_and_overrides_are_named():
  import os

  from ssl_seg import config_utils, models, tasks
  demo = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                      "welllog_demo.py")
  cfg = config_utils.load_config(f"{demo}:variant=tiny", [
      "--config.stages.pretrain.model.variant=base", "--config.stages.synthetic.model.heads=4"])
  config_utils.validate(cfg)
  model = nnx.eval_shape(lambda: tasks.make_task(cfg.stages.pretrain).build_model(nnx.Rngs(0)))
  assert model.encoder.widths == cn.VARIANTS["base"].widths
  assert models.describe_overrides(cfg.stages.pretrain.model) is None
  assert models.describe_overrides(cfg.stages.synthetic.model) == (
      "CurveNet variant 'tiny' with model.heads=4 (variant: 2)")
  # A stage saved with the variant's sizes copied in (before issue 18) is the same config.
  st = cfg.stages.finetune_cold.to_dict()
  assert config_utils.config_changes({**st, "model": {**st["model"], **TINY}}, st) == []
  assert config_utils.config_changes({**st, "model": {**st["model"], **TINY, "heads": 4}},
                                     st) == ["model.heads: 4 -> 2"]


def test_one_set_of_params_serves_any_width():
  model = tiny()
  out, aux = apply(model, images(0, 128))
  assert out.shape == (2, 32, 128, 3) and bool(jnp.isfinite(out).all())
  for width in (64, 96, 160):  # Odd token grids (3, 5) included; traced, not run.
    out, aux = nnx.eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct((2, 32, width, 1),
                                                                              jnp.float32))
    assert out.shape == (2, 32, width, 3)
    assert aux["bottleneck"].shape == (2, 1, width // 32, 32)
    assert aux["tokens"].shape == (2, width // 32, 32)


def test_skips_are_at_strides_1_to_16():
  _, aux = apply(tiny(), images(0, 128))
  channels = (4, 8, 16, 16, 32)  # stem_width(8) = 4, then widths[:4].
  assert [s.shape for s in aux["skips"]] == [
      (2, 32 // 2**i, 128 // 2**i, c) for i, c in enumerate(channels)]


@pytest.mark.parametrize("shape, message", [
    ((1, 32, 100, 1), r"got H=32, W=100: pad 0 rows at the bottom and 28 columns on the right"),
    ((1, 40, 64, 1), r"pad 24 rows at the bottom and 0 columns"),
    ((1, 32, 64, 3), r"expects images \[B, H, W, 1\]"),
])
def test_bad_input_shape_is_a_clear_error(shape, message):
  model = nnx.eval_shape(make)  # The check comes before any computation.
  with pytest.raises(ValueError, match=message):
    model(np.zeros(shape, np.float32))


def labels(width):
  return jax.random.randint(jax.random.key(3), (2, 32, width), 0, 3)


def test_dropout_acts_in_train_mode_with_a_key_only():
  model, x = tiny(dropout_rate=0.2), images(1, 128)
  eval_out = apply(model, x)[0]
  np.testing.assert_array_equal(eval_out, apply(tiny(), x)[0])  # Same params, no dropout.
  a = train_grads(model, x, labels(128), jax.random.key(1))[1]
  b = train_grads(model, x, labels(128), jax.random.key(2))[1]
  assert float(jnp.abs(a - eval_out).max()) > 1e-4 and float(jnp.abs(a - b).max()) > 1e-4


def test_gradient_reaches_every_parameter():
  grads, _ = train_grads(tiny(dropout_rate=0.2), images(2, 128), labels(128), jax.random.key(1))
  flat = jax.tree_util.tree_flatten_with_path(grads)[0]
  dead = [jax.tree_util.keystr(path) for path, g in flat if not np.abs(g).sum() > 0]
  assert len(flat) > 50 and not dead, dead


def test_encoder_grafts_from_reconstruction_into_segmentation_model():
  recon, seg = nnx.eval_shape(lambda: make(1)), nnx.eval_shape(lambda: make(3))
  src, dst = nnx.state(recon.encoder, nnx.Param), nnx.state(seg.encoder, nnx.Param)
  assert jax.tree.structure(src) == jax.tree.structure(dst)
  assert jax.tree.leaves(src) == jax.tree.leaves(dst)  # Shapes and dtypes.
  pretrained, fresh, x = tiny(seed=1), tiny(seed=2), images(4, 128)
  assert not np.allclose(apply(pretrained, x)[1]["bottleneck"], apply(fresh, x)[1]["bottleneck"])
  nnx.update(fresh.encoder, nnx.state(pretrained.encoder, nnx.Param))
  for a, b in zip(apply(pretrained, x)[1]["skips"], apply(fresh, x)[1]["skips"]):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(apply(pretrained, x)[1]["bottleneck"],
                                apply(fresh, x)[1]["bottleneck"])


def test_valid_outputs_ignore_padded_content_and_padding_width():
  # The same 100-column log (not a multiple of 32, so a stride-32 token straddles the
  # boundary) padded to 128 and to 160 columns with different garbage. With `valid`, every
  # conv output is zeroed off the valid region (a coarse cell counts if any pixel in it is
  # valid) and padded tokens are masked as attention keys, so outputs on all 100 valid columns
  # match up to float rounding, right up to the boundary.
  model, log = tiny(), images(6, 100)
  x128 = jnp.concatenate([log, images(7, 28) * 5], axis=2)
  x160 = jnp.concatenate([log, images(8, 60) * 5], axis=2)
  valid = lambda w: jnp.broadcast_to(jnp.arange(w) < 100, (2, 32, w))
  out128 = apply(model, x128, valid=valid(128))[0]
  out160 = apply(model, x160, valid=valid(160))[0]
  # Tolerances relative to the outputs' scale (the head is initialised small).
  scale = float(jnp.abs(out128).max())
  np.testing.assert_allclose(out128[:, :, :100], out160[:, :, :100], atol=1e-4 * scale)
  np.testing.assert_array_equal(out160[:, :, 100:], 0.0)
  # Without the mask, padded content leaks in (through convs and global attention).
  other128 = jnp.concatenate([log, images(9, 28) * 5], axis=2)
  leak = jnp.abs(apply(model, x128)[0][:, :, :100] - apply(model, other128)[0][:, :, :100])
  assert float(leak.max()) > 1e-2 * scale
  # Far from the padding only attention carries it; at init without norms that path is weak
  # (activations shrink layer by layer), so show it on the LayerNorm variant.
  normed = make(3, norm="layer")
  leak = jnp.abs(normed(x128)[0][:, :, :100] - normed(other128)[0][:, :, :100])
  assert float(leak[:, :, :32].max()) > 1e-3  # 68+ columns away from the padding.


def test_masking_is_a_no_op_when_everything_is_valid():
  model, x = tiny(), images(5, 128)
  block, tokens = model.encoder.blocks[0], jax.random.normal(jax.random.key(0), (2, 6, 32))
  masked = jax.jit(lambda t: block(t, mask=jnp.ones((2, 6), bool)), compiler_options=FAST)
  np.testing.assert_allclose(masked(tokens), jax.jit(block, compiler_options=FAST)(tokens),
                             atol=1e-6)
  np.testing.assert_allclose(apply(model, x, valid=jnp.ones(x.shape[:3], bool))[0],
                             apply(model, x)[0], atol=1e-6)


def test_all_padding_example_is_finite_and_zero():
  valid = jnp.stack([jnp.ones((32, 128), bool), jnp.zeros((32, 128), bool)])
  out, _ = apply(tiny(), images(9, 128), valid=valid)
  assert bool(jnp.isfinite(out).all()) and not bool(out[1].any())


def test_bfloat16_compute_keeps_float32_params():
  model = nnx.eval_shape(lambda: make(dtype=jnp.bfloat16))
  assert {p.dtype for p in jax.tree.leaves(nnx.state(model, nnx.Param))} == {jnp.dtype("float32")}
  out, aux = nnx.eval_shape(lambda m, x: m(x), model,
                            jax.ShapeDtypeStruct((2, 32, 64, 1), jnp.float32))
  assert out.dtype == jnp.bfloat16 and aux["tokens"].dtype == jnp.bfloat16


@pytest.mark.parametrize("with_x", [True, False])
def test_half_res_conv_is_the_full_resolution_conv_of_the_concatenation(with_x):
  # The decoder's last stage computes conv(concat(upsample(x), skip)) and the stem conv(image)
  # (no x) at half resolution; each must be the same function (values and kernel gradient) up
  # to rounding, borders included.
  kx, ks, kk = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (2, 4, 6, 3)) if with_x else None
  skip = jax.random.normal(ks, (2, 8, 12, 2))
  kernel = jax.random.normal(kk, (3, 3, 5 if with_x else 2, 4))
  full = (jnp.concatenate([jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2), skip], -1)
          if with_x else skip)
  direct = lambda kernel: jax.lax.conv_general_dilated(
      full, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  half = lambda kernel: cn.half_res_conv(x, skip, kernel)
  np.testing.assert_allclose(half(kernel), direct(kernel), rtol=1e-5, atol=1e-5)
  loss = lambda f: lambda k: jnp.sum(jnp.sin(f(k)))
  np.testing.assert_allclose(jax.grad(loss(half))(kernel), jax.grad(loss(direct))(kernel),
                             rtol=1e-4, atol=1e-4)
