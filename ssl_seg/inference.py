"""Inference for scans of any size: restore a curve segmenter, window it, map tracks back.

The model's layout has depth along the width. A scan whose depth runs down the page is rotated
so its left edge becomes the bottom, and results are rotated back; a track (a span across the
value axis: given, or found from the scan's border lines by `find_tracks`) is cropped,
segmented alone and pasted back. A crop is scaled (keeping its aspect ratio) to the model's
training height, or where asked to the height at which its strokes are as wide as in training
(`ssl_seg.resolution`), and cut into windows of the training height x `window` px that overlap
by `overlap` px along depth and by `row_overlap` across the value axis (a crop taller than the
training height); window logits are blended with linear ramps across the overlaps, and the
mask is scaled back to the input's size (nearest). Every window has the same shape and every
batch the same size, so a folder of scans of any sizes compiles once per model; an image
smaller than a window is padded and the padding masked out (CurveNet is padding-exact).
"""

import dataclasses
import os
import sys
import tempfile

import jax
import numpy as np
from absl import flags
from flax import nnx
from PIL import Image

from ssl_seg import (
  checkpoint,
  digitize,
  resolution as resolution_lib,
  scan_io,
  state as state_lib,
  tasks,
  tracks as tracks_lib,
)
from ssl_seg.tasks import curve_segment


@dataclasses.dataclass
class Segmenter:
  """A restored curve segmenter and the fixed window / batch geometry it runs at."""
  apply: object  # jitted (params, images uint8 [B, H, W, 1], valid [B, H, W]) -> logits
  params: object
  height: int
  class_names: tuple
  window: int
  overlap: int
  batch_size: int
  traces: list  # One entry per compilation (shape), for tests and logs.
  resolution: resolution_lib.Resolution = resolution_lib.Resolution()

  @property
  def row_overlap(self):
    """Overlap of windows across the value axis: --overlap, at most a quarter of a window."""
    return min(self.overlap, self.height // 4)

  def logits(self, image):
    """float32 [H, W, K] logits of a uint8 [H, W] image at the scale the model sees it."""
    h, w = image.shape
    tiles = [(r, c) for r in window_starts(h, self.height, self.row_overlap)
             for c in window_starts(w, self.window, self.overlap)]
    n = -(-len(tiles) // self.batch_size) * self.batch_size
    # Padding rows are white paper marked valid: their outputs are dropped, and an all-invalid
    # row would leave the bottleneck attention without any key.
    x = np.full((n, self.height, self.window, 1), 255, np.uint8)
    valid = np.ones((n, self.height, self.window), bool)
    for i, (r, c) in enumerate(tiles):
      part = image[r:r + self.height, c:c + self.window]
      x[i, :part.shape[0], :part.shape[1], 0] = part
      valid[i, part.shape[0]:] = False
      valid[i, :, part.shape[1]:] = False
    total = np.zeros((h, w, len(self.class_names)), np.float32)
    weight = np.zeros((h, w), np.float32)
    for b in range(0, n, self.batch_size):
      out = np.asarray(jax.device_get(self.apply(self.params, x[b:b + self.batch_size],
                                                 valid[b:b + self.batch_size])))
      for i in range(b, min(b + self.batch_size, len(tiles))):
        r0, c0 = tiles[i]
        r1, c1 = min(r0 + self.height, h), min(c0 + self.window, w)
        # Separable ramps, so overlaps along both axes blend as along one.
        ramp = (blend_weights(r0, r1, h, self.row_overlap)[:, None]
                * blend_weights(c0, c1, w, self.overlap)[None, :])
        total[r0:r1, c0:c1] += out[i - b, :r1 - r0, :c1 - c0] * ramp[..., None]
        weight[r0:r1, c0:c1] += ramp
    return total / weight[..., None]

  def target_height(self, track_px, stroke=None):
    """Rows across the value axis that a track `track_px` across is segmented at (`stroke`:
    the scan's estimated stroke width, px, where `resolution` estimates it)."""
    return self.resolution.rows(track_px, self.height, stroke)

  def segment(self, image, stroke=None):
    """uint8 [H, W] scan (model layout) -> uint8 [H, W] class ids, same size.

    stroke: the scan's stroke width (px) estimated over all its tracks (`scan_stroke`);
    None estimates it from this image where the resolution asks for an estimate.
    """
    h, w = image.shape
    if stroke is None and self.resolution.estimates:
      stroke = resolution_lib.stroke_width(image)
    rows = self.target_height(h, stroke)
    scale = rows / h
    new_w = max(1, round(w * scale))
    small = image
    if (h, w) != (rows, new_w):
      resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
      small = np.asarray(Image.fromarray(image).resize((new_w, rows), resample))
    mask = self.logits(small).argmax(-1).astype(np.uint8)
    if mask.shape != (h, w):
      mask = np.asarray(Image.fromarray(mask).resize((w, h), Image.Resampling.NEAREST))
    return mask


def window_starts(width, window, overlap):
  """Left edges of windows covering [0, width); the last one ends at the image's end."""
  if width <= window:
    return [0]
  stride = window - overlap
  return list(range(0, width - window, stride)) + [width - window]


def blend_weights(start, end, width, overlap):
  """Per-column weights of a window: ramps up / down across overlaps, 1 at the image's ends."""
  n = end - start
  wgt = np.ones(n, np.float32)
  if overlap > 0:
    ramp = (np.arange(min(overlap, n)) + 0.5) / overlap
    if start > 0:
      wgt[:len(ramp)] = np.minimum(wgt[:len(ramp)], ramp)
    if end < width:
      wgt[n - len(ramp):] = np.minimum(wgt[n - len(ramp):], ramp[::-1])
  return wgt


def load(path, *, window=1024, overlap=128, batch_size=4, step=None, log=None,
         resolution=resolution_lib.Resolution()):
  """A Segmenter from a stage directory (or its checkpoints/), restoring only the params.

  Without `step`, the newest step that can be read (an unreadable newer one is named through
  `log`). `resolution`: the scale tracks are segmented at (`ssl_seg.resolution`).
  """
  stage_dir = checkpoint.stage_dir_of(path)
  if window % 32 or window < 64:
    raise ValueError(f"--window must be a multiple of 32 and >= 64, got {window}")
  if not 0 <= overlap < window // 2:
    raise ValueError(f"--overlap must be in [0, window / 2), got {overlap}")
  if batch_size < 1:
    raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
  mngr = checkpoint.manager(stage_dir)

  def read(s):
    stage = checkpoint.stage_config(mngr, s)
    if stage.task != "curve_segment":
      raise checkpoint.CheckpointMismatchError(
          f"checkpoint in {stage_dir} is a {stage.task!r} stage; predict needs a "
          "curve_segment stage (e.g. WORKDIR/finetune_warm)")
    task = tasks.make_task(stage)
    abstract = nnx.eval_shape(lambda: task.build_model(nnx.Rngs(params=0)))
    graphdef, params, rest = state_lib.split_model(abstract)
    return stage, task, graphdef, checkpoint.restore_params(mngr, params, s), rest

  try:
    if step is None:
      found, got = checkpoint.read_newest(mngr, read, log=log)
      if found is None:
        raise FileNotFoundError(f"no checkpoint in {mngr.directory}: its stage has not saved one")
      stage, task, graphdef, params, rest = got
    else:
      stage, task, graphdef, params, rest = read(step)
    params = jax.device_put(params)
  finally:
    mngr.close()
  traces = []
  # The same decision rule as the stage's eval (curve_segment.decision_logits).
  class_weights = tuple(stage.class_weights) if stage.get("class_weights") else None
  correction = stage.get("weight_correction", 0.0)

  def forward(params, images, valid):
    traces.append(images.shape)  # Runs once per compilation, never per call.
    model = nnx.merge(graphdef, params, rest)
    logits, _ = model(curve_segment.ink(images), valid=valid, train=False)
    return curve_segment.decision_logits(logits, class_weights, correction).astype(np.float32)

  height = int(stage.data.height)
  return Segmenter(jax.jit(forward), params, height, tuple(task.class_names), window, overlap,
                   batch_size, traces, resolution)


@dataclasses.dataclass(frozen=True)
class Curve:
  """One curve of a track: the class that traces it and how its values are written.

  mnemonic '' takes the default name (CURVE1, T2_CURVE1...); scale None writes no values (the
  CSV keeps track positions, the LAS leaves the curve out and says so).
  """
  class_id: int
  mnemonic: str = ""
  unit: str = ""
  scale: digitize.Scale | None = None
  description: str = ""


@dataclasses.dataclass(frozen=True)
class Layout:
  """How a scan maps to the model (depth axis, tracks across the value axis) and, where known,
  to numbers: the curves of each track and the depth of the pixels along the depth axis.

  `make_layout` builds it from the command-line shortcuts and `ssl_seg.layouts` from a layout
  file, with the same arguments.
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
  """(spans, a line for a person): the tracks `ssl_seg.tracks` finds in a uint8 [H, W] scan,
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


def trace_scan(mask, layout, class_names, max_gap=8, *, cleanup=True, probs=None):
  """Per track, {curve name: Trace} in the model layout of that track.

  Args:
    cleanup: first drop grid lines and specks painted as a curve (`digitize.cleanup_mask`),
      per track: its rows are the value axis that grid lines follow.
    probs: optional float [H, W, K] class probabilities in the scan's layout, for confidences.
  """
  curves = [(k, name) for k, name in enumerate(class_names) if k > 0]
  out = []
  for t in range(len(layout.tracks)):
    m = layout.crop(mask, t)
    if cleanup:
      m = digitize.cleanup_mask(m, [k for k, _ in curves])
    p = None if probs is None else layout.crop(probs, t)
    sides = {c.class_id: c.scale.wrap_side for c in (layout.curves[t] if layout.curves else ())
             if c.scale is not None}
    out.append({name: digitize.trace(m, k, max_gap=max_gap, probs=p, wrap_side=sides.get(k, 1))
                for k, name in curves})
  return out


# Command-line pieces shared by `ssl_seg.predict` and `ssl_seg.evaluate`, which run the same
# windowed segmenter and curve extraction over a set of scans.


def flag(name):
  return flags.FLAGS[name].value


def define_flags():
  """How the segmenter runs over scans; defined only when a command runs (see its main)."""
  flags.DEFINE_enum("depth-axis", "auto", ["auto", "vertical", "horizontal"],
                    "Where depth runs; auto: vertical when the image is taller than wide.")
  flags.DEFINE_integer("max-gap", 8, "Bridge gaps up to this many px (0: never).")
  flags.DEFINE_integer("window", 1024, "Window width in model pixels (multiple of 32).")
  flags.DEFINE_integer("overlap", 128, "Overlap of neighbouring windows, px (across the value "
                       "axis at most a quarter of the training height).")
  # Default height: every number in the README and every test was made so (ssl_seg.resolution).
  flags.DEFINE_enum("resolution", "height", list(resolution_lib.MODES), "Scale of each track "
                    "for the model. height: across the value axis to the training height (e.g. "
                    "128 px); stroke: so the curves' strokes are as wide as in training "
                    f"({resolution_lib.TRAIN_STROKE_PX:g} px), from --px-per-stroke or estimated "
                    "per scan; a track taller than the training height is tiled.")
  flags.DEFINE_float("px-per-stroke", None, "With --resolution=stroke: the curves' stroke width "
                     "in the scan, px (default: estimated from each scan, and a line says what "
                     "was found).")
  flags.DEFINE_alias("px_per_stroke", "px-per-stroke")
  flags.DEFINE_integer("target-height", None, "Scale every track to this many px across the "
                       "value axis (overrides --resolution).")
  flags.DEFINE_alias("target_height", "target-height")
  flags.register_multi_flags_validator(["resolution", "px-per-stroke", "target-height"],
                                       _check_resolution)
  flags.DEFINE_integer("batch-size", 4, "Windows per device batch.")
  flags.DEFINE_multi_string("track", [], "X0:X1 span of one track across the value axis "
                            "in original pixels (repeatable; default: the whole image, or "
                            "see --track-detect).")
  # Off by default: on logs rendered from LAS files it split or dropped tracks in 3 of 16 scans
  # and cut the curves there (README, "Digitize").
  flags.DEFINE_bool("track-detect", False, "Where no --track (or layout span) gives the "
                    "tracks, find them from each scan's long border lines and print what was "
                    "found (default off: one track over the whole image).")
  flags.DEFINE_alias("track_detect", "track-detect")
  flags.DEFINE_integer("max-pixels", scan_io.DEFAULT_MAX_PIXELS, "Refuse scans whose header "
                       "claims more pixels than this (0: no cap), before decoding them.",
                       lower_bound=0)
  flags.DEFINE_alias("max_pixels", "max-pixels")


def _check_resolution(values):
  """absl validator: the resolution flags make a `Resolution` (one `error:` line if not)."""
  try:
    _resolution(values)
  except ValueError as e:
    raise flags.ValidationError(str(e)) from None
  return True


def _resolution(values):
  return resolution_lib.Resolution(values["resolution"], values["px-per-stroke"],
                                   values["target-height"])


def require_flags(*names):
  for name in names:
    if not flag(name):
      raise ValueError(f"--{name} is required")


def writable_dir(path, flag_name):
  """`path`, a folder made if missing and written to once: checked before any scan is read,
  so a bad output path fails in a second, not after the work (ValueError naming the flag)."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise ValueError(f"{flag_name} {path} is a file, not a folder; choose a folder")
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
      pass
  except OSError as e:
    raise ValueError(f"{flag_name} {path}: cannot write there ({e.strerror or e}); choose a "
                     "writable folder") from None
  return path


def writable_file(path, flag_name):
  """`path`, a file whose folder exists and can be written (see `writable_dir`)."""
  folder = os.path.dirname(os.path.abspath(path))
  if os.path.isdir(path):
    raise ValueError(f"{flag_name} {path} is a folder; give a file name, e.g. {path}/"
                     "metrics.json")
  if not os.path.isdir(folder):
    raise ValueError(f"{flag_name} {path}: folder {folder} does not exist; create it or "
                     "choose another path")
  try:
    with tempfile.TemporaryFile(dir=folder):
      pass
  except OSError as e:
    raise ValueError(f"{flag_name} {path}: cannot write in {folder} ({e.strerror or e}); "
                     "choose a writable path") from None
  return path


def load_from_flags(checkpoint_dir):
  """`load` with the window, overlap, batch size and resolution of the command line."""
  names = ("resolution", "px-per-stroke", "target-height")
  return load(checkpoint_dir, window=flag("window"), overlap=flag("overlap"),
              batch_size=flag("batch-size"), log=lambda msg: print(msg, file=sys.stderr),
              resolution=_resolution({n: flag(n) for n in names}))
