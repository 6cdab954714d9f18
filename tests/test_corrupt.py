"""Pretraining corruption: determinism, strengths, hidden masks, padding, identity baseline."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssl_seg.data import corrupt as cr
from ssl_seg.tasks import denoise

VALID_WIDTHS = (256, 200, 96, 32)


DEFAULTS = cr.CorruptionConfig()
# Jitted as in the train step; compiled at level 0, as compile time dominates these tiny runs.
jit_fast = functools.partial(jax.jit, static_argnames="cfg",
                             compiler_options={"xla_backend_optimization_level": 0})
column_mask = jit_fast(cr.column_mask)


@jit_fast
def corrupt(key, image, valid, cfg=DEFAULTS):
  return cr.corrupt(key, image, valid, cfg)


def make_batch(height=32, width=256, pad_value=0.3):
  """White paper with two dark sinusoidal curves; example i is valid on VALID_WIDTHS[i]."""
  rows, cols = np.mgrid[:height, :width].astype(np.float32)
  image = np.ones((len(VALID_WIDTHS), height, width, 1), np.float32)
  for i in range(len(VALID_WIDTHS)):
    for amp, period, offset in ((6.0, 40.0 + 9 * i, 10.0), (4.0, 23.0 + 5 * i, 22.0)):
      curve = offset + amp * np.sin(2 * np.pi * cols / period + i)
      image[i, ..., 0] = np.minimum(image[i, ..., 0], np.clip(np.abs(rows - curve) - 0.5, 0, 1))
  valid = cols[None] < np.array(VALID_WIDTHS)[:, None, None]
  image = np.where(valid[..., None], image, pad_value)
  return jnp.asarray(image), jnp.asarray(valid)


def only(**strengths):
  """A config with every corruption off except the given ones."""
  return dataclasses.replace(cr.NO_CORRUPTION, **strengths)


def test_deterministic_for_a_key_and_different_across_keys():
  image, valid = make_batch()
  a, mask_a = corrupt(jax.random.key(0), image, valid)
  b, mask_b = corrupt(jax.random.key(0), image, valid)
  c, mask_c = corrupt(jax.random.key(1), image, valid)
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(mask_a, mask_b)
  assert float(jnp.abs(a - c).mean()) > 0.05
  assert bool((mask_a != mask_c).any())


@pytest.mark.parametrize("ratio", [0.5, 0.25])
def test_patch_masking_hides_about_the_configured_ratio_and_nothing_else(ratio):
  image, valid = make_batch()
  cfg = only(patch_ratio=ratio, patch_size=8)
  out, hidden = corrupt(jax.random.key(2), image, valid, cfg)
  share = float(hidden.sum() / valid.sum())
  assert abs(share - ratio) < 0.06, share
  np.testing.assert_array_equal(out[hidden], 0.5)  # Grey fill.
  np.testing.assert_array_equal(out[~hidden], image[~hidden])
  # Hidden pixels form whole 8 x 8 patches (on the valid part of the grid).
  cells = hidden[0].reshape(4, 8, 32, 8)
  assert bool((cells.all(axis=(1, 3)) == cells.any(axis=(1, 3))).all())


def test_column_spans_cover_full_height_inside_the_valid_width():
  image, valid = make_batch()
  out, hidden = corrupt(jax.random.key(4), image, valid,
                           only(column_ratio=0.2, fill="paper"))
  np.testing.assert_array_equal(hidden, hidden[:, :1] & valid)  # Same in every row.
  np.testing.assert_array_equal(out[hidden], 1.0)
  np.testing.assert_array_equal(out[~hidden], image[~hidden])


@pytest.mark.parametrize("ratio", [0.2, 0.4])
def test_column_spans_hide_about_the_configured_share_of_the_valid_width(ratio):
  # 64 rows of width 1024, the second half of them half padding; the share is per valid width.
  valid = jnp.broadcast_to(jnp.arange(1024) < jnp.where(jnp.arange(64) < 32, 1024, 512)[:, None],
                           (64, 1024))[:, None, :]
  hidden = column_mask(jax.random.key(5), valid, only(column_ratio=ratio))[:, 0]
  expected = 1 - np.exp(-ratio)  # Independent spans overlap.
  for half in (slice(0, 32), slice(32, 64)):
    share = float(hidden[half].sum() / valid[half].sum())
    assert abs(share - expected) < 0.05, (half, share)


def test_padding_is_never_touched():
  image, valid = make_batch()
  cfg = dataclasses.replace(cr.CorruptionConfig(), fill="noise")
  out, hidden = corrupt(jax.random.key(5), image, valid, cfg)
  np.testing.assert_array_equal(out[~valid], image[~valid])
  assert not bool(hidden[~valid].any())
  assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_blur_does_not_pull_padding_into_valid_pixels():
  _, valid = make_batch()
  paper = jnp.where(valid[..., None], 1.0, 0.0)  # Black padding right of white paper.
  out, _ = corrupt(jax.random.key(6), paper, valid, only(blur_sigma=2.0))
  np.testing.assert_allclose(out[valid], 1.0, atol=1e-5)
  image, _ = make_batch()
  blurred, _ = corrupt(jax.random.key(6), image, valid, only(blur_sigma=2.0))
  assert float(jnp.abs(blurred - image)[valid].mean()) > 0.01


def test_ink_dropout_only_lightens_ink():
  image, valid = make_batch()
  out, _ = corrupt(jax.random.key(7), image, valid, only(ink_dropout=0.5))
  changed = out != image
  assert bool(changed.any())
  assert bool((image[changed] < 0.5).all()) and bool((out[changed] > image[changed]).all())


def test_defaults_corrupt_substantially():
  image, valid = make_batch()
  out, hidden = corrupt(jax.random.key(8), image, valid)
  assert float(jnp.abs(out - image)[valid].mean()) > 0.1
  assert float(hidden.sum() / valid.sum()) > 0.4  # Patches plus column spans.
  baseline = denoise.identity_baseline_loss(image, out, valid)
  assert float(baseline) > 0.1
  assert float(denoise.identity_baseline_loss(image, out, valid, weights=hidden)) > float(baseline)


def test_no_corruption_is_the_identity_with_zero_baseline():
  image, valid = make_batch()
  out, hidden = corrupt(jax.random.key(9), image, valid, cr.NO_CORRUPTION)
  np.testing.assert_array_equal(out, image)
  assert not bool(hidden.any())
  assert float(denoise.identity_baseline_loss(image, out, valid)) == 0.0
  assert float(denoise.identity_baseline_loss(image, out, valid, kind="l2")) == 0.0


def test_reconstruction_loss_ignores_padding():
  image, valid = make_batch()
  pred = jnp.where(valid[..., None], image + 0.25, 9.0)
  np.testing.assert_allclose(denoise.reconstruction_loss(pred, image, valid), 0.25, rtol=1e-6)
  np.testing.assert_allclose(denoise.reconstruction_loss(pred, image, valid, kind="l2"), 0.0625,
                             rtol=1e-5)


@pytest.mark.parametrize("bad", [{"patch_ratio": 1.5}, {"fill": "pink"}, {"noise_std": -1.0},
                                 {"column_min_width": 50, "column_max_width": 10}])
def test_bad_config_is_rejected(bad):
  with pytest.raises(ValueError):
    cr.CorruptionConfig(**bad)
