"""On-device augmentation: masks follow the image through crop and flip; MixUp stays convex."""

import jax
import jax.numpy as jnp
import numpy as np

from ssl_seg.data import augment

LEVEL = 0.3  # Image channel 0 = LEVEL * class id: the mask painted into the image.


def _painted_batch(b=8, h=32, w=24):
  """Masks of large asymmetric blocks (3 classes) and images carrying them in channel 0."""
  rng = np.random.default_rng(0)
  masks = np.zeros((b, h, w), np.int32)
  for i in range(b):
    y, x = rng.integers(6, h - 6), rng.integers(4, w - 4)
    masks[i, :y, :x] = 1
    masks[i, y:, x // 2:] = 2
  images = np.stack([masks * LEVEL, rng.random((b, h, w)), rng.random((b, h, w))], -1)
  return jnp.asarray(images, jnp.float32), jnp.asarray(masks)


def _check_aligned(images, masks):
  """Where the resampled image is exactly a class level, the mask must hold that class."""
  levels = np.asarray(images[..., 0]) / LEVEL
  masks = np.asarray(masks)
  exact = np.abs(levels - np.round(levels)) < 1e-4
  assert exact.mean() > 0.6  # Block interiors dominate; only borders blend.
  np.testing.assert_array_equal(np.round(levels)[exact].astype(np.int32), masks[exact])


def test_crop_and_flip_keep_mask_aligned_and_do_change_the_image():
  images, masks = _painted_batch()
  crop = jax.jit(lambda k, x, m: augment.crop_flip(k, x, m, scale=(0.2, 0.6)))
  flipped = 0
  for seed in range(3):
    out_img, out_mask = crop(jax.random.key(seed), images, masks)
    assert out_img.shape == images.shape and out_mask.shape == masks.shape
    assert out_mask.dtype == masks.dtype
    _check_aligned(out_img, out_mask)
    assert not np.array_equal(np.asarray(out_mask), np.asarray(masks))
    # A flip mirrors the block layout: mask column 0 then looks like the input's last column.
    flipped += int(np.sum(np.asarray(out_mask)[:, :, 0] == 2))
  assert flipped > 0


def test_misaligned_masks_would_be_caught():
  images, masks = _painted_batch()
  (out_img, out_mask) = augment.flip_lr(jax.random.key(1), images, masks)
  _check_aligned(out_img, out_mask)
  try:
    _check_aligned(out_img, masks[:, :, ::-1])
  except AssertionError:
    return
  raise AssertionError("the alignment check accepted mirrored masks")


def test_full_box_crop_is_identity():
  images, masks = _painted_batch()
  full = jax.jit(lambda k, x, m: augment.random_resized_crop(k, x, m, scale=(1.0, 1.0),
                                                             ratio=(1.0, 1.0)))
  out_img, out_mask = full(jax.random.key(0), images, masks)
  np.testing.assert_allclose(out_img, images, atol=1e-5)
  np.testing.assert_array_equal(out_mask, masks)


def test_color_jitter_stays_in_range_and_zero_strength_is_identity():
  images, _ = _painted_batch()
  out = augment.color_jitter(jax.random.key(0), images)
  assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
  assert not np.allclose(out, images)
  same = augment.color_jitter(jax.random.key(0), images, brightness=0, contrast=0,
                              saturation=0)
  np.testing.assert_allclose(same, images, atol=1e-6)


def test_mixup_labels_sum_to_one_and_images_mix_with_the_same_weight():
  images, _ = _painted_batch()
  labels = jax.nn.one_hot(jnp.arange(8) % 6, 6)
  mixed_x, mixed_y = jax.jit(lambda k: augment.mixup(k, images, labels, 0.2))(jax.random.key(3))
  np.testing.assert_allclose(mixed_y.sum(-1), 1.0, atol=1e-6)
  lam = float(mixed_y[0, 0])  # Example 0 has class 0; its partner (example 7) class 1.
  assert 0.0 <= lam <= 1.0 and not np.isclose(lam, 1.0)
  np.testing.assert_allclose(mixed_x, lam * images + (1 - lam) * images[::-1], atol=1e-5)
