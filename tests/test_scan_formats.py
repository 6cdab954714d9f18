"""BigTIFF, TIFF layouts only tifffile reads, and colour scans (issue 15): read as the other
scans are, digitized through the real command line, colour said once per scan."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image
from test_predict import _save_stage

from ssl_seg.data import scan_folders, welllog_render
from ssl_seg.digitizer import band_io, digitize, evaluation, scans

NOTE = "colour scan read as grayscale (the model was trained on grayscale)"


@pytest.fixture(scope="module")
def stage_dir(tmp_path_factory):
  return _save_stage(str(tmp_path_factory.mktemp("ckpt") / "finetune"))


def _scan(seed, height, width):
  return welllog_render.render_log(seed, height=height, width=width)[0]


def _tinted(gray):
  """RGB: yellowed paper, blue ink; the same scan in colour."""
  g = gray.astype(np.float32) / 255
  rgb = np.stack([g * 250, g * 235 + 10, g * 160 + 90], -1)
  return np.rint(rgb).astype(np.uint8)


class Blank:
  """A duck-typed segmenter (`scan_layout.segment_scan`): background everywhere."""
  class_names = ("background", "curve1", "curve2")

  def segment(self, image, **kwargs):
    return np.zeros(image.shape, np.uint8)


def test_bigtiff_pages_read_as_written(tmp_path):
  a, b = _scan(1, 40, 90), _scan(2, 30, 70)
  tifffile.imwrite(tmp_path / "one.tif", a, bigtiff=True)
  with tifffile.TiffWriter(tmp_path / "two.tif", bigtiff=True) as tif:
    tif.write(a)
    tif.write(b)
  assert open(tmp_path / "two.tif", "rb").read(4) == b"II+\x00"  # BigTIFF, not classic.
  assert scans.page_count(tmp_path / "one.tif") == 1
  assert scans.page_count(tmp_path / "two.tif") == 2
  np.testing.assert_array_equal(scans.read_image(tmp_path / "one.tif"), a)
  np.testing.assert_array_equal(scans.read_image(tmp_path / "two.tif", page=1), b)
  # Over --max-pixels, an uncompressed BigTIFF page is read a band of rows at a time.
  shape, read = band_io.band_reader(tmp_path / "two.tif", 1)
  assert shape == (30, 70)
  np.testing.assert_array_equal(read(3, 20), b[3:20])
  with pytest.raises(scans.ImageTooLarge, match="claims 70 x 30 px"):
    scans.read_image(tmp_path / "two.tif", max_pixels=2000, page=1)
  with pytest.raises(scans.NoSuchPage, match="has 2 page"):
    scans.read_image(tmp_path / "two.tif", page=2)
  tifffile.imwrite(tmp_path / "mask.tif", (a < 128).astype(np.uint8) * 2, bigtiff=True)
  np.testing.assert_array_equal(scans.read_mask(tmp_path / "mask.tif", 3), (a < 128) * 2)


def _only_tifffile_reads(path):
  with pytest.raises(Exception):  # noqa: B017 - whatever Pillow raises on it.
    Image.open(path).load()


def test_layouts_pillow_cannot_open_are_read_through_tifffile(tmp_path):
  a = _scan(3, 30, 50)
  cases = {  # file: (pixels written, grayscale expected)
      "float.tif": (a / 255.0, a),
      "gray_alpha16.tif": (np.stack([a, np.full_like(a, 255)], -1).astype(np.uint16) * 257, a),
      "gray_extra.tif": (np.stack([a, 255 - a, a // 2], -1), a),
  }
  for name, (pixels, want) in cases.items():
    kw = {"extrasamples": ["unassalpha"]} if "alpha" in name else {"planarconfig": "contig"}
    tifffile.imwrite(tmp_path / name, pixels, photometric="minisblack", bigtiff=True, **kw)
    _only_tifffile_reads(tmp_path / name)
    np.testing.assert_array_equal(scans.read_image(tmp_path / name), want, err_msg=name)
  # Two pages of a layout only tifffile reads: counted and read as tifffile sees them.
  with tifffile.TiffWriter(tmp_path / "pages.tif") as tif:
    tif.write(a / 255.0)
    tif.write(a[:, :20] / 255.0)
  assert scans.page_count(tmp_path / "pages.tif") == 2
  assert scans.read_image(tmp_path / "pages.tif", page=1).shape == (30, 20)
  with pytest.raises(scans.ImageTooLarge, match="claims 50 x 30 px"):
    scans.read_image(tmp_path / "float.tif", max_pixels=1000)
  tifffile.imwrite(tmp_path / "rgb_float.tif", _tinted(a) / 255.0, photometric="rgb")
  _only_tifffile_reads(tmp_path / "rgb_float.tif")
  assert scans.is_colour(tmp_path / "rgb_float.tif")
  assert not scans.is_colour(tmp_path / "float.tif")
  # Damaged so that neither reads it: Pillow's error line, as before tifffile was tried.
  data = (tmp_path / "float.tif").read_bytes()
  (tmp_path / "cut.tif").write_bytes(data[:len(data) // 2])
  with pytest.raises(ValueError, match=r"^cannot read image .*cut\.tif: [^\n]*$"):
    scans.read_image(tmp_path / "cut.tif")


@pytest.mark.parametrize("kind", ["u8", "u16", "bits_white", "palette", "rgb", "rgba",
                                  "rgb_planar", "cmyk"])
def test_tifffile_route_gives_what_pillow_gives(tmp_path, kind):
  """Layouts Pillow reads, sent through the tifffile route: the same grayscale, so a scan does
  not change with the reader that took it."""
  a = _scan(4, 30, 50)
  rgb, i = _tinted(a), np.arange(256)
  path = tmp_path / f"{kind}.tif"
  write = {
      "u8": lambda: tifffile.imwrite(path, a),
      "u16": lambda: tifffile.imwrite(path, a.astype(np.uint16) * 257),
      "bits_white": lambda: tifffile.imwrite(path, a < 128, photometric="miniswhite"),
      "palette": lambda: tifffile.imwrite(
          path, a // 4, photometric="palette",
          colormap=(np.stack([i * 4 % 256, i * 3 % 256, 255 - i]) * 257).astype(np.uint16)),
      "rgb": lambda: tifffile.imwrite(path, rgb, photometric="rgb"),
      "rgba": lambda: tifffile.imwrite(path, np.dstack([rgb, a]), photometric="rgb",
                                       extrasamples=["unassalpha"]),
      "rgb_planar": lambda: tifffile.imwrite(path, np.moveaxis(rgb, -1, 0), photometric="rgb",
                                             planarconfig="separate"),
      "cmyk": lambda: tifffile.imwrite(path, np.dstack([rgb, a]), photometric="separated"),
  }[kind]
  write()
  by_pillow = scans.read_image(path)
  with scans._reading():
    by_tifffile = scans.to_gray(scans._tiff_open(str(path), 0, None, RuntimeError()))
  np.testing.assert_array_equal(by_tifffile, by_pillow)


def test_colour_is_told_from_the_header(tmp_path):
  a = _scan(5, 30, 50)
  Image.fromarray(_tinted(a)).save(tmp_path / "rgb.png")
  Image.fromarray(_tinted(a)).convert("RGBA").save(tmp_path / "rgba.png")
  Image.fromarray(_tinted(a)).save(tmp_path / "rgb.jpg")
  Image.fromarray(_tinted(a)).convert("CMYK").save(tmp_path / "cmyk.tif")
  Image.fromarray(a).save(tmp_path / "gray.png")
  Image.fromarray(a).convert("1").save(tmp_path / "bits.tif")
  Image.fromarray(a).save(tmp_path / "gray.jpg")
  for name, colours in (("gray_palette", [(i, i, i) for i in range(256)]),
                        ("colour_palette", [(i, 0, 255 - i) for i in range(256)])):
    p = Image.fromarray(a // 2)  # Indices 0..127.
    p.putpalette([v for rgb in colours for v in rgb])
    p.save(tmp_path / f"{name}.png")
    p.save(tmp_path / f"{name}.tif")
  colour = {n for n in sorted(os.listdir(tmp_path)) if scans.is_colour(tmp_path / n)}
  assert colour == {"rgb.png", "rgba.png", "rgb.jpg", "cmyk.tif", "colour_palette.png",
                    "colour_palette.tif"}
  assert not scans.is_colour(tmp_path / "missing.png")  # read_image names that problem.


def test_predict_digitizes_bigtiffs_and_says_colour_once_through_the_command(stage_dir,
                                                                              tmp_path):
  scan_dir, out = tmp_path / "scans", tmp_path / "out"
  scan_dir.mkdir()
  a, b, c = _scan(6, 40, 90), _scan(7, 40, 70), _scan(8, 40, 80)
  tifffile.imwrite(scan_dir / "big.tif", a, bigtiff=True)
  with tifffile.TiffWriter(scan_dir / "pages.tif", bigtiff=True) as tif:
    tif.write(a)
    tif.write(b)
  tifffile.imwrite(scan_dir / "float.tif", c / 255.0, bigtiff=True)  # Only tifffile reads it.
  buf = io.BytesIO()
  tifffile.imwrite(buf, c, bigtiff=True)
  (scan_dir / "broken.tif").write_bytes(buf.getvalue()[:2000])  # Truncated in the pixels.
  Image.fromarray(_tinted(c)).save(scan_dir / "colour.png")
  Image.open(scan_dir / "colour.png").convert("L").save(scan_dir / "gray.png")
  proc = subprocess.run(
      [sys.executable, "-m", "ssl_seg.predict", f"--checkpoint={stage_dir}",
       f"--input={scan_dir}", f"--output={out}", "--window=64", "--overlap=16"],
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1, proc.stderr  # One file failed.
  lines = proc.stderr.splitlines()
  broken = [line for line in lines if "broken" in line]
  assert len(broken) == 1 and broken[0].startswith(f"error: {scan_dir / 'broken.tif'}: "), lines
  assert not [line for line in lines if "Warning" in line or "Traceback" in line], lines
  assert [line for line in lines if NOTE in line] == [f"{scan_dir / 'colour.png'}: {NOTE}"]
  sizes = {n: Image.open(out / f"{n}_mask.png").size[::-1]
           for n in ("big", "pages_p1", "pages_p2", "float", "colour")}
  assert sizes == {"big": (40, 90), "pages_p1": (40, 90), "pages_p2": (40, 70),
                   "float": (40, 80), "colour": (40, 80)}
  assert not (out / "broken_mask.png").exists()
  # The colour scan is digitized as its grayscale: the same mask.
  np.testing.assert_array_equal(np.asarray(Image.open(out / "colour_mask.png")),
                                np.asarray(Image.open(out / "gray_mask.png")))


def test_evaluate_and_scan_folders_say_colour_once_per_scan(tmp_path, capsys):
  scan_dir, masks = tmp_path / "scans", tmp_path / "masks"
  scan_dir.mkdir()
  masks.mkdir()
  a = _scan(9, 40, 90)
  Image.fromarray(_tinted(a)).save(scan_dir / "colour.png")
  Image.fromarray(a).save(scan_dir / "gray.png")
  with tifffile.TiffWriter(scan_dir / "pages.tif") as tif:
    tif.write(_tinted(a), photometric="rgb")
    tif.write(a)
  for name in ("colour", "gray", "pages_p1", "pages_p2"):
    scans.write_png(masks / f"{name}_mask.png", np.zeros(a.shape, np.uint8))
  lines = []
  paths = [str(scan_dir / n) for n in ("colour.png", "gray.png")]
  evaluation.evaluate_files(Blank(), paths, str(masks), log=lines.append)
  assert lines == [f"{scan_dir / 'colour.png'}: {NOTE}"]
  lines.clear()
  done, failed = digitize.run(Blank(), [str(scan_dir / "pages.tif")], str(tmp_path / "out"),
                              log=lines.append, replot=False)
  assert not failed  # Blank finds no curve: low-coverage warnings beside the colour line.
  assert [line for line in lines if "colour" in line] == [
      f"{scan_dir / 'pages.tif'} (page 1): {NOTE}"]
  capsys.readouterr()
  scan_folders.load_logs(scans.list_scans(scan_dir), str(masks), height=40)
  printed = [line for line in capsys.readouterr().out.splitlines() if "colour" in line]
  assert printed == [f"{scan_dir / 'colour.png'}: colour scan read as grayscale (the model trains "
                     "on grayscale)", f"{scan_dir / 'pages.tif'} (page 1): colour scan read as "
                     "grayscale (the model trains on grayscale)"]
