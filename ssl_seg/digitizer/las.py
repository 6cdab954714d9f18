"""The project's one LAS module: reading curves, the one writer, its null value and resampling.

Reading (`read_las_curves`) gives the renderer and `render_las` depth-sorted curves with every
null (declared, `LAS_MISSING`, undeclared sentinels) as NaN; `las_to_track`, `resample_to_width` and
`depth_windows` turn them into what a rendered track draws. Everything that writes LAS
(predict's NAME.las, render_las's truth sidecars, the test and training fixtures) calls
`write`, so NULL, units, ~Well fields and the atomic write are decided here once. LAS 2.0 as
lasio writes it: a DEPT index, STRT / STOP / STEP from the index (STEP 0 where it is irregular,
as LAS 2.0 asks), NULL, WELL, per curve a unit and a description; free text in ~Other.
"""

import os
import re
from collections.abc import Sequence

import lasio
import numpy as np

LAS_MISSING = -999.25  # LAS 2.0's customary NULL; NaN is written as this.
# lasio holds about 12 bytes per byte of LAS text while reading (measured on a 14 MB file):
# 256 MiB files, far beyond real logs, then stay near 3 GB.
MAX_LAS_BYTES = 256 * 2**20
# LAS 2.0 header lines read "MNEM.UNIT DATA : DESCRIPTION": a '.' or ':' in a mnemonic ends it
# early (lasio reads "GR.1" back as "GR"), spaces and '/' trip other readers.
MNEMONIC = re.compile(r"[A-Za-z0-9_-]+")
# A unit ends at the first space and may not hold ':' ("G/CM3", "US/F", "OHMM" are fine).
UNIT = re.compile(r"[^\s:]*")


def check_mnemonic(name):
  """`name` if it is a LAS mnemonic a reader gets back unchanged, else ValueError."""
  if not MNEMONIC.fullmatch(name):
    fixed = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "CURVE"
    raise ValueError(f"LAS mnemonic {name!r}: use letters, digits, '_' and '-' only (a '.' "
                     f"or ':' ends a LAS mnemonic, '/' and spaces trip readers), e.g. {fixed}")
  return name


def check_unit(unit):
  """`unit` if a LAS reader gets it back unchanged (no spaces, no ':'), else ValueError."""
  if not UNIT.fullmatch(unit):
    raise ValueError(f"LAS unit {unit!r}: no spaces or ':' (a space ends a LAS unit), e.g. "
                     f"{re.sub(r'[\s:]+', '_', unit)}")
  return unit


def write(path, depth, curves, *, depth_unit="M", well="", units=None, descriptions=None,
          params=None, other="", null=LAS_MISSING):
  """LAS 2.0 with a DEPT index and `curves` {mnemonic: values}; NaN is written as `null`.

  Args:
    units, descriptions: {mnemonic: text}, for any of the curves.
    params: {mnemonic: value} for ~Parameter.
    other: free text for ~Other (e.g. how the file was made).
  """
  path = os.fspath(path)
  units, descriptions = units or {}, descriptions or {}
  check_unit(depth_unit)
  las = lasio.LASFile()
  las.well["NULL"].value = null
  las.well["WELL"].value = well
  las.append_curve("DEPT", np.asarray(depth, np.float64), unit=depth_unit, descr="Depth")
  for name, values in curves.items():
    las.append_curve(check_mnemonic(name), np.asarray(values, np.float64),
                     unit=check_unit(units.get(name, "")), descr=descriptions.get(name, ""))
  for name, value in (params or {}).items():
    las.params[name] = lasio.HeaderItem(check_mnemonic(name), value=value)
  las.other = other
  with open(path + ".tmp", "w") as f:  # Atomically, as scans.write_png.
    las.write(f, version=2.0)
  os.replace(path + ".tmp", path)


def header(path):
  """(depth unit, [(mnemonic, unit), ...] of the other curves) a LAS file declares; its data
  is not read. The depth unit is '' where the file declares none."""
  try:
    las = lasio.read(os.fspath(path), ignore_data=True)
  except Exception as e:  # lasio raises many exception types on malformed input.
    raise ValueError(f"could not read LAS file {path}: {type(e).__name__}: {e}") from e
  if not len(las.curves):
    raise ValueError(f"could not read LAS file {path}: no ~Curve section")
  unit = las.curves[0].unit or (las.well["STRT"].unit if "STRT" in las.well else "")
  return unit or "", [(c.mnemonic, c.unit or "") for c in las.curves[1:]]


def regular_depth(first, last, step):
  """first, first + step, ... up to `last` (within 1e-9 steps), in the direction of `last`."""
  step = abs(float(step))
  if not step > 0:
    raise ValueError(f"--step must be > 0, got {step}")
  span = abs(last - first)
  n = int(np.floor(span / step + 1e-9)) + 1
  return first + np.sign(last - first or 1.0) * step * np.arange(n)


def curve_values(las, mnemonic):
  """float64 [N] values of a curve of a `lasio.LASFile`, NaN where NULL or not finite."""
  v = np.asarray(las[mnemonic], np.float64)
  return np.where(np.isclose(v, LAS_MISSING) | ~np.isfinite(v), np.nan, v)


def resample(depth, values, new_depth):
  """values [N] at `depth` [N] (monotonic) linearly at `new_depth`; NaN where either sample
  that brackets a new depth is NaN, or outside the old depth range."""
  depth, values = np.asarray(depth, np.float64), np.asarray(values, np.float64)
  new_depth = np.asarray(new_depth, np.float64)
  if depth[-1] < depth[0]:
    depth, values = depth[::-1], values[::-1]
  if len(depth) < 2:
    return np.where(new_depth == depth[0], values[0], np.nan)
  i = np.clip(np.searchsorted(depth, new_depth, side="right") - 1, 0, len(depth) - 2)
  d0, d1 = depth[i], depth[i + 1]
  w = np.clip((new_depth - d0) / np.where(d1 > d0, d1 - d0, 1.0), 0.0, 1.0)
  # An exact hit on a sample needs only that sample: a NaN neighbour does not erase it.
  a = np.where(w == 1.0, values[i + 1], values[i])
  b = np.where(w == 0.0, values[i], values[i + 1])
  out = a + w * (b - a)
  inside = (new_depth >= depth[0] - 1e-9 * abs(depth[0]) - 1e-12) & (
      new_depth <= depth[-1] + 1e-9 * abs(depth[-1]) + 1e-12)
  return np.where(inside, out, np.nan)


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
  values = [_read_curve(path, by_name[name.upper()], name, keep, order, null)
            for name in names]
  if clip_percentiles is not None:
    values = [np.clip(v, *np.nanpercentile(v, clip_percentiles)) for v in values]
  return depth, np.stack(values)


def _read_curve(path, curve, name, keep, order, null):
  """float [n] values of a lasio curve at the kept, depth-sorted samples; NaN for nulls."""
  try:
    v = np.asarray(curve.data, dtype=float)[keep][order]
  except (TypeError, ValueError) as e:
    raise ValueError(f"curve {name!r} in LAS file {path} is not numeric") from e
  # lasio already maps the header's NULL to NaN in most files; LAS_MISSING is the LAS default
  # that many writers emit whatever NULL they declare.
  v[np.isclose(v, null) | np.isclose(v, LAS_MISSING) | ~np.isfinite(v)] = np.nan
  v = _drop_sentinels(v)
  if not np.isfinite(v).any():
    raise ValueError(f"curve {name!r} in LAS file {path} has no valid samples (all null)")
  return v


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


def depth_windows(rng, values, width, pages=1, *, tries=10, min_share=0.5):
  """[(start, n)]: `pages` consecutive windows of a file's samples (values [C, n]) to draw
  across `width` px, at 0.25-4 samples per column (compressed 1:1000 to expanded 1:200 depth
  scales), where every curve has values on over `min_share` of the samples (`tries` tries,
  then the last).

  Training renders (`ssl_seg.data.welllog_curves`) ask for 5 tries and any value at all
  (min_share 0): the rule they were drawn with, so their data sets stay pixel for pixel.
  """
  n = values.shape[1]
  n_win = int(np.clip(round(width * np.exp(rng.uniform(np.log(0.25), np.log(4.0)))), 2,
                      n // pages))
  for _ in range(tries):
    start = int(rng.integers(0, n - pages * n_win + 1))
    if np.isfinite(values[:, start:start + pages * n_win]).mean(axis=1).min() > min_share:
      break
  return [(start + k * n_win, n_win) for k in range(pages)]
