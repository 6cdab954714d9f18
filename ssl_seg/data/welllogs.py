"""Seeded renderer of scanned well-log images with exact per-pixel curve masks.

Depth runs along the image width (x) and the log value along the height (y): inside a track,
value 0 is the bottom interior row and value 1 the top one. Mask ids: 0 background (paper,
grid, text, borders), 1 curve1, 2 curve2. Curve2 is drawn after curve1, so where the two
overlap the pixel shows curve2's ink and the mask says 2.

Values outside [0, 1] wrap around the track (a value of 1.2 is drawn at 0.2, like the backup
scales of real logs). Curves come from a synthetic geology-like generator (`synthetic_curves`)
or from real LAS files (`read_las_curves` -> `las_to_track` -> `resample_to_width`).

The mask is derived from the same pixel list the ink is painted from, after every step that
removes ink (dashes, broken ink, NaN gaps), so it is exact by construction. Appearance-only
steps (fading, paper, grid, text, speckle, blur, JPEG) never touch it; skew rotates image and
mask by the same angle (nearest neighbour for the mask).
"""

import dataclasses
import io
import os
from collections.abc import Sequence

import lasio
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ssl_seg import las_io

LAS_MISSING = las_io.LAS_MISSING  # Defined once, in the LAS writer's module.
# lasio holds about 12 bytes per byte of LAS text while reading (measured on a 14 MB file):
# 256 MiB files, far beyond real logs, then stay near 3 GB.
MAX_LAS_BYTES = 256 * 2**20
# A narrowed (wrapping) LAS track scale still shows this percentile of the curve unwrapped.
WRAP_PERCENTILE = 75
MIN_HEIGHT = 16
MIN_WIDTH = 32
_MIN_TWO_TRACK_HEIGHT = 48
_TEXT_H = 11  # Pillow's default bitmap font: 11 px tall, 6 px per character.
_CHAR_W = 6
# (mnemonic, left, right, unit): header text that looks like real track headers.
_HEADERS = (
    ("GR", 0, 150, "API"), ("SP", -80, 20, "MV"), ("ILD", 0.2, 2000, "OHMM"),
    ("RHOB", 1.95, 2.95, "G/C3"), ("NPHI", 0.45, -0.15, "V/V"), ("DT", 140, 40, "US/F"),
    ("CALI", 6, 16, "IN"), ("LLS", 0.2, 2000, "OHMM"), ("PEF", 0, 10, "B/E"),
)


@dataclasses.dataclass(frozen=True)
class RenderStyle:
  """Probabilities (p_*) and strengths of every scan feature; defaults mimic typical scans."""

  # Paper: luminance ranges of clean and yellowed paper, low-frequency stains, grain.
  paper_white: tuple[float, float] = (0.9, 1.0)
  p_yellowed: float = 0.4
  paper_yellowed: tuple[float, float] = (0.72, 0.88)
  blotch_strength: float = 0.04
  grain_sigma: float = 0.02
  # Layout: tracks, borders, grids, text.
  p_two_tracks: float = 0.4
  p_four_curves: float = 0.2  # Synthetic curves in two tracks: both curves in each track.
  p_border: float = 0.9
  p_grid: float = 0.85
  p_log_grid: float = 0.35  # Share of grids with logarithmic (decade) spacing.
  p_depth_grid: float = 0.85
  grid_alpha: tuple[float, float] = (0.12, 0.45)
  p_depth_numbers: float = 0.7
  p_header: float = 0.4
  text_alpha: tuple[float, float] = (0.5, 0.9)
  # Curves.
  line_width: tuple[float, float] = (1.0, 1.7)
  ink_alpha: tuple[float, float] = (0.7, 0.97)
  # Curve2 dashed or dotted; curve1 stays solid. Line style is the only thing that tells the
  # two curves apart in a grayscale scan: a solid curve2 (0.2 of logs before 2026-12) made
  # its label a coin flip, so it is always styled now.
  p_styled_curve2: float = 1.0
  p_fade: float = 0.5
  fade_strength: float = 0.6  # Largest fractional loss of ink intensity along a curve.
  p_broken: float = 0.4
  broken_gaps_per_1000px: float = 4.0
  broken_gap_len: tuple[float, float] = (2.0, 8.0)
  p_curve_gap: float = 0.3  # Synthetic curves: chance of a no-data (NaN) interval.
  p_curve_wrap: float = 0.4  # Synthetic and LAS curves: chance a curve runs past its scale.
  # Synthetic curves: chance a curve is jagged like a real log's (sample-to-sample scatter of
  # `roughness` x its span). Smooth blocky curves only taught the net that jagged ink is a
  # dashed curve2: on LAS renders it then read a jagged RHOB as curve2 (README).
  p_rough: float = 0.5
  roughness: tuple[float, float] = (0.02, 0.15)
  # Scan degradations, applied in this order: skew, speckle, blur, JPEG.
  p_skew: float = 0.5
  skew_max_deg: float = 0.6
  skew_max_shift_px: float = 3.0  # Wide images rotate less so their ends move at most this.
  p_speckle: float = 0.5
  speckle_density: float = 0.003  # Largest fraction of pixels hit by a speck.
  p_blur: float = 0.5
  blur_sigma: tuple[float, float] = (0.3, 1.0)
  p_jpeg: float = 0.6
  jpeg_quality: tuple[int, int] = (25, 90)

  def __post_init__(self):
    for f in dataclasses.fields(self):
      value = getattr(self, f.name)
      if f.name.startswith("p_") and not 0.0 <= value <= 1.0:
        raise ValueError(f"RenderStyle.{f.name} must be a probability in [0, 1], got {value}")
      if isinstance(value, tuple) and value[0] > value[1]:
        raise ValueError(f"RenderStyle.{f.name} must be a (low, high) range, got {value}")

  @classmethod
  def clean(cls, **overrides) -> "RenderStyle":
    """White paper with curves only: no grid/text/borders, fading, skew, speckle, blur, JPEG."""
    kwargs = {
        "paper_white": (1.0, 1.0), "p_yellowed": 0.0, "blotch_strength": 0.0,
        "grain_sigma": 0.0, "p_border": 0.0, "p_grid": 0.0, "p_depth_grid": 0.0,
        "p_depth_numbers": 0.0, "p_header": 0.0, "p_fade": 0.0, "p_skew": 0.0,
        "p_speckle": 0.0, "p_blur": 0.0, "p_jpeg": 0.0}
    kwargs.update(overrides)
    return cls(**kwargs)


def _check_size(height: int, width: int):
  if height < MIN_HEIGHT or width < MIN_WIDTH:
    raise ValueError(f"well-log images need height >= {MIN_HEIGHT} and width >= {MIN_WIDTH}, "
                     f"got height={height}, width={width}")


def _box_smooth(x, k):
  if k <= 1:
    return x
  padded = np.pad(x, (k // 2, k - 1 - k // 2), mode="edge")
  return np.convolve(padded, np.ones(k) / k, mode="valid")


def _smooth_noise(rng, n, n_knots, scale):
  """Piecewise-linear random signal of length n through n_knots N(0, scale) knots."""
  knots = rng.normal(0.0, scale, n_knots)
  return np.interp(np.linspace(0, n_knots - 1, n), np.arange(n_knots), knots)


def synthetic_curves(rng: np.random.Generator, width: int, *, p_gap: float = 0.3,
                     p_wrap: float = 0.4, p_rough: float = 0.0,
                     roughness: tuple[float, float] = (0.02, 0.15)) -> np.ndarray:
  """Two geology-like series [2, width] in track units (beyond [0, 1] wraps); NaN = no ink."""
  if width < 1:
    raise ValueError(f"width must be >= 1, got {width}")
  x = np.arange(width)
  # Beds are at least 2 px thick, so width // 2 + 2 of them always cover the width.
  thick = rng.exponential(rng.uniform(12.0, 80.0), width // 2 + 2) + 2.0
  bed = np.searchsorted(np.cumsum(thick), x, side="right")
  n_beds = len(thick)
  # Shale volume per bed is bimodal: mostly clean sands or shales, a few mixed beds.
  vsh_bed = rng.beta(0.6, 0.6, n_beds)
  # Logging tools average over a few samples, so bed boundaries read as short ramps.
  response = int(rng.integers(1, 6))
  vsh = _box_smooth(vsh_bed[bed], response)
  trend = _smooth_noise(rng, width, int(rng.integers(2, 8)), 0.08)
  gr = vsh + trend + _box_smooth(rng.normal(0.0, 0.015, width), 4)
  if rng.random() < 0.5:
    # Resistivity-like: high in sands, much higher where a sand carries hydrocarbons.
    pay = (vsh_bed < 0.4) & (rng.random(n_beds) < 0.35)
    res_bed = 0.25 * (1.0 - vsh_bed) + pay * rng.uniform(0.3, 1.0, n_beds)
    second = _box_smooth(res_bed[bed], response) - 0.5 * trend
  else:
    # Density/neutron-like: follows shale volume (either sign) plus bed-specific porosity.
    porosity = rng.normal(0.0, 0.15, n_beds)
    second = rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 1.0) * vsh + _box_smooth(
        porosity[bed], response)
  second = second + _box_smooth(rng.normal(0.0, 0.015, width), 4)
  curves = np.stack([gr, second])
  for c in curves:
    lo, hi = np.percentile(c, [1, 99])
    # A random sub-range of the track per curve, so the two curves cross and overlap.
    span = rng.uniform(0.3, 0.75)
    offset = rng.uniform(0.05, 0.95 - span)
    c[:] = (c - lo) / max(hi - lo, 1e-6) * span + offset
    if rng.random() < p_rough:
      # Tool noise and thin beds: scatter of every sample, lightly smoothed (1-2 samples).
      c += _box_smooth(rng.normal(0.0, rng.uniform(*roughness) * span, width),
                       int(rng.integers(1, 3)))
    if rng.random() < p_wrap:
      peak = c.max()
      c[:] = offset + (c - offset) * (rng.uniform(1.1, 1.6) - offset) / max(peak - offset, 1e-6)
    if rng.random() < p_gap:
      start = int(rng.integers(0, width))
      c[start:start + int(rng.integers(width // 20 + 1, width // 5 + 2))] = np.nan
  return curves


def read_las_curves(path, names: Sequence[str] = ("GR", "RHOB"), *,
                    clip_percentiles: tuple[float, float] | None = (1.0, 99.0)):
  """Reads curves from a LAS file: (depth [n] increasing, values [len(names), n]); NaN = null."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"LAS file not found: {path}")
  if os.path.getsize(path) > MAX_LAS_BYTES:
    raise ValueError(f"LAS file {path} is {os.path.getsize(path) / 2**20:.0f} MiB, more than "
                     f"{MAX_LAS_BYTES // 2**20} MiB (reading needs about 12 times its size in "
                     "memory); keep the curves and depth range you need in a smaller file")
  try:
    las = lasio.read(path)
  except Exception as e:  # lasio raises many exception types on malformed input.
    raise ValueError(f"could not read LAS file {path}: {type(e).__name__}: {e}") from e
  if len(las.curves) < 2 or las.index is None or len(las.index) == 0:
    raise ValueError(f"could not read LAS file {path}: no depth-indexed curve data")
  by_name = {}
  for c in las.curves[1:]:
    by_name.setdefault(c.mnemonic.upper(), c)
  available = ", ".join(c.mnemonic for c in las.curves[1:])
  missing = [n for n in names if n.upper() not in by_name]
  if missing:
    raise ValueError(f"curve(s) {', '.join(map(repr, missing))} not in LAS file {path}; "
                     f"available curves: {available}")
  try:
    null = float(las.well["NULL"].value)
  except (KeyError, TypeError, ValueError):
    null = LAS_MISSING
  try:
    depth = np.asarray(las.index, dtype=float)
  except (TypeError, ValueError) as e:  # e.g. a stray header line read as data.
    raise ValueError(f"could not read LAS file {path}: its depth column is not numeric "
                     f"({e})") from e
  keep = np.isfinite(depth)
  order = np.argsort(depth[keep], kind="stable")
  depth = depth[keep][order]
  repeated = depth[1:][np.diff(depth) == 0]
  if repeated.size:  # Two readings for one depth: which one was drawn is not known.
    raise ValueError(f"LAS file {path} has {repeated.size} repeated depth(s), the first "
                     f"{repeated[0]:g}; remove the repeated rows (depth must increase)")
  values = []
  for name in names:
    try:
      v = np.asarray(by_name[name.upper()].data, dtype=float)[keep][order]
    except (TypeError, ValueError) as e:
      raise ValueError(f"curve {name!r} in LAS file {path} is not numeric") from e
    # lasio already maps the header's NULL to NaN in most files; -999.25 is the LAS default
    # that many writers emit whatever NULL they declare.
    v[np.isclose(v, null) | np.isclose(v, LAS_MISSING) | ~np.isfinite(v)] = np.nan
    v = _drop_sentinels(v)
    if not np.isfinite(v).any():
      raise ValueError(f"curve {name!r} in LAS file {path} has no valid samples (all null)")
    if clip_percentiles is not None:
      v = np.clip(v, *np.nanpercentile(v, clip_percentiles))
    values.append(v)
  return depth, np.stack(values)


def _drop_sentinels(v, min_share=0.005, min_gap_iqr=3.0):
  """NaN for an undeclared null: one exact value at an extreme of the curve, repeated on at
  least `min_share` of the samples and far (> `min_gap_iqr` IQRs) from every other reading.

  Real files flat-line a dead tool at such a value (the shipped Scorpio E1 log reads
  GAMN = -2324.28 on 5 % of its depths): drawn, it would squash the real curve into a sliver
  of the track. A tool's saturation at the top of its range sits next to real readings, so
  the gap test keeps it.
  """
  ok = np.isfinite(v)
  for extreme in (np.min, np.max):
    if ok.sum() < 10:
      break
    x = extreme(v[ok])
    same = ok & (v == x)
    rest = v[ok & ~same]
    if same.mean() < min_share or rest.size < 10:
      continue
    q25, q75 = np.percentile(rest, [25, 75])
    if np.min(np.abs(rest - x)) > min_gap_iqr * max(q75 - q25, 1e-12):
      v = np.where(same, np.nan, v)
      ok = np.isfinite(v)
  return v


def las_to_track(values, *, left: float, right: float, log: bool = False) -> np.ndarray:
  """Maps log values to track units: `left` -> 0, `right` -> 1 (linear or log10 scale)."""
  v = np.asarray(values, dtype=float)
  if left == right:
    raise ValueError(f"scale needs left != right, got {left}")
  if not log:
    return (v - left) / (right - left)
  if left <= 0 or right <= 0:
    raise ValueError(f"a log scale needs positive left and right, got {left}, {right}")
  positive = v > 0
  # Non-positive readings have no place on a log scale: no ink.
  logv = np.where(positive, np.log10(np.where(positive, v, 1.0)), np.nan)
  return (logv - np.log10(left)) / (np.log10(right) - np.log10(left))


def resample_to_width(depth, values, width: int, *, top: float | None = None,
                      bottom: float | None = None) -> np.ndarray:
  """Resamples [C, n] samples (depth increasing) onto `width` evenly spaced top..bottom depths."""
  # A column is NaN where its nearest sample is NaN or it lies outside the data, so data gaps
  # stay gaps (no ink) instead of being bridged by interpolation.
  depth = np.asarray(depth, dtype=float)
  values = np.atleast_2d(np.asarray(values, dtype=float))
  if depth.ndim != 1 or len(depth) < 2 or values.shape[1] != len(depth):
    raise ValueError(f"need >= 2 depth samples matching values, got {depth.shape}, "
                     f"{values.shape}")
  if np.any(np.diff(depth) <= 0):
    raise ValueError("depth must be strictly increasing")
  top = depth[0] if top is None else top
  bottom = depth[-1] if bottom is None else bottom
  cols = np.linspace(top, bottom, width)
  right = np.clip(np.searchsorted(depth, cols), 1, len(depth) - 1)
  nearest = np.where(cols - depth[right - 1] <= depth[right] - cols, right - 1, right)
  outside = (cols < depth[0]) | (cols > depth[-1])
  out = np.full((len(values), width), np.nan)
  for i, v in enumerate(values):
    ok = np.isfinite(v)
    if ok.any():
      out[i] = np.interp(cols, depth[ok], v[ok])
      out[i, ~ok[nearest] | outside] = np.nan
  return out


def _wrap_period(x, length):
  """Index of the wrap period holding x: [0, L] is 0, (kL, (k+1)L] is k, [-L, 0) is -1."""
  return np.where(x > 0, np.ceil(x / length) - 1, np.floor(x / length))


def _rasterize(v, top, bottom, line_width):
  """Ink pixels (rows, cols, arc position) of curve `v` [W] in the track rows top..bottom."""
  # Each column draws a vertical run through its sample and halfway to each finite neighbour,
  # so the polyline stays connected; a run crossing a track edge continues from the other edge.
  length = bottom - top  # Track coordinate q: 0 at the bottom row's centre, `length` at top's.
  ok = np.isfinite(v)
  q = np.where(ok, v, 0.0) * length
  ok_prev = np.r_[False, ok[:-1]]
  ok_next = np.r_[ok[1:], False]
  mid_prev = np.where(ok_prev, (q + np.r_[q[:1], q[:-1]]) / 2, q)
  mid_next = np.where(ok_next, (q + np.r_[q[1:], q[-1:]]) / 2, q)
  lo = np.minimum(np.minimum(mid_prev, mid_next), q)
  hi = np.maximum(np.maximum(mid_prev, mid_next), q)
  # Arc length at each column's entry, so dashes and ink breaks follow the line, not x.
  step = np.where(ok[:-1] & ok[1:], np.sqrt(1.0 + np.diff(q) ** 2), 1.0)
  arc = np.r_[0.0, np.cumsum(step)]
  cols = np.flatnonzero(ok)
  lo, hi = lo[cols], hi[cols]
  k0, k1 = _wrap_period(lo, length), _wrap_period(hi, length)
  same, once, many = k1 == k0, k1 == k0 + 1, k1 >= k0 + 2
  piece_col = np.concatenate([cols[same], cols[once], cols[once], cols[many]])
  piece_lo = np.concatenate([lo[same] - k0[same] * length, lo[once] - k0[once] * length,
                             np.zeros(once.sum()), np.zeros(many.sum())])
  piece_hi = np.concatenate([hi[same] - k0[same] * length, np.full(once.sum(), length),
                             hi[once] - k1[once] * length, np.full(many.sum(), length)])
  piece_k = np.concatenate([k0[same], k0[once], k1[once], k0[many] + 1])
  # Thicken each piece and keep the rows whose centres it covers, clipped to the track.
  r0 = np.clip(np.ceil(piece_lo - line_width / 2), 0, length).astype(np.int64)
  r1 = np.clip(np.ceil(piece_hi + line_width / 2) - 1, 0, length).astype(np.int64)
  n = r1 - r0 + 1
  starts = np.cumsum(n) - n
  offsets = np.arange(n.sum()) - np.repeat(starts, n)
  rows = np.repeat(r0, n) + offsets
  col = np.repeat(piece_col, n)
  unwrapped = rows + np.repeat(piece_k, n) * length
  s = arc[col] + np.abs(unwrapped - mid_prev[col])
  if line_width >= 1.6:
    # Steep segments are one column wide; widen them into the next column if it has data.
    nxt = np.minimum(col + 1, len(v) - 1)
    extra = (col + 1 < len(v)) & ok[nxt]
    rows = np.concatenate([rows, rows[extra]])
    col = np.concatenate([col, col[extra] + 1])
    s = np.concatenate([s, s[extra]])
  return bottom - rows, col, s


def _keep_ink(rng, s, style, dashed):
  """Which ink pixels survive the line style and broken-ink gaps (both remove ink and mask)."""
  keep = np.ones(s.shape, bool)
  if dashed:
    if rng.random() < 0.6:
      on, off = rng.uniform(5.0, 10.0), rng.uniform(3.0, 5.0)
    else:
      on, off = rng.uniform(1.5, 2.5), rng.uniform(2.0, 3.0)
    keep &= (s + rng.uniform(0.0, on + off)) % (on + off) < on
  if s.size and rng.random() < style.p_broken:
    total = s.max() + 1.0
    n_gaps = rng.poisson(style.broken_gaps_per_1000px * total / 1000.0)
    gap_start = rng.uniform(0.0, total, n_gaps)
    gap_end = gap_start + rng.uniform(*style.broken_gap_len, n_gaps)
    edges = np.zeros(int(total) + 2 + int(style.broken_gap_len[1]) + 1)
    np.add.at(edges, gap_start.astype(int), 1)
    np.add.at(edges, gap_end.astype(int), -1)
    keep &= np.cumsum(edges)[s.astype(int)] <= 0
  return keep


def _layout(rng, style, height, two_tracks):
  """Track boxes [(top, bottom)] (border rows; curves go strictly inside) and depth text row."""
  m_top = int(rng.integers(1, max(1, height // 12) + 1))
  m_bot = int(rng.integers(1, max(1, height // 12) + 1))
  avail = height - m_top - m_bot
  numbers = rng.random() < style.p_depth_numbers
  text_row = None
  if two_tracks:
    # Real logs print depths in a strip between tracks; give it room when the image has it.
    gap = _TEXT_H + 2 if numbers and height >= 80 else int(rng.integers(2, height // 16 + 3))
    h1 = round((avail - gap) * rng.uniform(0.4, 0.6))
    boxes = [(m_top, m_top + h1 - 1), (m_top + h1 + gap, height - m_bot - 1)]
    if numbers and gap > _TEXT_H:
      text_row = m_top + h1 + 1
  else:
    boxes = [(m_top, height - m_bot - 1)]
  if numbers and text_row is None and boxes[0][1] - boxes[0][0] >= 3 * _TEXT_H:
    text_row = boxes[0][0] + 2 if rng.random() < 0.5 else boxes[0][1] - _TEXT_H - 1
  return boxes, text_row


def _paper(rng, style, height, width):
  """Paper luminance [H, W] float32 and its mean tone."""
  if rng.random() < style.p_yellowed:
    tone = rng.uniform(*style.paper_yellowed)
  else:
    tone = rng.uniform(*style.paper_white)
  paper = np.full((height, width), tone, np.float32)
  if style.blotch_strength > 0:
    cell = int(rng.integers(max(4, height // 3), max(5, height) + 1))
    small = rng.normal(0.0, style.blotch_strength, (height // cell + 2, width // cell + 2))
    paper += np.asarray(Image.fromarray(small.astype(np.float32)).resize(
        (width, height), Image.Resampling.BILINEAR))
  if style.grain_sigma > 0:
    grain = rng.standard_normal((height, width), dtype=np.float32)
    grain *= np.float32(style.grain_sigma)
    paper += grain
  return paper, tone


def _grid_rows(rng, top, bottom, log_grid):
  """Rows of value-axis grid lines inside a track box, and which of them are heavy."""
  length = bottom - top - 2
  if log_grid:
    n_dec = int(rng.integers(2, 5))
    m = np.tile(np.arange(1, 10), n_dec)
    u = (np.repeat(np.arange(n_dec), 9) + np.log10(m)) / n_dec
    heavy = m == 1
  else:
    n_div = int(rng.choice([4, 5, 10]))
    u = np.arange(n_div) / n_div
    heavy = np.arange(n_div) * 2 == n_div
  # The track's bottom edge is the border, not a grid line.
  return bottom - 1 - np.round(u[1:] * length).astype(int), heavy[1:]


def _draw_layout(rng, style, bg, boxes, text_row, x0, curve_labels):
  """Paints borders, grids, depth lines and text (all mask 0) into the alpha map `bg`."""
  height, width = bg.shape
  texts = []
  if rng.random() < style.p_grid:
    a = rng.uniform(*style.grid_alpha)
    log_grid = rng.random() < style.p_log_grid
    for top, bottom in boxes:
      rows, heavy = _grid_rows(rng, top, bottom, log_grid)
      bg[rows, x0:] = np.maximum(bg[rows, x0:], np.where(heavy, min(1.0, 1.8 * a), a)[:, None])
  if rng.random() < style.p_depth_grid:
    a = rng.uniform(*style.grid_alpha)
    spacing = rng.uniform(8.0, 24.0)
    xs = np.round(x0 + rng.uniform(0, spacing) + spacing * np.arange(width / spacing + 1))
    xs = xs.astype(int)
    first = int(rng.integers(0, 5))
    heavy = (np.arange(len(xs)) + first) % 5 == 0
    xs, heavy = xs[xs < width], heavy[xs < width]
    alpha = np.where(heavy, min(1.0, 1.8 * a), a).astype(np.float32)
    for top, bottom in boxes:
      bg[top:bottom + 1, xs] = np.maximum(bg[top:bottom + 1, xs], alpha)
    if text_row is not None:
      unit = float(rng.choice([0.5, 1.0, 2.0, 5.0, 10.0]))
      depth0 = float(rng.integers(10, 400)) * 10.0
      for j in np.flatnonzero(heavy):
        label = depth0 + unit * (j + first)
        texts.append((int(xs[j]) + 2, text_row, f"{label:g}"))
  if rng.random() < style.p_border:
    a = rng.uniform(0.6, 0.95)
    for top, bottom in boxes:
      bg[[top, bottom], max(0, x0 - 1):] = a
      if x0 > 0:
        bg[top:bottom + 1, x0 - 1] = a
  if x0 > 0:
    # Header block: a box per track holding one "NAME left right UNIT" line per curve.
    a = rng.uniform(0.6, 0.95)
    for (top, bottom), labels in zip(boxes, curve_labels):
      bg[[top, bottom], :x0 - 3] = a
      bg[top:bottom + 1, [0, x0 - 4]] = a
      for i, label in enumerate(labels):
        y = top + 2 + i * (_TEXT_H + 1)
        if y + _TEXT_H < bottom:
          texts.append((3, y, label))
  if texts:
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    font = ImageFont.load_default_imagefont()
    for x, y, s in texts:
      draw.text((x, y), s, fill=255, font=font)
    text_alpha = np.asarray(layer, np.float32) * np.float32(rng.uniform(*style.text_alpha) / 255)
    np.maximum(bg, text_alpha, out=bg)


def render_log(seed_or_rng, *, height: int, width: int, curves: np.ndarray | None = None,
               style: RenderStyle = RenderStyle()) -> tuple[np.ndarray, np.ndarray]:
  """Renders one scanned log: (image uint8 [H, W], mask uint8 [H, W] in {0, 1, 2})."""
  image, mask, _ = render_log_with_layout(seed_or_rng, height=height, width=width,
                                          curves=curves, style=style)
  return image, mask


def render_log_with_layout(seed_or_rng, *, height: int, width: int,
                           curves: np.ndarray | None = None, style: RenderStyle = RenderStyle()):
  """`render_log` plus where each curve went: (image, mask, layout).

  layout: "curves" [C, W] the drawn curves in track units (NaN = no ink, header columns
  included), "classes" [C] their mask ids, and "value_rows" [C] (row of value 1, row of value
  0): the interior track rows the curve's ink is centred on. Skew (`style.p_skew`) moves ink
  by up to `style.skew_max_shift_px` after this, so use p_skew=0 where exact rows matter.
  """
  # `curves` is [2, W] (curve1, curve2) or [4, W] (curve1, curve2 of track 1, then of track 2)
  # in track units, NaN = no ink; None draws synthetic ones. With [2, W] curves and two tracks,
  # curve1 and curve2 go to different tracks. Columns under a header block get no ink.
  _check_size(height, width)
  rng = np.random.default_rng(seed_or_rng)
  can_split = height >= _MIN_TWO_TRACK_HEIGHT
  if curves is None:
    two_tracks = can_split and rng.random() < style.p_two_tracks
    n_rows = 4 if two_tracks and rng.random() < style.p_four_curves else 2
    curves = np.concatenate([
        synthetic_curves(rng, width, p_gap=style.p_curve_gap, p_wrap=style.p_curve_wrap,
                         p_rough=style.p_rough, roughness=style.roughness)
        for _ in range(n_rows // 2)])
  else:
    curves = np.array(curves, dtype=float)
    if curves.ndim != 2 or curves.shape[0] not in (2, 4) or curves.shape[1] != width:
      raise ValueError(f"curves must be [2, width] or [4, width] with width={width}, "
                       f"got shape {curves.shape}")
    if curves.shape[0] == 4 and not can_split:
      raise ValueError(f"four curves need two tracks, i.e. height >= {_MIN_TWO_TRACK_HEIGHT}")
    two_tracks = curves.shape[0] == 4 or (can_split and rng.random() < style.p_two_tracks)
  if len(curves) == 4:
    placement = [(0, 1), (0, 2), (1, 1), (1, 2)]
  elif two_tracks:
    first = int(rng.integers(2))
    placement = [(first, 1), (1 - first, 2)]
  else:
    placement = [(0, 1), (0, 2)]
  boxes, text_row = _layout(rng, style, height, two_tracks)
  x0 = 0
  names = [_HEADERS[i] for i in rng.choice(len(_HEADERS), len(placement), replace=False)]
  labels = [[f"{n:<5}{lft:g}  {rgt:g} {unit}" for (t, _), (n, lft, rgt, unit)
             in zip(placement, names) if t == i] for i in range(len(boxes))]
  header_w = max(len(s) for ls in labels for s in ls) * _CHAR_W + 10
  if rng.random() < style.p_header and width >= 3 * header_w:
    x0 = header_w + int(rng.integers(3, 8))
    curves[:, :x0] = np.nan

  paper, tone = _paper(rng, style, height, width)
  bg = np.zeros((height, width), np.float32)
  _draw_layout(rng, style, bg, boxes, text_row, x0, labels)

  ink = np.zeros((height, width), np.float32)
  mask = np.zeros((height, width), np.uint8)
  # Curve2 rows are painted after curve1 rows, so curve2 wins where they overlap.
  for k in sorted(range(len(curves)), key=lambda k: placement[k][1]):
    track, cls = placement[k]
    top, bottom = boxes[track]
    rows, cols, s = _rasterize(curves[k], top + 1, bottom - 1, rng.uniform(*style.line_width))
    dashed = cls == 2 and rng.random() < style.p_styled_curve2
    keep = _keep_ink(rng, s, style, dashed)
    rows, cols = rows[keep], cols[keep]
    alpha = np.full(width, rng.uniform(*style.ink_alpha), np.float32)
    if rng.random() < style.p_fade:
      # Fading changes how dark the ink is, never where it is.
      fade = np.clip(_smooth_noise(rng, width, int(rng.integers(2, 12)), 0.5) + 0.5, 0, 1)
      alpha *= (1.0 - style.fade_strength * fade).astype(np.float32)
    ink[rows, cols] = alpha[cols]
    mask[rows, cols] = cls
  # Multiplicative ink over paper, in place: these are the largest arrays of a render.
  img = np.subtract(1.0, bg, out=bg)
  img *= paper
  img *= np.subtract(1.0, ink, out=ink)
  img *= 255.0
  image = np.clip(np.rint(img, out=img), 0, 255, out=img).astype(np.uint8)
  image, mask = _degrade(rng, style, image, mask, tone)
  layout = {"curves": curves, "classes": np.array([cls for _, cls in placement]),
            "value_rows": np.array([(boxes[t][0] + 1, boxes[t][1] - 1) for t, _ in placement])}
  return image, mask, layout


def _degrade(rng, style, image, mask, tone):
  """Scan degradations; only skew moves pixels, and it moves the mask identically."""
  height, width = image.shape
  if rng.random() < style.p_skew:
    max_deg = min(style.skew_max_deg,
                  np.degrees(np.arctan(style.skew_max_shift_px / (width / 2))))
    angle = rng.uniform(-max_deg, max_deg)
    fill = round(tone * 255)
    image = np.asarray(Image.fromarray(image).rotate(
        angle, resample=Image.Resampling.BILINEAR, fillcolor=fill))
    mask = np.asarray(Image.fromarray(mask).rotate(
        angle, resample=Image.Resampling.NEAREST, fillcolor=0))
  if rng.random() < style.p_speckle:
    n = rng.binomial(height * width, rng.uniform(0.0, style.speckle_density))
    ys, xs = rng.integers(0, height, n), rng.integers(0, width, n)
    # Mostly dark dust, some bright dropouts; neither is ink, so the mask is unchanged.
    dark = rng.random(n) < 0.7
    values = np.where(dark, rng.uniform(0, 0.5, n) * 255, tone * 255).astype(np.uint8)
    image = image.copy()
    image[ys, xs] = values
  if rng.random() < style.p_blur:
    image = np.asarray(Image.fromarray(image).filter(
        ImageFilter.GaussianBlur(rng.uniform(*style.blur_sigma))))
  if rng.random() < style.p_jpeg:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG",
                                quality=int(rng.integers(style.jpeg_quality[0],
                                                         style.jpeg_quality[1] + 1)))
    image = np.asarray(Image.open(buf).convert("L"))
  return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def _las_track_curves(rng, las, width, style):
  """Curves [C, width] in track units from a random depth window of one LAS file."""
  depth, values, ranges = las
  n = len(depth)
  # Samples per column: from compressed (1:1000) to expanded (1:200) depth scales.
  n_win = int(np.clip(round(width * np.exp(rng.uniform(np.log(0.25), np.log(4.0)))), 2, n))
  for _ in range(5):
    start = int(rng.integers(0, n - n_win + 1))
    window = values[:, start:start + n_win]
    if np.isfinite(window).any(axis=1).all():
      break
  cols = resample_to_width(depth, values, width, top=depth[start],
                           bottom=depth[start + n_win - 1])
  out = np.empty_like(cols)
  for i, ((lo, hi, floor), v) in enumerate(zip(ranges, cols)):
    left, right, log = random_scale(rng, lo, hi, style.p_curve_wrap, wrap_floor=floor)
    out[i] = las_to_track(v, left=left, right=right, log=log)
  return out


def random_scale(rng, lo, hi, p_wrap, wrap_floor=None):
  """(left, right, log): a track scale for values in [lo, hi], as a printed log might use.

  Fixed per file (like a printed track), logarithmic for wide positive ranges, padded so
  curves rarely hit the edges, sometimes narrowed so they wrap, sometimes reversed.
  `wrap_floor` (a value, e.g. the 75th percentile of the curve): a narrowed scale still
  reaches it, so wrapping stays an excursion, as on printed logs, and never the main body of
  the curve (which nothing in the picture could tell from an unwrapped curve).
  """
  log = bool(lo > 0 and hi > 20 * lo and rng.random() < 0.8)
  if log:
    lo, hi = np.log10(lo), np.log10(hi)
    wrap_floor = None if wrap_floor is None else np.log10(max(wrap_floor, 10.0 ** lo))
  pad = (hi - lo) * rng.uniform(0.0, 0.3, 2)
  left, right = lo - pad[0], hi + pad[1]
  if rng.random() < p_wrap:
    right = left + (hi - left) * rng.uniform(0.6, 0.9)
    if wrap_floor is not None:
      right = max(right, wrap_floor)
  if right - left <= 0:
    right = left + 1.0
  if rng.random() < 0.2:
    left, right = right, left
  if log:
    left, right = 10.0 ** left, 10.0 ** right
  return float(left), float(right), log


def _load_las(las_paths, las_curves):
  data = []
  for p in las_paths:
    depth, values = read_las_curves(p, las_curves)
    ranges = [tuple(np.nanpercentile(v, [0, 100, WRAP_PERCENTILE])) for v in values]
    data.append((depth, values, ranges))
  return data


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
    curves = _las_track_curves(rng, las_data[int(rng.integers(len(las_data)))], width, style)
  return render_log(rng, height=height, width=width, curves=curves, style=style)


def load_las_data(las_paths: Sequence, las_curves: Sequence[str] = ("GR", "RHOB")):
  """Parsed LAS files for `render_indexed` (read once, reused for every render)."""
  return _load_las(las_paths, las_curves)


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
                         _load_las(las_paths, las_curves))


def render_dataset(seed: int, n: int, *, height: int, min_width: int, max_width: int,
                   labeled: bool, style: RenderStyle = RenderStyle(), las_paths: Sequence = (),
                   las_curves: Sequence[str] = ("GR", "RHOB")) -> list[dict]:
  """n examples {"image": uint8 [H, W_i], "seg": uint8 [H, W_i] if labeled}, W_i log-uniform."""
  # Example i depends only on (seed, i) and the arguments, so `render_example` regenerates it
  # alone. With `las_paths`, curves are random depth windows of those files.
  if n < 0:
    raise ValueError(f"n must be >= 0, got {n}")
  las_data = _load_las(las_paths, las_curves)
  out = []
  for i in range(n):
    image, seg = _render_example(seed, i, height, min_width, max_width, style, las_data)
    out.append({"image": image, "seg": seg} if labeled else {"image": image})
  return out


# Fixtures and tests write their LAS files with the project's one writer.
write_las = las_io.write
