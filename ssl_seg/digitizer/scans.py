"""Reading scans and masks of any size and mode into uint8 arrays; writing PNGs.

Scans come as PNG, JPEG or TIFF (BigTIFF too) in 1-bit, grayscale (8 or 16 bit), palette, RGB(A)
or CMYK. All are read as 8-bit grayscale (255 = paper), the model's input: the models are
trained on grayscale, so a colour scan loses its colour (`is_colour` tells the commands to say
so). Archive scans of whole logs exceed Pillow's decompression-bomb limit (about 89 M pixels),
so ours replaces it: `max_pixels`, checked on the size the file's header claims before anything
is decoded (a 500-byte PNG can claim 10^10 pixels), sized so that reading and segmenting a scan
fit in memory.

Pillow reads every file it can open (BigTIFF included), as it always has. A TIFF it cannot open
(a layout it has no mode for: float64, 16-bit gray with alpha, float RGB, extra samples...) is
read through tifffile (`tiff`), with the same size check and the same grayscale; where
tifffile cannot open it either, the error line is Pillow's, as before.

A multi-page TIFF holds one scan per page (`page_count`, `read_image(..., page=k)`); predict
digitizes each, as NAME_p1, NAME_p2, ...
"""

import contextlib
import logging
import os
import warnings

import numpy as np
from PIL import Image

from ssl_seg.digitizer import tiff

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Names our own outputs end with, so an output folder can double as an input folder.
OUTPUT_SUFFIXES = ("_mask", "_overlay", "_replot")
# Peak host memory of `predict` grows by about BYTES_PER_PIXEL per scan pixel (measured, 5 and
# 20 M pixel RGBA scans: RGBA decode, grayscale, mask, the overlay's float32 blend); the default
# cap then needs about 12 GB, half of a 24 GiB machine.
BYTES_PER_PIXEL = 60
DEFAULT_MAX_PIXELS = 200_000_000


class ImageTooLarge(ValueError):
  """A scan's header claims more pixels than the reader's cap."""


class NoSuchPage(ValueError):
  """A page past the last one of a multi-page TIFF."""


# The first bytes of a TIFF and of a BigTIFF, in either byte order.
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
COLOUR_NOTE = "colour scan read as grayscale (the model was trained on grayscale)"


@contextlib.contextmanager
def _reading():
  """Pillow's pixel cap off (`max_pixels` replaces it), and the warnings and log lines that
  Pillow and tifffile give on a damaged header silenced: a bad file gets one line, ours."""
  limit = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = None
  logs = [logging.getLogger(name) for name in ("PIL", "tifffile")]
  levels = [log.level for log in logs]
  try:
    for log in logs:
      log.setLevel(logging.CRITICAL + 1)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      yield
  finally:
    Image.MAX_IMAGE_PIXELS = limit
    for log, level in zip(logs, levels):
      log.setLevel(level)


def _is_tiff(path):
  try:
    with open(path, "rb") as f:
      return f.read(4) in _TIFF_MAGIC
  except OSError:
    return False


def _check_size(path, w, h, max_pixels):
  if max_pixels and w * h > max_pixels:
    raise ImageTooLarge(
        f"image {path} claims {w} x {h} px ({w * h / 1e6:.0f} M pixels), more than "
        f"--max-pixels={max_pixels} (reading it needs about {BYTES_PER_PIXEL} bytes per "
        "pixel); split the scan, or raise --max-pixels if this machine has the memory")


def _header(path, page):
  """The Pillow image of `page`, its header read and nothing decoded."""
  image = Image.open(path)
  try:
    if page:
      n = getattr(image, "n_frames", 1)
      if page >= n:
        raise NoSuchPage(f"image {path} has {n} page(s); no page {page + 1}")
      image.seek(page)  # A TIFF page's own header: its size is checked by the caller.
  except BaseException:
    image.close()
    raise
  return image


def _open(path, max_pixels, page=None):
  """`page` decoded as a Pillow image: by Pillow where it opens the file, else (a TIFF) by
  tifffile."""
  with _reading():
    try:
      image = _header(path, page)
    except (FileNotFoundError, NoSuchPage):
      raise
    except Exception as e:  # Pillow raises OSError, SyntaxError, struct.error... on bad files.
      if not _is_tiff(path):
        raise
      return _tiff_open(path, max_pixels, page, e)
    try:
      _check_size(path, *image.size, max_pixels)
      image.load()  # Decode now, so a truncated file fails here with its name.
    except BaseException:
      image.close()
      raise
  return image


def _tiff_open(path, max_pixels, page, pillow_error):
  """`page` of a TIFF Pillow could not open, read by tifffile (`tiff`); a file tifffile
  cannot open either raises Pillow's error. Called within `_reading`."""
  pages = tiff.page_count(path)
  if not pages:
    raise pillow_error from None
  if (page or 0) >= pages:
    raise NoSuchPage(f"image {path} has {pages} page(s); no page {(page or 0) + 1}")
  image = tiff.read(path, page or 0, lambda w, h: _check_size(path, w, h, max_pixels))
  if image is None:
    raise pillow_error from None
  return image


def is_colour(path, page=None):
  """Whether a scan (`page` of a multi-page TIFF) is stored in colour: RGB(A), CMYK, YCbCr or
  a palette of colours. From the header: nothing is decoded. False for a file that cannot be
  read (`read_image` names the problem)."""
  path = os.fspath(path)
  with _reading():
    try:
      with _header(path, page) as image:
        if image.mode in ("P", "PA"):
          return _colour_palette(image.palette)
        return image.mode in tiff.COLOUR_MODES
    except Exception:  # Unreadable by Pillow: a TIFF tifffile may read.
      if not _is_tiff(path):
        return False
  with _reading():
    return bool(tiff.is_colour(path, page or 0))


def _colour_palette(palette):
  """Whether a Pillow palette has an entry that is not gray (read without decoding)."""
  if palette is None:
    return False
  data = np.frombuffer(bytes(palette.palette), np.uint8)
  if palette.rawmode == "RGB;L":  # A TIFF colour map: all reds, then greens, then blues.
    rgb = data[:len(data) // 3 * 3].reshape(3, -1).T
  elif palette.rawmode in (None, "RGB") and palette.mode in ("RGB", "RGBA"):
    rgb = data[:len(data) // len(palette.mode) * len(palette.mode)].reshape(
        -1, len(palette.mode))[:, :3]
  else:
    return True  # A layout we do not parse: say colour rather than nothing.
  return bool(np.ptp(rgb, axis=1).any())


def to_gray(image):
  """uint8 [H, W] from any Pillow mode; transparency is composited onto white paper."""
  if image.mode in ("1", "L", "P", "RGB", "CMYK", "YCbCr", "LAB", "HSV"):
    return np.asarray(image.convert("L"))
  if image.mode in ("LA", "RGBA", "PA", "La", "RGBa"):
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, image.convert("RGBA")).convert("L"))
  # 16-bit and float modes ("I;16", "I", "F"): Pillow's convert("L") clips instead of scaling.
  # A float TIFF may hold NaN or inf: scaled by its finite top, NaN as ink, inf as paper.
  a = np.asarray(image, dtype=np.float64)
  top = float(np.max(a, where=np.isfinite(a), initial=0.0))
  hi = 65535.0 if image.mode.startswith("I;16") else max(top, 1.0)
  return np.clip(np.nan_to_num(np.rint(a / hi * 255.0)), 0, 255).astype(np.uint8)


def page_count(path):
  """Pages in a scan: a multi-page TIFF's pages, each a scan of its own; 1 for other files
  (and for a file whose header cannot be read: `read_image` then names the problem)."""
  path = os.fspath(path)
  if not path.lower().endswith((".tif", ".tiff")):
    return 1
  with _reading():  # Headers only: the size is checked when a page is read.
    try:
      with Image.open(path) as image:
        return int(getattr(image, "n_frames", 1))
    except Exception:  # Pillow raises OSError, SyntaxError, struct.error... on bad files.
      pass
  with _reading():  # A TIFF Pillow cannot open, counted as `read_image` reads it.
    return tiff.page_count(path) or 1


def read_image(path, max_pixels=DEFAULT_MAX_PIXELS, page=None):
  """A scan as uint8 [H, W] grayscale; a file Pillow cannot decode, or larger than
  `max_pixels` (0: no cap), raises ValueError. `page`: of a multi-page TIFF, 0-based
  (None: the first)."""
  path = os.fspath(path)
  try:
    image = _open(path, max_pixels, page)
  except (FileNotFoundError, ImageTooLarge, NoSuchPage):
    raise
  except Exception as e:  # Pillow raises OSError, SyntaxError, struct.error... on bad files.
    raise ValueError(f"cannot read image {path}: {type(e).__name__}: {e}") from e
  gray = to_gray(image)
  if gray.ndim != 2 or min(gray.shape) < 1:
    raise ValueError(f"image {path} has no pixels (shape {gray.shape})")
  return gray


def read_mask(path, num_classes, max_pixels=DEFAULT_MAX_PIXELS, page=None):
  """A mask PNG (or a page of a mask TIFF, 0-based) of class ids as uint8 [H, W]; ids >=
  num_classes raise ValueError."""
  path = os.fspath(path)
  try:
    image = _open(path, max_pixels, page)
  except (ImageTooLarge, NoSuchPage):
    raise
  except Exception as e:
    raise ValueError(f"cannot read mask {path}: {type(e).__name__}: {e}") from e
  if image.mode not in ("L", "P", "1", "I", "I;16"):
    raise ValueError(f"mask {path} has mode {image.mode}; expected a single-channel PNG of "
                     f"class ids 0..{num_classes - 1}")
  mask = np.asarray(image)
  if mask.max(initial=0) >= num_classes:
    raise ValueError(f"mask {path} holds class id {int(mask.max())}; expected ids "
                     f"0..{num_classes - 1}")
  return mask.astype(np.uint8)


def write_png(path, array):
  """Atomically: a kill mid-write leaves the earlier file or none, never half a PNG."""
  path = os.fspath(path)
  Image.fromarray(np.ascontiguousarray(array)).save(path + ".tmp", format="PNG", optimize=False)
  os.replace(path + ".tmp", path)


def list_images(path):
  """The scans to process: `path` itself if a file, else the image files in it, sorted."""
  path = os.fspath(path)
  if os.path.isfile(path):
    return [path]
  if not os.path.isdir(path):
    raise FileNotFoundError(f"input not found: {path}")
  names = sorted(n for n in os.listdir(path)
                 if n.lower().endswith(IMAGE_EXTENSIONS)
                 and not os.path.splitext(n)[0].endswith(OUTPUT_SUFFIXES))
  return [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]


def skipped_outputs(path):
  """The image files in folder `path` that `list_images` leaves out as our own outputs."""
  path = os.fspath(path)
  if not os.path.isdir(path):
    return []
  return sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS)
                and os.path.splitext(n)[0].endswith(OUTPUT_SUFFIXES))


def list_scans(path):
  """`list_images`, with an error when there are none: a command has nothing to do."""
  found = list_images(path)
  if not found:
    raise ValueError(f"no PNG, JPEG or TIFF files in {path}")
  return found


def stem(path):
  return os.path.splitext(os.path.basename(os.fspath(path)))[0]


def find_mask(masks_dir, name):
  """The mask of scan `name` (a file stem) in masks_dir: NAME_mask.png or NAME.png."""
  for candidate in (f"{name}_mask.png", f"{name}.png"):
    path = os.path.join(masks_dir, candidate)
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(f"no mask for {name} in {masks_dir} (expected {name}_mask.png or "
                          f"{name}.png)")
