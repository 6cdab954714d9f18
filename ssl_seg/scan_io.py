"""Reading scans and masks of any size and mode into uint8 arrays; writing PNGs.

Scans come as PNG, JPEG or TIFF in 1-bit, grayscale (8 or 16 bit), palette or RGB(A). All are
read as 8-bit grayscale (255 = paper), the model's input. Archive scans of whole logs exceed
Pillow's decompression-bomb limit (about 89 M pixels), which exists to stop untrusted web
images; here the files are the user's own, so the limit is lifted while reading.
"""

import os

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Names our own outputs end with, so an output folder can double as an input folder.
OUTPUT_SUFFIXES = ("_mask", "_overlay")


def _open(path):
  limit = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = None
  try:
    image = Image.open(path)
    image.load()  # Decode now, so a truncated file fails here with its name.
  finally:
    Image.MAX_IMAGE_PIXELS = limit
  return image


def _to_gray(image):
  """uint8 [H, W] from any Pillow mode; transparency is composited onto white paper."""
  if image.mode in ("1", "L", "P", "RGB", "CMYK", "YCbCr", "LAB", "HSV"):
    return np.asarray(image.convert("L"))
  if image.mode in ("LA", "RGBA", "PA", "La", "RGBa"):
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, image.convert("RGBA")).convert("L"))
  # 16-bit and float modes ("I;16", "I", "F"): Pillow's convert("L") clips instead of scaling.
  a = np.asarray(image, dtype=np.float64)
  hi = 65535.0 if image.mode.startswith("I;16") else max(float(np.nanmax(a)), 1.0)
  return np.clip(np.rint(a / hi * 255.0), 0, 255).astype(np.uint8)


def read_image(path):
  """A scan as uint8 [H, W] grayscale; a file Pillow cannot decode raises ValueError."""
  path = os.fspath(path)
  try:
    image = _open(path)
  except FileNotFoundError:
    raise
  except Exception as e:  # Pillow raises OSError, SyntaxError, struct.error... on bad files.
    raise ValueError(f"cannot read image {path}: {type(e).__name__}: {e}") from e
  gray = _to_gray(image)
  if gray.ndim != 2 or min(gray.shape) < 1:
    raise ValueError(f"image {path} has no pixels (shape {gray.shape})")
  return gray


def read_mask(path, num_classes):
  """A mask PNG of class ids as uint8 [H, W]; ids >= num_classes raise ValueError."""
  path = os.fspath(path)
  try:
    image = _open(path)
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
  Image.fromarray(np.ascontiguousarray(array)).save(path, optimize=False)


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


def list_scans(path):
  """`list_images`, with an error when there are none: a command has nothing to do."""
  found = list_images(path)
  if not found:
    raise ValueError(f"no PNG, JPEG or TIFF files in {path}")
  return found


def stem(path):
  return os.path.splitext(os.path.basename(os.fspath(path)))[0]
