"""How a scan maps to the model and back: its depth axis, its tracks, their curves and depth.

The model's layout has depth along the width. A scan whose depth runs down the page is rotated
so its left edge becomes the bottom, and results are rotated back; a track (a span across the
value axis: given, or found from the scan's border lines by `find_tracks`) is cropped,
segmented alone (`segment_scan`, by a `segmenter.Segmenter` or any object with its
`segment`) and pasted back, and traced alone (`trace_scan`).
"""

import dataclasses

import numpy as np

from ssl_seg.digitizer import (
  curve_values,
  mask_cleanup,
  resolution as resolution_lib,
  tracer,
  tracks as tracks_lib,
)


@dataclasses.dataclass(frozen=True)
class Curve:
  """One curve of a track: the class that traces it and how its values are written.

  mnemonic '' takes the default name (CURVE1, T2_CURVE1...); scale None writes no values (the
  CSV keeps track positions, the LAS leaves the curve out and says so).
  """
  class_id: int
  mnemonic: str = ""
  unit: str = ""
  scale: curve_values.Scale | None = None
  description: str = ""


@dataclasses.dataclass(frozen=True)
class Layout:
  """How a scan maps to the model (depth axis, tracks across the value axis) and, where known,
  to numbers: the curves of each track and the depth of the pixels along the depth axis.

  `make_layout` builds it from the command-line shortcuts (`shortcuts`) and `layout_files`
  from a layout file, with the same arguments.
  """
  vertical: bool
  tracks: tuple  # ((a, b), ...) spans across the value axis, original pixels, b exclusive.
  curves: tuple = ()  # Per track, a tuple of `Curve`s; () is every curve class, unnamed.
  depth: tuple = ()  # ((pixel, depth), ...) tie points along the depth axis; () is unknown.
  depth_unit: str = "M"
  well: str = ""

  def crop(self, image, t):
    """Track t of an original-layout array, turned into the model's layout."""
    a, b = self.tracks[t]
    return np.rot90(image[:, a:b], 1) if self.vertical else image[a:b]

  def paste(self, full, part, t):
    a, b = self.tracks[t]
    if self.vertical:
      full[:, a:b] = np.rot90(part, -1)
    else:
      full[a:b] = part

  def to_original(self, t):
    """Maps model-layout rows of track t to original pixels along the value axis."""
    a, b = self.tracks[t]
    return (lambda y: a + (b - a - 1) - y) if self.vertical else (lambda y: a + y)

  def depth_at(self, px):
    """Depth at pixel positions along the depth axis (piecewise linear through the tie points,
    extended linearly past the first and last), or None without tie points."""
    if not self.depth:
      return None
    p, d = (np.asarray(v, np.float64) for v in zip(*self.depth))
    px = np.asarray(px, np.float64)
    out = np.interp(px, p, d)
    lo, hi = px < p[0], px > p[-1]
    out[lo] = d[0] + (px[lo] - p[0]) * (d[1] - d[0]) / (p[1] - p[0])
    out[hi] = d[-1] + (px[hi] - p[-1]) * (d[-1] - d[-2]) / (p[-1] - p[-2])
    return out

  def track_curves(self, class_names):
    """Per track, its `Curve`s: the layout's, or one per curve class of the model."""
    if self.curves:
      return self.curves
    return tuple(tuple(Curve(k) for k in range(1, len(class_names)))
                 for _ in self.tracks)


def make_layout(shape, depth_axis="auto", tracks=(), *, curves=(), depth=None, depth_unit="M",
                well=""):
  """Layout of an image of `shape` [H, W].

  Args:
    tracks: (a, b) pairs or 'A:B' strings (default: one track, the whole value axis).
    curves: per track a sequence of `Curve`s, or () for every curve class in every track.
    depth: None, (first, last) at the first and last pixel along the depth axis, or tie
      points ((pixel, depth), ...), at least two at distinct pixels, depth monotonic.
  """
  h, w = shape
  vertical = is_vertical(shape, depth_axis)
  extent = w if vertical else h
  spans = []
  for t in tracks:
    a, b = parse_span(t) if isinstance(t, str) else t
    if not 0 <= a < b <= extent:
      axis = "columns" if vertical else "rows"
      raise ValueError(f"track {a}:{b} is outside the image's {extent} {axis} (depth "
                       f"{'vertical' if vertical else 'horizontal'}); use 0 <= X0 < X1 <= "
                       f"{extent}")
    spans.append((int(a), int(b)))
  if not spans:
    spans = [(0, extent)]
  for a, b in spans:
    if b - a < 2:
      raise ValueError(f"track {a}:{b} is {b - a} px across; need at least 2")
  curves = tuple(tuple(c) for c in curves)
  if curves and len(curves) != len(spans):
    raise ValueError(f"the layout gives curves for {len(curves)} track(s) but has "
                     f"{len(spans)} track(s)")
  n_depth = h if vertical else w
  return Layout(vertical, tuple(spans), curves, _depth_ties(depth, n_depth), depth_unit, well)


def is_vertical(shape, depth_axis="auto"):
  """Whether depth runs down the page of an image of `shape` [H, W]."""
  if depth_axis not in ("auto", "vertical", "horizontal"):
    raise ValueError(f"--depth-axis must be auto, vertical or horizontal, got {depth_axis!r}")
  return shape[0] > shape[1] if depth_axis == "auto" else depth_axis == "vertical"


def find_tracks(image, depth_axis="auto"):
  """(spans, a line for a person): the tracks `tracks` finds in a uint8 [H, W] scan,
  as `make_layout`'s `tracks`; one span over the whole value axis where it finds none."""
  vertical = is_vertical(image.shape, depth_axis)
  spans = tracks_lib.find_tracks(image, vertical)
  return spans, tracks_lib.describe(spans, image.shape[1 if vertical else 0], vertical)


def _depth_ties(depth, n_depth):
  """((pixel, depth), ...) sorted by pixel, from (first, last) or tie points; checked."""
  if depth is None or len(depth) == 0:
    return ()
  if np.ndim(depth) == 1:
    if len(depth) != 2:
      raise ValueError(f"depth: expected FIRST:LAST, got {depth}")
    depth = ((0, depth[0]), (n_depth - 1, depth[1]))
  ties = sorted((float(p), float(d)) for p, d in depth)
  p, d = np.array(ties).T
  if len(ties) < 2 or (np.diff(p) <= 0).any():
    raise ValueError(f"depth tie points need at least two distinct pixels, got {ties}")
  if not ((np.diff(d) > 0).all() or (np.diff(d) < 0).all()):
    raise ValueError(f"depth tie points must increase (or decrease) with the pixel, got {ties}")
  return tuple(ties)


def parse_span(text):
  try:
    a, b = (int(v) for v in text.split(":"))
  except ValueError:
    raise ValueError(f"track {text!r}: expected X0:X1 (integer pixels)") from None
  return a, b


def segment_scan(seg, image, layout, stroke=None):
  """Class ids [H, W] of a scan in its original layout; pixels outside every track are 0.

  stroke: the scan's stroke width from `scan_stroke` (None: each track estimates its own where
  the resolution asks for an estimate).
  """
  kw = {} if stroke is None else {"stroke": stroke}
  mask = np.zeros(image.shape, np.uint8)
  for t in range(len(layout.tracks)):
    layout.paste(mask, seg.segment(np.ascontiguousarray(layout.crop(image, t)), **kw), t)
  return mask


def estimates_stroke(seg):
  """Whether `seg` scales tracks by each scan's estimated stroke width (--resolution=stroke
  without --px-per-stroke or --target-height); duck-typed segmenters never do."""
  return getattr(getattr(seg, "resolution", None), "estimates", False)


def scan_stroke(seg, image, layout):
  """(stroke width in px, a line for a person): the stroke width estimated over the tracks of
  `image`, and the heights it gives the tracks. 0.0 where there is too little ink to say:
  every track, every band of the scan then gets the training height, none measures alone."""
  crops = [layout.crop(image, t) for t in range(len(layout.tracks))]
  stroke = resolution_lib.stroke_width(crops) or 0.0
  spans = [b - a for a, b in layout.tracks]
  rows = [seg.target_height(p, stroke) for p in spans]
  return stroke, resolution_lib.describe(stroke, spans, rows)


def trace_scan(mask, layout, class_names, max_gap=8, *, cleanup=True, probs=None, image=None):
  """Per track, {curve name: Trace} in the model layout of that track.

  Args:
    cleanup: first drop grid lines and specks painted as a curve (`mask_cleanup.cleanup_mask`),
      per track: its rows are the value axis that grid lines follow.
    probs: optional float [H, W, K] class probabilities in the scan's layout, for confidences.
    image: optional uint8 scan the size of `mask`: cleanup also drops curve runs on its
      value-grid rows (`mask_cleanup.value_grid_rows`).
  """
  curves = [(k, name) for k, name in enumerate(class_names) if k > 0]
  out = []
  for t in range(len(layout.tracks)):
    m = layout.crop(mask, t)
    if cleanup:
      grid = None if image is None else mask_cleanup.value_grid_rows(layout.crop(image, t))
      m = mask_cleanup.cleanup_mask(m, [k for k, _ in curves], grid_rows=grid)
    p = None if probs is None else layout.crop(probs, t)
    sides = {c.class_id: c.scale.wrap_side for c in (layout.curves[t] if layout.curves else ())
             if c.scale is not None}
    out.append({name: tracer.trace(m, k, max_gap=max_gap, probs=p, wrap_side=sides.get(k, 1))
                for k, name in curves})
  return out
