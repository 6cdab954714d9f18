"""Property-based fuzz of the scan and LAS readers: any bytes give an array or one ValueError,
and no file makes a reader allocate past its cap (issue 20)."""

import io
import os
import resource
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import tifffile
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from ssl_seg.digitizer import las, scans

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAP = 1_000_000  # Pixels: headers in this file claim up to 2^32 x 2^32.
# No example database: the tree stays clean, and every run draws the same seeded examples.
FUZZ = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _chunk(kind, data):
  return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width, height, depth, colour, body):
  header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
  return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(body))
          + _chunk(b"IEND", b""))


def _encoded(fmt, mode):
  a = (np.arange(24 * 40).reshape(24, 40) % 251).astype(np.uint8)
  buf = io.BytesIO()
  Image.fromarray(a).convert(mode).save(buf, format=fmt)
  return buf.getvalue()


def _tifffile(a, **kw):
  buf = io.BytesIO()
  tifffile.imwrite(buf, a, **kw)
  return buf.getvalue()


_A = (np.arange(24 * 40).reshape(24, 40) % 251).astype(np.uint8)
SAMPLES = [_encoded(f, m) for f in ("PNG", "TIFF") for m in ("L", "RGBA", "1", "I;16")
           if not (f == "PNG" and m == "I;16")] + [_encoded("JPEG", "L")] + [
    # BigTIFF, which Pillow reads; float64 and 16-bit gray + alpha, which only tifffile reads.
    _tifffile(_A, bigtiff=True), _tifffile(_A.astype(np.float64), bigtiff=True),
    _tifffile(np.stack([_A, _A], -1).astype(np.uint16), extrasamples=["unassalpha"])]


def _max_rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _read(path, reader):
  try:
    out = reader(path)
  except ValueError as e:
    assert "\n" not in str(e) and str(path) in str(e)
    return None
  assert out.dtype == np.uint8 and out.ndim == 2 and out.size <= CAP
  return out


@FUZZ
@given(width=st.integers(0, 2**32 - 1), height=st.integers(0, 2**32 - 1),
       kind=st.sampled_from([(8, 0), (16, 0), (8, 2), (8, 6), (1, 0), (8, 3)]),
       body=st.binary(max_size=200))
def test_png_headers_of_any_size(tmp_path, width, height, kind, body):
  path = tmp_path / "scan.png"
  path.write_bytes(_png(width, height, *kind, body))
  before = _max_rss_mb()
  out = _read(path, lambda p: scans.read_image(p, max_pixels=CAP))
  if width * height > CAP:
    assert out is None
  # A claim past the cap is refused before decoding: the process grew by nothing like it.
  assert _max_rss_mb() - before < 200


@FUZZ
@given(sample=st.sampled_from(range(len(SAMPLES))),
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 10**6)))
def test_damaged_scans_and_masks(tmp_path, sample, edits, cut):
  data = bytearray(SAMPLES[sample])
  for pos, value in edits:
    data[pos % len(data)] = value
  path = tmp_path / "scan.bin"
  path.write_bytes(bytes(data[:cut]) if cut is not None else bytes(data))
  before = _max_rss_mb()
  _read(path, lambda p: scans.read_image(p, max_pixels=CAP))
  _read(path, lambda p: scans.read_mask(p, 3, max_pixels=CAP))
  assert _max_rss_mb() - before < 200


def _las_text(tmp):
  path = os.path.join(tmp, "good.las")
  las.write(path, np.linspace(1000.0, 1010.0, 40),
            {"GR": np.linspace(10, 150, 40), "RHOB": np.linspace(2.0, 3.0, 40)})
  with open(path) as f:
    return f.read()


with tempfile.TemporaryDirectory() as _tmp:
  LAS_TEXT = _las_text(_tmp)
NOISE = st.sampled_from(["", "~A", "~C", "~V", "WRAP. YES :", "NULL. 0 :", "nan",
                         str(las.LAS_MISSING), "1e308", "1000.0 1 2", "DEPT.M :", "GR.GAPI :",
                         ":", ".", "\x00", "é"])


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 200), st.sampled_from(["drop", "dup", "put"]),
                                NOISE), max_size=6),
       cut=st.one_of(st.none(), st.integers(0, len(LAS_TEXT))))
def test_damaged_las_files(tmp_path, edits, cut):
  lines = (LAS_TEXT[:cut] if cut is not None else LAS_TEXT).splitlines()
  for pos, op, text in edits:
    i = pos % max(len(lines), 1)
    if op == "drop" and lines:
      del lines[i]
    elif op == "dup" and lines:
      lines.insert(i, lines[i])
    else:
      lines.insert(i, text)
  path = tmp_path / "log.las"
  path.write_text("\n".join(lines), encoding="utf-8")
  before = _max_rss_mb()
  try:
    depth, values = las.read_las_curves(path)
  except ValueError as e:
    assert str(path) in str(e)
  else:
    assert np.all(np.diff(depth) > 0) and values.shape == (2, len(depth))
  assert _max_rss_mb() - before < 200


def test_a_bomb_stays_under_a_memory_limit_only_with_the_cap(tmp_path):
  """Under a 1 GiB address-space limit a 10^10-pixel claim is refused; without the cap the
  same read runs out of memory (so the check can fail)."""
  path = tmp_path / "bomb.png"
  path.write_bytes(_png(100_000, 100_000, 8, 0, b"\x00" * 1000))
  code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30)); "
          "from ssl_seg.digitizer import scans\n"
          "try: scans.read_image(sys.argv[1], max_pixels=int(sys.argv[2]))\n"
          "except ValueError as e: print(e)")
  run = lambda cap: subprocess.run([sys.executable, "-c", code, str(path), str(cap)],  # noqa: E731
                                   cwd=ROOT, capture_output=True, text=True, timeout=120)
  capped = run(scans.DEFAULT_MAX_PIXELS)
  assert capped.returncode == 0 and "claims 100000 x 100000 px" in capped.stdout, capped.stderr
  uncapped = run(0)
  assert "MemoryError" in uncapped.stdout, uncapped.stdout + uncapped.stderr[-2000:]
