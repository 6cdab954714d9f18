"""Synthetic natural-image stand-in, so the ViT pipeline runs offline end to end.

Each image is a textured background from one of six texture families (the classification
label, a stand-in for Intel's six scene classes) with one textured ellipse in front. Masks are
trimap-like with the Oxford-IIIT Pet ids of INTERFACES.md: 0 pet (inside), 1 background,
2 border (a ring about 1.5 px wide around the ellipse's outline).
"""

import numpy as np

NUM_SCENE_CLASSES = 6
# Per family: (stripe orientation in radians, spatial frequency in cycles per image, base RGB).
_FAMILIES = [
    (0.0, 3.0, (0.55, 0.35, 0.25)),
    (np.pi / 2, 5.0, (0.25, 0.5, 0.3)),
    (np.pi / 4, 2.0, (0.7, 0.75, 0.85)),
    (-np.pi / 4, 6.0, (0.45, 0.45, 0.5)),
    (np.pi / 3, 1.0, (0.2, 0.4, 0.7)),
    (-np.pi / 6, 8.0, (0.5, 0.5, 0.45)),
]


def _stripes(rng, n, size, orientation, freq, base):
  yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
  theta = orientation[:, None, None] + rng.normal(0, 0.15, (n, 1, 1))
  phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
  wave = np.sin(2 * np.pi * freq[:, None, None] * (np.cos(theta) * xx + np.sin(theta) * yy)
                + phase)
  tint = base[:, None, None, :] + rng.normal(0, 0.06, (n, 1, 1, 3))
  return tint * (0.75 + 0.25 * wave[..., None])


def make_images(seed: int, n: int, size: int):
  """Returns (images uint8 [n, size, size, 3], seg uint8 [n, size, size], label int32 [n])."""
  if n <= 0 or size < 8:
    raise ValueError(f"need n > 0 and size >= 8, got n={n}, size={size}")
  rng = np.random.default_rng(seed)
  label = rng.integers(0, NUM_SCENE_CLASSES, n).astype(np.int32)
  fam = [_FAMILIES[i] for i in label]
  background = _stripes(rng, n, size, np.array([f[0] for f in fam]),
                        np.array([f[1] for f in fam]), np.array([f[2] for f in fam]))
  # Foreground ellipse: its own colour and a spotted texture, so edges are learnable.
  yy, xx = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
  cy, cx = (rng.uniform(0.3, 0.7, (2, n, 1, 1)) * size)
  ry, rx = (rng.uniform(0.15, 0.32, (2, n, 1, 1)) * size)
  angle = rng.uniform(0, np.pi, (n, 1, 1))
  dy, dx = yy - cy, xx - cx
  u = (np.cos(angle) * dx + np.sin(angle) * dy) / rx
  v = (-np.sin(angle) * dx + np.cos(angle) * dy) / ry
  radius = np.sqrt(u**2 + v**2)
  # Distance to the outline in pixels, to first order: (r - 1) times the local radius.
  edge_px = np.abs(radius - 1.0) * np.minimum(rx, ry)
  inside = radius < 1.0
  fg_color = rng.uniform(0.1, 0.9, (n, 1, 1, 3))
  spots = 0.85 + 0.15 * np.sin(yy * rng.uniform(0.5, 1.5, (n, 1, 1))) * np.cos(
      xx * rng.uniform(0.5, 1.5, (n, 1, 1)))
  foreground = fg_color * spots[..., None]
  images = np.where(inside[..., None], foreground, background)
  images = images + rng.normal(0, 0.03, images.shape)
  seg = np.where(inside, 0, 1).astype(np.uint8)
  seg[edge_px < 1.5] = 2
  return (np.clip(images * 255, 0, 255).astype(np.uint8), seg, label)
