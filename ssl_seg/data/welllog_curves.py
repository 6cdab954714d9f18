"""Curves for the renderer, in track units: synthetic geology-like ones, or LAS depth windows
on a printed log's scale (`random_scale`)."""

import numpy as np

from ssl_seg.digitizer import las


def wrap_floor(values):
  """The value a narrowed (wrapping) track scale must still reach: Tukey's upper fence (75th
  percentile + 1.5 x the interquartile range), at most the curve's maximum.

  Only outliers past the fence then wrap. The 75th percentile alone put the edge inside the
  bulk of a flat curve: Totem 9's DTMN (interquartile range 0.6 us/ft) crossed it in a quarter
  of its samples and wrapped across the track again and again (README, issue 14).
  """
  p25, p75, top = np.nanpercentile(values, [25, 75, 100])
  return float(min(p75 + 1.5 * (p75 - p25), top))


def scale_range(values):
  """(min, max, wrap floor) of a LAS curve: what `random_scale` draws its track scale from."""
  return float(np.nanmin(values)), float(np.nanmax(values)), wrap_floor(values)


def _box_smooth(x, k):
  if k <= 1:
    return x
  padded = np.pad(x, (k // 2, k - 1 - k // 2), mode="edge")
  return np.convolve(padded, np.ones(k) / k, mode="valid")


def smooth_noise(rng, n, n_knots, scale):
  """Piecewise-linear random signal of length n through n_knots N(0, scale) knots."""
  knots = rng.normal(0.0, scale, n_knots)
  return np.interp(np.linspace(0, n_knots - 1, n), np.arange(n_knots), knots)


def synthetic_curves(rng: np.random.Generator, width: int, *, p_gap: float = 0.3,
                     p_wrap: float = 0.4, p_rough: float = 0.0,
                     roughness: tuple[float, float] = (0.02, 0.15), p_spikes: float = 0.0,
                     spikes_per_100px: tuple[float, float] = (0.5, 3.0),
                     spike_height: tuple[float, float] = (0.1, 0.6)) -> np.ndarray:
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
  trend = smooth_noise(rng, width, int(rng.integers(2, 8)), 0.08)
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
    # Drawn only where asked for, so renders without spikes stay byte for byte as before.
    if p_spikes and rng.random() < p_spikes:
      _add_spikes(rng, c, spikes_per_100px, spike_height, span)
    if rng.random() < p_wrap:
      peak = c.max()
      c[:] = offset + (c - offset) * (rng.uniform(1.1, 1.6) - offset) / max(peak - offset, 1e-6)
    if rng.random() < p_gap:
      start = int(rng.integers(0, width))
      c[start:start + int(rng.integers(width // 20 + 1, width // 5 + 2))] = np.nan
  return curves


def _add_spikes(rng, c, per_100px, height, span):
  """Isolated excursions of 1-3 samples, in place: a sonic's cycle skips, a gamma ray's hot
  streaks. Real logs have them (Totem 9's DTMN); bed-and-noise curves did not, and the
  segmenter missed such spikes of a faint dotted curve on LAS renders (README)."""
  width = len(c)
  n = rng.poisson(rng.uniform(*per_100px) * width / 100.0)
  for start in rng.integers(0, width, n):
    size = rng.uniform(*height) * span * rng.choice([-1.0, 1.0])
    c[start:start + int(rng.integers(1, 4))] += size


def las_track_curves(rng, las_data, width, style):
  """Curves [C, width] in track units from a random depth window of one LAS file
  (`load_las` gives `las_data`)."""
  depth, values, ranges = las_data
  [(start, n_win)] = las.depth_windows(rng, values, width, tries=5, min_share=0.0)
  cols = las.resample_to_width(depth, values, width, top=depth[start],
                               bottom=depth[start + n_win - 1])
  out = np.empty_like(cols)
  for i, ((lo, hi, floor), v) in enumerate(zip(ranges, cols)):
    left, right, log = random_scale(rng, lo, hi, style.p_curve_wrap, wrap_floor=floor)
    out[i] = las.las_to_track(v, left=left, right=right, log=log)
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


def load_las(las_paths, las_curves):
  """[(depth, values, per curve (min, max, wrap_floor))] of each LAS file."""
  data = []
  for p in las_paths:
    depth, values = las.read_las_curves(p, las_curves)
    ranges = [scale_range(v) for v in values]
    data.append((depth, values, ranges))
  return data
