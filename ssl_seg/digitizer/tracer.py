"""Curves from masks: one run per column and curve, gaps, wrap-around.

Layout (the model's): depth runs along the columns, the value axis along the rows of one track,
from row `bottom` (the scale's left value, track position 0) up to row `top` (its right value,
position 1). For each column and class, the centre of one vertical run of the class's pixels is
the curve's position there.

Cleanup. A segmenter paints some grid lines and specks as curve; `mask_cleanup.cleanup_mask` (its
docstring has the rules) removes them before tracing, as `scan_layout.trace_scan` does.

Decoding. A column may hold several runs of a class: a stray blob, the other curve's ink given
this class near a crossing, the remains of a grid line. (The pieces of one steep dashed or
dotted stretch, `runs.join_dashes`, count as one run.) The run kept is the one that continues
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
where the segmenter lost this half), and the later column holds ink in the band along the
edge it comes back through; the decoder takes whichever crossing, or none, is cheaper, and
keeps each session to two adjacent counts (a backup scale and back; `_decode`). Counts
are relative within a session (a run of linked columns): nothing in the picture tells whether
a curve entered the window already wrapped, or how far it wrapped while absent. Each
session's counts are therefore shifted so that its most common count is 0: a curve is taken
to spend most of its length on its main scale, as backup scales are drawn for excursions.
Where two counts are both common (each on at least 35 % of the session: a curve straddling an
edge), the one on the low-value side is 0 (`wrap_side`: backup scales carry values past the
scale's high end, which is the right edge, or the left one on a reversed scale), not the
mode, which there is a coin flip. A window that
shows only an excursion reads one track width off.

Where in a run the sample is: `runs.sample_positions` (its docstring has the rule).

Gaps. Columns without ink stay empty (NaN; NULL in LAS, an empty cell in CSV). Gaps of at most
`max_gap` columns inside a session (dashes, broken ink, the other curve drawn over this one at
a crossing) are bridged by linear interpolation of the unwrapped position and flagged `filled`;
`max_gap=0` disables this.

Confidence, per column in [0, 1]: the mean class probability of the chosen run (1 without
probabilities) times 2 / (n + 1) for a column holding n runs of the class (1, 0.67, 0.5, ...);
a bridged column gets half the lower confidence of the two columns it bridges, times 0.8 per
column further from the nearest ink; 0 where absent.
"""

import dataclasses

import numpy as np

from ssl_seg.digitizer import runs

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
_BACKUP_SHARE = 0.35  # A wrap count this common may be the main scale (see `_main_scale`).


@dataclasses.dataclass
class Trace:
  """One curve along a mask's columns (see the module docstring); NaN / 0 where absent."""
  px: np.ndarray  # float [W] row of the ink
  wrap: np.ndarray  # int [W]
  frac: np.ndarray  # float [W] unwrapped track position
  filled: np.ndarray  # bool [W] bridged a short gap
  confidence: np.ndarray | None = None  # float [W] in [0, 1]


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
  # Decoding sees each stretch of ink in a column as one run: the pieces of a steep dashed or
  # dotted stretch joined (`runs.join_dashes`). Decoded piece by piece, a dotted spike is a
  # column of small runs each far from the neighbours' ink, and the path skipped the column.
  ink = inner == cls
  cols, starts, ends = runs.column_runs(ink)
  first, last = runs.join_dashes(cols, starts, ends, max(2.0, dash_gap * length), inner == 0,
                                 band)
  cols, starts, ends = cols[first], starts[first], ends[last]
  centre = top + (starts + ends - 1) / 2.0  # Row of each run's centre.
  # Positions above the bottom row, 0..length: the run's lowest and highest pixel, its centre.
  lo, hi = (bottom - top - (ends - 1)).astype(float), (bottom - top - starts).astype(float)
  pos = bottom - centre
  out = Trace(np.full(width, np.nan), np.zeros(width, np.int64), np.full(width, np.nan),
              np.zeros(width, bool), np.zeros(width))
  nodes, wrap, session = _decode(cols, lo, hi, pos, _edge_ink(cols, lo, hi, length, band, width),
                                 length, max_gap)
  c = cols[nodes]
  at = runs.sample_positions(c, lo[nodes] + wrap * length, hi[nodes] + wrap * length, session)
  out.wrap[c], out.frac[c] = wrap, at / length
  out.px[c] = bottom - (at - wrap * length)
  sessions = np.full(width, -1)
  sessions[c] = session
  out.confidence[c] = _confidence(probs, ink, cls, top, (cols, starts, ends), nodes, width)
  _main_scale(out, sessions, wrap_side)
  if max_gap > 0:
    _fill_gaps(out, sessions, max_gap, top, bottom)
  return out



def _edge_ink(cols, lo, hi, length, band, width):
  """Where a link may cross an edge: (exits, entries), each (via the top, via the bottom).

  exits: per run, whether the curve may leave through that edge after it: the run lies in
  that edge's band, or its column holds ink in the other edge's band (a crossing draws ink at
  both edges of its column, and the segmenter may lose the half on this side). entries: per
  column, whether the curve may come back in through that edge into one of its runs: the
  column holds ink in that edge's band. Without the entry rule a steep spike down from the
  top edge, decoded in joined stretches, read as a wrap past it (a log of Totem seed 6 read a
  track width off for 311 columns; README, "Dotted spikes").
  """
  in_top, in_bottom = hi >= length - band, lo <= band
  at_top = np.bincount(cols[in_top], minlength=width) > 0
  at_bottom = np.bincount(cols[in_bottom], minlength=width) > 0
  return (in_top | at_bottom[cols], in_bottom | at_top[cols]), (at_top, at_bottom)


def _confidence(probs, ink, cls, top, col_runs, nodes, width):
  """Per chosen run: the mean class probability of its ink (1 without `probs`) x 2 / (n + 1),
  n the runs of the class in its column (a joined stretch is one; `ink`: the track's pixels
  of the class)."""
  cols, starts, ends = col_runs
  c = cols[nodes]
  base = np.ones(len(nodes))
  if probs is not None:
    p = np.asarray(probs, np.float64)
    p = p[..., cls] if p.ndim == 3 else p
    def summed(x):  # Column sums over a run's rows.
      sums = np.cumsum(np.pad(x, ((1, 0), (0, 0))), axis=0)
      return sums[ends[nodes], c] - sums[starts[nodes], c]
    base = summed(p[top:top + len(ink)] * ink) / summed(ink.astype(np.float64))
  return np.clip(base, 0.0, 1.0) * 2.0 / (np.bincount(cols, minlength=width)[c] + 1)


def _decode(cols, lo, hi, pos, edge_ink, length, max_gap):
  """The runs on the curve (module docstring): (run indices, wrap counts, session ids).

  The path runs through states (run, level): level 0 or 1 is the run's wrap count relative to
  its session, so a session spans at most two adjacent counts. A curve crosses an edge back
  and forth, past its main scale onto the backup one and back (all 49 wrapping curves of the
  twelve LAS-rendered test sets keep to two counts). With the counts unbounded, one misread
  crossing left the rest of a hovering stretch a track width off, read at three counts
  (README, "Wrap levels").
  """
  n = len(cols)
  if not n:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
  (exit_top, exit_bottom), (enter_top, enter_bottom) = edge_ink
  exit_top, exit_bottom = exit_top.tolist(), exit_bottom.tolist()
  enter_top, enter_bottom = enter_top.tolist(), enter_bottom.tolist()
  cols, lo, hi, pos = cols.tolist(), lo.tolist(), hi.tolist(), pos.tolist()
  # State s = 2 * run + level.
  score, back, vel = [0.0] * (2 * n), [-1] * (2 * n), [0.0] * (2 * n)
  linked = [False] * (2 * n)  # Continues its `back` state's session (else starts a new one).
  far = (0.0, -1)  # Best path ending left of the link window, to restart from.
  first = 0  # First run inside the link window.
  start = 0
  while start < n:
    col = cols[start]
    stop = start
    while stop < n and cols[stop] == col:
      stop += 1
    while cols[first] < col - max_gap - 1:
      far = max(far, (score[2 * first], 2 * first), (score[2 * first + 1], 2 * first + 1))
      first += 1
    for i in range(start, stop):
      for level in (0, 1):
        best = (far[0] - _SESSION_COST, far[1], False)
        for j in range(first, start):
          dc = col - cols[j]
          for sj in (2 * j, 2 * j + 1):
            if score[sj] - _SESSION_COST - _RESTART_COST > best[0]:
              best = (score[sj] - _SESSION_COST - _RESTART_COST, sj, False)
            # Only a curve that was in the edge band can have crossed that edge, and it comes
            # back through the other one: this column holds ink in that edge's band. The run
            # entered need not touch the edge itself: a steep curve moves far in one column.
            dw = level - (sj & 1)
            if dw == 1 and not (exit_top[j] and enter_bottom[col]):
              continue
            if dw == -1 and not (exit_bottom[j] and enter_top[col]):
              continue
            pred = pos[j] + vel[sj] * dc
            a, b = lo[i] + dw * length, hi[i] + dw * length
            # A curve that moved h px within a column (a tall run) may move that much again
            # into the next one: steep dashes and broken steep ink leave such steps.
            gap = (max(0.0, a - hi[j] - 1, lo[j] - b - 1) - _FREE_SLOPE * dc
                   - max(hi[j] - lo[j], hi[i] - lo[i]))
            off = max(0.0, a - pred, pred - b)
            jump = min(max(gap, 0.0), off) / length
            cost = _GAP_COST * (dc - 1) + _JUMP_COST * jump * jump + _BEND_COST * off / length
            if score[sj] - cost > best[0]:
              best = (score[sj] - cost, sj, True)
        s = 2 * i + level
        score[s], back[s], linked[s] = best[0] + 1.0, best[1], best[2]
        if linked[s]:
          sj = back[s]
          step = (pos[i] + (level - (sj & 1)) * length - pos[sj >> 1]) / (col - cols[sj >> 1])
          vel[s] = vel[sj] + 0.5 * (step - vel[sj])  # Smoothed: centres move in whole px.
    start = stop
  return _backtrack(score, back, linked)


def _backtrack(score, back, linked):
  """`_decode`'s best path, read back from its best end: (runs, wrap counts, sessions)."""
  # Ties: the later run (as before levels), then level 0.
  end = max(range(len(score)), key=lambda s: (score[s], s >> 1, -(s & 1)))
  path = []
  while end >= 0:
    path.append(end)
    end = back[end]
  path.reverse()
  states = np.asarray(path, np.int64)
  session = np.cumsum([0] + [not linked[s] for s in path[1:]]).astype(np.int64)
  return states >> 1, states & 1, session


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
