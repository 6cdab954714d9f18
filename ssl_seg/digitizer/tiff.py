"""TIFF pages that Pillow cannot open, read through tifffile for `scans`.

Pillow has no mode for some TIFF layouts that scanners and image tools write: float samples,
16-bit gray with alpha, gray with extra samples. tifffile reads them a page at a time; each
page becomes the Pillow image Pillow gives for its nearest layout ("1", "L", "I;16", "F", "P",
"LA", "RGB", "RGBA", "CMYK", "YCbCr"), so `scans` turns it into grayscale as it turns every
other scan, and a page Pillow also reads comes out the same either way (tests pin it). Without
imagecodecs (not a dependency) tifffile decodes uncompressed, zlib and LZMA data; any other
compression is the one error line `scans` gives.
"""

import numpy as np
import tifffile
from PIL import Image

# Pillow modes whose pixels hold colour (`scans.is_colour`); a palette does where its
# entries do.
COLOUR_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV")


def _open(path):
  try:
    return tifffile.TiffFile(path)
  except Exception:  # Not a TIFF tifffile reads: the caller keeps Pillow's word for it.
    return None


def page_count(path):
  """Pages of a TIFF; None where tifffile cannot open it."""
  tif = _open(path)
  if tif is None:
    return None
  with tif:
    try:
      return len(tif.pages) or None
    except Exception:  # A damaged chain of pages: `read` names the problem.
      return None


def read(path, page, check):
  """`page` (0-based, one of `page_count`) as a Pillow image, or None where tifffile cannot
  open the file. check(width, height) runs on the page's header before anything is decoded
  (the caller's size cap); a page that is no scan (`mode`) raises ValueError before too."""
  tif = _open(path)
  if tif is None:
    return None
  with tif:
    p = tif.pages[page]
    check(p.imagewidth, p.imagelength)
    if not p.imagewidth * p.imagelength:
      raise ValueError(f"its page is {p.imagewidth} x {p.imagelength} px: no pixels")
    return _image(p.asarray(), p, mode(p))


def is_colour(path, page):
  """Whether `page` is stored in colour (from its header); None where unreadable."""
  tif = _open(path)
  if tif is None:
    return None
  with tif:
    try:
      p = tif.pages[page]
      m = mode(p)
    except Exception:  # `read` names the problem.
      return None
    if m == "P":
      return bool(np.ptp(np.asarray(p.colormap), axis=0).any())
    return m in COLOUR_MODES


def mode(p):
  """The Pillow mode tifffile page `p` is read as; ValueError for a page that is no scan.
  Checked before decoding: a damaged header may claim 1000 samples per pixel."""
  ph, n, dtype = p.photometric, p.samplesperpixel, np.dtype(p.dtype)
  alpha = n > 1 and int(p.extrasamples[0]) in (1, 2) if p.extrasamples else False
  P = tifffile.PHOTOMETRIC
  m = None
  if ph in (P.MINISWHITE, P.MINISBLACK):  # Extra samples that are not alpha: not the scan.
    m = "LA" if n == 2 and alpha else {bool: "1", np.uint8: "L",
                                       np.uint16: "I;16"}.get(dtype.type, "F")
  elif ph == P.PALETTE and n == 1 and dtype == np.uint8:
    m = "P"
  elif ph == P.RGB and n >= 3:
    m = "RGBA" if n == 4 and alpha else "RGB"
  elif ph == P.SEPARATED and n == 4:
    m = "CMYK"
  elif ph == P.YCBCR and n == 3:
    m = "YCbCr"
  if m is None or dtype.kind not in "buif" or p.imagedepth > 1 or n > 4:
    raise ValueError(f"a TIFF page of {n} sample(s) of {dtype} per pixel, photometric "
                     f"{getattr(ph, 'name', ph)}, is not a scan layout this reader knows")
  return m


def _to_u8(a):
  """8-bit samples as Pillow's 8-bit modes hold them; 16-bit scaled as `scans` scales it."""
  if a.dtype == bool:
    return a.astype(np.uint8) * 255
  if a.dtype == np.uint8:
    return a
  hi = 65535.0 if a.dtype == np.uint16 else max(float(np.nanmax(a, initial=0)), 1.0)
  return np.clip(np.nan_to_num(np.rint(a / hi * 255.0)), 0, 255).astype(np.uint8)


def _image(a, p, m):
  """Pillow image of mode `m` from page `p`'s decoded pixels `a`."""
  if "S" in p.axes and a.ndim == len(p.axes):  # Planar files decode samples first.
    a = np.moveaxis(a, p.axes.index("S"), -1)
  a = a.reshape(p.imagelength, p.imagewidth, -1)
  if int(p.photometric) == 0:  # MINISWHITE: 0 is paper; ours is 255.
    a = a.copy()
    g = a[..., 0]
    if g.dtype == bool:
      g ^= True
    else:
      a[..., 0] = (np.iinfo(g.dtype).max if g.dtype.kind == "u" else np.nanmax(g)) - g
  if m in ("1", "L", "I;16", "F", "P"):
    image = Image.fromarray(np.ascontiguousarray(a[..., 0] if m != "F"
                                                 else a[..., 0].astype(np.float32)))
    if m == "P":  # TIFF colour maps are 16-bit; some files hold 8-bit values in them.
      cmap = np.asarray(p.colormap)
      cmap = cmap // 256 if cmap.max(initial=0) > 255 else cmap
      image.putpalette(cmap.T.astype(np.uint8).tobytes())
    return image
  k = {"YCbCr": 3}.get(m, len(m))  # "LA", "RGB", "RGBA", "CMYK": one sample a letter.
  return Image.frombytes(m, (p.imagewidth, p.imagelength),
                         np.ascontiguousarray(_to_u8(a[..., :k])).tobytes())
