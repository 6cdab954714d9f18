"""ViT encoder, heads and SimMIM masking: shapes, sizes, masking exactness, loss support."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ssl_seg.models import heads, vit
from ssl_seg.tasks import simmim

TINY = vit.VARIANTS["tiny"]


def test_paper_encoder_matches_the_studys_parameter_count():
  enc = vit.ViTEncoder(vit.VARIANTS["paper"], rngs=nnx.Rngs(0))
  assert heads.param_count(enc) == 4_842_880
  assert heads.param_count(heads.Classifier(enc, 6, rngs=nnx.Rngs(1))) == 4_843_654


def test_head_output_shapes():
  x = jnp.zeros((2, TINY.img_size, TINY.img_size, 3))
  n = (TINY.img_size // TINY.patch_size) ** 2
  enc = lambda: vit.ViTEncoder(TINY, rngs=nnx.Rngs(0))
  tokens, aux = enc()(x)
  assert tokens.shape == (2, n, TINY.dim) and aux["cls"].shape == (2, TINY.dim)
  assert heads.Classifier(enc(), 6, rngs=nnx.Rngs(1))(x)[0].shape == (2, 6)
  assert heads.LinearSegmenter(enc(), 3, rngs=nnx.Rngs(1))(x)[0].shape == (2, 32, 32, 3)
  mask = jnp.zeros((2, n), bool)
  assert heads.SimMIM(enc(), rngs=nnx.Rngs(1))(x, mask)[0].shape == (2, n, 8 * 8 * 3)


def test_wrong_image_shape_is_a_clear_error():
  enc = vit.ViTEncoder(TINY, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"expects images of shape \[B, 32, 32, 3\]"):
    enc(jnp.zeros((1, 48, 32, 3)))


def test_patchify_roundtrip():
  x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
  p = vit.patchify(x, 8)
  assert p.shape == (2, 16, 192)
  np.testing.assert_array_equal(vit.unpatchify(p, 8, 4), x)
  # Patch 1 is the second patch of the first row: columns 8..15 of rows 0..7.
  np.testing.assert_array_equal(p[:, 1].reshape(2, 8, 8, 3), x[:, :8, 8:16])


@pytest.mark.parametrize("ratio", [0.5, 0.3, 0.75])
def test_mask_has_exact_count_per_image(ratio):
  mask = simmim.random_patch_mask(jax.random.key(1), 16, 64, ratio)
  np.testing.assert_array_equal(mask.sum(1), round(ratio * 64))
  assert len({tuple(np.asarray(m)) for m in mask}) > 1  # Masks differ across images.


def test_mask_ratio_that_masks_nothing_is_rejected():
  with pytest.raises(ValueError, match="masks 0 of 16"):
    simmim.random_patch_mask(jax.random.key(0), 2, 16, 0.01)


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_loss_counts_masked_patches_only(kind):
  k1, k2 = jax.random.split(jax.random.key(0))
  target = jax.random.normal(k1, (2, 16, 12))
  pred = jax.random.normal(k2, (2, 16, 12))
  mask = simmim.random_patch_mask(jax.random.key(3), 2, 16, 0.5)
  loss = simmim.masked_patch_loss(pred, target, mask, kind)
  # Changing visible patches' predictions changes nothing; changing a masked one does.
  corrupted_visible = jnp.where(mask[..., None], pred, 1e3)
  assert simmim.masked_patch_loss(corrupted_visible, target, mask, kind) == loss
  err = jnp.abs(pred - target) if kind == "l1" else (pred - target) ** 2
  expected = err.mean(-1)[np.asarray(mask)].mean()
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
