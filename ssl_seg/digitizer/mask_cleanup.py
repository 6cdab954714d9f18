"""Grid lines and specks a segmenter painted as curve, removed from a mask before tracing."""

import numpy as np
from scipy import ndimage

from ssl_seg.digitizer.runs import column_runs


def cleanup_mask(mask, classes=(1, 2), *, line_px=None, min_line=None, min_size=None,
                 reach=None, grid_rows=None):
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
    runs on the image's grid rows (`grid_rows`, bool [H] from `value_grid_rows` of the scan's
      track, where the scan is at hand): a run of the class lying wholly on grid rows in a
      column where the class also has ink off them (not +-1 row: on log-scale tracks, with
      lines every few rows, that took curve ink too). A segmenter paints stretches of a
      grid line as curve where a jagged curve keeps crossing it; the pieces are too short for
      the value-line rule, and a tracer following continuity runs along them. The curve's own
      run in that column is off the line; where the curve itself lies on the line, its run is
      the only one in the column and stays.
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
    if grid_rows is not None:
      m &= ~_runs_on_grid_rows(m, grid_rows)
    out[(mask == k) & ~m] = 0
  return out


def value_grid_rows(track_image, contrast=0.1, reach=4):
  """bool [H]: rows of a scan's track (uint8 [H, W], value axis along rows) that are value-grid
  lines: the row's median is darker than the median of the rows within `reach` by `contrast`
  of the paper (the track's 90th percentile). A line spans the track, so its row's median is
  line; a curve's row is paper outside the curve. Medians of neighbouring rows, not of the
  whole track, so shading and print density across the track do not count. The two rows at
  each edge are never grid rows: a crop may hold the track's border there, and a wrapping
  curve's ink crosses it (the tracer links the edges through that ink)."""
  img = np.asarray(track_image, np.float32)
  out = np.zeros(img.shape[:1], bool)
  if img.ndim != 2 or img.shape[0] < 5:
    return out
  rows = np.median(img, axis=1)
  local = ndimage.median_filter(rows, size=2 * reach + 1, mode="nearest")
  out[2:-2] = (rows < local - contrast * np.percentile(img, 90))[2:-2]
  return out


def _runs_on_grid_rows(m, grid_rows):
  """bool [H, W]: runs of m wholly on `grid_rows` in columns with ink off them."""
  out = np.zeros(m.shape, bool)
  grid_rows = np.asarray(grid_rows, bool)
  if not grid_rows.any():
    return out
  cols, starts, ends = column_runs(m)
  covered = np.r_[0, np.cumsum(grid_rows)]  # Grid rows in [a, b): covered[b] - covered[a].
  on_grid = covered[ends] - covered[starts] == ends - starts
  ink_off_grid = np.bincount(cols[~on_grid], minlength=m.shape[1]) > 0
  drop = on_grid & ink_off_grid[cols]
  for c, a, b in zip(cols[drop], starts[drop], ends[drop]):
    out[a:b, c] = True
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
