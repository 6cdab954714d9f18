"""Curves from masks: per-column centre lines, gaps and wrap-around; CSV and LAS output.

Layout (the model's): depth runs along the columns, the value axis along the rows of one track,
from row `bottom` (the scale's left value, track position 0) up to row `top` (its right value,
position 1). For each column and class, the centre of the class's vertical run of pixels is the
curve's position there.

Wrap-around. Real logs draw a value that runs past the track's edge from the opposite edge
(a backup scale), and so does the renderer. A trace keeps, per column:
  px    the row of the ink (inside the track, where a person sees it);
  wrap  how many track widths the curve has wrapped by: +1 after leaving the top (right) edge
        and re-entering at the bottom (left) one, -1 the other way, 0 normally;
  frac  the unwrapped position in track units, (bottom - px) / (bottom - top) + wrap, so a
        value 20 % past the right edge reads 1.2 and converts to right + 0.2 (right - left).
Wraps are tracked from column to column: a jump counts as a wrap when the previous position
lay in the band along the edge it would cross and the jump through that edge is the shorter.
Counts are relative within a session (a run of columns without a gap longer than `max_gap`):
nothing in the picture tells whether a curve entered the window already wrapped, or how far it
wrapped while absent. Each session's counts are therefore shifted so that its most common
count is 0: a curve is taken to spend most of its length on its main scale, as backup scales
are drawn for excursions. A window that shows only an excursion reads one track width off.

Gaps. Columns without ink stay empty (NaN). Gaps of at most `max_gap` columns between two
inked columns (dashes, broken ink, a missed pixel) are bridged by linear interpolation of the
unwrapped position and flagged `filled`; `max_gap=0` disables this.
"""

import csv
import dataclasses
import math

import lasio
import numpy as np

NULL = -999.25


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


@dataclasses.dataclass
class Trace:
  """One curve along a mask's columns (see the module docstring); NaN / 0 where absent."""
  px: np.ndarray  # float [W] row of the ink
  wrap: np.ndarray  # int [W]
  frac: np.ndarray  # float [W] unwrapped track position
  filled: np.ndarray  # bool [W] bridged a short gap


def column_runs(m):
  """Vertical runs of True in bool [H, W]: (cols, starts, ends), ends exclusive, col-major."""
  h, w = m.shape
  padded = np.zeros((h + 2, w), np.int8)
  padded[1:-1] = m
  d = np.diff(padded, axis=0)  # [H + 1, W]: +1 where a run starts, -1 one past its end.
  cols, starts = np.nonzero(d.T == 1)
  _, ends = np.nonzero(d.T == -1)
  return cols, starts, ends


def trace(mask, cls, *, top=0, bottom=None, max_gap=8, edge_band=0.15):
  """The centre line of class `cls` in mask [H, W] within the track rows top..bottom."""
  mask = np.asarray(mask)
  height, width = mask.shape
  bottom = height - 1 if bottom is None else bottom
  if not 0 <= top < bottom < height:
    raise ValueError(f"track rows need 0 <= top < bottom < {height}, got {top}, {bottom}")
  length = float(bottom - top)
  band = max(2.0, edge_band * length)
  cols, starts, ends = column_runs(mask[top:bottom + 1] == cls)
  centre = top + (starts + ends - 1) / 2.0  # Row of each run's centre.
  pos = bottom - centre  # Distance above the bottom row, 0..length.
  near_bottom = (top + ends - 1) >= bottom - band
  near_top = (top + starts) <= top + band
  out = Trace(np.full(width, np.nan), np.zeros(width, np.int64), np.full(width, np.nan),
              np.zeros(width, bool))
  session = np.full(width, -1)  # Columns tracked without a reset share a session id.
  prev = None  # (col, unwrapped pos, wrap, near_top, near_bottom)
  n_session = 0
  bounds = np.flatnonzero(np.r_[True, np.diff(cols) > 0, True]) if cols.size else [0]
  for a, b in zip(bounds[:-1], bounds[1:]):
    col = int(cols[a])
    runs = range(a, b)
    if prev is None or col - prev[0] > max_gap + 1:
      j = max(runs, key=lambda r: ends[r] - starts[r])
      wrap = 0
      n_session += 1
    else:
      best = None
      for r in runs:
        for dw in (0, 1, -1):
          # Only a curve that was in the edge band can have crossed that edge. The run on the
          # far side need not touch the other edge: a steep curve moves far in one column.
          if (dw == 1 and not prev[3]) or (dw == -1 and not prev[4]):
            continue
          dist = abs(pos[r] + (prev[2] + dw) * length - prev[1])
          if best is None or dist < best[0]:
            best = (dist, r, prev[2] + dw)
      _, j, wrap = best
    u = pos[j] + wrap * length
    out.px[col], out.wrap[col], out.frac[col] = centre[j], wrap, u / length
    session[col] = n_session
    prev = (col, u, wrap, bool(near_top[j]), bool(near_bottom[j]))
  _main_scale(out, session)
  if max_gap > 0:
    _fill_gaps(out, session, max_gap, top, bottom)
  return out


def _main_scale(out, session):
  """Shifts each session's wrap counts so that its most common one is 0 (see the docstring)."""
  for s in np.unique(session[session >= 0]):
    cols = session == s
    values, counts = np.unique(out.wrap[cols], return_counts=True)
    # Ties go to the count nearest 0: the fewest wraps explain the picture.
    mode = values[np.lexsort((np.abs(values), -counts))[0]]
    if mode:
      out.wrap[cols] -= mode
      out.frac[cols] -= mode


def _fill_gaps(out, session, max_gap, top, bottom):
  seen = np.flatnonzero(session >= 0)
  length = bottom - top
  for a, b in zip(seen[:-1], seen[1:]):
    if 1 < b - a <= max_gap + 1 and session[a] == session[b]:
      cols = np.arange(a + 1, b)
      frac = np.interp(cols, [a, b], [out.frac[a], out.frac[b]])
      wrap = np.floor(frac).astype(np.int64)
      # A position exactly on the top edge belongs to the unwrapped period below it.
      wrap = np.where((frac == wrap) & (wrap > np.minimum(out.wrap[a], out.wrap[b])), wrap - 1,
                      wrap)
      out.frac[cols], out.wrap[cols], out.filled[cols] = frac, wrap, True
      out.px[cols] = bottom - (frac - wrap) * length


def trace_classes(mask, classes=(1, 2), **kw):
  """{class id: Trace} for every class in `classes`."""
  return {k: trace(mask, k, **kw) for k in classes}


def _fmt(x, digits):
  return "" if not np.isfinite(x) else f"{x:.{digits}f}" if digits else f"{x:.6g}"


def table(depth_px, traces, *, names, to_original, scales=None, depth=None):
  """CSV columns {name: list of str} for traces of one or more tracks.

  Args:
    depth_px: int [N] index of each row along the depth axis of the original image.
    traces: list per track of {class name: Trace} (in the model's layout).
    names: column prefix per track ('' for a single track).
    to_original: per track, a function mapping model-layout rows to original coordinates.
    scales: per track a `Scale` or None; adds `<curve>_value` columns.
    depth: float [N] depth per row, or None.
  """
  cols = {"depth_px": [str(int(d)) for d in depth_px]}
  if depth is not None:
    cols["depth"] = [_fmt(d, 0) for d in depth]
  for t, track in enumerate(traces):
    for curve, tr in track.items():
      p = f"{names[t]}{curve}"
      present = np.isfinite(tr.frac)
      cols[f"{p}_px"] = [_fmt(x, 1) for x in to_original[t](tr.px)]
      cols[f"{p}_wrap"] = [str(int(w)) if ok else "" for w, ok in zip(tr.wrap, present)]
      cols[f"{p}_frac"] = [_fmt(x, 4) for x in tr.frac]
      if scales is not None and scales[t] is not None:
        cols[f"{p}_value"] = [_fmt(x, 0) for x in scales[t].values(tr.frac)]
      cols[f"{p}_filled"] = [str(int(f)) if ok else "" for f, ok in zip(tr.filled, present)]
  return cols


def write_csv(path, columns):
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(list(columns))
    writer.writerows(zip(*columns.values()))


def write_las(path, depth, curves, *, depth_unit="M", well=""):
  """LAS 2.0 with a DEPT index and `curves` {mnemonic: values}; NaN is written as NULL."""
  las = lasio.LASFile()
  las.well["NULL"].value = NULL
  if well:
    las.well["WELL"].value = well
  las.append_curve("DEPT", np.asarray(depth, np.float64), unit=depth_unit)
  for name, values in curves.items():
    las.append_curve(name, np.asarray(values, np.float64))
  with open(path, "w") as f:
    las.write(f, version=2.0)


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
