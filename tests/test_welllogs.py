"""Tests for the scanned well-log renderer and its data sets (LAS reading: test_las_io)."""

import dataclasses

import numpy as np
import pytest
from test_las_io import write_curves

from ssl_seg.data import welllog_curves, welllog_render, welllog_style, welllogs as wl
from ssl_seg.digitizer import las

H, W = 64, 300
# One track and solid curves, so every column with data has ink of both curves in known rows.
CLEAN = welllog_style.RenderStyle.clean(p_two_tracks=0.0, p_styled_curve2=0.0, p_broken=0.0)


def _flat(width, a, b):
  return np.stack([np.full(width, a), np.full(width, b)])


def test_same_seed_same_arrays_different_seed_different():
  img, mask = welllog_render.render_log(3, height=H, width=W)
  img2, mask2 = welllog_render.render_log(np.random.default_rng(3), height=H, width=W)
  np.testing.assert_array_equal(img, img2)
  np.testing.assert_array_equal(mask, mask2)
  assert img.dtype == mask.dtype == np.uint8 and img.shape == mask.shape == (H, W)
  img3, mask3 = welllog_render.render_log(4, height=H, width=W)
  assert not np.array_equal(img, img3) and not np.array_equal(mask, mask3)


def test_clean_render_mask_is_exactly_the_ink():
  for seed in range(4):
    img, mask = welllog_render.render_log(seed, height=H, width=W,
                                          style=welllog_style.RenderStyle.clean())
    assert (mask > 0).any()
    assert img[mask > 0].max() <= 0.3 * 255 + 1, "curve pixels must be dark ink"
    assert (img[mask == 0] == 255).all(), "everything else must be white paper"


def test_degraded_render_mask_pixels_much_darker():
  for seed in range(4):
    img, mask = welllog_render.render_log(seed, height=H, width=W)
    assert img[mask > 0].mean() + 60 < img[mask == 0].mean()


def test_default_style_has_both_classes_and_thin_curves():
  fractions = []
  for seed in range(8):
    _, mask = welllog_render.render_log(seed, height=128, width=400)
    assert set(np.unique(mask)) == {0, 1, 2}
    fractions.append((mask > 0).mean())
  # Jagged curves (RenderStyle.p_rough) draw a vertical run between every pair of samples.
  assert 0.003 < np.mean(fractions) < 0.04, fractions
  assert 0.002 < min(fractions) and max(fractions) < 0.07, fractions


def test_curve2_wins_where_curves_overlap():
  _, mask = welllog_render.render_log(0, height=H, width=W, curves=_flat(W, 0.5, 0.5), style=CLEAN)
  assert (mask == 2).any() and not (mask == 1).any()


def test_values_past_the_scale_wrap_to_the_other_edge():
  curves = _flat(W, 0.8, np.nan)
  curves[0, 100:200] = 1.2  # Past the right edge: redrawn at 0.2, near the bottom.
  curves[0, 250:] = -0.2  # Below the left edge: redrawn at 0.8, near the top.
  _, mask = welllog_render.render_log(0, height=H, width=W, curves=curves, style=CLEAN)
  ink_rows = lambda cols: np.nonzero(mask[:, cols] == 1)[0]
  top_rows, wrapped_rows = ink_rows(slice(20, 80)), ink_rows(slice(120, 180))
  assert top_rows.max() < H * 0.4 and wrapped_rows.min() > H * 0.6
  np.testing.assert_array_equal(np.unique(ink_rows(slice(260, 300))), np.unique(top_rows))
  # The crossing draws a run out through the top edge and back in from the bottom edge.
  crossing = ink_rows(slice(99, 101))
  assert crossing.min() < top_rows.min() and crossing.max() > wrapped_rows.max()


@pytest.mark.parametrize("line_width", [1.0, 2.0])
def test_nan_gap_has_no_ink_of_that_curve(line_width):
  curves = _flat(W, 0.3, 0.7)
  curves[0] += 0.2 * np.sin(np.arange(W) / 3)  # Steep segments get widened into next columns.
  curves[1, 100:160] = np.nan
  curves[0, 200:230] = np.nan
  style = dataclasses.replace(CLEAN, line_width=(line_width, line_width))
  _, mask = welllog_render.render_log(1, height=H, width=W, curves=curves, style=style)
  per_col = lambda cls: (mask == cls).any(axis=0)
  assert not per_col(2)[100:160].any()
  assert per_col(2)[:100].all() and per_col(2)[160:].all()
  assert not per_col(1)[200:230].any()
  assert per_col(1)[:200].all() and per_col(1)[230:].all()


def test_broken_ink_removes_mask_too():
  style = dataclasses.replace(CLEAN, p_broken=1.0, broken_gaps_per_1000px=20.0)
  img, mask = welllog_render.render_log(2, height=H, width=W, curves=_flat(W, 0.3, 0.7),
                                        style=style)
  assert not (mask == 1).any(axis=0).all(), "expected gaps in the ink"
  assert img[mask > 0].max() < 128 and (img[mask == 0] == 255).all()


def test_skew_rotates_image_and_mask_together():
  curves = _flat(W, 0.3, 0.7)
  style = dataclasses.replace(CLEAN, p_skew=1.0, skew_max_deg=2.0, skew_max_shift_px=6.0)
  img, mask = welllog_render.render_log(5, height=H, width=W, curves=curves, style=style)
  _, straight = welllog_render.render_log(5, height=H, width=W, curves=curves, style=CLEAN)
  assert not np.array_equal(mask, straight)
  assert img[mask > 0].mean() < 110
  # Bilinear resampling greys the ink's edges, but no dark ink lies outside the mask.
  assert (img[mask == 0] < 100).sum() < 0.1 * (mask > 0).sum()


def test_header_block_has_text_and_no_ink():
  style = dataclasses.replace(CLEAN, p_header=1.0)
  # Wide enough for any header text (a header needs 3x its own width; the longest is 142 px).
  img, mask = welllog_render.render_log(0, height=H, width=450, style=style)
  assert not mask[:, :60].any() and mask[:, 150:].any()
  assert (img[:, :60] < 200).sum() > 50


def test_input_validation():
  with pytest.raises(ValueError, match="height"):
    welllog_render.render_log(0, height=15, width=W)
  with pytest.raises(ValueError, match="width"):
    welllog_render.render_log(0, height=H, width=31)
  with pytest.raises(ValueError, match="curves"):
    welllog_render.render_log(0, height=H, width=W, curves=np.zeros((3, W)))
  with pytest.raises(ValueError, match="p_blur"):
    welllog_style.RenderStyle(p_blur=1.5)


def test_render_from_las_inks_data_and_not_gaps(tmp_path):
  rng = np.random.default_rng(0)
  gr = 60 + 30 * np.sin(np.arange(W) / 15) + rng.normal(0, 3, W)
  gr[120:170] = las.LAS_MISSING
  rhob = np.full(W, 2.4) + rng.normal(0, 0.05, W)
  path, _ = write_curves(tmp_path, n=W, GR=gr, RHOB=rhob)
  d, values = las.read_las_curves(path, ("GR", "RHOB"))
  track = np.stack([las.las_to_track(values[0], left=0, right=150),
                    las.las_to_track(values[1], left=1.0, right=2.95)])  # Apart from GR.
  curves = las.resample_to_width(d, track, W)
  _, mask = welllog_render.render_log(0, height=H, width=W, curves=curves, style=CLEAN)
  gr_cols = (mask == 1).any(axis=0)
  assert not gr_cols[120:170].any()
  assert gr_cols[:120].all() and gr_cols[170:].all()
  assert (mask == 2).any(axis=0).all()


def test_render_dataset_widths_and_single_example_replay():
  kwargs = {"height": H, "min_width": 64, "max_width": 400}
  data = wl.render_dataset(7, 6, labeled=True, **kwargs)
  widths = [ex["image"].shape[1] for ex in data]
  assert len(set(widths)) > 1 and all(64 <= w <= 400 for w in widths)
  assert all(ex["seg"].shape == ex["image"].shape == (H, w) for ex, w in zip(data, widths))
  image, seg = wl.render_example(7, 4, **kwargs)
  np.testing.assert_array_equal(image, data[4]["image"])
  np.testing.assert_array_equal(seg, data[4]["seg"])
  unlabeled = wl.render_dataset(7, 2, labeled=False, **kwargs)
  assert "seg" not in unlabeled[1]
  np.testing.assert_array_equal(unlabeled[1]["image"], data[1]["image"])


def test_render_dataset_from_las(tmp_path):
  rng = np.random.default_rng(1)
  n = 2000
  gr = np.repeat(rng.uniform(20, 140, n // 40), 40) + rng.normal(0, 4, n)
  res = 10 ** np.repeat(rng.uniform(-0.5, 2.5, n // 40), 40)
  path, _ = write_curves(tmp_path, n=n, GR=gr, ILD=res)
  data = wl.render_dataset(0, 4, height=H, min_width=100, max_width=300, labeled=True,
                           las_paths=[path], las_curves=("GR", "ILD"))
  for ex in data:
    assert {1, 2} <= set(np.unique(ex["seg"]))


def test_a_narrowed_scale_wraps_only_the_outliers_of_a_flat_curve():
  # Totem 9's DTMN: nearly flat near its top, a few low excursions. At the 75th percentile (the
  # old wrap floor) a quarter of the samples crossed the edge: wrapped back and forth.
  rng = np.random.default_rng(0)
  values = 58.0 + rng.normal(0.0, 0.4, 5000)
  values[::200] -= 8.0  # Low excursions: they stretch the range the scale is drawn from.
  floor = welllog_curves.wrap_floor(values)
  assert np.percentile(values, 99) < floor < values.max()
  for seed in range(20):
    left, right, _ = welllog_curves.random_scale(np.random.default_rng(seed), values.min(),
                                                 values.max(), 1.0, wrap_floor=floor)
    assert np.mean(values > max(left, right)) < 0.01
