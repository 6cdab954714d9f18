"""Curve extraction on hand-made masks: cleanup, decoding, gaps, wrap-around, confidence, files."""

import csv

import lasio
import numpy as np
import pytest

from ssl_seg.data import welllog_render
from ssl_seg.digitizer import curve_values, las, mask_cleanup, tracer


def _draw(height, rows_per_col, cls=1):
  """A mask with class `cls` at the given (col -> list of rows)."""
  mask = np.zeros((height, len(rows_per_col)), np.uint8)
  for c, rows in enumerate(rows_per_col):
    mask[list(rows), c] = cls
  return mask


def _line(height, ys, cls=1, mask=None):
  """Draws a connected 1 px polyline through row ys[c] of each column (NaN: no ink), as the
  renderer does: each column's run reaches halfway to its neighbours' rows."""
  ys = np.asarray(ys, np.float64)
  mask = np.zeros((height, len(ys)), np.uint8) if mask is None else mask
  for c, y in enumerate(ys):
    if np.isfinite(y):
      ends = [(y + ys[c + d]) / 2 for d in (-1, 1)
              if 0 <= c + d < len(ys) and np.isfinite(ys[c + d])]
      mask[round(min([y] + ends)):round(max([y] + ends)) + 1, c] = cls
  return mask


def test_centre_line_is_the_middle_of_each_run_and_converts_to_track_units():
  mask = _draw(11, [[2, 3], [4], [6, 7, 8], []])
  mask[0, 1] = 2  # Another class in the same column is ignored.
  tr = tracer.trace(mask, 1, max_gap=0)
  np.testing.assert_allclose(tr.px[:3], [2.5, 4.0, 7.0])
  assert np.isnan(tr.px[3]) and np.isnan(tr.frac[3])  # Absent stays empty.
  assert np.isnan(tracer.trace(mask, 3).frac).all()  # A class with no pixels at all.
  np.testing.assert_allclose(tr.frac[:3], (10 - np.array([2.5, 4.0, 7.0])) / 10)
  # Within track rows 2..8, position is measured from row 8 (0) to row 2 (1).
  inner = tracer.trace(mask, 1, top=2, bottom=8, max_gap=0)
  np.testing.assert_allclose(inner.frac[:3], (8 - np.array([2.5, 4.0, 7.0])) / 6)


def test_short_gaps_are_bridged_and_flagged_long_ones_stay_empty():
  cols = [[5]] * 3 + [[]] * 2 + [[7]] * 3 + [[]] * 6 + [[5]] * 2
  tr = tracer.trace(_draw(11, cols), 1, max_gap=3)
  np.testing.assert_allclose(tr.px[3:5], [5 + 2 / 3, 5 + 4 / 3])
  assert tr.filled[3:5].all() and not tr.filled[:3].any()
  assert np.isnan(tr.px[8:14]).all() and not tr.filled[8:14].any()
  off = tracer.trace(_draw(11, cols), 1, max_gap=0)
  assert np.isnan(off.px[3:5]).all()


def test_a_curve_leaving_the_top_edge_wraps_to_the_bottom_and_unwraps():
  # Rises 2 px per column through the top edge (row 0), re-enters at the bottom (row 20).
  true_pos = np.arange(8, 34, 2.0)  # Px above the bottom row, unwrapped; track length 20.
  drawn = np.where(true_pos > 20, true_pos - 20, true_pos)
  mask = _draw(21, [[int(20 - p)] for p in drawn])
  tr = tracer.trace(mask, 1)
  np.testing.assert_allclose(tr.frac, true_pos / 20)
  np.testing.assert_array_equal(tr.wrap, (true_pos > 20).astype(int))
  np.testing.assert_allclose(tr.px, 20 - drawn)  # px stays where the ink is.
  # And back down through the bottom edge: wrap returns to 0.
  back = tracer.trace(mask[:, ::-1], 1)
  np.testing.assert_allclose(back.frac, true_pos[::-1] / 20)


def test_negative_wrap_and_the_main_scale_prior():
  # Mostly mid-track, dips below the bottom edge for 3 columns (re-entering at the top).
  pos = np.array([6, 4, 2, 0.5, -2, -4, -2, 0.5, 2, 4, 6, 8, 9, 9, 9.0])
  drawn = np.where(pos < 0, pos + 20, pos)
  tr = tracer.trace(_draw(21, [[int(round(20 - p))] for p in drawn]), 1)
  np.testing.assert_allclose(tr.frac, np.round(pos) / 20, atol=0.03)
  assert tr.wrap.min() == -1 and (tr.wrap == 0).sum() == 12
  # A window that starts on the backup scale: the most common count becomes 0.
  late = tracer.trace(_draw(21, [[int(round(20 - p))] for p in drawn[4:7]] * 1), 1)
  assert (late.wrap == 0).all()


def test_a_curve_straddling_the_edge_is_read_as_an_excursion_past_the_high_end():
  # Half the window just below the top edge, half just past it (drawn at the bottom): the
  # picture fits "around the right edge" and "around the left edge, wrapped backwards"
  # equally; backup scales carry values past the high end, so the first is read.
  pos = np.array([17, 18, 19, 21, 22, 23, 22, 21, 19, 18, 17, 18, 19, 21, 22, 23.0])
  drawn = np.where(pos > 20, pos - 20, pos)
  mask = _draw(21, [[int(20 - p)] for p in drawn])
  np.testing.assert_allclose(tracer.trace(mask, 1).frac, pos / 20)
  # On a reversed scale the high end is the left edge: the same ink reads one width lower.
  np.testing.assert_allclose(tracer.trace(mask, 1, wrap_side=-1).frac, pos / 20 - 1)


# 60 columns of a segmented Scorpio E1 render (track rows 0..59; per column the runs of curve1
# as [start, end) rows): GAMN leaves the top edge at column 18, is drawn wrapped at the bottom,
# and comes back down through the top edge at column 40/41. Column 40 keeps the crossing's
# ink at the top edge (rows 0-3) but the segmenter lost its half at the bottom edge.
_LOST_CROSSING = [
    [(5, 8)], [(5, 7)], [(1, 7)], [(0, 5)], [(3, 14)], [(12, 16)], [(8, 14)], [(5, 9)],
    [(2, 7)], [(0, 3)], [(0, 13)], [(11, 21)], [(4, 13)], [(4, 7)], [(6, 8)], [(6, 9)],
    [(7, 12)], [(4, 14)], [(0, 5), (12, 13), (45, 60)], [(35, 46)], [(41, 54)], [(53, 60)],
    [(48, 57)], [(42, 49)], [(41, 44)], [(41, 44)], [(43, 46)], [(40, 46)], [(37, 42)],
    [(40, 44)], [(36, 41)], [(36, 40)], [(39, 44)], [(38, 43)], [(33, 39)], [(31, 34)],
    [(31, 33)], [(15, 16), (31, 37)], [(36, 41)], [(40, 44)], [(0, 3), (43, 48)], [(2, 17)],
    [(9, 14)], [(8, 11)], [(9, 16)], [(14, 21)], [(20, 23)], [(20, 22)], [(20, 22)],
    [(21, 25)], [(21, 25)], [(16, 22)], [(11, 17)], [(9, 13)], [(8, 15)], [(9, 10), (14, 22)],
    [(15, 21)], [(12, 18)], [(17, 23)], [(21, 23)]]


def test_a_crossing_whose_ink_on_one_side_was_lost_still_unwraps():
  mask = _draw(60, [[r for a, b in runs for r in range(a, b)] for runs in _LOST_CROSSING])
  tr = tracer.trace(mask, 1)
  # The source read 0.66-1.05 before column 18, 1.01-1.46 to column 40, 0.6-0.86 after.
  np.testing.assert_array_equal(tr.wrap, [0] * 18 + [1] * 23 + [0] * 19)


def test_a_curve_hovering_at_the_top_edge_keeps_to_two_wrap_counts():
  # A noisy curve straddling the top edge crosses it back and forth, with spikes whose ink
  # could be read as a drop instead. Without a bound on the counts one such misread left the
  # rest of the stretch a track width low (34 columns here; Totem logs read at R² -1.3).
  rng = np.random.default_rng(9)
  v = np.r_[np.linspace(0.5, 0.85, 10), 1.0 + 0.25 * rng.standard_normal(40),
            np.linspace(0.85, 0.5, 10)]
  height = 41
  rows, cols, _ = welllog_render._rasterize(v, 0, height - 1, 2.0)
  mask = np.zeros((height, len(v)), np.uint8)
  mask[rows, cols] = 1
  tr = tracer.trace(mask, 1)
  assert set(tr.wrap) == {0, 1}
  # No column a track width off (a white-noise curve's samples are read less exactly).
  np.testing.assert_array_less(np.abs(tr.frac - v), 0.5)
  assert np.median(np.abs(tr.frac - v)) < 0.05


def test_a_spike_reads_its_peak_also_when_dashed():
  ys = np.full(21, 30.0)
  ys[10] = 6.0  # One sample far up: the ink in column 10 runs from row 18 up to row 6.
  mask = _line(41, ys, 2)
  centre = (mask[:, 10] > 0).nonzero()[0].mean()
  assert abs(centre - 6) > 5  # The run's centre is far from the sample...
  assert abs(tracer.trace(mask, 2).px[10] - 6) <= 0.5  # ...its far end is the sample.
  mask[10:13, 10] = 0  # A dash gap halfway up the spike.
  assert abs(tracer.trace(mask, 2).px[10] - 6) <= 0.5
  # A dotted curve: the spike's column is a column of 1 px dots (rows 6, 9, ..., 18).
  dotted = _line(41, ys, 2)
  dotted[np.arange(41) % 3 > 0, 10] = 0
  np.testing.assert_array_equal(dotted[:, 10].nonzero()[0], [6, 9, 12, 15, 18])
  assert abs(tracer.trace(dotted, 2).px[10] - 6) <= 0.5
  # A solid curve has no dash gaps: pieces of its class in one column are not joined.
  solid = np.where(mask > 0, 1, 0).astype(np.uint8)
  assert tracer.trace(solid, 1).px[10] > 12
  assert abs(tracer.trace(solid, 1, dash_gap=0.1).px[10] - 6) <= 0.5


def test_a_dotted_spike_among_dotted_columns_is_read_not_bridged():
  ys = np.full(21, 30.0)
  ys[10] = 6.0
  mask = _line(41, ys, 2)
  mask[np.ix_(np.arange(41) % 3 > 0, np.arange(8, 13))] = 0  # Dots every 3rd row.
  np.testing.assert_array_equal(mask[:, 9].nonzero()[0], [18, 21, 24, 27, 30])
  # Piece by piece, the spike's dots lie 12-24 rows from every dot of the flat neighbours'
  # columns, and the decoder bridged the column at row 30; as one stretch it is read.
  tr = tracer.trace(mask, 2)
  assert not tr.filled[10] and abs(tr.px[10] - 6) <= 0.5


def test_a_steep_spike_down_from_the_top_edge_is_not_a_wrap():
  height = 58
  v = np.r_[np.linspace(0.55, 0.7, 20), 0.79, 0.88, 1.0, 0.15, 0.8, 0.87,
            np.linspace(0.85, 0.6, 20)]
  mask = _line(height, (height - 1) * (1 - v), 2)
  mask[np.ix_(np.arange(height) % 5 >= 2, np.arange(19, 27))] = 0  # Dotted at the spike.
  # The spike's column holds no ink in the bottom band, so the curve cannot have come back
  # in through the bottom edge: read straight, not a track width up (1.4-1.8 from column 23).
  tr = tracer.trace(mask, 2)
  assert (tr.wrap == 0).all()
  np.testing.assert_allclose(tr.frac[27:], v[27:], atol=0.05)


def test_spikes_drawn_with_a_wide_pen_read_at_their_tips():
  # The renderer's 2 px pen also inks a steep segment's column in the next column (as a real
  # pen's width does), so a spike's tip shows in two columns, equally high.
  v = np.full(30, 0.3)
  v[[3, 6, 9]] = 0.8, 0.1, 0.9  # Three spikes in a flat stretch (the stroke's height).
  height = 61
  rows, cols, _ = welllog_render._rasterize(v, 0, height - 1, 2.0)
  mask = np.zeros((height, len(v)), np.uint8)
  mask[rows, cols] = 1
  np.testing.assert_array_equal(mask[:, 3], mask[:, 4])  # Column 4 repeats the tip.
  tips = [3, 6, 9]
  np.testing.assert_allclose(tracer.trace(mask, 1, max_gap=0).frac[tips], v[tips],
                             atol=1.0 / (height - 1))


def test_scale_parsing_and_values():
  lin = curve_values.Scale.parse("0:150")
  np.testing.assert_allclose(lin.values([0, 0.5, 1.2]), [0, 75, 180])
  log = curve_values.Scale.parse("0.2:2000:log")
  np.testing.assert_allclose(log.values([0, 0.25, 1]), [0.2, 2.0, 2000])
  np.testing.assert_allclose(log.axis([1.0, 10.0, -1.0]), [0.0, 1.0, np.nan])
  with pytest.raises(ValueError, match="LEFT:RIGHT"):
    curve_values.Scale.parse("0-150")
  with pytest.raises(ValueError, match="positive"):
    curve_values.Scale.parse("0:10:log")


def test_csv_and_las_round_trip(tmp_path):
  mask = _draw(11, [[5], [4], [], [3]])
  tr = tracer.trace(mask, 1, max_gap=0)
  scale = curve_values.Scale(0.0, 100.0)
  depth = np.array([10.0, 10.5, 11.0, 1000.1234567891])
  cols = curve_values.table(np.arange(4),
                            [curve_values.Series("curve1", tr, lambda y: y + 100, scale)],
                            depth=depth)
  curve_values.write_csv(tmp_path / "c.csv", cols)
  with open(tmp_path / "c.csv") as f:
    rows = list(csv.DictReader(f))
  assert rows[0]["curve1_px"] == "105.0" and rows[2]["curve1_px"] == ""
  # Confidence extends the columns after the existing ones; empty where there is no value.
  assert list(rows[0])[-2:] == ["curve1_filled", "curve1_confidence"]
  assert rows[0]["curve1_confidence"] == "1.000" and rows[2]["curve1_confidence"] == ""
  assert float(rows[1]["curve1_value"]) == pytest.approx(60.0)
  # Full precision: the float read back is the float written (6 significant digits lost 1e-4).
  assert float(rows[3]["depth"]) == depth[3]
  assert float(rows[3]["curve1_frac"]) == tr.frac[3]
  las.write(tmp_path / "c.las", [10.0, 10.5, 11.0, 11.5], {"GR": scale.values(tr.frac)},
            depth_unit="FT")
  got = lasio.read(tmp_path / "c.las")
  assert got.curves["DEPT"].unit == "FT"
  np.testing.assert_allclose(got["GR"], [50, 60, np.nan, 70], equal_nan=True)


def test_csv_headers_carry_names_and_units():
  tr = tracer.trace(_draw(11, [[5], [4]]), 1, max_gap=0)
  cols = curve_values.table(np.arange(2), [
      curve_values.Series("GR", tr, lambda y: y, curve_values.Scale(0, 150), "GAPI"),
      curve_values.Series("DT", tr, lambda y: y)], depth=np.array([1.0, 2.0]), depth_unit="FT")
  assert list(cols) == ["depth_px", "depth[FT]", "GR_px", "GR_wrap", "GR_frac",
                        "GR_value[GAPI]", "GR_filled", "GR_confidence", "DT_px", "DT_wrap",
                        "DT_frac", "DT_filled", "DT_confidence"]


def test_r2():
  t = np.array([1.0, 2, 3, 4, np.nan])
  assert curve_values.r2(t, t) == 1.0
  assert curve_values.r2(t, np.full(5, 2.5)) == pytest.approx(0.0)
  assert np.isnan(curve_values.r2(t, np.full(5, np.nan)))


def test_cleanup_drops_grid_row_pieces_beside_a_jagged_curve_and_keeps_a_curve_on_the_line():
  # A jagged curve crossing the grid line at row 23 every few columns; the segmenter painted
  # the line's pieces between crossings as curve (each shorter than the value-line rule's 16).
  rng = np.random.default_rng(0)
  y = 23 + 10 * np.sin(np.arange(240) / 4.0) + rng.normal(0, 1.5, 240)
  y[200:] = 23.0  # At the end the curve runs on the line itself: its only run there.
  clean = _line(48, y)
  image = np.full(clean.shape, 235, np.uint8)
  image[[10, 23, 36]] = 150  # Three value-grid lines.
  image[clean == 1] = 30
  grid = mask_cleanup.value_grid_rows(image)
  assert np.flatnonzero(grid).tolist() == [10, 23, 36]
  dirty = clean.copy()
  dirty[23, :200] = 1
  np.testing.assert_array_equal(mask_cleanup.cleanup_mask(clean, grid_rows=grid), clean)
  out = mask_cleanup.cleanup_mask(dirty, grid_rows=grid)
  want = tracer.trace(clean, 1)
  # Line pixels touching the curve stay (they join its run): in 2 of 240 columns they make a
  # steep run tie with its neighbour's end, which reads as a spike tip on the line (2 px off).
  error = np.abs(tracer.trace(out, 1).px - want.px)
  assert (error <= 0.5).mean() >= 0.99 and error.max() <= 2
  assert (out[23, 200:] == 1).all()  # The curve on the line stays.
  assert np.abs(tracer.trace(mask_cleanup.cleanup_mask(dirty), 1).px - want.px).max() > 3


def _curve_with_flat_part(width=200):
  x = np.arange(width)
  y = 20 + 8 * np.sin(x / 15.0)
  y[60:100] = y[60]  # Flat for 40 columns: short of a grid line's max(64, W / 4).
  return y


def test_cleanup_drops_grid_lines_painted_as_curve_and_keeps_the_curve():
  y = _curve_with_flat_part()
  clean = _line(40, y)
  np.testing.assert_array_equal(mask_cleanup.cleanup_mask(clean), clean)  # Sloped and flat kept.
  dirty = clean.copy()
  dirty[23, :] = 1  # A value-axis grid line that the curve crosses 5 times.
  dirty[4, :] = 1  # One it never touches.
  dirty[:, 120] = 1  # A depth line, crossing the curve and both grid lines.
  dirty[37, 170] = 1  # A speck far from everything.
  out = mask_cleanup.cleanup_mask(dirty)
  assert set(np.unique(out)) == {0, 1}
  assert not out[4].any() and out[37, 170] == 0
  out, clean = out.astype(bool), clean.astype(bool)
  # Left on the lines: the curve's own ink, and line pixels that touch it from above or below
  # (they join the curve's run; its centre moves by half a pixel).
  assert not (out[23] & ~(clean[22] | clean[23] | clean[24])).any()
  assert not (out[:, 120] & ~clean[:, 120]).any()
  want = tracer.trace(clean, 1)
  got = tracer.trace(out, 1)
  np.testing.assert_allclose(got.px, want.px, atol=0.5)
  assert np.abs(tracer.trace(dirty, 1).px - want.px).max() > 5  # Lines left in mislead.


def test_cleanup_keeps_a_long_flat_curve_alone_in_its_columns():
  # A caliper at bit size: one row for the whole log. A grid line would have the curve beside
  # it in most of its columns; this has nothing, so it is read as the curve.
  flat = _line(40, np.full(300, 25.0))
  np.testing.assert_array_equal(mask_cleanup.cleanup_mask(flat), flat)


def test_crossing_curves_of_different_classes_stay_apart():
  x = np.arange(100)
  y1 = 30 + 0.6 * (x - 50)  # Falls in value (rows grow).
  y2 = 30 - 0.2 * (x - 50)
  mask = _line(61, y1, 1, _line(61, y2, 2))  # Curve1 drawn over curve2 at the crossing.
  # Past the crossing a segmenter often keeps the colour it just saw: curve1's ink read as
  # curve2 for a few columns, a branch of curve2's mask that leaves at curve1's slope. The
  # nearest run to the last position is then curve1's for a while; the straight-ahead one is
  # curve2's.
  mask[(mask == 1) & (x >= 50) & (x < 58)] = 2
  for cls, y in ((1, y1), (2, y2)):
    tr = tracer.trace(mask, cls)
    assert np.isfinite(tr.px).all()  # Curve2's gap where curve1 covers it is bridged.
    away = np.abs(x - 51) > 2  # Merged ink right at the crossing reads between the two.
    np.testing.assert_allclose(tr.px[away], y[away], atol=1.0)


def test_a_stray_blob_does_not_pull_the_trace():
  x = np.arange(120)
  y = 20 + 6 * np.sin(x / 10)
  mask = _line(41, y)
  mask[2:7, 0:4] = 1  # At the start, taller than the curve's own runs there.
  mask[30:34, 50:54] = 1  # Beside the curve.
  mask[:, 80:84] = 0
  mask[6:9, 81:83] = 1  # In a gap of the curve, 17 px (40 % of the track) above it.
  tr = tracer.trace(mask, 1)
  np.testing.assert_allclose(tr.px, y, atol=1.0)
  assert tr.filled[80:84].all() and tr.filled.sum() == 4  # Bridged past the blob.
  # Two runs in a column: the pick is right, but less certain than a clean column.
  assert tr.confidence[51] == pytest.approx(2 / 3) and tr.confidence[40] == 1.0


@pytest.mark.parametrize("gap", [4, 6])
def test_dashed_curve2_gives_a_continuous_trace_with_lower_confidence_in_gaps(gap):
  period = 6 + gap
  x = np.arange(11 * period + 6)  # The last column is a dash's.
  y = 20 + 8 * np.sin(x / 12)
  dashed = _line(41, y, 2)
  in_gap = x % period >= 6  # 6 px dashes.
  dashed[:, in_gap] = 0
  np.testing.assert_array_equal(mask_cleanup.cleanup_mask(dashed), dashed)  # Dashes are kept.
  tr = tracer.trace(dashed, 2)
  assert np.isfinite(tr.px).all()
  np.testing.assert_array_equal(tr.filled, in_gap)
  np.testing.assert_allclose(tr.px, y, atol=1.0)
  conf = tr.confidence
  assert conf[~in_gap].min() == 1.0 and conf[in_gap].max() <= 0.5
  assert conf[7] < conf[6] and conf[period - 2] < conf[period - 1]  # Lowest far from ink.
  assert curve_values.coverage(tr) == 1.0
  assert curve_values.coverage(tracer.trace(dashed, 2, max_gap=0)) == np.mean(~in_gap)


def test_confidence_is_the_mean_probability_of_the_chosen_run():
  mask = _draw(11, [[2, 3], [4], [4]])
  mask[8, 2] = 1  # A second run in column 2.
  probs = np.full((11, 3, 2), 0.9)
  probs[3, 0, 1] = 0.5
  tr = tracer.trace(mask, 1, probs=probs)
  np.testing.assert_allclose(tr.confidence, [0.7, 0.9, 0.9 * 2 / 3])
  np.testing.assert_allclose(tracer.trace(mask, 1, probs=probs[..., 1]).confidence,
                             tr.confidence)
