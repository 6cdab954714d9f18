"""Grid lines and specks a segmenter painted as curve, removed from a mask before tracing."""

import numpy as np
from scipy import ndimage

from ssl_seg.digitizer.runs import column_runs


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
