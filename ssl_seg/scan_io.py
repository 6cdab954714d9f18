"""Reading scans and masks of any size and mode into uint8 arrays; writing PNGs.

Scans come as PNG, JPEG or TIFF in 1-bit, grayscale (8 or 16 bit), palette or RGB(A). All are
read as 8-bit grayscale (255 = paper), the model's input. Archive scans of whole logs exceed
Pillow's decompression-bomb limit (about 89 M pixels), so ours replaces it: `max_pixels`,
checked on the size the file's header claims before anything is decoded (a 500-byte PNG can
claim 10^10 pixels), sized so that reading and segmenting a scan fit in memory.
"""

import os

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Names our own outputs end with, so an output folder can double as an input folder.
OUTPUT_SUFFIXES = ("_mask", "_overlay")
# Peak host memory of `predict` grows by about BYTES_PER_PIXEL per scan pixel (measured, 5 and
# 20 M pixel RGBA scans: RGBA decode, grayscale, mask, the overlay's float32 blend); the default
# cap then needs about 12 GB, half of a 24 GiB machine.
BYTES_PER_PIXEL = 60
DEFAULT_MAX_PIXELS = 200_000_000


class ImageTooLarge(ValueError):
  """A scan's header claims more pixels than the reader's cap."""


def _open(path, max_pixels):
  limit = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = None  # Pillow's cap is replaced by `max_pixels` below.
  try:
    image = Image.open(path)  # Reads the header only.
    w, h = image.size
    if max_pixels and w * h > max_pixels:
      image.close()
      raise ImageTooLarge(
          f"image {path} claims {w} x {h} px ({w * h / 1e6:.0f} M pixels), more than "
          f"--max-pixels={max_pixels} (reading it needs about {BYTES_PER_PIXEL} bytes per "
          "pixel); split the scan, or raise --max-pixels if this machine has the memory")
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


def read_image(path, max_pixels=DEFAULT_MAX_PIXELS):
  """A scan as uint8 [H, W] grayscale; a file Pillow cannot decode, or larger than
  `max_pixels` (0: no cap), raises ValueError."""
  path = os.fspath(path)
  try:
    image = _open(path, max_pixels)
  except (FileNotFoundError, ImageTooLarge):
    raise
  except Exception as e:  # Pillow raises OSError, SyntaxError, struct.error... on bad files.
    raise ValueError(f"cannot read image {path}: {type(e).__name__}: {e}") from e
  gray = _to_gray(image)
  if gray.ndim != 2 or min(gray.shape) < 1:
    raise ValueError(f"image {path} has no pixels (shape {gray.shape})")
  return gray


def read_mask(path, num_classes, max_pixels=DEFAULT_MAX_PIXELS):
  """A mask PNG of class ids as uint8 [H, W]; ids >= num_classes raise ValueError."""
  path = os.fspath(path)
  try:
    image = _open(path, max_pixels)
  except ImageTooLarge:
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
