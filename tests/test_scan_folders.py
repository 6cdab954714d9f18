"""A team's own scans as training data (data/scan_folders.py, configs/welllog_files.py)."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from configs import welllog_files
from ssl_seg import config_utils, main, run_log, tasks
from ssl_seg.data import image_files, scan_folders, sources, welllogs
from ssl_seg.digitizer import archive, layout_files, scan_layout, scans


def _write_archive(root, n=5, *, height=64, portrait=(1,)):
  """n rendered logs as scan PNGs + masks; the logs in `portrait` stored depth down the page."""
  scan_dir, masks = root / "scans", root / "masks"
  scan_dir.mkdir(parents=True)
  masks.mkdir()
  logs = []
  for i in range(n):
    image, seg = welllogs.render_example(7, i, height=height, min_width=160, max_width=320)
    logs.append((image, seg))
    if i in portrait:  # Depth vertical: the model layout's bottom edge is the scan's left edge.
      image, seg = np.rot90(image, -1), np.rot90(seg, -1)
    scans.write_png(scan_dir / f"log{i}.png", image)
    scans.write_png(masks / f"log{i}_mask.png", seg)
  return scan_dir, masks, logs


def test_mask_scaling_keeps_a_thin_curve_connected():
  mask = np.zeros((384, 600), np.uint8)
  rows = (np.arange(600) * 0.5).astype(int) % 380
  mask[rows, np.arange(600)] = 1  # A 1-px curve, 1 px per column.
  mask[10, :] = 2
  image = np.where(mask > 0, 0, 255).astype(np.uint8)
  small, small_mask = scan_folders.scale_to_height(image, mask, 128)
  assert small.shape == small_mask.shape == (128, 200)
  assert ((small_mask == 1).any(axis=0) | (small_mask == 2).any(axis=0)).all()
  assert (small_mask == 1).any(axis=0)[20:].all()  # Every column still has curve1 (row 10 aside).
  assert (small_mask == 2).sum(axis=0).max() == 1  # Thin stays thin.


def test_labelled_folder_reads_scans_in_the_model_layout_and_skips_bad_files(tmp_path, capsys):
  scan_dir, masks, logs = _write_archive(tmp_path)
  (scan_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
  scans.write_png(scan_dir / "unlabelled.png", logs[0][0])  # No mask for it.
  paths = scans.list_scans(scan_dir)
  out = scan_folders.load_logs(paths, str(masks), height=64)
  printed = capsys.readouterr().out
  assert "skipped" in printed and "broken.png" in printed and "unlabelled" in printed
  assert "2 of 7 file(s) skipped" in printed
  assert len(out) == 5
  for got, (image, seg) in zip(out, logs):  # Already at the training height: exact.
    np.testing.assert_array_equal(got["image"], image)
    np.testing.assert_array_equal(got["seg"], seg)


def test_a_folder_with_nothing_usable_is_one_clear_error(tmp_path):
  (tmp_path / "bad.png").write_bytes(b"garbage")
  with pytest.raises(image_files.DataError, match="none of the 1 file"):
    scan_folders.load_logs([str(tmp_path / "bad.png")], "", height=64)


def test_split_holds_out_whole_files_and_is_seeded():
  paths = [f"f{i}.png" for i in range(10)]
  train, held = scan_folders.split_files(paths, 3, seed=0)
  assert len(held) == 3 and not set(train) & set(held) and len(train) == 7
  assert scan_folders.split_files(paths, 3, seed=0) == (train, held)
  with pytest.raises(image_files.DataError, match="num_eval"):
    scan_folders.split_files(paths, 10, seed=0)


def _files_config(tmp_path, **extra):
  scan_dir, masks, _ = _write_archive(tmp_path, n=6)
  args = dict(unlabeled=scan_dir, images=scan_dir, masks=masks, num_eval=2, height=64,
              variant="tiny", crop=64, batch=2, pretrain_steps=4, synthetic_steps=0,
              finetune_steps=4, **extra)
  cfg = welllog_files.get_config(",".join(f"{k}={v}" for k, v in args.items()))
  return cfg


def test_files_stage_trains_on_windows_and_evaluates_held_out_whole_scans(tmp_path):
  cfg = _files_config(tmp_path)
  st = cfg.stages.finetune_cold
  data = sources.stage_data(st, tasks.batch_keys(st.task))
  assert data.steps_per_epoch == 1  # 4 steps over the config's 10 epochs, at least 1.
  assert {data.train[i]["image"].shape for i in range(3)} == {(2, 64, 64, 1)}
  eval_widths = sorted(int(w) for b in data.eval for w, ok in zip(b["width"], b["_valid"]) if ok)
  assert len(eval_widths) == 2 and min(eval_widths) >= 160  # Whole held-out logs.


def test_welllog_files_config_runs_pretrain_warm_and_cold(tmp_path):
  cfg = _files_config(tmp_path)
  lines = []
  results = main.run(cfg, str(tmp_path / "run"), log=lines.append)
  assert set(results) == {"pretrain", "finetune_warm", "finetune_cold"}
  assert any("[finetune_warm] grafted ['encoder']" in line for line in lines)
  for name in ("finetune_warm", "finetune_cold"):
    assert {"f1/curve1", "f1_tol1/curve2", "rule/f1/curve1"} <= set(results[name])
  rows = run_log.read(tmp_path / "run" / "metrics.jsonl")
  assert {r["stage"] for r in rows} == {"pretrain", "finetune_warm", "finetune_cold"}
  assert os.path.exists(tmp_path / "run" / "finetune_warm" / "example_0.png")


def _pages(n, height=64):
  """n rendered logs (image, seg) of different widths: the pages of one TIFF."""
  return [welllogs.render_example(11, i, height=height, min_width=160, max_width=320)
          for i in range(n)]


def _save_tiff(path, arrays):
  first, *rest = [Image.fromarray(a) for a in arrays]
  first.save(path, save_all=True, append_images=rest)


@pytest.mark.parametrize("masks_as", ["tiff", "pngs"])
def test_each_page_of_a_multipage_tiff_is_a_scan_with_its_own_mask(tmp_path, masks_as):
  pages = _pages(3)
  scan_dir, masks = tmp_path / "scans", tmp_path / "masks"
  scan_dir.mkdir()
  masks.mkdir()
  _save_tiff(scan_dir / "well.tif", [image for image, _ in pages])
  if masks_as == "tiff":
    _save_tiff(masks / "well_mask.tif", [seg for _, seg in pages])
  else:
    for k, (_, seg) in enumerate(pages):
      scans.write_png(masks / f"well_p{k + 1}_mask.png", seg)
  out = scan_folders.load_logs(scans.list_scans(scan_dir), str(masks), height=64)
  assert len(out) == 3  # Not page 1 alone.
  for got, (image, seg) in zip(out, pages):
    np.testing.assert_array_equal(got["image"], image)
    np.testing.assert_array_equal(got["seg"], seg)
  unlabelled = scan_folders.load_logs([str(scan_dir / "well.tif")], "", height=64)
  assert [log["image"].shape for log in unlabelled] == [image.shape for image, _ in pages]


def test_a_mask_tiff_with_another_page_count_skips_each_page_with_one_line(tmp_path, capsys):
  pages = _pages(2)
  _save_tiff(tmp_path / "well.tif", [image for image, _ in pages])
  (tmp_path / "m").mkdir()
  _save_tiff(tmp_path / "m" / "well_mask.tif", [pages[0][1]])
  scans.write_png(tmp_path / "m" / "well_p2_mask.png", pages[1][1])  # Page 2 has a PNG.
  out = scan_folders.load_logs([str(tmp_path / "well.tif")], str(tmp_path / "m"), height=64)
  printed = capsys.readouterr().out
  assert len(out) == 1
  np.testing.assert_array_equal(out[0]["seg"], pages[1][1])
  assert f"skipped {tmp_path / 'well.tif'} (page 1)" in printed
  assert "has 1 page(s) but scan" in printed
  assert "1 of 2 scan(s) (TIFF pages counted each) skipped" in printed


# An archive as `render_las --archive` writes it: every scan two-track, half of them portrait,
# the last a 2-page TIFF; each scan (page) has its own layout file in manifest.csv.
LAS = [os.path.join(os.path.dirname(welllogs.__file__), "las_samples", name)
       for name in ("totem9_gr_dtmn.las", "scorpio_e1_6038187.las")]


@pytest.fixture(scope="module")
def mixed_archive(tmp_path_factory):
  root = tmp_path_factory.mktemp("archive")
  archive.render_archive(LAS, None, 4, str(root), height=64, min_width=160, max_width=240,
                         portrait_fraction=0.5, two_track_fraction=1.0, tiff_pages=2)
  return root


def _truth(root):
  """[(layout, true mask, track curves' classes)] per track of every scan page, in the order
  load_logs reads them, from the archive's own layout files (not through the manifest)."""
  rows = {}
  with open(root / "manifest.csv", newline="") as f:
    for row in csv.DictReader(f):
      rows[(row["file"], row["page"])] = row
  out = []
  for path in scans.list_scans(root / "scans"):
    pages = scans.page_count(path)
    for k in range(pages):
      row = rows[(f"scans/{os.path.basename(path)}", str(k + 1) if pages > 1 else "")]
      kw = layout_files.load(root / row["layout"])
      image = scans.read_image(path, page=None if pages == 1 else k)
      name = os.path.splitext(os.path.basename(row["layout"]))[0]
      mask = scans.read_mask(root / "masks" / f"{name}_mask.png", 3)
      layout = scan_layout.make_layout(image.shape, **kw)
      for t in range(len(layout.tracks)):
        out.append((layout, t, mask, {c.class_id for c in kw["curves"][t]}))
  return out


def test_a_manifest_cuts_each_scan_and_page_into_its_own_tracks(mixed_archive, capsys):
  root = mixed_archive
  paths = scans.list_scans(root / "scans")
  manifest = scan_folders.read_manifests([str(root / "manifest.csv")])
  truth = _truth(root)
  # Both orientations are in the archive, and every scan (page) has two tracks.
  assert {layout.vertical for layout, *_ in truth} == {True, False}
  assert len(truth) == 2 * 5
  logs = scan_folders.load_logs(paths, str(root / "masks"), height=64, manifest=manifest)
  assert "not in the manifest" not in capsys.readouterr().out
  assert len(logs) == len(truth)  # One log per track of each scan and TIFF page.
  for log, (layout, t, mask, classes) in zip(logs, truth):
    assert log["image"].shape == log["seg"].shape and log["image"].shape[0] == 64
    # The track's own curves, none of the other track's: the mask was cut by the same spans.
    present = {k for k in (1, 2) if (log["seg"] == k).sum() > 0}
    assert present == classes
    a, b = layout.tracks[t]
    part = np.rot90(mask[:, a:b], 1) if layout.vertical else mask[a:b]
    _, want = scan_folders.scale_to_height(np.zeros(part.shape, np.uint8), part, 64)
    np.testing.assert_array_equal(log["seg"], want)
  # Without the manifest: one log per scan (page), both tracks squashed into 64 rows.
  plain = scan_folders.load_logs(paths, str(root / "masks"), height=64)
  assert len(plain) == 5 and {log["image"].shape[0] for log in plain} == {64}


def test_scans_missing_from_the_manifest_take_the_folder_wide_settings(mixed_archive, tmp_path,
                                                                      capsys):
  root = mixed_archive
  with open(root / "manifest.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  kept = [r for r in rows if r["page"] != "2" and not r["file"].startswith("scans/totem")]
  with open(tmp_path / "manifest.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, list(rows[0]))
    writer.writeheader()
    writer.writerows({**r, "file": f"{root}/{r['file']}", "layout": f"{root}/{r['layout']}"}
                     for r in kept)
  manifest = scan_folders.read_manifests(str(tmp_path / "manifest.csv"))
  logs = scan_folders.load_logs(scans.list_scans(root / "scans"), str(root / "masks"),
                                height=64, manifest=manifest, what="train scans")
  printed = capsys.readouterr().out
  missing = 5 - len(kept)
  assert (f"train scans: {missing} of 5 scan(s) (TIFF pages counted each) not in the manifest, "
          "cut by the folder-wide settings (depth_axis=auto, one track)") in printed
  assert len(logs) == 2 * len(kept) + missing


def test_bad_manifests_fail_config_validation_naming_the_field(mixed_archive, tmp_path):
  cfg = welllog_files.get_config(f"images={mixed_archive / 'scans'},masks={mixed_archive}/masks,"
                                 f"manifest={tmp_path / 'missing.csv'}")
  with pytest.raises(config_utils.ConfigError, match=r"config\.stages\.pretrain\.data\."
                     r"manifest: manifest not found: .*missing\.csv"):
    config_utils.validate(cfg)
  # The same scan in two manifests: which layout wins would be a guess.
  both = f"{mixed_archive / 'manifest.csv'};{mixed_archive / 'manifest.csv'}"
  cfg = welllog_files.get_config(f"images={mixed_archive / 'scans'},manifest={both}")
  with pytest.raises(config_utils.ConfigError, match="is also listed in"):
    config_utils.validate(cfg)


def test_a_missing_manifest_is_one_error_line_and_exit_2_on_the_command_line(tmp_path):
  (tmp_path / "scans").mkdir()
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run(
      [sys.executable, "-m", "ssl_seg.main", f"--config=configs/welllog_files.py:images="
       f"{tmp_path / 'scans'},masks={tmp_path},manifest=missing.csv",
       f"--workdir={tmp_path / 'run'}"], cwd=root, capture_output=True, text=True,
      env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=120)
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert lines == ["error: config.stages.pretrain.data.manifest: manifest not found: "
                   "missing.csv"], proc.stderr


def test_welllog_files_trains_on_a_mixed_archive_through_its_manifest(mixed_archive, tmp_path):
  root = mixed_archive
  args = dict(images=root / "scans", masks=root / "masks", manifest=root / "manifest.csv",
              num_eval=1, height=64, variant="tiny", crop=64, batch=2, pretrain_steps=2,
              synthetic_steps=0, finetune_steps=2)
  cfg = welllog_files.get_config(",".join(f"{k}={v}" for k, v in args.items()))
  data = sources.stage_data(cfg.stages.finetune_cold, ("image", "seg"))
  assert {data.train[i]["image"].shape for i in range(2)} == {(2, 64, 64, 1)}
  results = main.run(cfg, str(tmp_path / "run"), only=["finetune_cold"], log=lambda _: None)
  assert "f1/curve1" in results["finetune_cold"]
