"""predict / evaluate on a tiny untrained CurveNet checkpoint: sizes, layouts, bad files, metrics.

The checkpoint is init + save (no training), so these pin contracts, not accuracy.
"""

import csv
import os
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
  evaluate,
  inference,
  predict,
  render_las,
  scan_io,
  state as state_lib,
  tasks,
  train as train_lib,
)
from ssl_seg.data import welllogs

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
  checkpoint.save(mngr, state, train_lib._jsonable({"stage": "finetune",
                                                    "config": stage.to_dict()}))
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
  return inference.load(stage_dir, window=64, overlap=16, batch_size=2)


def _scan(seed, height, width):
  image, _ = welllogs.render_log(seed, height=height, width=width)
  return image


def test_load_accepts_stage_or_checkpoints_dir_and_rejects_others(stage_dir, tmp_path):
  a = inference.load(os.path.join(stage_dir, "checkpoints"), window=64, overlap=16)
  assert a.height == HEIGHT and a.class_names == ("background", "curve1", "curve2")
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    inference.load(str(tmp_path))
  assert not os.path.exists(tmp_path / "checkpoints")  # A wrong path creates nothing.


def test_windows_compile_once_and_cover_any_width(seg):
  for width in (37, 64, 161, 300):  # Narrower than, equal to and several windows wide.
    image = _scan(width, HEIGHT, max(width, 32))[:, :width]
    logits = seg.logits(image)
    assert logits.shape == (HEIGHT, width, 3) and np.isfinite(logits).all()
  assert len(seg.traces) == 1  # One window shape and one batch size: one compilation.
  starts = inference.window_starts(300, 64, 16)
  assert starts[0] == 0 and starts[-1] == 300 - 64 and np.all(np.diff(starts) <= 48)


def test_single_window_matches_a_direct_model_call(seg):
  image = _scan(1, HEIGHT, 50)
  x = np.full((2, HEIGHT, 64, 1), 255, np.uint8)
  x[0, :, :50, 0] = image
  valid = np.ones((2, HEIGHT, 64), bool)
  valid[0, :, 50:] = False
  direct = np.asarray(seg.apply(seg.params, x, valid))[0, :, :50]
  np.testing.assert_allclose(seg.logits(image), direct, rtol=1e-5, atol=1e-5)


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
  done, failed = predict.run(seg, [str(tmp_path / name)], str(tmp_path / "out"))
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
  inputs = scan_io.list_scans(tmp_path)
  done, failed = predict.run(seg, inputs, str(tmp_path / "out"))
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
  out = predict.digitize_file(seg, str(tmp_path / "p.png"), str(tmp_path),
                              tracks=("10:58", "70:118"), scales=[predict.digitize.Scale(0, 150)],
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
  las = lasio.read(out["las"])
  assert [c.mnemonic for c in las.curves] == ["DEPT", "T1_CURVE1", "T1_CURVE2", "T2_CURVE1",
                                              "T2_CURVE2"]
  assert las.index[0] == 1000.0 and las.index[-1] == 1249.0 and len(las.index) == 250
  v = np.asarray(las["T1_CURVE1"])
  frac = np.array([float(r["t1_curve1_frac"] or "nan") for r in rows])
  np.testing.assert_allclose(v, frac * 150, atol=0.01, equal_nan=True)


def test_bad_track_is_one_clear_error(seg, tmp_path):
  Image.fromarray(_scan(6, 40, 100)).save(tmp_path / "x.png")
  with pytest.raises(ValueError, match="outside the image's 40 rows"):
    predict.digitize_file(seg, str(tmp_path / "x.png"), str(tmp_path), tracks=("0:60",))


def test_large_image_over_pillows_bomb_limit_reads(tmp_path, monkeypatch):
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Stands in for the 89 M px default.
  Image.fromarray(np.full((50, 100), 200, np.uint8)).save(tmp_path / "big.png")
  assert scan_io.read_image(tmp_path / "big.png").shape == (50, 100)
  assert Image.MAX_IMAGE_PIXELS == 1000  # The limit is restored afterwards.


def _eval_set(tmp_path):
  images, masks = tmp_path / "images", tmp_path / "masks"
  images.mkdir()
  masks.mkdir()
  truths = {}
  for i, w in enumerate((70, 90)):
    image, mask = welllogs.render_log(i, height=HEIGHT, width=w)
    Image.fromarray(image).save(images / f"log{i}.png")
    Image.fromarray(mask).save(masks / f"log{i}_mask.png")
    truths[f"log{i}"] = mask
  return images, masks, truths


def test_evaluate_matches_a_hand_computed_confusion(seg, tmp_path):
  images, masks, truths = _eval_set(tmp_path)
  Image.fromarray(np.zeros((5, 5), np.uint8)).save(masks / "bad_mask.png")
  Image.fromarray(np.full((5, 7), 255, np.uint8)).save(images / "bad.png")  # Wrong size mask.
  (images / "corrupt.png").write_bytes(b"not a png")
  files = scan_io.list_images(images)
  summary, per_file, failed = evaluate.evaluate_files(seg, files, str(masks))
  assert sorted(os.path.basename(p) for p, _ in failed) == ["bad.png", "corrupt.png"]
  cm = np.zeros((3, 3), np.int64)
  for name, truth in truths.items():
    pred = inference.segment_scan(seg, scan_io.read_image(images / f"{name}.png"),
                                  inference.make_layout(truth.shape))
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
  summary, _, failed = evaluate.evaluate_files(seg, scan_io.list_images(images), str(masks),
                                               tracks=["4:28"])
  assert not failed
  cm = np.zeros((3, 3), np.int64)
  for name, truth in truths.items():
    pred = inference.segment_scan(seg, scan_io.read_image(images / f"{name}.png"),
                                  inference.make_layout(truth.shape, tracks=["4:28"]))
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
  welllogs.write_las(las_path, depth, {"GR": gr, "RHOB": rhob})
  names = render_las.render_set([str(las_path)], ["GR", "RHOB"], 4, str(tmp_path / "set"),
                                height=64, min_width=150, max_width=200)
  for name in names:
    truth = render_las.read_truth(tmp_path / "set" / "las" / f"{name}.las")
    mask = scan_io.read_mask(tmp_path / "set" / "masks" / f"{name}_mask.png", 3)
    scores = evaluate.curve_scores(mask, truth)
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
  (out,), failed = predict.run(seg, [str(tmp_path / "s.png")], str(tmp_path / "out"))
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
  layout = inference.make_layout(mask.shape, "vertical", ["10:50"])
  (track,) = inference.trace_scan(mask, layout, ("background", "curve1", "curve2"),
                                  probs=probs)
  curve = track["curve1"]
  np.testing.assert_allclose(layout.to_original(0)(curve.px),
                             30 + 8 * np.sin(depth / 9), atol=0.5)
  np.testing.assert_allclose(curve.confidence, 0.8)
  assert np.isnan(track["curve2"].px).all()
  (raw,) = inference.trace_scan(mask, layout, ("background", "curve1", "curve2"),
                                cleanup=False)
  assert raw["curve1"].confidence.min() < 1  # The line was there: two runs per column.


def test_a_blank_page_warns_per_curve_and_strict_exits_1(blind_stage_dir, tmp_path):
  Image.fromarray(np.full((40, 90), 255, np.uint8)).save(tmp_path / "blank.png")
  blind = inference.load(blind_stage_dir, window=64, overlap=16, batch_size=2)
  lines = []
  (out,), failed = predict.run(blind, [str(tmp_path / "blank.png")], str(tmp_path / "a"),
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
