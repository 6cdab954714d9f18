"""On-device augmentation, run inside the jitted step from the step's folded key.

uint8 crosses the host-device bus; normalisation and every random transform happen here.
Geometric transforms take the masks along (nearest neighbour) so image and mask stay aligned.
"""

import jax
import jax.numpy as jnp

IMAGENET_MEAN = jnp.array([0.485, 0.456, 0.406])
IMAGENET_STD = jnp.array([0.229, 0.224, 0.225])


def normalize(images_u8):
  """uint8 [B, H, W, 3] -> float32 standardised with ImageNet statistics."""
  return (images_u8.astype(jnp.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


def flip_lr(key, images, *masks):
  """Flips each example left-right with probability 1/2; masks [B, H, W] follow."""
  flip = jax.random.bernoulli(key, 0.5, (images.shape[0],))
  def apply(x):
    return jnp.where(flip.reshape((-1,) + (1,) * (x.ndim - 1)), x[:, :, ::-1], x)
  return (apply(images), *map(apply, masks))


def color_jitter(key, images, *, brightness=0.4, contrast=0.4, saturation=0.4):
  """Random brightness, contrast and saturation per example on [0, 1] float RGB images."""
  kb, kc, ks = jax.random.split(key, 3)
  shape = (images.shape[0], 1, 1, 1)
  factor = lambda k, s: jax.random.uniform(k, shape, minval=1 - s, maxval=1 + s)
  x = images * factor(kb, brightness)
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  x = (x - mean) * factor(kc, contrast) + mean
  gray = x.mean(axis=-1, keepdims=True)
  x = (x - gray) * factor(ks, saturation) + gray
  return jnp.clip(x, 0.0, 1.0)


def random_resized_crop(key, images, *masks, scale=(0.67, 1.0), ratio=(3 / 4, 4 / 3)):
  """Crops a random box (area fraction `scale`, aspect `ratio`) per example, resized back.

  Images are resampled bilinearly, masks [B, H, W] by nearest neighbour, from the same box.
  """
  b, h, w = images.shape[:3]
  ka, kr, ky, kx = jax.random.split(key, 4)
  area = jax.random.uniform(ka, (b,), minval=scale[0], maxval=scale[1])
  log_r = jax.random.uniform(kr, (b,), minval=jnp.log(ratio[0]), maxval=jnp.log(ratio[1]))
  aspect = jnp.exp(log_r)
  ch = jnp.clip(jnp.sqrt(area / aspect), 0.1, 1.0) * h
  cw = jnp.clip(jnp.sqrt(area * aspect), 0.1, 1.0) * w
  y0 = jax.random.uniform(ky, (b,)) * (h - ch)
  x0 = jax.random.uniform(kx, (b,)) * (w - cw)

  def sample(x, y0, x0, ch, cw, order):
    # Output pixel centres mapped into the crop box, then sampled from the source image.
    ys = y0 + (jnp.arange(h) + 0.5) * ch / h - 0.5
    xs = x0 + (jnp.arange(w) + 0.5) * cw / w - 0.5
    yy, xx = jnp.meshgrid(ys, xs, indexing="ij")
    resample = lambda c: jax.scipy.ndimage.map_coordinates(c, [yy, xx], order=order, mode="nearest")
    if x.ndim == 2:
      return resample(x)
    return jnp.stack([resample(x[..., i]) for i in range(x.shape[-1])], axis=-1)

  out = jax.vmap(lambda x, *box: sample(x, *box, 1))(images, y0, x0, ch, cw)
  warped_masks = [jax.vmap(lambda m, *box: sample(m.astype(jnp.float32), *box, 0))(
      m, y0, x0, ch, cw).astype(m.dtype) for m in masks]
  return (out, *warped_masks)


def mixup(key, images, targets, alpha):
  """MixUp with one Beta(alpha, alpha) weight per batch against the reversed batch.

  `targets` are one-hot (or soft) [B, K]; mixed targets still sum to 1.
  """
  lam = jax.random.beta(key, alpha, alpha)
  mix = lambda x: lam * x + (1.0 - lam) * x[::-1]
  return mix(images), mix(targets)
