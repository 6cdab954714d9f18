"""ViT encoder, heads and SimMIM masking: shapes, sizes, masking exactness, loss support."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ssl_seg.models import heads, layers, vit
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


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_dropout_drops_at_its_rate_and_keeps_the_mean(rate):
  x = jnp.ones((301, 257))  # Odd size: the last 32-bit word is half used.
  y = layers.dropout(x, rate, jax.random.key(0), train=True)
  dropped = float((y == 0).mean())
  # 77k Bernoulli draws: the std of the observed rate is < 0.002.
  assert abs(dropped - rate) < 0.01, dropped
  assert abs(float(y.mean()) - 1.0) < 0.02
  values = np.unique(np.asarray(y))  # Kept elements are scaled by 1 / keep probability.
  assert len(values) == 2 and values[0] == 0 and abs(values[1] - 1 / (1 - rate)) < 1e-4
  other = layers.dropout(x, rate, jax.random.key(1), train=True)
  assert not np.array_equal(np.asarray(y), np.asarray(other))
  # Both halves of every random word are used: drops are not paired element to element.
  flat = np.asarray(y).reshape(-1)
  assert 0 < np.mean(flat[0::2] == 0) and 0 < np.mean(flat[1::2] == 0)
  assert not np.array_equal(flat[0:-1:2] == 0, flat[1::2] == 0)
  np.testing.assert_array_equal(layers.dropout(x, rate, None, train=True), x)
  np.testing.assert_array_equal(layers.dropout(x, rate, jax.random.key(0), train=False), x)


def test_attention_equals_the_textbook_formulation():
  """The head-major einsums compute softmax(q k^T / sqrt(d)) v over the fused qkv kernel's
  columns [q heads | k heads | v heads], as the study's model does; padding keys are ignored."""
  dim, heads_, head_dim = 32, 3, 24  # heads * head_dim != dim, as in the paper's ViT.
  attn = layers.Attention(dim, heads_, head_dim, 0.0, dtype=jnp.float32, rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(1), (2, 7, dim))
  mask = jnp.array([[True] * 7, [True] * 4 + [False] * 3])
  qkv = np.asarray(attn.norm(x)) @ np.asarray(attn.qkv.kernel[...])
  q, k, v = np.split(qkv.reshape(2, 7, 3, heads_, head_dim), 3, axis=2)
  q, k, v = (a[:, :, 0].transpose(0, 2, 1, 3) for a in (q, k, v))  # [B, heads, N, head_dim]
  logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head_dim)
  logits = np.where(np.asarray(mask)[:, None, None, :], logits, -np.inf)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  y = (weights @ v).transpose(0, 2, 1, 3).reshape(2, 7, -1)
  expected = y @ np.asarray(attn.out.kernel[...]) + np.asarray(attn.out.bias[...])
  np.testing.assert_allclose(attn(x, mask=mask), expected, rtol=1e-5, atol=1e-5)
