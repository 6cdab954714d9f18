"""Tracks found from border lines (`digitizer.tracks`), alone and through predict / evaluate.

Renders put depth along the width, so the value axis is the rows; their layout's "value_rows"
are each curve's track interior, i.e. the span between the borders. The end-to-end checks use
test_predict's tiny untrained checkpoint: they pin what is found and written, not accuracy.
"""

import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from test_predict import _save_stage

from ssl_seg.data import welllog_render, welllog_style
from ssl_seg.digitizer import (
  curve_values,
  digitize,
  evaluation,
  layout_files,
  overlay,
  scan_layout,
  segmenter,
  tiled,
  tracks,
)

H, W = 200, 300
GRID = dict(p_border=1.0, p_grid=1.0, p_depth_grid=1.0, p_skew=0.0)


def _render(seed, two, **style):
  """(uint8 [H, W] scan, its track spans): borders, grid and depth lines on, no skew."""
  style = welllog_style.RenderStyle(p_two_tracks=float(two), **{**GRID, **style})
  image, _, layout = welllog_render.render_log_with_layout(seed, height=H, width=W, style=style)
  return image, sorted({(int(a), int(b) + 1) for a, b in layout["value_rows"]})


def _near(found, want, px=2):
  return len(found) == len(want) and np.abs(np.subtract(found, want)).max() <= px


def _page(border, grid, heavy=1.8):
  """A clean page, value axis down: borders at rows 20 and 180 of opacity `border` (0: none),
  grid lines every 20 rows between them of opacity `grid`, the middle one `heavy` x as dark
  (as the renderer draws them), and a curve wandering across the track."""
  alpha = np.zeros((H, W))
  alpha[40:180:20] = grid
  alpha[100] = min(1.0, heavy * grid)
  if border:
    alpha[[20, 180]] = border
  x = np.arange(W)
  alpha[np.rint(100 + 60 * np.sin(x / 23)).astype(int), x] = 0.9
  return np.rint(235 * (1 - alpha)).astype(np.uint8)


@pytest.mark.parametrize("two", [False, True], ids=["one_track", "two_tracks"])
@pytest.mark.parametrize("seed", range(6))
def test_rendered_tracks_are_found_within_2px_with_grid_on(seed, two):
  image, want = _render(seed, two)
  assert len(want) == 1 + two
  found = tracks.find_tracks(image, vertical=False)
  assert _near(found, want), (found, want)


@pytest.mark.parametrize("seed", range(3))
def test_a_skewed_render_still_gives_its_tracks(seed):
  image, want = _render(seed, True, p_skew=1.0)  # Up to 3 px at the ends.
  found = tracks.find_tracks(image, vertical=False)
  assert _near(found, want), (found, want)


@pytest.mark.parametrize("border,grid", [(0.6, 0.35), (0.95, 0.45), (0.6, 0.12)])
def test_borders_not_grid_lines_even_a_heavy_one_darker_than_the_borders(border, grid):
  # (0.6, 0.35): the heavy grid line (0.63) is darker than the borders and still no border.
  assert tracks.find_tracks(_page(border, grid), vertical=False) == ((21, 180),)


def test_a_portrait_scan_gives_columns():
  image, want = _render(1, True)
  portrait = np.ascontiguousarray(np.rot90(image))  # Depth down the page; row r -> column r.
  found = tracks.find_tracks(portrait, vertical=True)
  assert _near(found, want), (found, want)
  assert tracks.describe(found, H, True).startswith("2 tracks found automatically (columns ")
  assert scan_layout.find_tracks(portrait)[0] == found  # auto: taller than wide is vertical.


@pytest.mark.parametrize("seed", range(4))
def test_no_borders_falls_back_to_the_whole_extent_and_says_so(seed):
  image, _ = _render(seed, seed % 2, p_border=0.0)
  assert tracks.find_tracks(image, vertical=False) == ((0, H),)
  assert tracks.find_tracks(_page(0, 0.35), vertical=False) == ((0, H),)  # Grid only.
  assert scan_layout.find_tracks(image) == (
      ((0, H),), "no track borders found; using the whole height")


# Through predict and evaluate, on test_predict's tiny untrained checkpoint.


@pytest.fixture(scope="module")
def stage_dir(tmp_path_factory):
  return _save_stage(str(tmp_path_factory.mktemp("ckpt") / "finetune"))


@pytest.fixture(scope="module")
def seg(stage_dir):
  return segmenter.load(stage_dir, window=64, overlap=16, batch_size=2)


@pytest.fixture
def two_track_scan(tmp_path):
  image, want = _render(0, True)
  found = tracks.find_tracks(image, vertical=False)
  assert _near(found, want)
  Image.fromarray(image).save(tmp_path / "log.png")
  return str(tmp_path / "log.png"), found


def test_predict_cli_reads_the_tracks_it_found_and_draws_them(stage_dir, two_track_scan, tmp_path):
  path, found = two_track_scan
  proc = subprocess.run(
      [sys.executable, "-m", "ssl_seg.predict", f"--checkpoint={stage_dir}", f"--input={path}",
       f"--output={tmp_path / 'out'}", "--window=64", "--overlap=16", "--scale=0:150",
       "--replot=false", "--track-detect"], capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  spans = ", ".join(f"{a}:{b}" for a, b in found)
  assert f"log.png: 2 tracks found automatically (rows {spans})" in proc.stderr, proc.stderr
  assert "used for every curve of every track found" in proc.stderr
  with open(tmp_path / "out" / "log_curves.csv") as f:
    rows = list(csv.DictReader(f))
  # Per-track curves, the one --scale serving all four.
  for t in (1, 2):
    for k in (1, 2):
      assert f"t{t}_curve{k}_value" in rows[0]
    px = np.array([float(r[f"t{t}_curve2_px"]) for r in rows if r[f"t{t}_curve2_px"]])
    a, b = found[t - 1]
    assert len(px) and ((px >= a) & (px <= b - 1)).all()  # Inside its own track.
  picture = np.asarray(Image.open(tmp_path / "out" / "log_overlay.png"))
  orange = (picture == overlay.TRACK_COLOUR).all(-1)
  for a, b in found:  # The rows just outside each track (right of the legend box).
    assert orange[a - 1, -W // 4:].all() and orange[b, -W // 4:].all()
  assert not orange[found[0][0]:found[0][1], -W // 4:].any()  # Nothing inside a track.


def test_per_curve_values_for_another_track_count_fail_the_scan_with_one_line(seg, two_track_scan,
                                                                           tmp_path):
  path, found = two_track_scan
  lines = []
  scales = [curve_values.Scale(0, 150), curve_values.Scale(140, 40)]  # One track's worth.
  done, failed = digitize.run(seg, [path], str(tmp_path / "a"), find_tracks=True, scales=scales,
                              replot=False, log=lines.append)
  assert not done and len(failed) == 1 and lines == [f"error: {path}: {failed[0][1]} (skipped)"]
  assert failed[0][1].startswith(f"{tracks.describe(found, H, False)}: give one --scale for "
                                 "every curve or one per curve (4: T1_CURVE1, T1_CURVE2, ")
  assert failed[0][1].endswith("; or give --track=X0:X1 per track (without --track-detect: "
                               "one track over the whole image)")
  (out,), _ = digitize.run(seg, [path], str(tmp_path / "b"), find_tracks=True,
                           scales=scales * 2, replot=False, log=lines.append)
  assert out["tracks"] == found and out["coverage"].keys() == {
      "t1_curve1", "t1_curve2", "t2_curve1", "t2_curve2"}
  # Without detection (the default, and --notrack-detect): one track, as before.
  (out,), _ = digitize.run(seg, [path], str(tmp_path / "c"), scales=scales, replot=False,
                           log=lines.append)
  assert out["tracks"] == ((0, H),) and out["found"] is None
  # A layout's spans are used as given; its curves for one track do not fit two found.
  given = layout_files.parse({"tracks": [{"span": [10, 90]}]})
  (out,), _ = digitize.run(seg, [path], str(tmp_path / "d"), layout=given, find_tracks=True,
                           replot=False, log=lines.append)
  assert out["tracks"] == ((10, 90),) and out["found"] is None
  one = layout_files.parse({"tracks": [{"curves": [{"class": 1, "left": 0, "right": 150}]}]})
  _, failed = digitize.run(seg, [path], str(tmp_path / "e"), layout=one, find_tracks=True,
                           replot=False, log=lines.append)
  assert failed[0][1].endswith(": the layout gives curves for 1 track(s); or give each track's "
                               "span in the layout (without --track-detect: one track over "
                               "the whole image)")


def test_a_scan_read_in_bands_finds_its_tracks_from_a_sample_of_rows(seg, tmp_path):
  image, want = _render(1, True)
  portrait = np.ascontiguousarray(np.rot90(image))  # [W, H]: depth down the page.
  Image.fromarray(portrait).save(tmp_path / "p.tif")  # Uncompressed: read in bands.
  cap = portrait.size // 3
  bands = tiled.open_bands(str(tmp_path / "p.tif"), None, cap, error=None)
  np.testing.assert_array_equal(tiled.depth_sample(bands, rows=100), portrait[::3])
  (out,), failed = digitize.run(seg, [str(tmp_path / "p.tif")], str(tmp_path / "out"),
                                max_pixels=cap, find_tracks=True, replot=False,
                                log=lambda msg: None)
  assert not failed and out["tracks"] == tracks.find_tracks(portrait, vertical=True)
  assert _near(out["tracks"], want)


def test_evaluate_segments_only_the_tracks_found(seg, two_track_scan, tmp_path):
  path, found = two_track_scan
  Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "log_mask.png")
  lines = []
  summary, _, failed = evaluation.evaluate_files(seg, [path], str(tmp_path), find_tracks=True,
                                                 log=lines.append)
  assert not failed and summary["files"] == 1
  assert lines == [f"{path}: {tracks.describe(found, H, False)}"]
  layout = scan_layout.make_layout((H, W), tracks=found)
  pred = scan_layout.segment_scan(seg, np.asarray(Image.open(path)), layout)
  outside = np.ones(H, bool)
  for a, b in found:
    outside[a:b] = False
  assert not pred[outside].any() and pred[~outside].any()
  # The same confusion matrix: background everywhere, so accuracy is the background share.
  assert summary["pixel_acc"] == pytest.approx((pred == 0).mean())
