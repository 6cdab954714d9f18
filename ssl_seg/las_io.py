"""The one LAS writer of the project, its null value, mnemonic rule and depth resampling.

Everything that writes LAS (predict's NAME.las, render_las's truth sidecars, the test and
training fixtures through `welllogs.write_las`) calls `write`, so NULL, units, ~Well fields
and the atomic write are decided here once. LAS 2.0 as lasio writes it: a DEPT index,
STRT / STOP / STEP from the index (STEP 0 where it is irregular, as LAS 2.0 asks), NULL, WELL,
per curve a unit and a description; free text in ~Other.
"""

import os
import re

import lasio
import numpy as np

LAS_MISSING = -999.25  # LAS 2.0's customary NULL; NaN is written as this.
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
  with open(path + ".tmp", "w") as f:  # Atomically, as scan_io.write_png.
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
