"""Issue 15: segmenting a track at the scan's stroke width (ssl_seg/resolution.py) and tiling it
along the value axis too (segmenter.Segmenter.logits)."""

import dataclasses
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from test_predict import HEIGHT, _save_stage

from ssl_seg.data import welllog_render
from ssl_seg.digitizer import evaluation, resolution, scan_layout, segmenter, tiled

CLASSES = ("background", "curve1", "curve2")


def _render(seed, height=128, width=1024):
  return welllog_render.render_log(seed, height=height, width=width)


def _upscale(image, k, how="nearest"):
  if how == "nearest":
    return np.repeat(np.repeat(image, k, 0), k, 1)
  h, w = image.shape
  return np.asarray(Image.fromarray(image).resize((w * k, h * k), Image.Resampling.BILINEAR))


def test_the_estimate_reads_training_renders_and_scales_with_the_scan():
  bases = [resolution.stroke_width(_render(seed)[0]) for seed in range(16)]
  # TRAIN_STROKE_PX is the median reading of default renders (RenderStyle.line_width 1..1.7 px).
  assert np.median(bases) == pytest.approx(resolution.TRAIN_STROKE_PX, rel=0.1), bases
  for seed in range(3):
    image, _ = _render(seed)
    base = bases[seed]
    for k in (2, 4):  # Nearest upscaling scales every run by exactly k.
      assert resolution.stroke_width(_upscale(image, k)) == pytest.approx(k * base, rel=1e-9)
    # A scanner's blur is closer to bilinear: the thresholded runs shrink a little.
    assert resolution.stroke_width(_upscale(image, 4, "bilinear")) == pytest.approx(
        4 * base, rel=0.2)


def test_the_estimate_of_a_long_track_reads_blocks_and_blank_paper_gives_none(monkeypatch):
  image = _upscale(np.concatenate([_render(s)[0] for s in range(3)], 1), 2)
  whole = resolution.stroke_width(image)
  monkeypatch.setattr(resolution, "SAMPLE_PIXELS", image.size // 6)
  assert len(resolution._blocks(image)) > 1
  assert resolution.stroke_width(image) == pytest.approx(whole, rel=0.1)
  paper = np.full((200, 600), 235, np.uint8)
  assert resolution.stroke_width(paper) is None
  paper[100, 10:20] = 0  # Ten dark pixels say nothing about strokes.
  assert resolution.stroke_width([paper, paper.T]) is None


def test_the_rows_a_track_gets():
  assert resolution.Resolution().rows(935, 128, stroke=3.0) == 128  # Default: as before.
  stroke = resolution.Resolution("stroke")
  assert stroke.estimates and stroke.rows(935, 128, stroke=2.8) == round(935 * 1.4 / 2.8)
  assert stroke.rows(935, 128) == 128  # No ink to measure: as by default.
  assert resolution.Resolution("stroke", px_per_stroke=0.7).rows(50, 128, stroke=3.0) == 100
  assert resolution.Resolution(target_height=300).rows(935, 128) == 300
  assert resolution.Resolution("stroke", target_height=300).rows(935, 128, stroke=3.0) == 300


@pytest.mark.parametrize("kw,message", [
    (dict(mode="stroke", px_per_stroke=0.0), r"--px-per-stroke must be > 0"),
    (dict(target_height=-3), r"--target-height must be >= 1"),
    (dict(px_per_stroke=3.0), r"needs --resolution=stroke"),
    (dict(mode="stroke", px_per_stroke=3.0, target_height=9), r"not both"),
    (dict(mode="width"), r"--resolution must be one of height, stroke")])
def test_bad_resolutions_are_refused(kw, message):
  with pytest.raises(ValueError, match=message):
    resolution.Resolution(**kw)


def _pointwise(height, window, overlap, batch_size=3):
  """A Segmenter whose 'model' looks at each pixel alone: tiling must not change its logits."""
  traces = []

  def forward(params, images, valid):
    traces.append(images.shape)
    x = images[..., 0].astype(jnp.float32) / 255
    return jnp.stack([x, 1 - x, params * x * x], -1) * valid[..., None]

  return segmenter.Segmenter(jax.jit(forward), jnp.float32(2.0), height, CLASSES, window,
                             overlap, batch_size, traces)


@pytest.mark.parametrize("overlap", [0, 16])
def test_tiling_both_axes_gives_the_logits_of_one_window_over_everything(overlap):
  rng = np.random.default_rng(0)
  tiled_seg = _pointwise(32, 64, overlap)
  for h, w in ((150, 300), (20, 50), (32, 64), (33, 65), (97, 40)):
    image = rng.integers(0, 256, (h, w), dtype=np.uint8)
    whole = _pointwise(-(-h // 32) * 32, -(-w // 32) * 32 + 32, overlap).logits(image)
    np.testing.assert_allclose(tiled_seg.logits(image), whole, rtol=1e-6, atol=1e-6)
  assert len(tiled_seg.traces) == 1  # One window shape, one batch size: one compile.
  assert tiled_seg.row_overlap == min(overlap, 8)


@pytest.fixture(scope="module")
def stage_dir(tmp_path_factory):
  return _save_stage(str(tmp_path_factory.mktemp("ckpt") / "finetune"))


@pytest.fixture(scope="module")
def seg(stage_dir):
  return segmenter.load(stage_dir, window=64, overlap=16, batch_size=2,
                        resolution=resolution.Resolution("stroke"))


def test_stroke_mode_tiles_a_tall_track_and_maps_the_mask_back_at_one_compile(seg):
  image, _ = _render(3, height=128, width=256)
  for k in (1, 3):
    scan = _upscale(image, k, "bilinear")
    stroke = resolution.stroke_width(scan)
    rows = seg.target_height(scan.shape[0], stroke)
    assert rows == round(128 * k * resolution.TRAIN_STROKE_PX / stroke)
    assert rows > HEIGHT  # Taller than the training height: windows across the value axis.
    mask = seg.segment(scan)
    assert mask.shape == scan.shape and mask.max() < len(CLASSES)
  assert seg.segment(image[:20, :70]).shape == (20, 70)  # Fewer rows than a window: padded.
  assert len(seg.traces) == 1


def test_one_estimate_per_scan_and_band_margins_follow_the_scale(seg):
  image, _ = _render(4, height=64, width=160)
  scan = _upscale(image, 2)
  layout = scan_layout.make_layout(scan.shape, "horizontal", ["0:60", "60:128"])
  stroke, line = scan_layout.scan_stroke(seg, scan, layout)
  assert stroke == pytest.approx(2 * resolution.stroke_width([image[:30], image[30:]]))
  rows = [seg.target_height(60, stroke), seg.target_height(68, stroke)]
  assert line.endswith(f"60 -> {rows[0]}, 68 -> {rows[1]}") and "estimated" in line
  assert scan_layout.segment_scan(seg, scan, layout, stroke).shape == scan.shape
  blank = np.full((90, 400), 240, np.uint8)  # No ink: every track gets the training height.
  assert scan_layout.scan_stroke(seg, blank, scan_layout.make_layout(blank.shape))[0] == 0.0
  assert seg.target_height(90, 0.0) == HEIGHT
  portrait = scan_layout.make_layout((400, 120), "vertical", ["0:120"])
  # Strokes of 2.8 px: the 120-px track gets 60 rows, 16 model px of overlap are 32 scan rows.
  assert tiled.margin_rows(seg, portrait, stroke=2.8) == 32 + 1
  assert tiled.margin_rows(dataclasses.replace(seg, resolution=resolution.Resolution()),
                           portrait) == int(np.ceil(16 * 120 / HEIGHT)) + 1
  assert not scan_layout.estimates_stroke(dataclasses.replace(
      seg, resolution=resolution.Resolution("stroke", px_per_stroke=3.0)))


def test_evaluate_runs_at_the_stroke_scale_and_says_so(seg, tmp_path):
  (tmp_path / "images").mkdir()
  (tmp_path / "masks").mkdir()
  image, mask = _render(5, height=48, width=120)
  Image.fromarray(_upscale(image, 2)).save(tmp_path / "images" / "a.png")
  Image.fromarray(_upscale(mask, 2)).save(tmp_path / "masks" / "a_mask.png")
  lines = []
  summary, per_file, failed = evaluation.evaluate_files(
      seg, [str(tmp_path / "images" / "a.png")], str(tmp_path / "masks"), log=lines.append)
  assert not failed and summary["files"] == 1
  assert len(lines) == 1 and "px across (estimated" in lines[0], lines


def _predict(stage_dir, tmp_path, *extra):
  return subprocess.run(
      [sys.executable, "-m", "ssl_seg.predict", f"--checkpoint={stage_dir}",
       f"--input={tmp_path / 'scan.png'}", f"--output={tmp_path / 'out'}", "--window=64",
       "--overlap=16", "--replot=false", *extra], capture_output=True, text=True, timeout=300)


def test_cli_stroke_resolution_writes_an_exact_size_mask_and_bad_values_are_one_line(
    stage_dir, tmp_path):
  image, _ = _render(6, height=64, width=300)
  portrait = np.rot90(_upscale(image, 3), -1)  # 900 x 192: depth down the page.
  Image.fromarray(portrait).save(tmp_path / "scan.png")
  proc = _predict(stage_dir, tmp_path, "--resolution=stroke")
  assert proc.returncode == 0, proc.stderr
  assert Image.open(tmp_path / "out" / "scan_mask.png").size == (192, 900)
  assert re.search(r"scan.png: strokes \d+\.\d px across \(estimated", proc.stderr), proc.stderr
  for flag, message in (("--px-per-stroke=0", "--px-per-stroke must be > 0"),
                        ("--target-height=-3", "--target-height must be >= 1")):
    bad = _predict(stage_dir, tmp_path, "--resolution=stroke", flag)
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert bad.returncode == 2 and len(errors) == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert message in errors[0], errors
