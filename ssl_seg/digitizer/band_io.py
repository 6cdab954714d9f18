"""Scans too large to hold whole, a band of rows at a time: reading the rows of an
uncompressed TIFF (`band_reader`) and writing a PNG band by band (`PngWriter`)."""

import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageFile

from ssl_seg.digitizer import scans

# Bits per pixel of the raw (uncompressed) TIFF layouts `band_reader` reads row by row.
_RAW_BITS = {"1": 1, "1;I": 1, "L": 8, "L;I": 8, "P": 8, "LA": 16, "I;16": 16, "I;16B": 16,
             "I;16L": 16, "I;16N": 16, "RGB": 24, "RGBA": 32, "RGBX": 32, "CMYK": 32}


def band_reader(path, page=None):
  """((H, W), read) for a scan that can be read a band of rows at a time, else None.

  read(y0, y1) is uint8 [y1 - y0, W] grayscale, as `read_image` gives it, decoded from only
  the bytes of those rows: the memory is the band's, whatever the page's size. Only
  uncompressed TIFF strips are laid out so (row y at a fixed offset); PNG, JPEG and
  compressed TIFF are one compressed stream that Pillow decodes whole.
  """
  path = os.fspath(path)
  if not path.lower().endswith((".tif", ".tiff")):
    return None
  limit = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = None  # Headers only.
  try:
    with Image.open(path) as image:
      if page:
        image.seek(page)
      (w, h), tiles = image.size, list(image.tile)
  except Exception:  # Unreadable: `read_image` names the problem.
    return None
  finally:
    Image.MAX_IMAGE_PIXELS = limit
  strips = _raw_strips(tiles, w)
  if strips is None:
    return None
  return (h, w), lambda y0, y1: _read_rows(path, page, strips, (h, w), y0, y1)


def _raw_strips(tiles, w):
  """[(first row, end row, offset, raw mode, bytes per row)] of raw full-width strips, or
  None where any tile is laid out otherwise."""
  strips = []
  for t in tiles:
    codec, (x0, y0, x1, y1), offset, args = t
    rawmode = args[0] if isinstance(args, tuple) else args
    stride = args[1] if isinstance(args, tuple) and len(args) > 1 else 0
    orientation = args[2] if isinstance(args, tuple) and len(args) > 2 else 1
    if codec != "raw" or (x0, x1) != (0, w) or rawmode not in _RAW_BITS or orientation != 1:
      return None
    strips.append((y0, y1, offset, rawmode, stride or -(-w * _RAW_BITS[rawmode] // 8)))
  return strips


def _read_rows(path, page, strips, shape, y0, y1):
  """uint8 [y1 - y0, W] grayscale rows y0..y1 of a page laid out in raw `strips`."""
  h, w = shape
  if not 0 <= y0 < y1 <= h:
    raise ValueError(f"rows {y0}:{y1} outside image {path} of {h} rows")
  band = []
  for a, b, offset, mode, row in strips:
    a1, b1 = max(a, y0), min(b, y1)
    # Cut in row runs: a single tile would make Pillow mmap the whole file.
    for r0, r1 in ((a1, a1 + 1), (a1 + 1, b1)) if b1 - a1 > 1 else ((a1, b1),):
      if r0 < r1:
        band.append(ImageFile._Tile("raw", (0, r0 - y0, w, r1 - y0),
                                    offset + (r0 - a) * row, (mode, row, 1)))
  limit = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = None
  try:
    with Image.open(path) as image:
      if page:
        image.seek(page)
      image.tile = band  # Decode only these rows.
      image._size = image._tile_size = (w, y1 - y0)
      image.load()
      return scans.to_gray(image)
  except Exception as e:
    raise ValueError(f"cannot read rows {y0}:{y1} of image {path}: {type(e).__name__}: "
                     f"{e}") from e
  finally:
    Image.MAX_IMAGE_PIXELS = limit


class PngWriter:
  """An 8-bit grayscale or RGB PNG written a band of rows at a time, so a picture of a scan
  too large to hold whole never is; atomic as `scans.write_png` (the file appears on `close`)."""

  def __init__(self, path, width, height, channels=1):
    self.path, self.width, self.height, self.channels = os.fspath(path), width, height, channels
    self.rows = 0
    self._zip = zlib.compressobj(6)
    self._file = open(self.path + ".tmp", "wb")
    self._file.write(b"\x89PNG\r\n\x1a\n")
    self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2,
                                     0, 0, 0))

  def _chunk(self, kind, data):
    self._file.write(struct.pack(">I", len(data)) + kind + data
                     + struct.pack(">I", zlib.crc32(kind + data)))

  def write(self, rows):
    """uint8 [N, W] (grayscale) or [N, W, 3] (RGB): the next N rows."""
    rows = np.ascontiguousarray(rows, np.uint8).reshape(len(rows), -1)
    if rows.shape[1] != self.width * self.channels or self.rows + len(rows) > self.height:
      raise ValueError(f"{self.path}: rows of shape {rows.shape} do not fit a "
                       f"{self.width} x {self.height} x {self.channels} PNG at row {self.rows}")
    filtered = np.concatenate([np.zeros((len(rows), 1), np.uint8), rows], 1)  # Filter: none.
    data = self._zip.compress(filtered.tobytes())
    if data:
      self._chunk(b"IDAT", data)
    self.rows += len(rows)

  def close(self):
    self._chunk(b"IDAT", self._zip.flush())
    self._chunk(b"IEND", b"")
    self._file.close()
    if self.rows != self.height:
      os.remove(self.path + ".tmp")
      raise ValueError(f"{self.path}: {self.rows} of {self.height} rows written")
    os.replace(self.path + ".tmp", self.path)
