"""predict / evaluate on a tiny untrained CurveNet checkpoint: sizes, layouts, bad files, metrics.

The checkpoint is init + save (no training), so these pin contracts, not accuracy.
"""

import csv
import json
import os
import re
import subprocess
import sys

import jax
import lasio
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from configs import welllog_demo
from ssl_seg import (
  checkpoint,
  plots,
  state as state_lib,
  tasks,
)
from ssl_seg.data import welllog_render
from ssl_seg.digitizer import (
  curve_values,
  digitize,
  evaluation,
  las,
  layout_files,
  output_files,
  render,
  scan_layout,
  scans,
  segmenter,
  shortcuts,
)

HEIGHT = 32


def _save_stage(path, blind=False):
  """A curve_segment checkpoint as training writes it, with random params (no init compile).

  blind: the head sees nothing (zero kernel, background bias): a segmenter that finds no curve,
  as a trained one does on a blank page.
  """
  stage = welllog_demo.get_config("variant=tiny,scale=0.05").stages.finetune_cold
  stage.data.height = HEIGHT
  task = tasks.make_task(stage)
  abstract = nnx.eval_shape(lambda: task.build_model(nnx.Rngs(params=0)))
  _, params, rest = state_lib.split_model(abstract)
  rng = np.random.default_rng(0)

  def init(path, s):
    key = jax.tree_util.keystr(path)
    if blind and ("['head']" in key or "['coarse_heads']" in key):  # Every class head.
      return ((np.arange(s.shape[-1]) == 0) * ("bias" in key) * np.ones(s.shape)).astype(s.dtype)
    # Random weights (norm scales 1) so the untrained model predicts every class somewhere.
    return (np.ones(s.shape, s.dtype) if "scale" in key
            else rng.normal(0, 0.5, s.shape).astype(s.dtype))

  params = jax.tree_util.tree_map_with_path(init, params)
  state = {"params": params, "rest": rest, "opt": {}, "step": np.int32(1),
           "bad_step": np.int32(-1), "skipped": np.int32(0)}
  mngr = checkpoint.manager(path)
  checkpoint.save(mngr, state, {"stage": "finetune", "config": stage.to_dict()})
  mngr.close()
  return path


@pytest.fixture(scope="module")
def stage_dir(tmp_path_factory):
  return _save_stage(str(tmp_path_factory.mktemp("ckpt") / "finetune"))


@pytest.fixture(scope="module")
def blind_stage_dir(tmp_path_factory):
  return _save_stage(str(tmp_path_factory.mktemp("blind") / "finetune"), blind=True)


@pytest.fixture(scope="module")
def seg(stage_dir):
  return segmenter.load(stage_dir, window=64, overlap=16, batch_size=2)


def _scan(seed, height, width):
  image, _ = welllog_render.render_log(seed, height=height, width=width)
  return image


def test_load_accepts_stage_or_checkpoints_dir_and_rejects_others(stage_dir, tmp_path):
  a = segmenter.load(os.path.join(stage_dir, "checkpoints"), window=64, overlap=16)
  assert a.height == HEIGHT and a.class_names == ("background", "curve1", "curve2")
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    segmenter.load(str(tmp_path))
  assert not os.path.exists(tmp_path / "checkpoints")  # A wrong path creates nothing.


def test_windows_compile_once_and_cover_any_width(seg):
  for width in (37, 64, 161, 300):  # Narrower than, equal to and several windows wide.
    image = _scan(width, HEIGHT, max(width, 32))[:, :width]
    logits = seg.logits(image)
    assert logits.shape == (HEIGHT, width, 3) and np.isfinite(logits).all()
  assert len(seg.traces) == 1  # One window shape and one batch size: one compilation.
  starts = segmenter.window_starts(300, 64, 16)
  assert starts[0] == 0 and starts[-1] == 300 - 64 and np.all(np.diff(starts) <= 48)


def test_single_window_matches_a_direct_model_call(seg):
  image = _scan(1, HEIGHT, 50)
  x = np.full((2, HEIGHT, 64, 1), 255, np.uint8)
  x[0, :, :50, 0] = image
  valid = np.ones((2, HEIGHT, 64), bool)
  valid[0, :, 50:] = False
  direct = np.asarray(seg.apply(seg.params, x, valid))[0, :, :50]
  np.testing.assert_allclose(seg.logits(image), direct, rtol=1e-5, atol=1e-5)


def test_test_time_flip_averages_the_depth_reversed_window(stage_dir):
  plain, flip = (segmenter.load(stage_dir, window=64, overlap=16, batch_size=2, test_time_flip=f)
                 for f in (False, True))
  assert segmenter.load(stage_dir).apply is not None  # The stage's own setting loads too.
  image = _scan(3, HEIGHT, 50)  # One window, padded at the right end.
  mirrored = np.ascontiguousarray(image[:, ::-1])
  want = 0.5 * (plain.logits(image) + plain.logits(mirrored)[:, ::-1])
  np.testing.assert_allclose(flip.logits(image), want, rtol=1e-5, atol=1e-5)
  # The average is mirror-symmetric; the random model alone is not, so this can fail.
  np.testing.assert_allclose(flip.logits(mirrored)[:, ::-1], flip.logits(image), atol=1e-5)
  assert np.abs(plain.logits(mirrored)[:, ::-1] - plain.logits(image)).max() > 1e-2


@pytest.mark.parametrize("kind", ["png_gray_odd", "tiff_rgb", "one_bit_portrait", "jpeg"])
def test_predict_writes_exact_size_mask_overlay_and_csv(seg, tmp_path, kind):
  h, w = {"png_gray_odd": (45, 203), "tiff_rgb": (40, 131), "one_bit_portrait": (157, 41),
          "jpeg": (33, 96)}[kind]
  gray = _scan(3, min(h, w) if kind == "one_bit_portrait" else h, max(h, w))
  if kind == "one_bit_portrait":
    gray = np.rot90(gray, -1)  # Depth runs down the page.
  gray = np.asarray(Image.fromarray(np.ascontiguousarray(gray)).resize((w, h)))
  image = Image.fromarray(gray)
  name, mode = {"png_gray_odd": ("a.png", "L"), "tiff_rgb": ("b.tif", "RGB"),
                "one_bit_portrait": ("c.tiff", "1"), "jpeg": ("d.jpg", "L")}[kind]
  image.convert(mode).save(tmp_path / name)
  done, failed = digitize.run(seg, [str(tmp_path / name)], str(tmp_path / "out"))
  assert not failed
  stem = os.path.splitext(name)[0]
  mask = np.asarray(Image.open(tmp_path / "out" / f"{stem}_mask.png"))
  assert mask.shape == (h, w) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1, 2}
  overlay = Image.open(tmp_path / "out" / f"{stem}_overlay.png")
  assert overlay.size == (w, h) and overlay.mode == "RGB"
  with open(tmp_path / "out" / f"{stem}_curves.csv") as f:
    rows = list(csv.DictReader(f))
  depth_len = h if kind == "one_bit_portrait" else w
  assert len(rows) == depth_len
  assert list(rows[0])[:3] == ["depth_px", "curve1_px", "curve1_wrap"]
  # Every position lies inside the image along the value axis.
  px = np.array([float(r["curve1_px"]) for r in rows if r["curve1_px"]])
  value_extent = w if kind == "one_bit_portrait" else h
  assert ((px >= 0) & (px <= value_extent - 1)).all()


def test_scans_sharing_a_stem_get_separate_outputs(seg, tmp_path):
  Image.fromarray(_scan(1, 40, 90)).save(tmp_path / "a.png")
  Image.fromarray(_scan(2, 40, 70)).save(tmp_path / "a.tif")
  Image.fromarray(_scan(3, 40, 80)).save(tmp_path / "b.png")
  inputs = scans.list_scans(tmp_path)
  done, failed = digitize.run(seg, inputs, str(tmp_path / "out"))
  assert not failed and len(done) == 3
  widths = {n: Image.open(tmp_path / "out" / f"{n}_mask.png").size[0]
            for n in ("a_png", "a_tif", "b")}
  assert widths == {"a_png": 90, "a_tif": 70, "b": 80}


def test_portrait_tracks_map_back_and_las_is_written(seg, tmp_path):
  land = _scan(5, 48, 250)
  portrait = np.full((250, 120), 255, np.uint8)
  portrait[:, 10:58] = np.rot90(land, -1)  # One track at columns 10..57.
  portrait[:, 70:118] = np.rot90(land, -1)  # An identical one at 70..117.
  Image.fromarray(portrait).save(tmp_path / "p.png")
  out = digitize.digitize_file(seg, str(tmp_path / "p.png"), str(tmp_path),
                               tracks=("10:58", "70:118"), scales=[curve_values.Scale(0, 150)],
                               depth=(1000.0, 1249.0), names=None)
  mask = np.asarray(Image.open(out["mask"]))
  assert mask.shape == (250, 120)
  assert not mask[:, :10].any() and not mask[:, 58:70].any()  # Outside tracks: background.
  # Same pixels, same model: the second track's mask is the first one's, shifted.
  np.testing.assert_array_equal(mask[:, 10:58], mask[:, 70:118])
  with open(out["csv"]) as f:
    rows = list(csv.DictReader(f))
  a = np.array([float(r["t1_curve1_px"] or "nan") for r in rows])
  b = np.array([float(r["t2_curve1_px"] or "nan") for r in rows])
  np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
  np.testing.assert_allclose((b - a)[np.isfinite(a)], 60)
  las_file = lasio.read(out["las"])
  assert [c.mnemonic for c in las_file.curves] == ["DEPT"] + [
      f"T{t}_CURVE{k}{conf}" for t in (1, 2) for k in (1, 2) for conf in ("", "_CONF")]
  assert las_file.index[0] == 1000.0 and las_file.index[-1] == 1249.0 and len(las_file.index) == 250
  v = np.asarray(las_file["T1_CURVE1"])
  frac = np.array([float(r["t1_curve1_frac"] or "nan") for r in rows])
  np.testing.assert_allclose(v, frac * 150, atol=0.01, equal_nan=True)


def test_bad_track_is_one_clear_error(seg, tmp_path):
  Image.fromarray(_scan(6, 40, 100)).save(tmp_path / "x.png")
  with pytest.raises(ValueError, match="outside the image's 40 rows"):
    digitize.digitize_file(seg, str(tmp_path / "x.png"), str(tmp_path), tracks=("0:60",))


def test_large_image_over_pillows_bomb_limit_reads(tmp_path, monkeypatch):
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Stands in for the 89 M px default.
  Image.fromarray(np.full((50, 100), 200, np.uint8)).save(tmp_path / "big.png")
  assert scans.read_image(tmp_path / "big.png").shape == (50, 100)
  assert Image.MAX_IMAGE_PIXELS == 1000  # The limit is restored afterwards.


def _eval_set(tmp_path):
  images, masks = tmp_path / "images", tmp_path / "masks"
  images.mkdir()
  masks.mkdir()
  truths = {}
  for i, w in enumerate((70, 90)):
    image, mask = welllog_render.render_log(i, height=HEIGHT, width=w)
    Image.fromarray(image).save(images / f"log{i}.png")
    Image.fromarray(mask).save(masks / f"log{i}_mask.png")
    truths[f"log{i}"] = mask
  return images, masks, truths


def test_evaluate_matches_a_hand_computed_confusion(seg, tmp_path):
  images, masks, truths = _eval_set(tmp_path)
  Image.fromarray(np.zeros((5, 5), np.uint8)).save(masks / "bad_mask.png")
  Image.fromarray(np.full((5, 7), 255, np.uint8)).save(images / "bad.png")  # Wrong size mask.
  (images / "corrupt.png").write_bytes(b"not a png")
  files = scans.list_images(images)
  summary, per_file, failed = evaluation.evaluate_files(seg, files, str(masks))
  assert sorted(os.path.basename(p) for p, _ in failed) == ["bad.png", "corrupt.png"]
  cm = np.zeros((3, 3), np.int64)
  for name, truth in truths.items():
    pred = scan_layout.segment_scan(seg, scans.read_image(images / f"{name}.png"),
                                    scan_layout.make_layout(truth.shape))
    np.add.at(cm, (truth.ravel(), pred.ravel()), 1)
  tp = np.diag(cm)
  precision, recall = tp / np.maximum(cm.sum(0), 1), tp / np.maximum(cm.sum(1), 1)
  for k, name in enumerate(("background", "curve1", "curve2")):
    assert summary[f"precision/{name}"] == pytest.approx(precision[k])
    assert summary[f"recall/{name}"] == pytest.approx(recall[k])
    assert summary[f"iou/{name}"] == pytest.approx(tp[k] / max(cm[k].sum() + cm[:, k].sum()
                                                                - tp[k], 1))
  assert summary["pixel_acc"] == pytest.approx(tp.sum() / cm.sum())
  assert summary["files"] == 2 and len(per_file) == 2


def test_evaluate_with_a_track_scores_only_that_span_as_predicted(seg, tmp_path):
  images, masks, truths = _eval_set(tmp_path)
  summary, _, failed = evaluation.evaluate_files(seg, scans.list_images(images), str(masks),
                                                 tracks=["4:28"])
  assert not failed
  cm = np.zeros((3, 3), np.int64)
  for name, truth in truths.items():
    pred = scan_layout.segment_scan(seg, scans.read_image(images / f"{name}.png"),
                                    scan_layout.make_layout(truth.shape, tracks=["4:28"]))
    assert not pred[:4].any() and not pred[28:].any()  # Outside the track: background.
    np.add.at(cm, (truth.ravel(), pred.ravel()), 1)
  assert summary["pixel_acc"] == pytest.approx(np.diag(cm).sum() / cm.sum())
  assert summary["recall/curve1"] == pytest.approx(cm[1, 1] / cm[1].sum())


def test_r2_from_true_masks_is_near_one_on_rendered_las_logs(seg, tmp_path):
  las_path = tmp_path / "src.las"
  depth = np.arange(0, 400) * 0.5
  rng = np.random.default_rng(0)
  # Mostly mid-scale with excursions: backup scales hold the minority (digitize's prior).
  gr = 60 + 20 * np.sin(depth / 3) + rng.normal(0, 2, 400)
  rhob = 2.4 + 0.1 * np.sin(depth / 10)
  las.write(las_path, depth, {"GR": gr, "RHOB": rhob})
  names = render.render_set([str(las_path)], ["GR", "RHOB"], 4, str(tmp_path / "set"),
                            height=64, min_width=150, max_width=200)
  for name in names:
    truth = render.read_truth(tmp_path / "set" / "las" / f"{name}.las")
    mask = scans.read_mask(tmp_path / "set" / "masks" / f"{name}_mask.png", 3)
    scores = evaluation.curve_scores(mask, truth)
    for k in (1, 2):
      assert scores[k]["coverage"] > 0.9
      scale = truth.scales[k]
      left, right = scale.axis([scale.left, scale.right])
      frac = (scale.axis(truth.values[k]) - left) / (right - left)
      if np.nanmean((frac >= 0) & (frac <= 1)) > 0.5:
        assert scores[k]["r2"] > 0.9, (name, k, scores)
      else:
        # A window mostly past its scale's edge reads one track width off, as digitize's prior
        # says: a random depth window of a wrapping curve can sit on the backup scale that long.
        assert abs(scores[k]["mae_track"] - 1) < 0.05, (name, k, scores)


def test_cli_smoke_reports_bad_file_and_exits_non_zero(stage_dir, tmp_path):
  Image.fromarray(_scan(7, 40, 90)).save(tmp_path / "good.png")
  (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
  out = tmp_path / "out"
  proc = subprocess.run(
      [sys.executable, "-m", "ssl_seg.predict", f"--checkpoint={stage_dir}",
       f"--input={tmp_path}", f"--output={out}", "--window=64", "--overlap=16"],
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1, proc.stderr
  assert "broken.tif" in proc.stderr and "error:" in proc.stderr
  assert (out / "good_mask.png").exists() and (out / "good_curves.csv").exists()
  assert not (out / "broken_mask.png").exists()


def test_csv_has_confidences_and_coverage_is_reported(seg, tmp_path):
  Image.fromarray(_scan(8, 40, 90)).save(tmp_path / "s.png")
  (out,), failed = digitize.run(seg, [str(tmp_path / "s.png")], str(tmp_path / "out"))
  assert not failed and out["input"] == str(tmp_path / "s.png")
  with open(out["csv"]) as f:
    rows = list(csv.DictReader(f))
  for curve in ("curve1", "curve2"):
    assert list(rows[0]).index(f"{curve}_confidence") == list(rows[0]).index(f"{curve}_filled") + 1
    conf = np.array([float(r[f"{curve}_confidence"] or "nan") for r in rows])
    has = np.array([r[f"{curve}_px"] != "" for r in rows])
    np.testing.assert_array_equal(np.isfinite(conf), has)
    assert ((conf[has] > 0) & (conf[has] <= 1)).all()
    assert out["coverage"][curve] == pytest.approx(has.mean())


def test_trace_scan_cleans_each_track_and_reads_confidence_from_probabilities():
  # Portrait scan: depth runs down the page, one track at columns 10..49.
  mask = np.zeros((120, 60), np.uint8)
  depth = np.arange(120)
  mask[depth, np.round(30 + 8 * np.sin(depth / 9)).astype(int)] = 1
  mask[:, 14] = np.where(mask[:, 14] == 0, 1, mask[:, 14])  # A grid line painted as curve1.
  probs = np.zeros((120, 60, 3))
  probs[..., 1] = 0.8
  layout = scan_layout.make_layout(mask.shape, "vertical", ["10:50"])
  (track,) = scan_layout.trace_scan(mask, layout, ("background", "curve1", "curve2"),
                                    probs=probs)
  curve = track["curve1"]
  np.testing.assert_allclose(layout.to_original(0)(curve.px),
                             30 + 8 * np.sin(depth / 9), atol=0.5)
  np.testing.assert_allclose(curve.confidence, 0.8)
  assert np.isnan(track["curve2"].px).all()
  (raw,) = scan_layout.trace_scan(mask, layout, ("background", "curve1", "curve2"),
                                  cleanup=False)
  assert raw["curve1"].confidence.min() < 1  # The line was there: two runs per column.


def test_a_blank_page_warns_per_curve_and_strict_exits_1(blind_stage_dir, tmp_path):
  Image.fromarray(np.full((40, 90), 255, np.uint8)).save(tmp_path / "blank.png")
  blind = segmenter.load(blind_stage_dir, window=64, overlap=16, batch_size=2)
  lines = []
  (out,), failed = digitize.run(blind, [str(tmp_path / "blank.png")], str(tmp_path / "a"),
                                log=lines.append)
  assert not failed and out["coverage"] == {"curve1": 0.0, "curve2": 0.0}
  assert lines == [f"warning: {tmp_path / 'blank.png'}: {c} read on only 0% of depth columns"
                   for c in ("curve1", "curve2")]
  with open(out["csv"]) as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 90 and all(r["curve1_px"] == r["curve1_confidence"] == "" for r in rows)
  proc = subprocess.run(
      [sys.executable, "-m", "ssl_seg.predict", f"--checkpoint={blind_stage_dir}",
       f"--input={tmp_path / 'blank.png'}", f"--output={tmp_path / 'b'}", "--window=64",
       "--overlap=16", "--strict", "--min_coverage=0.3"],
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1, proc.stderr
  assert "curve2 read on only 0% of depth columns" in proc.stderr
  assert "file(s) digitized" not in proc.stdout
  assert "no curve found in 1 file(s)" in proc.stdout and "blank.png" in proc.stdout
  assert (tmp_path / "b" / "blank_curves.csv").exists()  # Still written, for inspection.


# Output side of issue 15: per-curve calibration, LAS a petrophysicist reads, layout files,
# manifests, summary.csv, multi-page TIFFs, --help.


def _portrait(tmp_path, name="p.png", seed=5, length=250):
  land = _scan(seed, 48, length)
  portrait = np.full((length, 60), 255, np.uint8)
  portrait[:, 6:54] = np.rot90(land, -1)  # One track at columns 6..53.
  path = tmp_path / name
  Image.fromarray(portrait).save(path)
  return str(path)


def _csv(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def _floats(rows, key):
  return np.array([float(r[key]) if r[key] else np.nan for r in rows])


def test_las_from_a_layout_has_per_curve_scales_units_confidence_and_provenance(seg, tmp_path):
  path = _portrait(tmp_path)
  layout = layout_files.parse({
      "depth_axis": "vertical", "depth": {"unit": "FT", "first": 1000.0, "last": 1124.5},
      "tracks": [{"span": [6, 54], "curves": [
          {"class": 1, "mnemonic": "gr", "unit": "GAPI", "left": 0, "right": 150},
          {"class": 2, "mnemonic": "DTMN", "unit": "US/F", "left": 140, "right": 40,
           "description": "Sonic slowness"}]}]})
  out = digitize.digitize_file(seg, path, str(tmp_path), layout=layout,
                               provenance={"checkpoint": "/ckpt/finetune_warm",
                                           "command": "python -m ssl_seg.predict --x=1"})
  assert not out["warnings"]
  rows = _csv(out["csv"])
  # The CSV carries the LAS's names and units, depth at full precision.
  assert {"depth[FT]", "GR_px", "GR_value[GAPI]", "DTMN_value[US/F]"} <= set(rows[0])
  depth = _floats(rows, "depth[FT]")
  np.testing.assert_array_equal(depth, np.linspace(1000.0, 1124.5, 250))
  las_file = lasio.read(out["las"])
  assert [c.mnemonic for c in las_file.curves] == ["DEPT", "GR", "GR_CONF", "DTMN", "DTMN_CONF"]
  assert [las_file.curves[m].unit for m in ("DEPT", "GR", "DTMN")] == ["FT", "GAPI", "US/F"]
  assert las_file.curves["DTMN"].descr == "Sonic slowness"
  assert las_file.well["WELL"].value == "p"  # No well in the layout: the file's stem.
  assert las_file.well["NULL"].value == las.LAS_MISSING
  assert las_file.well["STRT"].value == 1000.0 and las_file.well["STOP"].value == 1124.5
  assert las_file.well["STEP"].value == pytest.approx(0.5) and las_file.well["STRT"].unit == "FT"
  assert "/ckpt/finetune_warm" in las_file.other
  assert "python -m ssl_seg.predict --x=1" in las_file.other
  # Each curve on its own scale (a track's second curve no longer takes the first's).
  for m, (left, right) in (("GR", (0, 150)), ("DTMN", (140, 40))):
    frac = _floats(rows, f"{m}_frac")
    np.testing.assert_allclose(las_file[m], left + frac * (right - left), atol=1e-4, equal_nan=True)
    conf = _floats(rows, f"{m}_confidence")
    np.testing.assert_allclose(las_file[f"{m}_CONF"], conf, atol=1e-3, equal_nan=True)
  assert np.isfinite(las_file["DTMN"]).any()  # The untrained model paints curve2: not vacuous.


def test_step_resamples_the_las_to_a_regular_depth_step(seg, tmp_path):
  path = _portrait(tmp_path)
  layout = layout_files.parse({"depth": {"unit": "M", "first": 100.0, "last": 224.5},
                               "tracks": [{"curves": [{"class": 2, "left": 0, "right": 150}]}]})
  out = digitize.digitize_file(seg, path, str(tmp_path), layout=layout, step=1.5)
  las_file = lasio.read(out["las"])
  np.testing.assert_allclose(las_file.index, np.arange(100.0, 224.5 + 1e-9, 1.5))
  assert las_file.well["STEP"].value == pytest.approx(1.5) and "Resampled" in las_file.other
  frac = _floats(_csv(out["csv"]), "curve2_frac")
  # Every third pixel (0.5 m pitch) lies on the 1.5 m grid: those samples are read exactly.
  want = 150 * frac[::3]
  assert np.isfinite(want).sum() > 10
  np.testing.assert_allclose(las_file["CURVE2"], want[:len(las_file.index)], atol=1e-4,
                             equal_nan=True)


def test_tie_points_give_piecewise_depth(seg, tmp_path):
  path = _portrait(tmp_path)
  layout = layout_files.parse({"depth": {"ties": [[0, 0.0], [100, 50.0], [249, 200.0]]},
                               "tracks": [{"curves": [{"class": 1, "left": 0, "right": 1}]}]})
  out = digitize.digitize_file(seg, path, str(tmp_path), layout=layout)
  depth = _floats(_csv(out["csv"]), "depth[M]")
  assert depth[100] == 50.0 and depth[249] == 200.0 and depth[50] == 25.0
  las_file = lasio.read(out["las"])  # Irregular pitch: resampled to the mean, 200 / 249.
  assert las_file.index[0] == 0.0
  assert las_file.well["STEP"].value == pytest.approx(200 / 249, rel=1e-4)


def test_shortcut_scales_are_per_curve_and_names_and_units_reach_the_csv(seg, tmp_path):
  path = _portrait(tmp_path)
  out = digitize.digitize_file(
      seg, path, str(tmp_path), depth_axis="vertical", tracks=["6:54"],
      scales=[curve_values.Scale(0, 150), curve_values.Scale(140, 40)], depth=(0.0, 249.0),
      names=["GR", "DT"], units=["GAPI", "US/F"])
  rows = _csv(out["csv"])
  assert list(rows[0])[:3] == ["depth_px", "depth[M]", "GR_px"] and "DT_value[US/F]" in rows[0]
  las_file = lasio.read(out["las"])
  dt = _floats(rows, "DT_frac")
  assert np.isfinite(dt).any()
  np.testing.assert_allclose(las_file["DT"], 140 - 100 * dt, atol=1e-4, equal_nan=True)
  with pytest.raises(ValueError, match=r"one per curve \(4: T1_CURVE1, T1_CURVE2, T2_CURVE1, "
                                       r"T2_CURVE2, in that order\), got 2"):
    shortcuts.shortcut_layout(seg.class_names, tracks=["0:30", "30:60"],
                              scales=[curve_values.Scale(0, 1)] * 2)


def test_depth_without_scale_writes_no_las_and_says_so(seg, tmp_path):
  out = digitize.digitize_file(seg, _portrait(tmp_path), str(tmp_path), depth=(0.0, 10.0))
  assert "las" not in out and not (tmp_path / "p.las").exists()
  assert len(out["warnings"]) == 1 and out["warnings"][0].startswith("no LAS written")
  # A curve with a scale beside one without: the LAS has the first and names the second.
  layout = layout_files.parse({"depth": {"first": 0, "last": 10}, "tracks": [{"curves": [
      {"class": 1, "mnemonic": "GR", "left": 0, "right": 150}, {"class": 2, "mnemonic": "X"}]}]})
  out = digitize.digitize_file(seg, _portrait(tmp_path), str(tmp_path), layout=layout)
  assert out["warnings"] == ["X left out of p.las: no scale given"]
  assert [c.mnemonic for c in lasio.read(out["las"]).curves] == ["DEPT", "GR", "GR_CONF"]


def test_layout_files_parse_the_shipped_example_and_reject_typos(tmp_path):
  example = os.path.join(os.path.dirname(__file__), "..", "examples", "layout.json")
  kw = layout_files.load(example)
  layout = scan_layout.make_layout((1800, 800), **kw)
  assert layout.vertical and layout.tracks == ((40, 400), (420, 780)) and layout.well
  assert [c.mnemonic for c in layout.curves[0]] == ["GR", "DTMN"]
  assert layout.curves[1][0].scale == curve_values.Scale(0.2, 2000, True)
  for bad, match in (({"tracks": [{"span": [0, 5], "curvs": []}]}, r"unknown key\(s\) 'curvs'"),
                     ({"tracks": [{"curves": [{"mnemonic": "GR"}]}]}, r"'class' .* required"),
                     ({"tracks": [{"curves": [{"class": 1, "left": 0}]}]}, "both 'left'"),
                     ({"depth": {"first": 0}}, "give 'first' and 'last'"),
                     ({"tracks": [{}, {}]}, "'span' is required")):
    with pytest.raises(ValueError, match=match):
      layout_files.parse(bad)
  (tmp_path / "bad.json").write_text("{")
  with pytest.raises(ValueError, match=r"layout file .*bad.json: not valid JSON"):
    layout_files.load(tmp_path / "bad.json")
  with pytest.raises(ValueError, match="tie points must increase"):
    scan_layout.make_layout((10, 100), depth=((0, 5.0), (50, 7.0), (99, 6.0)))


def test_manifest_gives_each_file_its_layout_and_well_and_summary_lists_all(seg, tmp_path):
  scan_dir = tmp_path / "scans"
  scan_dir.mkdir()
  _portrait(scan_dir, "a.png", 1)
  _portrait(scan_dir, "b.png", 2)
  _portrait(scan_dir, "c.png", 3)  # Not in the manifest.
  for name, first in (("la.json", 1000.0), ("lb.json", 2000.0)):
    (scan_dir / name).write_text(json.dumps({"depth": {"unit": "FT", "first": first,
                                                       "last": first + 249},
                                             "tracks": [{"curves": [{"class": 1, "mnemonic": "GR",
                                                                     "left": 0, "right": 150}]}]}))
  (scan_dir / "m.csv").write_text("file,layout,well\na.png,la.json,WELL A\nb.png,lb.json,\n")
  manifest = layout_files.read_manifest(scan_dir / "m.csv")
  done, failed = digitize.run(seg, scans.list_scans(scan_dir), str(tmp_path / "out"),
                              manifest=manifest, log=lambda m: None)
  assert [os.path.basename(p) for p, _ in failed] == ["c.png"]
  assert "not listed in the manifest" in failed[0][1]
  wells = {os.path.basename(o["input"]): lasio.read(o["las"]) for o in done}
  assert wells["a.png"].well["WELL"].value == "WELL A" and wells["a.png"].index[0] == 1000.0
  assert wells["b.png"].well["WELL"].value == "b" and wells["b.png"].index[0] == 2000.0
  rows = _csv(tmp_path / "out" / "summary.csv")
  assert [r["name"] for r in rows] == ["a", "b", ""] and rows[2]["status"] == "failed"
  for r, out in zip(rows, done):
    assert r["status"] == output_files.status(out, 0.5)
    assert float(r["coverage:GR"]) == out["coverage"]["GR"]
  with pytest.raises(FileNotFoundError, match="line 2: scan not found"):
    (scan_dir / "m2.csv").write_text("file,layout\nnope.png,la.json\n")
    layout_files.read_manifest(scan_dir / "m2.csv")


def test_each_page_of_a_multipage_tiff_is_a_scan(seg, tmp_path):
  pages = [Image.fromarray(_scan(s, 40, w)) for s, w in ((1, 90), (2, 70))]
  pages[0].save(tmp_path / "log.tif", save_all=True, append_images=pages[1:])
  assert scans.page_count(tmp_path / "log.tif") == 2
  done, failed = digitize.run(seg, [str(tmp_path / "log.tif")], str(tmp_path / "out"))
  assert not failed and [o["name"] for o in done] == ["log_p1", "log_p2"]
  widths = [Image.open(o["mask"]).size[0] for o in done]
  assert widths == [90, 70]  # Page 2 is read, not page 1 twice.
  np.testing.assert_array_equal(scans.read_image(tmp_path / "log.tif", page=1),
                                np.asarray(pages[1]))
  with pytest.raises(ValueError, match="has 2 page"):
    scans.read_image(tmp_path / "log.tif", page=2)
  rows = _csv(tmp_path / "out" / "summary.csv")
  assert [(r["name"], r["page"]) for r in rows] == [("log_p1", "1"), ("log_p2", "2")]


def test_manifest_page_rows_give_each_tiff_page_its_own_layout(seg, tmp_path):
  pages = [Image.fromarray(_scan(s, 40, w)) for s, w in ((1, 90), (2, 70))]
  pages[0].save(tmp_path / "log.tif", save_all=True, append_images=pages[1:])
  _portrait(tmp_path, "a.png", 1)
  for name, first in (("l1.json", 1000.0), ("l2.json", 2000.0)):
    (tmp_path / name).write_text(json.dumps({
        "depth": {"unit": "FT", "first": first, "last": first + 60},
        "tracks": [{"curves": [{"class": 1, "mnemonic": "GR", "left": 0, "right": 150}]}]}))
  (tmp_path / "m.csv").write_text("file,page,layout,well\nlog.tif,1,l1.json,W1\n"
                                  "log.tif,2,l2.json,W2\n")
  manifest = layout_files.read_manifest(tmp_path / "m.csv")
  done, failed = digitize.run(seg, [str(tmp_path / "log.tif")], str(tmp_path / "out"),
                              manifest=manifest, log=lambda m: None)
  assert not failed and [o["name"] for o in done] == ["log_p1", "log_p2"]
  las_file = [lasio.read(o["las"]) for o in done]
  assert [x.well["STRT"].value for x in las_file] == [1000.0, 2000.0]  # Not page 1's twice.
  assert [x.well["WELL"].value for x in las_file] == ["W1", "W2"]
  # A page row wins over the file's row, which serves the other pages.
  (tmp_path / "m2.csv").write_text("file,layout,page\nlog.tif,l1.json,\nlog.tif,l2.json,2\n")
  manifest = layout_files.read_manifest(tmp_path / "m2.csv")
  tif = str(tmp_path / "log.tif")
  assert [layout_files.manifest_layout(manifest, tif, k)["depth"] for k in (1, 2)] == [
      (1000.0, 1060.0), (2000.0, 2060.0)]
  for text, match in (
      ("log.tif,3,l1.json\n", r"m3.csv, line 2: page 3: log.tif has only 2 pages"),
      ("log.tif,1,l1.json\nlog.tif,,l1.json\nlog.tif,1,l2.json\n",
       r"m3.csv, line 4: log.tif page 1 is listed twice"),
      ("a.png,1,l1.json\n", r"m3.csv, line 2: page 1: a.png has one page; leave the page cell "
                           "empty"),
      ("log.tif,0,l1.json\n", r"line 2: page '0': expected a page number")):
    (tmp_path / "m3.csv").write_text("file,page,layout\n" + text)
    with pytest.raises(ValueError, match=match):
      layout_files.read_manifest(tmp_path / "m3.csv")


def test_a_blank_page_is_no_curve_in_the_summary(blind_stage_dir, tmp_path):
  Image.fromarray(np.full((40, 90), 255, np.uint8)).save(tmp_path / "blank.png")
  blind = segmenter.load(blind_stage_dir, window=64, overlap=16, batch_size=2)
  (out,), _ = digitize.run(blind, [str(tmp_path / "blank.png")], str(tmp_path / "a"),
                           log=lambda m: None)
  assert output_files.status(out, 0.5) == "no_curve"
  (row,) = _csv(tmp_path / "a" / "summary.csv")
  assert row["status"] == "no_curve" and row["coverage:curve1"] == "0.0"
  assert "curve1 read on only 0%" in row["warnings"]


@pytest.mark.parametrize("module,needed", [
    ("predict", ["--track", "--[no]track-detect", "--depth-axis", "--window", "--max-gap",
                 "--layout", "--manifest", "--step", "--scale", "--curve-units", "--max-pixels",
                 "--resolution", "--px-per-stroke", "--target-height", "--test-time-flip"]),
    ("evaluate", ["--track", "--[no]track-detect", "--depth-axis", "--window", "--max-gap",
                  "--las", "--resolution", "--px-per-stroke", "--target-height",
                  "--test-time-flip"]),
    ("render_las", ["--las", "--curves", "--min-width"])])
def test_help_lists_every_flag_a_user_needs(module, needed):
  proc = subprocess.run([sys.executable, "-m", f"ssl_seg.{module}", "--help"],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr  # absl's --help: 1.
  for flag in needed:
    assert f"  {flag}:" in proc.stdout or f"  {flag}=" in proc.stdout, (flag, proc.stdout)


def test_cli_layout_run_records_the_command_and_bad_layouts_are_one_error_line(stage_dir,
                                                                                 tmp_path):
  path = _portrait(tmp_path)
  (tmp_path / "l.json").write_text(json.dumps({
      "depth_axis": "vertical", "depth": {"unit": "FT", "first": 5000, "last": 5249},
      "tracks": [{"span": [6, 54], "curves": [
          {"class": 2, "mnemonic": "DT", "unit": "US/F", "left": 140, "right": 40}]}]}))
  (tmp_path / "bad.json").write_text(json.dumps({"tracks": [{"curvs": []}]}))
  base = [sys.executable, "-m", "ssl_seg.predict", f"--checkpoint={stage_dir}",
          f"--input={path}", "--window=64", "--overlap=16"]
  ok = subprocess.run([*base, f"--layout={tmp_path / 'l.json'}", "--step=2",
                       f"--output={tmp_path / 'out'}"], capture_output=True, text=True,
                      timeout=300)
  assert ok.returncode == 0, ok.stderr
  las_file = lasio.read(tmp_path / "out" / "p.las")
  assert las_file.well["STEP"].value == 2.0 and las_file.curves["DT"].unit == "US/F"
  assert f"--layout={tmp_path / 'l.json'}" in las_file.other and stage_dir in las_file.other
  assert (tmp_path / "out" / "summary.csv").exists() and "summary.csv" in ok.stdout
  for extra, pattern in (([f"--layout={tmp_path / 'bad.json'}"], r"unknown key\(s\) 'curvs'"),
                         ([f"--layout={tmp_path / 'l.json'}", "--track=0:5"],
                          r"--layout gives the layout; drop --track")):
    proc = subprocess.run([*base, *extra, f"--output={tmp_path / 'o2'}"], capture_output=True,
                          text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr
    assert re.search(pattern, errors[0]), errors


def test_readme_documents_the_shipped_layout_example():
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  with open(os.path.join(root, "README.md")) as f:
    block = re.search(r"```json\n(.*?)```", f.read(), re.S).group(1)
  with open(os.path.join(root, "examples", "layout.json")) as f:
    assert json.loads(block) == json.load(f)


def test_evaluate_refuses_a_multipage_tiff_instead_of_scoring_page_one(seg, tmp_path):
  images, masks, _ = _eval_set(tmp_path)
  pages = [Image.fromarray(_scan(s, HEIGHT, 70)) for s in (1, 2)]
  pages[0].save(images / "two.tif", save_all=True, append_images=pages[1:])
  Image.fromarray(np.zeros((HEIGHT, 70), np.uint8)).save(masks / "two_mask.png")
  summary, _, failed = evaluation.evaluate_files(seg, scans.list_images(images), str(masks))
  assert [(os.path.basename(p), m.split(";")[0]) for p, m in failed] == [("two.tif", "2 pages")]
  assert summary["files"] == 2


def test_curve_summary_gives_mean_and_median_r2_over_logs():
  rows = [{"r2/curve1": 0.9, "coverage/curve1": 1.0}, {"r2/curve1": 0.95, "coverage/curve1": 0.5},
          {"r2/curve1": -200.0, "coverage/curve1": 1.0}, {"r2/curve1": float("nan")}]
  out = evaluation.curve_summary(rows)
  assert out["r2/curve1"] == pytest.approx((0.9 + 0.95 - 200) / 3)
  assert out["r2_median/curve1"] == pytest.approx(0.9)
  assert out["n_r2/curve1"] == 3 and out["coverage/curve1"] == pytest.approx(2.5 / 3)


def test_predict_writes_a_replot_per_scan_unless_told_not_to(seg, tmp_path):
  path = _portrait(tmp_path, length=300)
  (out,), failed = digitize.run(seg, [path], str(tmp_path / "a"),
                                scales=[curve_values.Scale(0, 150)], depth=(100.0, 399.0),
                                names=["GR", "DT"])
  assert not failed and out["replot"] == str(tmp_path / "a" / "p_replot.png")
  picture = np.asarray(Image.open(out["replot"]).convert("L"))
  assert picture.shape[0] > picture.shape[1] and picture.std() > 10  # Tall, not blank.
  assert "p_replot.png" in scans.skipped_outputs(tmp_path / "a")  # Never read as a scan.
  overlay = np.asarray(Image.open(out["overlay"]))
  # The legend, top left: a pure swatch per class (the mask is blended, never pure).
  for colour in plots.CLASS_COLOURS[1:]:
    assert (overlay[:40, :20] == colour).all(-1).sum() >= 25, colour
  (out,), _ = digitize.run(seg, [path], str(tmp_path / "b"), replot=False)
  assert "replot" not in out and not (tmp_path / "b" / "p_replot.png").exists()


def test_a_scan_over_the_cap_is_digitized_in_bands_by_the_real_segmenter(seg, tmp_path):
  path = _portrait(tmp_path, name="p.tif", length=400)  # Uncompressed TIFF: read in bands.
  cap = 400 * 60 // 3  # Bands of cap / 4 / 60 = 33 rows, each with its margins.
  (out,), failed = digitize.run(seg, [path], str(tmp_path / "out"), max_pixels=cap,
                                scales=[curve_values.Scale(0, 150)], depth=(0.0, 399.0))
  assert not failed
  assert np.asarray(Image.open(out["mask"])).shape == (400, 60)
  assert Image.open(out["overlay"]).size == (60, 400)
  assert len(lasio.read(out["las"]).index) == 400 and os.path.exists(out["replot"])
  png = tmp_path / "p.png"
  Image.open(path).save(png)  # The same scan as PNG cannot be read in bands: refused.
  _, failed = digitize.run(seg, [str(png)], str(tmp_path / "out2"), max_pixels=cap,
                           log=lambda m: None)
  assert "only an uncompressed TIFF can be read in bands" in failed[0][1]
