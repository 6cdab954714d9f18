"""The QC pictures: the re-plotted log (curves at the right place, on their scales) and the
overlay's legend."""

import numpy as np
from PIL import Image

from ssl_seg import plots
from ssl_seg.digitizer import curve_values, overlay, replot, scan_layout, tracer


def _trace(frac):
  frac = np.asarray(frac, np.float64)
  n = len(frac)
  return tracer.Trace(px=np.where(np.isfinite(frac), 10.0, np.nan), wrap=np.zeros(n, int),
                      frac=frac, filled=np.zeros(n, bool), confidence=np.ones(n))


def _columns(picture, box, colour):
  """{picture row: mean picture column} of `colour`-like pixels inside `box` (its frame left
  out)."""
  x0, y0, x1, y1 = (int(round(v)) for v in box)
  part = picture[y0 + 2:y1 - 2, x0 + 2:x1 - 2].astype(int)
  near = np.abs(part - np.asarray(colour, int)).sum(-1) < 120
  return {y0 + 2 + r: x0 + 2 + np.nonzero(row)[0].mean() for r, row in enumerate(near)
          if row.any()}


def test_a_straight_curve_is_drawn_at_its_value_on_its_own_scale(tmp_path):
  n = 400
  image = np.full((n, 60), 255, np.uint8)  # Portrait: depth down the page.
  layout = scan_layout.make_layout(image.shape, "vertical", ["5:55"], depth=(1000.0, 1399.0))
  gr = curve_values.Series("gr", _trace(np.full(n, 0.25)), layout.to_original(0),
                           curve_values.Scale(0, 100), "GAPI")
  # 0.75 of a log scale 1..100 is 10 ** 1.5: it must sit 3/4 across, not at 31.6 / 100.
  res = curve_values.Series("res", _trace(np.full(n, 0.75)), layout.to_original(0),
                            curve_values.Scale(1, 100, log=True), "OHMM")
  out = replot.replot(str(tmp_path / "r.png"), image, layout, [("GR", gr, 1), ("RES", res, 2)],
                      depth=layout.depth_at(np.arange(n)), depth_unit="M")
  picture = np.asarray(Image.open(out["path"]).convert("RGB"))
  w, h = out["size"]
  assert picture.shape == (h, w, 3) and h > w  # Depth down the page: a tall picture.
  assert picture.std() > 10  # Not blank.
  for label, share, colour in (("GR", 0.25, plots.CLASS_COLOURS[1]),
                               ("RES", 0.75, plots.CLASS_COLOURS[2])):
    x0, y0, x1, y1 = out["boxes"][label]
    cols = _columns(picture, out["boxes"][label], colour)
    assert len(cols) > 0.9 * (y1 - y0 - 4), label  # The line runs the whole depth.
    np.testing.assert_allclose(list(cols.values()), x0 + share * (x1 - x0), atol=2.0,
                               err_msg=label)


def test_a_horizontal_scan_is_turned_so_depth_runs_down_and_position_0_is_left(tmp_path):
  n = 300
  image = np.full((50, n), 255, np.uint8)  # Landscape: depth along the width.
  layout = scan_layout.make_layout(image.shape, "horizontal")
  frac = np.linspace(0, 1, n)  # Left edge at the first depth, right edge at the last.
  s = curve_values.Series("", _trace(frac), layout.to_original(0), None, "")
  out = replot.replot(str(tmp_path / "h.png"), image, layout, [("CURVE1", s, 1)])
  picture = np.asarray(Image.open(out["path"]).convert("RGB"))
  x0, y0, x1, y1 = out["boxes"]["CURVE1"]
  cols = _columns(picture, out["boxes"]["CURVE1"], plots.CLASS_COLOURS[1])
  rows = np.array(sorted(cols))
  expect = x0 + (rows - y0) / (y1 - y0) * (x1 - x0)  # Depth down, position across.
  np.testing.assert_allclose([cols[r] for r in rows], expect, atol=3.0)


def test_the_overlay_legend_shows_class_colours_and_keeps_the_size():
  image = np.full((200, 300), 255, np.uint8)
  mask = np.zeros(image.shape, np.uint8)
  layout = scan_layout.make_layout(image.shape)
  legend = overlay.legend_entries(("background", "curve1", "curve2"), [1, 2], ["GR", "DT"])
  assert [t for _, t in legend] == ["curve1: GR", "curve2: DT", "traced centre line"]
  plain = overlay.draw_overlay(image, mask, layout, [{}])
  rgb = overlay.draw_overlay(image, mask, layout, [{}], legend)
  assert rgb.shape == plain.shape == (200, 300, 3)
  assert (plain == 255).all()  # Nothing painted: any colour below is the legend's.
  corner = rgb[:60, :150].reshape(-1, 3)
  for colour in (*plots.CLASS_COLOURS[1:], overlay.CENTRE_COLOUR):
    assert (corner == colour).all(-1).sum() > 20, colour  # A swatch, not a stray pixel.
  assert (rgb[100:, 200:] == 255).all()  # Only the corner is drawn on.
  assert (corner == 0).all(-1).any()  # Black text / frame.
