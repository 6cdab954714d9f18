"""Curves from masks: cleanup, one run per column and curve, gaps, wrap-around; CSV columns.

Layout (the model's): depth runs along the columns, the value axis along the rows of one track,
from row `bottom` (the scale's left value, track position 0) up to row `top` (its right value,
position 1). For each column and class, the centre of one vertical run of the class's pixels is
the curve's position there.

Cleanup. A segmenter paints some grid lines and specks as curve; `cleanup_mask` (its docstring
has the rules) removes them before tracing, as `inference.trace_scan` does by default.

Decoding. A column may hold several runs of a class: a stray blob, the other curve's ink given
this class near a crossing, the remains of a grid line. The run kept is the one that continues
the curve, chosen for the whole mask at once by dynamic programming (`_decode`): a path through
the runs, at most one per column, earns 1 per column it reads and pays, per link, for ink
beyond a free drift (squared, in track widths), a little for leaving the straight-ahead
extrapolation and per bridged column, and for each new session, more where it could have
linked instead. So the path stays on the curve through a column with a blob, skips a blob in
a gap, keeps going straight where a branch of ink leaves the curve, and does not start on a
blob that happens to be the tallest run of the first column, as picking per column would.

Wrap-around. Real logs draw a value that runs past the track's edge from the opposite edge
(a backup scale), and so does the renderer. A trace keeps, per column:
  px    the row of the sample (inside the track, where a person sees it);
  wrap  how many track widths the curve has wrapped by: +1 after leaving the top (right) edge
        and re-entering at the bottom (left) one, -1 the other way, 0 normally;
  frac  the unwrapped position in track units, (bottom - px) / (bottom - top) + wrap, so a
        value 20 % past the right edge reads 1.2 and converts to right + 0.2 (right - left).
A link between columns may cross an edge when the earlier position lay in the band along that
edge, or its column holds ink in the band along the other edge (the other half of a crossing,
where the segmenter lost this half); the decoder takes whichever crossing, or none, is
cheaper. Counts are relative within a session (a run of linked columns): nothing in the
picture tells whether a curve entered the window already wrapped, or how far it wrapped while
absent. Each session's counts are therefore
shifted so that its most common count is 0: a curve is taken to spend most of its length on its
main scale, as backup scales are drawn for excursions. Where two counts are both common (each
on at least 35 % of the session: a curve straddling an edge), the one on the low-value side is
0 (`wrap_side`: backup scales carry values past the scale's high end, which is the right edge,
or the left one on a reversed scale), not the mode, which there is a coin flip. A window that
shows only an excursion reads one track width off.

Where in a run the sample is. A column's ink runs from halfway to the previous sample, through
its own, to halfway to the next (a plotted polyline), so the run's centre is the sample except
where the curve turns: at a peak or trough the sample is the run's far end (less half a
stroke). To find that end, the chosen run is first joined with the other pieces of its
stretch in its column: runs of the dashed class closer than a tenth of the track (`dash_gap`),
or of any class with only the other curve's ink between them (a steep dashed stretch, or one
crossed by the other curve, is one stretch of ink per column, and reading one piece of it
cuts a spike short). The join places the sample only; the decoding above sees the runs as
drawn.

Gaps. Columns without ink stay empty (NaN; NULL in LAS, an empty cell in CSV). Gaps of at most
`max_gap` columns inside a session (dashes, broken ink, the other curve drawn over this one at
a crossing) are bridged by linear interpolation of the unwrapped position and flagged `filled`;
`max_gap=0` disables this.

Confidence, per column in [0, 1]: the mean class probability of the chosen run (1 without
probabilities) times 2 / (n + 1) for a column holding n runs of the class (1, 0.67, 0.5, ...);
a bridged column gets half the lower confidence of the two columns it bridges, times 0.8 per
column further from the nearest ink; 0 where absent.
"""

import csv
import dataclasses
import math
import os

import numpy as np
from scipy import ndimage

from ssl_seg import las_io

check_mnemonic = las_io.check_mnemonic  # The LAS rule, kept where callers found it.

# Decoder costs, in columns read (each column on the path earns 1). Distances are in track
# widths, so the costs hold at the model's 32 rows and on a full-resolution scan alike.
_GAP_COST = 0.02  # Per bridged column: of two equal links, the shorter.
_SESSION_COST = 0.5  # Any new session: linking across a gap beats restarting after it.
_JUMP_COST = 100.0  # Squared, in track widths beyond the free drift: 0.1 costs 1 column,
# 0.3 costs 9. Steep dotted curves step a few px between dots; a blob is far off the curve.
_BEND_COST = 0.5  # Off the straight-ahead extrapolation: at an X the straight branch wins.
_RESTART_COST = 4.0  # On top, for a new session where a link was possible: a blob in a gap
# must span over 2 x 4.5 columns to be worth leaving the curve for and coming back to it.
_FREE_SLOPE = 1.0  # Px per column a curve may drift across a gap without cost (45 degrees).

DASHED_CLASSES = (2,)  # The model's curve2 is the dashed or dotted line (see the renderer).
_STEEP_ROWS = 3  # A dash piece at least this tall is part of a steep stretch.
_BACKUP_SHARE = 0.35  # A wrap count this common may be the main scale (see `_main_scale`).


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


@dataclasses.dataclass
class Trace:
  """One curve along a mask's columns (see the module docstring); NaN / 0 where absent."""
  px: np.ndarray  # float [W] row of the ink
  wrap: np.ndarray  # int [W]
  frac: np.ndarray  # float [W] unwrapped track position
  filled: np.ndarray  # bool [W] bridged a short gap
  confidence: np.ndarray | None = None  # float [W] in [0, 1]


def column_runs(m):
  """Vertical runs of True in bool [H, W]: (cols, starts, ends), ends exclusive, col-major."""
  h, w = m.shape
  padded = np.zeros((h + 2, w), np.int8)
  padded[1:-1] = m
  d = np.diff(padded, axis=0)  # [H + 1, W]: +1 where a run starts, -1 one past its end.
  cols, starts = np.nonzero(d.T == 1)
  _, ends = np.nonzero(d.T == -1)
  return cols, starts, ends


def cleanup_mask(mask, classes=(1, 2), *, line_px=None, min_line=None, min_size=None,
                 reach=None):
  """A copy of class ids [H, W] (depth along columns) without grid lines and specks painted
  as one of `classes`; they become background, other pixels are kept.

  Per class, on its pixels alone:
    value-axis grid lines: stretches of >= 16 consecutive columns whose run of the class covers
      the same rows, at most `line_px` of them (so nothing of the class lies just above or
      below). Where such stretches at the same rows add up to `min_line` columns (default
      max(64, W / 4)), and in at least half of those columns the class has other ink within
      `reach` columns (a dashed curve's dashes count), every run at those rows is dropped,
      stubs between crossings too. A grid line keeps its rows across the image, even where
      curves cut it into pieces, and the curve runs beside it; a curve holds one value that
      long only on its own (a caliper at bit size), and is kept. A grid line painted where the
      curve is absent is not caught; neither is a curve pegged exactly on a grid line's rows.
    depth grid lines: rows whose run of the class covers the same columns, at most `line_px`
      of them, dropped where there are at least max(4, H / 2) such rows (and 3 times their
      width), one of them on the track's top or bottom edge. A depth line painted as curve
      spans the track, in pieces where curves cross it (those rows, wider, are kept); a
      steep curve's one-column stretch spans half the track only at a jump, and reaches the
      edge only where it wraps. Such a rare column is dropped too and gap bridging refills it.
    specks: 8-connected components under `min_size` px (default line_px ** 2) with no other
      component of the class within `reach` px (default max(8, 2 line_px)). A dash of a dashed
      curve has its neighbours a dash gap away; noise has none.
  `line_px` defaults to max(2, H // 16): 2 px at the model's 32-row tracks, growing with the
  mask when predict scales it back up to a large scan.
  """
  mask = np.asarray(mask)
  height, width = mask.shape
  line_px = max(2, height // 16) if line_px is None else line_px
  min_line = max(64, width // 4) if min_line is None else min_line
  min_size = line_px ** 2 if min_size is None else min_size
  reach = max(8, 2 * line_px) if reach is None else reach
  out = mask.copy()
  for k in classes:
    m = mask == k
    # Value lines first: where they cross a depth line, its rows are wide until they are gone.
    m &= ~_value_lines(m, line_px, min_line, reach)
    m &= ~_depth_lines(m, line_px)
    m &= ~_specks(m, min_size, reach)
    out[(mask == k) & ~m] = 0
  return out


def _value_lines(m, line_px, min_line, reach, min_piece=16, min_shared=0.5):
  """bool [H, W]: the value-axis grid lines in class pixels m (see `cleanup_mask`)."""
  out = np.zeros(m.shape, bool)
  cols, starts, ends = column_runs(m)
  # Other ink of the class within `reach` columns: a dashed curve's dashes count too.
  multi = np.bincount(cols, minlength=m.shape[1]) > 1
  shared = ndimage.maximum_filter1d(multi, 2 * reach + 1)[cols]
  thin = ends - starts <= line_px
  order = np.lexsort((cols[thin], ends[thin], starts[thin]))
  c, s, e, shared = cols[thin][order], starts[thin][order], ends[thin][order], shared[thin][order]
  if not c.size:
    return out
  new_rows = np.r_[True, (s[1:] != s[:-1]) | (e[1:] != e[:-1])]
  stretch = np.cumsum(new_rows | np.r_[True, np.diff(c) != 1]) - 1
  rows = np.cumsum(new_rows) - 1
  piece = np.bincount(stretch)[stretch] >= min_piece
  total = np.bincount(rows, weights=piece)[rows]
  # Pieces are the evidence; once the rows are a line, its stubs between crossings go too.
  hit = (total >= min_line) & (np.bincount(rows, weights=piece & shared)[rows]
                               >= min_shared * total)
  for d in range(line_px):  # Paint row start + d of every hit run that is that thick.
    sel = hit & (e - s > d)
    out[s[sel] + d, c[sel]] = True
  return out


def _depth_lines(m, line_px):
  """bool [H, W]: the depth grid lines in class pixels m (see `cleanup_mask`)."""
  height = m.shape[0]
  out = np.zeros(m.shape, bool)
  rows, starts, ends = column_runs(m.T)  # Horizontal runs: row, first column, end column.
  narrow = ends - starts <= line_px
  order = np.lexsort((rows[narrow], ends[narrow], starts[narrow]))
  r, s, e = rows[narrow][order], starts[narrow][order], ends[narrow][order]
  if not r.size:
    return out
  key = np.cumsum(np.r_[True, (s[1:] != s[:-1]) | (e[1:] != e[:-1])]) - 1
  total = np.bincount(key)[key]
  edge = np.bincount(key, weights=(r == 0) | (r == height - 1))[key] > 0
  hit = edge & (total >= np.maximum(max(4, height / 2), 3 * (e - s)))
  for d in range(line_px):  # Paint column start + d of every hit run that is that wide.
    sel = hit & (e - s > d)
    out[r[sel], s[sel] + d] = True
  return out


def _specks(m, min_size, reach):
  """bool [H, W]: small components of m with no other component within `reach` px."""
  out = np.zeros(m.shape, bool)
  labels, n = ndimage.label(m, structure=np.ones((3, 3), bool))
  if not n:
    return out
  sizes = np.bincount(labels.ravel())
  boxes = ndimage.find_objects(labels)
  for i in np.flatnonzero(sizes[1:] < min_size) + 1:
    rs, cs = boxes[i - 1]
    near = labels[max(rs.start - reach, 0):rs.stop + reach,
                  max(cs.start - reach, 0):cs.stop + reach]
    if not ((near != 0) & (near != i)).any():
      out[rs, cs] |= labels[rs, cs] == i
  return out


def trace(mask, cls, *, top=0, bottom=None, max_gap=8, edge_band=0.15, probs=None,
          dash_gap=None, wrap_side=1):
  """The centre line of class `cls` in mask [H, W] within the track rows top..bottom.

  Args:
    probs: optional class probabilities, float [H, W] for `cls` or [H, W, K] for all classes;
      a column's confidence starts from the chosen run's mean (see the module docstring).
    dash_gap: runs of one column closer than this share of the track are one run; default
      0.1 for the dashed class (`DASHED_CLASSES`), 0 for a solid one, whose ink has no gaps.
    wrap_side: 1 where the curve wraps past the right edge (the scale's high end), -1 past
      the left (a reversed scale); picks the main scale of a curve straddling an edge.
  """
  mask = np.asarray(mask)
  height, width = mask.shape
  bottom = height - 1 if bottom is None else bottom
  if not 0 <= top < bottom < height:
    raise ValueError(f"track rows need 0 <= top < bottom < {height}, got {top}, {bottom}")
  length = float(bottom - top)
  band = max(2.0, edge_band * length)
  inner = mask[top:bottom + 1]
  if dash_gap is None:
    dash_gap = 0.1 if cls in DASHED_CLASSES else 0.0
  cols, starts, ends = column_runs(inner == cls)
  centre = top + (starts + ends - 1) / 2.0  # Row of each run's centre.
  # Positions above the bottom row, 0..length: the run's lowest and highest pixel, its centre.
  lo, hi = (bottom - top - (ends - 1)).astype(float), (bottom - top - starts).astype(float)
  pos = bottom - centre
  out = Trace(np.full(width, np.nan), np.zeros(width, np.int64), np.full(width, np.nan),
              np.zeros(width, bool), np.zeros(width))
  near_top, near_bottom = hi >= length - band, lo <= band
  # A run may also cross an edge where its column holds ink at the other edge: a crossing
  # draws ink at both edges of its column, and the segmenter may lose the half on this side.
  at_top = np.bincount(cols[near_top], minlength=width) > 0
  at_bottom = np.bincount(cols[near_bottom], minlength=width) > 0
  near_top, near_bottom = near_top | at_bottom[cols], near_bottom | at_top[cols]
  nodes, wrap, session = _decode(cols, lo, hi, pos, near_top, near_bottom, length, max_gap)
  c = cols[nodes]
  # The path and its wraps come from the runs as drawn; where in the ink the sample lies comes
  # from the chosen run joined with the pieces of its stretch (joining before decoding let
  # tall joined runs near the edges confuse the wrap counts of steep, often-wrapping curves).
  g_first, g_last, g_of = _join_dashes(cols, starts, ends, max(2.0, dash_gap * length),
                                       inner == 0, band)
  lo_g, hi_g = lo[g_last[g_of[nodes]]], hi[g_first[g_of[nodes]]]
  at = _sample_positions(c, lo_g + wrap * length, hi_g + wrap * length, session)
  out.wrap[c], out.frac[c] = wrap, at / length
  out.px[c] = bottom - (at - wrap * length)
  sessions = np.full(width, -1)
  sessions[c] = session
  base = np.ones(len(nodes))
  if probs is not None:
    p = np.asarray(probs, np.float64)
    p = p[..., cls] if p.ndim == 3 else p
    sums = np.cumsum(np.pad(p[top:bottom + 1], ((1, 0), (0, 0))), axis=0)
    base = (sums[ends[nodes], c] - sums[starts[nodes], c]) / (ends[nodes] - starts[nodes])
  out.confidence[c] = np.clip(base, 0.0, 1.0) * 2.0 / (np.bincount(cols, minlength=width)[c] + 1)
  _main_scale(out, sessions, wrap_side)
  if max_gap > 0:
    _fill_gaps(out, sessions, max_gap, top, bottom)
  return out


def _join_dashes(cols, starts, ends, gap, background, band):
  """Groups the runs of a column that are one stretch of curve: (first, last, group of run).

  first / last: per group, the index of its top and bottom run; group: per run, its group.
  A curve is one value per depth, so one column holds one stretch of it; a steep stretch of a
  dashed or dotted curve leaves it as several tall pieces with short gaps (under `gap` rows),
  and the other curve drawn across it hides a piece (a gap without background pixels). Runs
  further apart with paper between (a wrapped curve at both edges, a blob), flat pieces (a
  mislabelled branch of the other curve beside this one) and pieces in the edge bands (`band`
  rows, where they may be either side of a wrap) stay apart.
  """
  n = len(cols)
  if n < 2:
    return np.arange(n), np.arange(n), np.arange(n)
  paper = np.cumsum(np.pad(background, ((1, 0), (0, 0))), axis=0)  # [H + 1, W]
  hidden = paper[starts[1:], cols[1:]] - paper[ends[:-1], cols[1:]] == 0
  steep = np.maximum(ends[:-1] - starts[:-1], ends[1:] - starts[1:]) >= _STEEP_ROWS
  inside = (starts[:-1] >= band) & (ends[1:] <= len(background) - band)
  join = (cols[1:] == cols[:-1]) & inside & (((starts[1:] - ends[:-1] < gap) & steep) | hidden)
  opens = np.r_[True, ~join]  # Starts a group.
  closes = np.r_[~join, True]
  return np.flatnonzero(opens), np.flatnonzero(closes), np.cumsum(opens) - 1


def _sample_positions(c, lo, hi, session):
  """Where each chosen run's sample lies (unwrapped positions above the bottom row).

  A plotted log joins its samples by straight lines, so a column's ink runs from halfway to
  one neighbour's sample, through its own, to halfway to the other's. Where the curve turns
  (a local peak or trough of a spiky log), the sample is the run's far end, not its centre:
  reading centres halves every spike. Elsewhere the centre is within a quarter of the local
  curvature of the sample. The stroke's own half-thickness comes off the far end; the stroke
  is the 20th percentile of the run heights (flat stretches are one stroke tall).
  """
  mid = (lo + hi) / 2.0
  if len(c) < 3:
    return mid
  half = (np.percentile(hi - lo, 20)) / 2.0
  # Neighbours in the next and previous column of the same session (else none).
  prev_ok = np.r_[False, (np.diff(c) == 1) & (np.diff(session) == 0)]
  next_ok = np.r_[prev_ok[1:], False]
  hi_p, hi_n = np.r_[np.inf, hi[:-1]], np.r_[hi[1:], np.inf]
  lo_p, lo_n = np.r_[-np.inf, lo[:-1]], np.r_[lo[1:], -np.inf]
  both = prev_ok & next_ok
  peak = both & (hi > hi_p) & (hi > hi_n) & (lo >= np.minimum(lo_p, lo_n))
  trough = both & (lo < lo_p) & (lo < lo_n) & (hi <= np.maximum(hi_p, hi_n))
  return np.where(peak, np.maximum(hi - half, mid), np.where(trough, np.minimum(lo + half, mid),
                                                           mid))


def _decode(cols, lo, hi, pos, near_top, near_bottom, length, max_gap):
  """The runs on the curve (module docstring): (run indices, wrap counts, session ids)."""
  n = len(cols)
  if not n:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
  cols, lo, hi, pos = cols.tolist(), lo.tolist(), hi.tolist(), pos.tolist()
  near_top, near_bottom = near_top.tolist(), near_bottom.tolist()
  score, back, dwrap, vel = [0.0] * n, [-1] * n, [0] * n, [0.0] * n
  linked = [False] * n  # Continues its `back` run's session (else starts a new one).
  far = (0.0, -1)  # Best path ending left of the link window, to restart from.
  first = 0  # First run inside the link window.
  start = 0
  while start < n:
    col = cols[start]
    stop = start
    while stop < n and cols[stop] == col:
      stop += 1
    while cols[first] < col - max_gap - 1:
      far = max(far, (score[first], first))
      first += 1
    for i in range(start, stop):
      best = (far[0] - _SESSION_COST, far[1], False, 0)
      for j in range(first, start):
        dc = col - cols[j]
        if score[j] - _SESSION_COST - _RESTART_COST > best[0]:
          best = (score[j] - _SESSION_COST - _RESTART_COST, j, False, 0)
        pred = pos[j] + vel[j] * dc
        # Only a curve that was in the edge band can have crossed that edge. The run on the far
        # side need not touch the other edge: a steep curve moves far in one column.
        for dw in (0, 1, -1):
          if (dw == 1 and not near_top[j]) or (dw == -1 and not near_bottom[j]):
            continue
          a, b = lo[i] + dw * length, hi[i] + dw * length
          # A curve that moved h px within a column (a tall run) may move that much again
          # into the next one: steep dashes and broken steep ink leave such steps.
          gap = (max(0.0, a - hi[j] - 1, lo[j] - b - 1) - _FREE_SLOPE * dc
                 - max(hi[j] - lo[j], hi[i] - lo[i]))
          off = max(0.0, a - pred, pred - b)
          jump = min(max(gap, 0.0), off) / length
          cost = _GAP_COST * (dc - 1) + _JUMP_COST * jump * jump + _BEND_COST * off / length
          if score[j] - cost > best[0]:
            best = (score[j] - cost, j, True, dw)
      score[i], back[i], linked[i], dwrap[i] = best[0] + 1.0, best[1], best[2], best[3]
      if linked[i]:
        j = back[i]
        step = (pos[i] + dwrap[i] * length - pos[j]) / (col - cols[j])
        vel[i] = vel[j] + 0.5 * (step - vel[j])  # Smoothed: centres move in whole px.
    start = stop
  end = max(range(n), key=lambda i: (score[i], i))
  path = []
  while end >= 0:
    path.append(end)
    end = back[end]
  path.reverse()
  wrap, session = np.zeros(len(path), np.int64), np.zeros(len(path), np.int64)
  for t, i in enumerate(path[1:], 1):
    wrap[t] = wrap[t - 1] + dwrap[i] if linked[i] else 0
    session[t] = session[t - 1] + (not linked[i])
  return np.asarray(path, np.int64), wrap, session


def _main_scale(out, session, wrap_side=1):
  """Shifts each session's wrap counts so that its main scale is 0 (see the docstring).

  The main scale is the most common count, unless a count further from the backup side
  (lower for `wrap_side` 1, higher for -1) also holds `_BACKUP_SHARE` of the columns: a curve
  straddling an edge for half the window is read as an excursion past the scale's high end.
  """
  for s in np.unique(session[session >= 0]):
    cols = session == s
    values, counts = np.unique(out.wrap[cols], return_counts=True)
    # Ties go to the count nearest 0: the fewest wraps explain the picture.
    mode = values[np.lexsort((np.abs(values), -counts))[0]]
    held = values[counts >= _BACKUP_SHARE * counts.sum()]
    if len(held) > 1:
      mode = held.min() if wrap_side > 0 else held.max()
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
      ink = np.minimum(cols - a, b - cols)  # Columns to the nearest read one.
      out.confidence[cols] = 0.5 * min(out.confidence[a], out.confidence[b]) * 0.8 ** (ink - 1)


def trace_classes(mask, classes=(1, 2), **kw):
  """{class id: Trace} for every class in `classes`."""
  return {k: trace(mask, k, **kw) for k in classes}


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
  with open(path + ".tmp", "w", newline="") as f:  # Atomically, as scan_io.write_png.
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
