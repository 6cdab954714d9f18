"""On-device corruption of scanned logs for denoising / masked-autoencoder pretraining.

Pure jax with static shapes and no Python control flow on traced values, so `corrupt` runs
inside the jitted train step from the step's key. Images are floats in [0, 1] (1 = white
paper, ink dark) with a `valid` mask that is False on right padding; padding is never altered.

The defaults are deliberately aggressive: under weak corruption a reconstruction net learns
the identity and its features are of little use for segmentation. The denoise task logs
`identity_baseline_loss` next to the model's loss: a model that does not beat it clearly is
copying its input.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp

FILLS = ("paper", "gray", "noise")


@dataclasses.dataclass(frozen=True)
class CorruptionConfig:
  """Strength of each corruption; a strength of 0 turns that corruption off."""
  # Square patches on a fixed grid, each hidden with probability `patch_ratio`.
  patch_size: int = 16
  patch_ratio: float = 0.5
  # Full-height column spans covering about `column_ratio` of each image's valid width: they
  # hide the curve over a depth interval, so the net must interpolate it.
  column_ratio: float = 0.15
  column_min_width: int = 8
  column_max_width: int = 48
  # What hidden pixels show: "paper" (1.0), "gray" (0.5) or "noise" (uniform in [0, 1]).
  fill: str = "gray"
  # Additive Gaussian noise, same std for every image.
  noise_std: float = 0.1
  # Gaussian blur, sigma drawn per image uniformly in [0, blur_sigma] pixels.
  blur_sigma: float = 1.5
  # Ink dropout: each ink_block x ink_block cell is lightened with probability `ink_dropout`;
  # its pixels darker than `ink_threshold` move `ink_lighten` of the way to paper white.
  ink_dropout: float = 0.3
  ink_block: int = 4
  ink_threshold: float = 0.5
  ink_lighten: float = 0.8

  def __post_init__(self):
    for name in ("patch_ratio", "column_ratio", "ink_dropout", "ink_threshold", "ink_lighten"):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f"CorruptionConfig.{name} must lie in [0, 1], got {getattr(self, name)}")
    for name in ("noise_std", "blur_sigma"):
      if getattr(self, name) < 0:
        raise ValueError(f"CorruptionConfig.{name} must be >= 0, got {getattr(self, name)}")
    if self.patch_size < 1 or self.ink_block < 1:
      raise ValueError(f"patch_size and ink_block must be >= 1, got {self.patch_size}, "
                       f"{self.ink_block}")
    if not 1 <= self.column_min_width <= self.column_max_width:
      raise ValueError(f"need 1 <= column_min_width <= column_max_width, got "
                       f"{self.column_min_width}, {self.column_max_width}")
    if self.fill not in FILLS:
      raise ValueError(f"CorruptionConfig.fill must be one of {FILLS}, got {self.fill!r}")


NO_CORRUPTION = CorruptionConfig(patch_ratio=0.0, column_ratio=0.0, noise_std=0.0,
                                 blur_sigma=0.0, ink_dropout=0.0)


def _cell_mask(key, batch, height, width, cell, prob):
  """bool [B, H, W]: a Bernoulli(prob) draw per cell x cell block of a grid anchored at 0, 0."""
  grid = jax.random.bernoulli(key, prob, (batch, -(-height // cell), -(-width // cell)))
  return jnp.repeat(jnp.repeat(grid, cell, axis=1), cell, axis=2)[:, :height, :width]


def patch_mask(key, valid, cfg):
  """bool [B, H, W]: valid pixels of the hidden square patches."""
  b, h, w = valid.shape
  return _cell_mask(key, b, h, w, cfg.patch_size, cfg.patch_ratio) & valid


def column_mask(key, valid, cfg):
  """bool [B, H, W]: valid pixels of the hidden full-height column spans.

  The number of candidate spans is static (from W); each is kept with a probability
  proportional to the image's valid width, so spans hide about `column_ratio` of the valid
  width (a little less where they overlap) however much padding an image has.
  """
  b, h, w = valid.shape
  mean_width = (cfg.column_min_width + cfg.column_max_width) / 2
  num_spans = max(1, math.ceil(cfg.column_ratio * w / mean_width))
  k_start, k_width, k_keep = jax.random.split(key, 3)
  valid_width = valid.any(axis=1).sum(axis=1)[:, None]  # [B, 1]: padding is on the right.
  start = jnp.floor(jax.random.uniform(k_start, (b, num_spans)) * valid_width)
  span = jax.random.randint(k_width, (b, num_spans), cfg.column_min_width,
                            cfg.column_max_width + 1)
  keep_prob = cfg.column_ratio * valid_width / (num_spans * mean_width)
  keep = jax.random.uniform(k_keep, (b, num_spans)) < keep_prob
  cols = jnp.arange(w)[None, None, :]
  hidden = ((cols >= start[..., None]) & (cols < (start + span)[..., None]) & keep[..., None])
  return jnp.broadcast_to(hidden.any(axis=1)[:, None, :], (b, h, w)) & valid


def _shift_sum(x, weights, axis):
  """sum_d weights[:, d] * x shifted by d - r along `axis` (zeros shifted in); x [B, H, W, C]."""
  radius = (weights.shape[1] - 1) // 2
  pad = [(0, 0)] * x.ndim
  pad[axis] = (radius, radius)
  padded = jnp.pad(x, pad)
  size = x.shape[axis]
  out = jnp.zeros_like(x)
  for d in range(weights.shape[1]):
    out = out + weights[:, d, None, None, None] * jax.lax.slice_in_dim(padded, d, d + size,
                                                                       axis=axis)
  return out


def gaussian_blur(key, image, valid, max_sigma):
  """Separable Gaussian blur, sigma uniform in [0, max_sigma] per image.

  Normalised convolution (blur(x * valid) / blur(valid)): padding and the image border are
  treated as missing, not as dark or white, so they do not bleed into valid pixels.
  """
  radius = max(1, math.ceil(3 * max_sigma))
  sigma = jnp.maximum(jax.random.uniform(key, (image.shape[0], 1)) * max_sigma, 1e-3)
  offsets = jnp.arange(-radius, radius + 1, dtype=jnp.float32)[None, :]
  weights = jnp.exp(-0.5 * jnp.square(offsets / sigma))
  weights = weights / weights.sum(axis=1, keepdims=True)
  v = valid[..., None].astype(image.dtype)

  def blur(x):
    return _shift_sum(_shift_sum(x, weights, axis=2), weights, axis=1)

  den = blur(v)
  return jnp.where(den > 1e-6, blur(image * v) / jnp.maximum(den, 1e-6), image)


def corrupt(key, image, valid, cfg: CorruptionConfig = CorruptionConfig()):
  """Corrupts image [B, H, W, C] in [0, 1] where valid [B, H, W] is True.

  In order: ink dropout, blur, Gaussian noise, then hidden patches and column spans filled
  per `cfg.fill`; the result is clipped to [0, 1]. Returns (corrupted [B, H, W, C] in the
  image's dtype, hidden bool [B, H, W]: the valid pixels whose content was hidden).
  """
  b, h, w, _ = image.shape
  k_ink, k_blur, k_noise, k_patch, k_cols, k_fill = jax.random.split(key, 6)
  x = image.astype(jnp.float32)
  if cfg.ink_dropout > 0 and cfg.ink_lighten > 0:
    drop = _cell_mask(k_ink, b, h, w, cfg.ink_block, cfg.ink_dropout)[..., None]
    x = jnp.where(drop & (x < cfg.ink_threshold), x + (1.0 - x) * cfg.ink_lighten, x)
  if cfg.blur_sigma > 0:
    x = gaussian_blur(k_blur, x, valid, cfg.blur_sigma)
  if cfg.noise_std > 0:
    x = x + cfg.noise_std * jax.random.normal(k_noise, x.shape)
  hidden = jnp.zeros((b, h, w), bool)
  if cfg.patch_ratio > 0:
    hidden = hidden | patch_mask(k_patch, valid, cfg)
  if cfg.column_ratio > 0:
    hidden = hidden | column_mask(k_cols, valid, cfg)
  if cfg.fill == "noise":
    fill = jax.random.uniform(k_fill, x.shape)
  else:
    fill = jnp.full((), 1.0 if cfg.fill == "paper" else 0.5)
  x = jnp.clip(jnp.where(hidden[..., None], fill, x), 0.0, 1.0)
  return jnp.where(valid[..., None], x, image).astype(image.dtype), hidden

