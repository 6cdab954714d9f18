"""Data sets of rendered scanned well logs with exact per-pixel curve masks.

Example i of a stream depends only on (seed, i) and the arguments, so `render_example` and
`render_indexed` regenerate it alone. The renderer is `welllog_render` (its docstring has the
image and mask conventions), the look `welllog_style.RenderStyle`, the curves
`welllog_curves` (synthetic, or depth windows of LAS files read by `ssl_seg.digitizer.las`).
"""

from collections.abc import Sequence

import numpy as np

from ssl_seg.data import welllog_curves
from ssl_seg.data.welllog_render import render_log
from ssl_seg.data.welllog_style import MIN_WIDTH, RenderStyle


def _render_example(seed, index, height, min_width, max_width, style, las_data,
                    las_fraction=1.0):
  if not MIN_WIDTH <= min_width <= max_width:
    raise ValueError(f"need {MIN_WIDTH} <= min_width <= max_width, got {min_width}, "
                     f"{max_width}")
  rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
  width = int(np.clip(round(np.exp(rng.uniform(np.log(min_width), np.log(max_width)))),
                      min_width, max_width))
  curves = None
  # las_fraction 1.0 draws nothing extra, so LAS-only data sets render as they always did.
  if las_data and (las_fraction >= 1.0 or rng.random() < las_fraction):
    las_file = las_data[int(rng.integers(len(las_data)))]
    curves = welllog_curves.las_track_curves(rng, las_file, width, style)
  return render_log(rng, height=height, width=width, curves=curves, style=style)


def load_las_data(las_paths: Sequence, las_curves: Sequence[str] = ("GR", "RHOB")):
  """Parsed LAS files for `render_indexed` (read once, reused for every render)."""
  return welllog_curves.load_las(las_paths, las_curves)


def render_indexed(seed: int, index: int, *, height: int, min_width: int, max_width: int,
                   style: RenderStyle = RenderStyle(), las_data=(), las_fraction: float = 1.0):
  """Example `index` of the stream `seed`: (image, seg); a share `las_fraction` of the logs
  draws its curves from `las_data` (`load_las_data`), the rest synthetic ones."""
  return _render_example(seed, index, height, min_width, max_width, style, las_data,
                         las_fraction)


def render_example(seed: int, index: int, *, height: int, min_width: int, max_width: int,
                   style: RenderStyle = RenderStyle(), las_paths: Sequence = (),
                   las_curves: Sequence[str] = ("GR", "RHOB")) -> tuple[np.ndarray, np.ndarray]:
  """Example `index` of `render_dataset(seed, ...)` alone: (image, seg)."""
  return _render_example(seed, index, height, min_width, max_width, style,
                         welllog_curves.load_las(las_paths, las_curves))


def render_dataset(seed: int, n: int, *, height: int, min_width: int, max_width: int,
                   labeled: bool, style: RenderStyle = RenderStyle(), las_paths: Sequence = (),
                   las_curves: Sequence[str] = ("GR", "RHOB")) -> list[dict]:
  """n examples {"image": uint8 [H, W_i], "seg": uint8 [H, W_i] if labeled}, W_i log-uniform."""
  # Example i depends only on (seed, i) and the arguments, so `render_example` regenerates it
  # alone. With `las_paths`, curves are random depth windows of those files.
  if n < 0:
    raise ValueError(f"n must be >= 0, got {n}")
  las_data = welllog_curves.load_las(las_paths, las_curves)
  out = []
  for i in range(n):
    image, seg = _render_example(seed, i, height, min_width, max_width, style, las_data)
    out.append({"image": image, "seg": seg} if labeled else {"image": image})
  return out
