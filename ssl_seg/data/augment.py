"""On-device augmentation, run inside the jitted step from the step's folded key.

uint8 crosses the host-device bus; normalisation and every random transform happen here.
Geometric transforms take the masks along (nearest neighbour) so image and mask stay aligned.
"""

import jax
import jax.numpy as jnp
import numpy as np

# NumPy, not jnp: a jnp constant made at import started XLA's CPU client and its threads before
# a process could set its malloc policy (ssl_seg/host_memory.py), and the ViT step ran 1.3x
# slower in benchmarks/torch_reference.py, which imports this module first (RESULTS.md).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def normalize(images_u8):
  """uint8 [B, H, W, 3] -> float32 standardised with ImageNet statistics."""
  return standardize(images_u8.astype(jnp.float32) / 255.0)


def standardize(images):
  """Float RGB in [0, 1] (after augmentation) -> standardised with ImageNet statistics."""
  return (images - IMAGENET_MEAN) / IMAGENET_STD


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
  # As torchvision's ColorJitter (the study's): blends toward black, the image's mean grey and
  # its own greyscale (ITU-R 601 luma, not the channel mean), clipped after each step.
  luma = lambda x: (x * LUMA).sum(axis=-1, keepdims=True)
  x = jnp.clip(images * factor(kb, brightness), 0.0, 1.0)
  mean = luma(x).mean(axis=(1, 2, 3), keepdims=True)
  x = jnp.clip((x - mean) * factor(kc, contrast) + mean, 0.0, 1.0)
  gray = luma(x)
  return jnp.clip((x - gray) * factor(ks, saturation) + gray, 0.0, 1.0)


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

  # The box is axis-aligned, so resampling is separable: bilinear is two small matmuls per
  # image (rows then columns, weights from the box), and nearest neighbour is an index gather.
  # Both map output pixel centres into the box and clamp at the border, as torchvision does.
  def coords(start, length, n):
    return jnp.clip(start[:, None] + (jnp.arange(n) + 0.5) * length[:, None] / n - 0.5, 0, n - 1)

  cy, cx = coords(y0, ch, h), coords(x0, cw, w)  # [B, H], [B, W] source coordinates.

  def bilinear_weights(c, n):
    lo = jnp.floor(c)
    frac = (c - lo)[..., None]
    lo = lo.astype(jnp.int32)
    hi = jnp.minimum(lo + 1, n - 1)
    return jax.nn.one_hot(lo, n) * (1 - frac) + jax.nn.one_hot(hi, n) * frac  # [B, out, in]

  wy, wx = bilinear_weights(cy, h), bilinear_weights(cx, w)
  out = jnp.einsum("byY,bYXc,bxX->byxc", wy, images.astype(jnp.float32), wx,
                   precision=jax.lax.Precision.HIGHEST)
  iy, ix = jnp.round(cy).astype(jnp.int32), jnp.round(cx).astype(jnp.int32)
  gather = jax.vmap(lambda m, r, c: m[r[:, None], c[None, :]])
  return (out.astype(images.dtype), *[gather(m, iy, ix) for m in masks])


def crop_flip(key, images, *masks, scale=(0.67, 1.0)):
  """Random resized crop then left-right flip, masks alongside; scale (1, 1) skips the crop."""
  k_crop, k_flip = jax.random.split(key)
  out = (images, *masks)
  if tuple(scale) != (1.0, 1.0):
    out = random_resized_crop(k_crop, *out, scale=tuple(scale))
  return flip_lr(k_flip, *out)


def mixup(key, images, targets, alpha):
  """MixUp with one Beta(alpha, alpha) weight per batch against the reversed batch.

  `targets` are one-hot (or soft) [B, K]; mixed targets still sum to 1.
  """
  lam = jax.random.beta(key, alpha, alpha)
  mix = lambda x: lam * x + (1.0 - lam) * x[::-1]
  return mix(images), mix(targets)
