"""Scans over --max-pixels read and digitized in bands of rows (issue 20: tiled reading)."""

import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ssl_seg.digitizer import band_io, curve_values, digitize, scan_layout, scans, tiled

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ("background", "curve1", "curve2")


def sparse_tiff(path, width, height):
  """An uncompressed 8-bit TIFF of white paper (WhiteIsZero, pixel data a sparse hole): a huge
  raster that costs no disk and no time to make."""
  offset = 8 + 2 + 9 * 12 + 4
  entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 0),
             (273, 4, offset), (277, 3, 1), (278, 4, height), (279, 4, width * height)]
  with open(path, "wb") as f:
    f.write(b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, kind, value in entries:
      f.write(struct.pack("<HHI", tag, kind, 1)
              + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)))
    f.write(struct.pack("<I", 0))
    f.truncate(offset + width * height)
  return path


def test_bands_of_any_mode_match_the_whole_read_and_others_are_not_banded(tmp_path):
  a = (np.arange(300 * 50).reshape(300, 50) % 251).astype(np.uint8)
  for mode in ("L", "1", "RGB", "RGBA", "P"):
    Image.fromarray(a).convert(mode).save(tmp_path / f"{mode}.tif")
    whole = scans.read_image(tmp_path / f"{mode}.tif")
    shape, read = band_io.band_reader(tmp_path / f"{mode}.tif")
    assert shape == (300, 50)
    for y0, y1 in ((0, 300), (7, 93), (299, 300), (5, 6)):
      np.testing.assert_array_equal(read(y0, y1), whole[y0:y1], err_msg=f"{mode} {y0}:{y1}")
  pages = [Image.fromarray(a), Image.fromarray(a[::-1].copy())]
  pages[0].save(tmp_path / "pages.tif", save_all=True, append_images=pages[1:])
  np.testing.assert_array_equal(band_io.band_reader(tmp_path / "pages.tif", 1)[1](3, 40),
                                a[::-1][3:40])
  Image.fromarray(a).save(tmp_path / "lzw.tif", compression="tiff_lzw")
  Image.fromarray(a).save(tmp_path / "a.png")
  assert band_io.band_reader(tmp_path / "lzw.tif") is None
  assert band_io.band_reader(tmp_path / "a.png") is None


def test_a_huge_raster_is_read_in_bands_under_a_memory_limit(tmp_path):
  """40000 x 30000 px (1.2 G pixels, ~70 GB to digitize whole) under a 1 GiB address-space
  limit: the whole read is refused by the cap, bands read; without bands it cannot be read."""
  path = sparse_tiff(tmp_path / "huge.tif", 30000, 40000)
  code = (
      "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
      "from ssl_seg.digitizer import band_io, scans\n"
      # ru_maxrss would start at the parent's RSS at fork (pytest's, with jax): reset the
      # peak (Linux clear_refs 5) and read VmHWM.
      "open('/proc/self/clear_refs', 'w').write('5')\n"
      "def peak_mb():\n"
      "  status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
      "  return int(status.split()[0]) // 1024\n"
      "try: scans.read_image(sys.argv[1], max_pixels=0 if sys.argv[2] == 'whole' else "
      "scans.DEFAULT_MAX_PIXELS)\n"
      "except (ValueError, MemoryError) as e: print('refused:', type(e).__name__, e)\n"
      "if sys.argv[2] == 'bands':\n"
      "  (h, w), read = band_io.band_reader(sys.argv[1])\n"
      "  for y0 in (0, 20000, h - 1000):\n"
      "    band = read(y0, y0 + 1000)\n"
      "    assert band.shape == (1000, w) and (band == 255).all(), band.shape\n"
      "  print('bands ok', h, w, peak_mb())\n")

  def run(how):
    return subprocess.run([sys.executable, "-c", code, str(path), how], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  banded = run("bands")
  assert banded.returncode == 0, banded.stderr[-2000:]
  assert "refused: ImageTooLarge" in banded.stdout and "claims 30000 x 40000 px" in banded.stdout
  last = banded.stdout.strip().splitlines()[-1].split()
  assert last[:4] == ["bands", "ok", "40000", "30000"]
  assert int(last[4]) < 400  # MB peak: three 30 M pixel bands, not a 1.2 G pixel page.
  whole = run("whole")  # The same file read whole: so the limit above could bite.
  assert "MemoryError" in whole.stdout or whole.returncode != 0, whole.stdout


class Threshold:
  """A segmenter that looks at each pixel alone (dark: curve1): banding must not change it."""
  class_names = CLASSES
  height, overlap = 32, 16

  def segment(self, image):
    return (image < 128).astype(np.uint8)


def _portrait_tiff(path, length=600, width=40):
  image = np.full((length, width), 255, np.uint8)
  depth = np.arange(length)
  image[depth, np.round(width / 2 + 12 * np.sin(depth / 23)).astype(int)] = 0
  image[depth, np.round(width / 2 + 12 * np.sin(depth / 23)).astype(int) + 1] = 0
  Image.fromarray(image).save(path)  # Pillow writes uncompressed TIFF.
  return str(path)


def test_a_scan_over_the_cap_is_digitized_in_bands_exactly_as_whole(tmp_path):
  path = _portrait_tiff(tmp_path / "log.tif")
  kw = dict(scales=[curve_values.Scale(0, 100)], depth=(10.0, 609.0))
  os.makedirs(tmp_path / "whole")
  os.makedirs(tmp_path / "banded")
  whole = digitize.digitize_file(Threshold(), path, str(tmp_path / "whole"), **kw)
  cap = 600 * 40 - 1  # Just over: bands of cap / 4 / 40 = 149 rows, 5 bands.
  banded = digitize.digitize_file(Threshold(), path, str(tmp_path / "banded"), max_pixels=cap,
                                  **kw)
  with pytest.raises(scans.ImageTooLarge):
    scans.read_image(path, cap)  # So the run above did take the banded path.
  for kind in ("mask", "overlay"):
    a, b = (np.asarray(Image.open(out[kind])) for out in (whole, banded))
    np.testing.assert_array_equal(a, b, err_msg=kind)
  with open(whole["csv"]) as f, open(banded["csv"]) as g:
    assert f.read() == g.read()
  assert banded["coverage"]["curve1"] > 0.99
  assert Image.open(banded["replot"]).size == Image.open(whole["replot"]).size


def test_a_huge_scan_that_cannot_be_banded_is_refused_saying_why(tmp_path):
  path = tmp_path / "log.png"
  Image.fromarray(np.full((600, 40), 255, np.uint8)).save(path)
  with pytest.raises(scans.ImageTooLarge, match="more than --max-pixels=1000.*only an "
                     "uncompressed TIFF can be read in bands"):
    digitize.digitize_file(Threshold(), str(path), str(tmp_path), max_pixels=1000)
  land = tmp_path / "land.tif"
  Image.fromarray(np.full((40, 600), 255, np.uint8)).save(land)
  with pytest.raises(scans.ImageTooLarge, match="depth runs down the page"):
    digitize.digitize_file(Threshold(), str(land), str(tmp_path), max_pixels=1000)


def test_band_margins_cover_the_window_overlap():
  seg = Threshold()
  layout = scan_layout.make_layout((600, 40), "vertical", ["0:40"])
  # A 40-px track is scaled to 32 rows: 16 model px of overlap are 20 scan rows.
  assert tiled.margin_rows(seg, layout) == 21
  assert tiled.band_starts(600, 149) == [0, 149, 298, 447, 596]
