"""Scans over --max-pixels, digitized band by band instead of being decoded whole.

A scan whose depth runs down the page and that is stored as uncompressed TIFF is read a band
of rows at a time (`band_io.band_reader`). Each band, with `margin` rows of context above and
below (the segmenter's window overlap, in scan rows), is segmented as a scan of its own and
only its centre kept, so every kept row was segmented with the context a window overlap gives.
The overlay is written band by band (`band_io.PngWriter`); the replot gets a thumbnail made
from the bands.

What is still held whole: the mask (1 byte per pixel; the tracer follows each curve over the
full depth of its track) and the tracer's working set over one track. So peak memory is about
a band's `scans.BYTES_PER_PIXEL` plus a few bytes per scan pixel, not 60 per scan pixel.
Bands hold at most a quarter of --max-pixels. Other scans over the cap (PNG, JPEG, compressed
TIFF: one compressed stream Pillow decodes whole; depth along the width: a row band would cut
across the tracks) are refused as before, the line saying why.
"""

import dataclasses
import math

import numpy as np
from PIL import Image

from ssl_seg.digitizer import band_io, scan_layout, scans

BAND_SHARE = 4  # A band holds at most max_pixels / BAND_SHARE pixels, margins included.


@dataclasses.dataclass(frozen=True)
class Bands:
  """A scan read a band of rows at a time: shape (H, W), read(y0, y1) -> uint8 [y1 - y0, W],
  and the band height (rows, before margins)."""
  shape: tuple
  read: object
  rows: int


def open_bands(path, page, max_pixels, depth_axis="auto", *, error):
  """`Bands` for a scan over the cap, or `error` (the refusal `scans` raised) re-raised with
  why this scan cannot be read in bands instead."""
  found = band_io.band_reader(path, page)
  if found is None:
    raise scans.ImageTooLarge(f"{error}; only an uncompressed TIFF can be read in bands "
                              "(re-save it so, e.g. `tiffcp -c none`)") from None
  (h, w), read = found
  vertical = h > w if depth_axis == "auto" else depth_axis == "vertical"
  if not vertical:
    raise scans.ImageTooLarge(f"{error}; bands of rows are read only where depth runs down "
                              "the page (rotate the scan, or --depth-axis=vertical)") from None
  rows = max(max_pixels // BAND_SHARE // w, 16) if max_pixels else h
  return Bands((h, w), read, rows)


def margin_rows(seg, layout, stroke=None):
  """Rows of context on each side of a band: the window overlap, in scan rows of the widest
  track (a track is scaled so its width becomes `seg.target_height`: by default the model's
  height; `stroke` is the scan's estimated stroke width, see `scan_layout.scan_stroke`)."""
  widest = max(b - a for a, b in layout.tracks)
  rows = seg.target_height(widest, stroke) if hasattr(seg, "target_height") else seg.height
  return math.ceil(seg.overlap * widest / rows) + 1


def stroke_sample(bands):
  """uint8 [<= rows, W]: the band in the middle of a banded scan, whose full rows keep the
  runs of ink `resolution.stroke_width` measures (the first band may hold only a header)."""
  h, _ = bands.shape
  y0 = max(0, (h - bands.rows) // 2)
  return bands.read(y0, min(h, y0 + bands.rows))


def band_starts(height, rows):
  return list(range(0, height, rows))


def segment(seg, bands, layout, thumb_rows, stroke=None):
  """(class ids uint8 [H, W], uint8 thumbnail of at most `thumb_rows` rows) of a banded scan.

  `seg` is anything with `segment(image) -> mask` (the `segmenter.Segmenter`), run per track
  of each band with `margin_rows` of context. stroke: the scan's stroke width (px) for every
  band, so all are scaled alike (`scan_layout.scan_stroke` of `stroke_sample`).
  """
  h, w = bands.shape
  margin = margin_rows(seg, layout, stroke) if hasattr(seg, "overlap") else 0
  mask = np.zeros((h, w), np.uint8)
  t_rows = min(thumb_rows, h)
  t_w = max(1, round(w * t_rows / h))
  thumb = []
  for y0 in band_starts(h, bands.rows):
    y1 = min(y0 + bands.rows, h)
    r0, r1 = max(0, y0 - margin), min(h, y1 + margin)
    image = bands.read(r0, r1)
    mask[y0:y1] = scan_layout.segment_scan(seg, image, layout, stroke)[y0 - r0:y1 - r0]
    # This band's share of the thumbnail: rows rounded on the running total, so they add up.
    n = round(y1 * t_rows / h) - round(y0 * t_rows / h)
    if n > 0:
      thumb.append(np.asarray(Image.fromarray(np.ascontiguousarray(image[y0 - r0:y1 - r0]))
                              .resize((t_w, n), Image.Resampling.BOX)))
  return mask, np.concatenate(thumb, 0)


def depth_sample(bands, rows=4096):
  """uint8 [<= rows, W]: every k-th row of a banded scan, read band by band. Its track borders
  run down the page, so the sample shows them as the whole scan would (`tracks`)."""
  h, _ = bands.shape
  k = -(-h // rows)
  return np.concatenate([bands.read(y0, min(y0 + bands.rows, h))[-y0 % k::k]
                         for y0 in band_starts(h, bands.rows)])


def write_overlay(path, bands, mask, draw):
  """The overlay PNG, band by band: `draw(image_band, mask_band, y0, y1)` -> RGB band."""
  h, w = bands.shape
  png = band_io.PngWriter(path, w, h, 3)
  for y0 in band_starts(h, bands.rows):
    y1 = min(y0 + bands.rows, h)
    png.write(draw(bands.read(y0, y1), mask[y0:y1], y0, y1))
  png.close()
  return path
