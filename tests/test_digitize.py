"""Curve extraction on hand-made masks: centre lines, gaps, wrap-around; CSV and LAS output."""

import csv

import lasio
import numpy as np
import pytest

from ssl_seg import digitize


def _draw(height, rows_per_col, cls=1):
  """A mask with class `cls` at the given (col -> list of rows)."""
  mask = np.zeros((height, len(rows_per_col)), np.uint8)
  for c, rows in enumerate(rows_per_col):
    mask[list(rows), c] = cls
  return mask


def test_centre_line_is_the_middle_of_each_run_and_converts_to_track_units():
  mask = _draw(11, [[2, 3], [4], [6, 7, 8], []])
  mask[0, 1] = 2  # Another class in the same column is ignored.
  tr = digitize.trace(mask, 1, max_gap=0)
  np.testing.assert_allclose(tr.px[:3], [2.5, 4.0, 7.0])
  assert np.isnan(tr.px[3]) and np.isnan(tr.frac[3])  # Absent stays empty.
  assert np.isnan(digitize.trace(mask, 3).frac).all()  # A class with no pixels at all.
  np.testing.assert_allclose(tr.frac[:3], (10 - np.array([2.5, 4.0, 7.0])) / 10)
  # Within track rows 2..8, position is measured from row 8 (0) to row 2 (1).
  inner = digitize.trace(mask, 1, top=2, bottom=8, max_gap=0)
  np.testing.assert_allclose(inner.frac[:3], (8 - np.array([2.5, 4.0, 7.0])) / 6)


def test_short_gaps_are_bridged_and_flagged_long_ones_stay_empty():
  cols = [[5]] * 3 + [[]] * 2 + [[7]] * 3 + [[]] * 6 + [[5]] * 2
  tr = digitize.trace(_draw(11, cols), 1, max_gap=3)
  np.testing.assert_allclose(tr.px[3:5], [5 + 2 / 3, 5 + 4 / 3])
  assert tr.filled[3:5].all() and not tr.filled[:3].any()
  assert np.isnan(tr.px[8:14]).all() and not tr.filled[8:14].any()
  off = digitize.trace(_draw(11, cols), 1, max_gap=0)
  assert np.isnan(off.px[3:5]).all()


def test_a_curve_leaving_the_top_edge_wraps_to_the_bottom_and_unwraps():
  # Rises 2 px per column through the top edge (row 0), re-enters at the bottom (row 20).
  true_pos = np.arange(8, 34, 2.0)  # Px above the bottom row, unwrapped; track length 20.
  drawn = np.where(true_pos > 20, true_pos - 20, true_pos)
  mask = _draw(21, [[int(20 - p)] for p in drawn])
  tr = digitize.trace(mask, 1)
  np.testing.assert_allclose(tr.frac, true_pos / 20)
  np.testing.assert_array_equal(tr.wrap, (true_pos > 20).astype(int))
  np.testing.assert_allclose(tr.px, 20 - drawn)  # px stays where the ink is.
  # And back down through the bottom edge: wrap returns to 0.
  back = digitize.trace(mask[:, ::-1], 1)
  np.testing.assert_allclose(back.frac, true_pos[::-1] / 20)


def test_negative_wrap_and_the_main_scale_prior():
  # Mostly mid-track, dips below the bottom edge for 3 columns (re-entering at the top).
  pos = np.array([6, 4, 2, 0.5, -2, -4, -2, 0.5, 2, 4, 6, 8, 9, 9, 9.0])
  drawn = np.where(pos < 0, pos + 20, pos)
  tr = digitize.trace(_draw(21, [[int(round(20 - p))] for p in drawn]), 1)
  np.testing.assert_allclose(tr.frac, np.round(pos) / 20, atol=0.03)
  assert tr.wrap.min() == -1 and (tr.wrap == 0).sum() == 12
  # A window that starts on the backup scale: the most common count becomes 0.
  late = digitize.trace(_draw(21, [[int(round(20 - p))] for p in drawn[4:7]] * 1), 1)
  assert (late.wrap == 0).all()


def test_scale_parsing_and_values():
  lin = digitize.Scale.parse("0:150")
  np.testing.assert_allclose(lin.values([0, 0.5, 1.2]), [0, 75, 180])
  log = digitize.Scale.parse("0.2:2000:log")
  np.testing.assert_allclose(log.values([0, 0.25, 1]), [0.2, 2.0, 2000])
  np.testing.assert_allclose(log.axis([1.0, 10.0, -1.0]), [0.0, 1.0, np.nan])
  with pytest.raises(ValueError, match="LEFT:RIGHT"):
    digitize.Scale.parse("0-150")
  with pytest.raises(ValueError, match="positive"):
    digitize.Scale.parse("0:10:log")


def test_csv_and_las_round_trip(tmp_path):
  mask = _draw(11, [[5], [4], [], [3]])
  tr = digitize.trace(mask, 1, max_gap=0)
  scale = digitize.Scale(0.0, 100.0)
  cols = digitize.table(np.arange(4), [{"curve1": tr}], names=[""],
                        to_original=[lambda y: y + 100], scales=[scale],
                        depth=np.array([10.0, 10.5, 11.0, 11.5]))
  digitize.write_csv(tmp_path / "c.csv", cols)
  with open(tmp_path / "c.csv") as f:
    rows = list(csv.DictReader(f))
  assert rows[0]["curve1_px"] == "105.0" and rows[2]["curve1_px"] == ""
  assert float(rows[1]["curve1_value"]) == pytest.approx(60.0)
  digitize.write_las(tmp_path / "c.las", [10.0, 10.5, 11.0, 11.5],
                     {"GR": scale.values(tr.frac)}, depth_unit="FT")
  las = lasio.read(tmp_path / "c.las")
  assert las.curves["DEPT"].unit == "FT"
  np.testing.assert_allclose(las["GR"], [50, 60, np.nan, 70], equal_nan=True)


def test_r2():
  t = np.array([1.0, 2, 3, 4, np.nan])
  assert digitize.r2(t, t) == 1.0
  assert digitize.r2(t, np.full(5, 2.5)) == pytest.approx(0.0)
  assert np.isnan(digitize.r2(t, np.full(5, np.nan)))
