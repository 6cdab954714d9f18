"""Vertical runs of a class's pixels per column, and where in its run a curve's sample lies.

Where in a run the sample is. A column's ink runs from halfway to the previous sample, through
its own, to halfway to the next (a plotted polyline), so the run's centre is the sample except
where the curve turns: at a peak or trough the sample is the run's far end (less half a
stroke). To find that end, the pieces of a stretch in one column are first joined: runs of
the dashed class closer than a tenth of the track (`dash_gap`) in a steep stretch, or of any
class with only the other curve's ink between them (a steep dashed stretch, or one crossed by
the other curve, is one stretch of ink per column, and reading one piece of it cuts a spike
short). The decoding (`tracer`) sees each joined stretch as one run.
"""

import numpy as np

_STEEP_ROWS = 3  # A run at least this tall is a steep stretch of curve.
_DOTS = 3  # A column with this many pieces of one curve holds a steep dotted stretch.


def column_runs(m):
  """Vertical runs of True in bool [H, W]: (cols, starts, ends), ends exclusive, col-major."""
  h, w = m.shape
  padded = np.zeros((h + 2, w), np.int8)
  padded[1:-1] = m
  d = np.diff(padded, axis=0)  # [H + 1, W]: +1 where a run starts, -1 one past its end.
  cols, starts = np.nonzero(d.T == 1)
  _, ends = np.nonzero(d.T == -1)
  return cols, starts, ends


def join_dashes(cols, starts, ends, gap, background, band):
  """Groups the runs of a column that are one stretch of curve: (first, last).

  first / last: per group, the index of its top and bottom run.
  A curve is one value per depth, so one column holds one stretch of it; a steep stretch of a
  dashed or dotted curve leaves it as several pieces with short gaps (under `gap` rows): tall
  ones, or a column of three or more dots (1-2 rows each); and the other curve drawn across
  it hides a piece (a gap without background pixels). Runs further apart with paper between
  (a wrapped curve at both edges, a blob), two flat pieces (a mislabelled branch of the other
  curve beside this one) and pieces in the edge bands (`band` rows, where they may be either
  side of a wrap) stay apart. (Joining only tall pieces read Totem's dotted DTMN spikes short;
  joining any two flat ones follows the branch; README, "Dotted spikes".)
  """
  n = len(cols)
  if n < 2:
    return np.arange(n), np.arange(n)
  paper = np.cumsum(np.pad(background, ((1, 0), (0, 0))), axis=0)  # [H + 1, W]
  hidden = paper[starts[1:], cols[1:]] - paper[ends[:-1], cols[1:]] == 0
  # A steep stretch: a tall piece, or a column of dots (three or more pieces).
  steep = ((np.maximum(ends[:-1] - starts[:-1], ends[1:] - starts[1:]) >= _STEEP_ROWS)
           | (np.bincount(cols)[cols[1:]] >= _DOTS))
  inside = (starts[:-1] >= band) & (ends[1:] <= len(background) - band)
  join = (cols[1:] == cols[:-1]) & inside & (((starts[1:] - ends[:-1] < gap) & steep) | hidden)
  opens = np.r_[True, ~join]  # Starts a group.
  closes = np.r_[~join, True]
  return np.flatnonzero(opens), np.flatnonzero(closes)


def sample_positions(c, lo, hi, session):
  """Where each chosen run's sample lies (unwrapped positions above the bottom row).

  A plotted log joins its samples by straight lines, so a column's ink runs from halfway to
  one neighbour's sample, through its own, to halfway to the other's. Where the curve turns
  (a local peak or trough of a spiky log), the sample is the run's far end, not its centre:
  reading centres halves every spike. Elsewhere the centre is within a quarter of the local
  curvature of the sample. The stroke's own half-thickness comes off the far end; the stroke
  is the 20th percentile of the run heights (flat stretches are one stroke tall).
  A pen more than a pixel wide also inks a steep segment's column in the next one, so a spike's
  far end shows in two columns, equally high: in a steep column (`_STEEP_ROWS` tall) a tie
  with the next column still makes a peak (the first of the two), one with the previous does
  not. (Strict on both sides, the true masks of LAS renders read spiky GAMN at R² 0.954-0.963
  where they now read 0.970-0.975; README, "Spike tips drawn with a wide pen".)
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
  steep = hi - lo >= _STEEP_ROWS  # A flat step's tie with the next column is no spike.
  peak = both & (hi > hi_p) & ((hi > hi_n) | ((hi == hi_n) & steep)) & (
      lo >= np.minimum(lo_p, lo_n))
  trough = both & (lo < lo_p) & ((lo < lo_n) | ((lo == lo_n) & steep)) & (
      hi <= np.maximum(hi_p, hi_n))
  return np.where(peak, np.maximum(hi - half, mid), np.where(trough, np.minimum(lo + half, mid),
                                                           mid))
