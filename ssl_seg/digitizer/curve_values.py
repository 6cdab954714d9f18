"""Digitized curves as numbers: a track's value `Scale`, the `Series` of one curve, the CSV
columns predict writes (`table`), and coverage and R² for scoring."""

import csv
import dataclasses
import math
import os

import numpy as np

from ssl_seg.digitizer.tracer import Trace


@dataclasses.dataclass(frozen=True)
class Scale:
  """A track's value scale: `left` at position 0, `right` at 1, linear or logarithmic."""
  left: float
  right: float
  log: bool = False

  def __post_init__(self):
    if self.left == self.right:
      raise ValueError(f"a scale needs left != right, got {self.left}:{self.right}")
    if self.log and (self.left <= 0 or self.right <= 0):
      raise ValueError(f"a log scale needs positive ends, got {self.left}:{self.right}")

  @classmethod
  def parse(cls, text):
    """'0:150' or '0.2:2000:log' (also ':linear')."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "linear")):
      raise ValueError(f"scale {text!r}: expected LEFT:RIGHT or LEFT:RIGHT:log")
    try:
      left, right = float(parts[0]), float(parts[1])
    except ValueError:
      raise ValueError(f"scale {text!r}: LEFT and RIGHT must be numbers") from None
    return cls(left, right, len(parts) == 3 and parts[2] == "log")

  @property
  def wrap_side(self):
    """`trace`'s wrap_side: backup scales carry values past the high end, which is the
    right edge (1), or the left one (-1) on a reversed scale."""
    return 1 if self.right > self.left else -1

  def values(self, frac):
    """Track positions (unwrapped) -> values; NaN stays NaN."""
    frac = np.asarray(frac, np.float64)
    if self.log:
      lo, hi = math.log10(self.left), math.log10(self.right)
      return 10.0 ** (lo + frac * (hi - lo))
    return self.left + frac * (self.right - self.left)

  def axis(self, values):
    """Values in the scale's own linear units: the value, or log10 of it on a log scale."""
    values = np.asarray(values, np.float64)
    if not self.log:
      return values
    with np.errstate(invalid="ignore", divide="ignore"):
      return np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)


def coverage(tr):
  """The share of depth columns where the trace has a value, read or bridged."""
  return float(np.isfinite(tr.frac).mean()) if tr.frac.size else 0.0


def _fmt(x, digits):
  return "" if not np.isfinite(x) else f"{x:.{digits}f}"


def _full(x):
  """Every digit of a float64 (repr round-trips it exactly); empty for NaN."""
  return repr(float(x)) if np.isfinite(x) else ""


@dataclasses.dataclass(frozen=True)
class Series:
  """One digitized curve on its way to CSV and LAS.

  name: CSV column prefix ('' for a lone unnamed curve: columns `_px`...); trace: its `Trace`
  in the model layout; to_original: maps its model-layout rows to original pixels; scale and
  unit: a `Scale` (adds `_value` columns) and the unit of its values, or None and ''.
  """
  name: str
  trace: Trace
  to_original: object
  scale: Scale | None = None
  unit: str = ""


def table(depth_px, series, *, depth=None, depth_unit=""):
  """CSV columns {header: list of str} for digitized curves (a list of `Series`).

  Args:
    depth_px: int [N] index of each row along the depth axis of the original image.
    depth: float [N] depth per row, or None; `depth_unit` names it in the header (depth[FT]).

  Per curve: `<name>_px`, `_wrap`, `_frac`, `_value[UNIT]` (with a scale), `_filled`, then
  `_confidence` (a trace with confidences). Depth, fractions and values carry every digit of
  the float (repr), pixels 1 decimal, confidence 3.
  Every column but depth_px and depth is empty where the curve has no value.
  """
  cols = {"depth_px": [str(int(d)) for d in depth_px]}
  if depth is not None:
    cols[f"depth[{depth_unit}]" if depth_unit else "depth"] = [_full(d) for d in depth]
  for s in series:
    tr, p = s.trace, f"{s.name}_" if s.name else ""
    present = np.isfinite(tr.frac)
    cols[f"{p}px"] = [_fmt(x, 1) for x in s.to_original(tr.px)]
    cols[f"{p}wrap"] = [str(int(w)) if ok else "" for w, ok in zip(tr.wrap, present)]
    cols[f"{p}frac"] = [_full(x) for x in tr.frac]
    if s.scale is not None:
      cols[f"{p}value[{s.unit}]" if s.unit else f"{p}value"] = [
          _full(x) for x in s.scale.values(tr.frac)]
    cols[f"{p}filled"] = [str(int(f)) if ok else "" for f, ok in zip(tr.filled, present)]
    if tr.confidence is not None:
      cols[f"{p}confidence"] = [_fmt(x, 3) if ok else ""
                                for x, ok in zip(tr.confidence, present)]
  return cols


def write_csv(path, columns):
  path = os.fspath(path)
  with open(path + ".tmp", "w", newline="") as f:  # Atomically, as scans.write_png.
    writer = csv.writer(f)
    writer.writerow(list(columns))
    writer.writerows(zip(*columns.values()))
  os.replace(path + ".tmp", path)


def r2(truth, pred):
  """Coefficient of determination over entries where both are finite (NaN if < 3 of them)."""
  truth, pred = np.asarray(truth, np.float64), np.asarray(pred, np.float64)
  ok = np.isfinite(truth) & np.isfinite(pred)
  if ok.sum() < 3:
    return float("nan")
  t, p = truth[ok], pred[ok]
  ss_tot = float(((t - t.mean()) ** 2).sum())
  if ss_tot == 0:
    return float("nan")
  return 1.0 - float(((p - t) ** 2).sum()) / ss_tot
