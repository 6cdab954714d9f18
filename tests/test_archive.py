"""render_las --archive and archive_check: the files an archive holds, its geometry end to end
(true masks through predict's layout, tracing and LAS path, read back against the source),
and bad flag combinations on the real command line."""

import csv
import os
import subprocess
import sys

import lasio
import numpy as np
import pytest

from ssl_seg.data import welllog_style
from ssl_seg.digitizer import archive, archive_scores, layout_files, scan_layout, scans

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "ssl_seg", "data", "las_samples")
TOTEM = os.path.join(SAMPLES, "totem9_gr_dtmn.las")
SCORPIO = os.path.join(SAMPLES, "scorpio_e1_6038187.las")


def test_default_curves_add_two_more_where_the_file_has_them():
  assert archive.pick_curves(SCORPIO) == ["GAMN", "DNEAR", "PR", "NEUT"]
  assert archive.pick_curves(TOTEM) == ["GR", "DTMN"]  # Two curves: one per track.


def _page(tmp_path, name, row):
  """(image, mask) of output `name` of the manifest row's scan."""
  page = int(name.rsplit("_p", 1)[1]) - 1 if row["file"].endswith(".tif") else None
  image = scans.read_image(tmp_path / row["file"], page=page)
  return image, scans.read_mask(tmp_path / "masks" / f"{name}_mask.png", 3)


def test_archive_writes_scans_masks_layouts_truth_and_manifest(tmp_path):
  names = archive.render_archive([TOTEM, SCORPIO], None, 4, str(tmp_path), height=32,
                                 min_width=100, max_width=160, tiff_pages=2)
  assert names == ["totem9_gr_dtmn_000", "scorpio_e1_6038187_001", "totem9_gr_dtmn_002",
                   "scorpio_e1_6038187_003_p1", "scorpio_e1_6038187_003_p2"]
  assert scans.page_count(tmp_path / "scans" / "scorpio_e1_6038187_003.tif") == 2
  with open(tmp_path / "manifest.csv", newline="") as f:
    listed = list(csv.DictReader(f))
  # A row per scan and per TIFF page, each naming its own layout.
  assert [r["layout"] for r in listed] == [f"layouts/{n}.json" for n in names]
  assert [r["page"] for r in listed] == ["", "", "", "1", "2"]
  assert {r["well"] for r in listed} == {"TOTEM # 9", "Scorpio E1"}
  per_file = layout_files.read_manifest(tmp_path / "manifest.csv")  # Loads every layout named.
  tif = str(tmp_path / "scans" / "scorpio_e1_6038187_003.tif")
  assert (tif, 1) in per_file and (tif, 2) in per_file and (tif, None) not in per_file
  files = {}
  for name, row in zip(names, listed):
    image, mask = _page(tmp_path, name, row)
    kw = layout_files.load(tmp_path / "layouts" / f"{name}.json")
    layout = scan_layout.make_layout(image.shape, **kw)  # Spans inside the image, ties checked.
    files.setdefault(row["file"], []).append((layout, kw))
    assert mask.shape == image.shape and {1, 2} <= set(np.unique(mask))
    # Depth runs along the long side, as depth_axis=auto reads it; ties at its first and last.
    assert layout.vertical == (image.shape[0] > image.shape[1])
    n = image.shape[0] if layout.vertical else image.shape[1]
    assert [p for p, _ in layout.depth] == [0, n - 1]
    curves = [c for t in kw["curves"] for c in t]
    source = lasio.read(TOTEM if name.startswith("totem") else SCORPIO)
    if len(layout.tracks) == 2 and name.startswith("scorpio"):
      assert sorted(c.mnemonic for c in curves) == ["DNEAR", "GAMN", "NEUT", "PR"]
    if len(layout.tracks) == 2 and name.startswith("totem"):
      assert [len(t) for t in kw["curves"]] == [1, 1]
    # The truth is the source's own samples over the window, in its units.
    truth = lasio.read(tmp_path / "truth" / f"{name}.las")
    assert truth.curves["DEPT"].unit == source.curves[0].unit == kw["depth_unit"]
    assert sorted(c.mnemonic for c in truth.curves[1:]) == sorted(c.mnemonic for c in curves)
    top, bottom = layout.depth[0][1], layout.depth[-1][1]
    depth = np.asarray(truth.index)
    assert top <= depth[0] and depth[-1] == bottom
    at = np.isin(np.asarray(source.index), depth)
    for c in curves:
      assert truth.curves[c.mnemonic].unit == source.curves[c.mnemonic].unit == c.unit
      got, want = truth[c.mnemonic], source[c.mnemonic][at]
      ok = np.isfinite(got)
      assert ok.mean() > 0.5 and np.allclose(got[ok], want[ok])
  assert len(per_file) == 5
  # Fractions of files (0.5 of 4): two portrait, two with two tracks.
  assert sum(ls[0][0].vertical for ls in files.values()) == 2
  assert sum(len(ls[0][0].tracks) == 2 for ls in files.values()) == 2
  # The TIFF's pages share one chart (tracks, scales) and follow each other in depth.
  (p1, kw1), (p2, kw2) = files["scans/scorpio_e1_6038187_003.tif"]
  assert p1.tracks == p2.tracks and kw1["curves"] == kw2["curves"]
  assert p1.depth[-1][1] < p2.depth[0][1]
  assert layout_files.manifest_layout(per_file, tif, 2)["depth"] == kw2["depth"]
  # A manifest from before page rows (page 1's layout for the whole TIFF) is refused, not
  # scored at page 1's depths.
  with open(tmp_path / "manifest.csv", "w", newline="") as f:
    f.write("file,layout\n" + "".join(f"{r['file']},{r['layout']}\n" for r in listed[:4]))
  with pytest.raises(ValueError, match="does not give scorpio_e1_6038187_003_p2 its layout"):
    archive_scores.score_archive(str(tmp_path), str(tmp_path / "none"))


def _scores(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def test_true_masks_through_predict_read_the_source_back(tmp_path):
  # Clean portrait two-track scans of four curves (one on a log scale), and a two-page TIFF:
  # every pixel of the layouts (spans, ties, orientation, scales) must be right for this.
  arch, out = tmp_path / "archive", tmp_path / "out"
  archive.render_archive([SCORPIO], None, 2, str(arch), height=64, min_width=300,
                         max_width=900, portrait_fraction=1, two_track_fraction=1,
                         tiff_pages=2, style=welllog_style.RenderStyle.clean(p_skew=0.0),
                         p_wrap=0.0)
  proc = subprocess.run([sys.executable, "-m", "ssl_seg.archive_check", f"--archive={arch}",
                         f"--predicted={out}", "--truth-masks"], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert "per curve, over the scans:" in proc.stdout
  rows = _scores(out / "archive_scores.csv")
  assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
  assert {r["scale"] for r in rows if r["curve"] == "PR"} == {"log"}
  assert "retied" not in rows[0]
  # Each TIFF page's LAS starts at its own layout's first depth, not page 1's.
  for k in (1, 2):
    name = f"scorpio_e1_6038187_001_p{k}"
    ties = layout_files.load(arch / "layouts" / f"{name}.json")["depth"]
    assert lasio.read(out / f"{name}.las").well["STRT"].value == pytest.approx(ties[0][1])
  for r in rows:
    assert float(r["coverage"]) > 0.95 and float(r["mae_track"]) < 0.05, r
    # A curve flat on its scale (under 2 % of the track) rounds to a pixel or two: its R² is
    # noise, its error above is not.
    if float(r["spread_track"]) >= 0.02:
      assert float(r["r2"]) > 0.9, r
  assert sum(float(r["spread_track"]) >= 0.02 for r in rows) >= 9
  las = lasio.read(out / "scorpio_e1_6038187_000.las")
  assert las.curves["DEPT"].unit == "M" and las.curves["DNEAR"].unit == "G/CM3"


@pytest.mark.parametrize("extra,pattern", [
    (["--portrait-fraction=0.5"], "--portrait-fraction only apply with --archive"),
    (["--archive", "--height=128", "--min-width=200"], "need --min-width > 2 x --height")])
def test_bad_archive_flags_are_one_error_line(tmp_path, extra, pattern):
  proc = subprocess.run([sys.executable, "-m", "ssl_seg.render_las", f"--las={TOTEM}",
                         f"--out={tmp_path / 'out'}", *extra], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
  assert pattern in lines[0] and not (tmp_path / "out").exists()
