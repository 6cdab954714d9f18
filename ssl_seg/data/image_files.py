"""Natural-image files on disk: the official layouts of the study's data sets, decoding one
image or trimap (RGB, resized), and the errors that name a bad file and say what to do.
"""

import os

import numpy as np
from PIL import Image

INTEL_CLASSES = ("buildings", "forest", "glacier", "mountain", "sea", "street")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
# Modes PIL converts to 8-bit RGB without guessing a scale; 16-bit and float images are refused.
_TO_RGB = ("1", "L", "LA", "La", "P", "PA", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")
TRIMAP_VALUES = (1, 2, 3)  # pet, background, border -> ids 0, 1, 2 (INTERFACES.md).
PET_URLS = ("https://thor.robots.ox.ac.uk/~vgg/data/pets/images.tar.gz",
            "https://thor.robots.ox.ac.uk/~vgg/data/pets/annotations.tar.gz")


class DataError(ValueError):
  """A data file or data set cannot be used; the message names it and says what to do."""


class DataNotFoundError(FileNotFoundError):
  """A data directory or file is missing; the message names the config field and the layout."""


# ---------------------------------------------------------------------------- decoding one file


def _open(path, size):
  """A loaded PIL image of `path`, JPEGs decoded at reduced scale when much larger than `size`."""
  try:
    img = Image.open(path)
    original = img.size
    if img.format == "JPEG":
      img.draft("RGB", (size, size))  # DCT-domain downscale: several times faster for ImageNet.
    img.load()
    return img, original
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise DataError(f"{path}: cannot decode this image ({type(e).__name__}: {e}); the file is "
                    "corrupt or truncated: replace it with a good copy or delete it") from None


def load_image(path, size):
  """(uint8 [size, size, 3], note or None, original (width, height))."""
  img, original = _open(path, size)
  mode, note = img.mode, None
  if mode != "RGB":
    if mode not in _TO_RGB:
      raise DataError(f"{path}: image mode {mode!r} (16-bit or float pixels) is not supported; "
                      "convert the file to 8-bit RGB")
    note = f"converted {mode} images to RGB"
    if mode in ("P", "PA") and "transparency" in img.info:
      img = img.convert("RGBA")  # PIL warns when a palette with transparency goes straight to RGB.
    img = img.convert("RGB")
  img = img.resize((size, size), Image.BILINEAR)
  return np.asarray(img, np.uint8), note, original


def load_trimap(path, image_path, image_size, size):
  """Trimap PNG -> uint8 [size, size] class ids (nearest neighbour); checks values and size."""
  img, original = _open(path, size)
  arr = np.asarray(img)
  if arr.ndim != 2:
    raise DataError(f"{path}: a trimap must be a single-channel PNG of values 1/2/3, got mode "
                    f"{img.mode!r}; use the files of annotations/trimaps/ from the official data")
  if original != image_size:
    raise DataError(f"{path}: trimap is {original[0]}x{original[1]} but its image {image_path} "
                    f"is {image_size[0]}x{image_size[1]}; they must be the same size (a mask "
                    "from another image, or a resized copy of one of them?)")
  values = np.unique(arr)
  bad = values[~np.isin(values, TRIMAP_VALUES)]
  if bad.size:
    raise DataError(f"{path}: trimap values must be 1 (pet), 2 (background) or 3 (border); "
                    f"found {bad.tolist()[:8]}; use the official annotations/trimaps/ files")
  resized = Image.fromarray(arr.astype(np.uint8)).resize((size, size), Image.NEAREST)
  return np.asarray(resized, np.uint8) - 1


def pet_example(item, size):
  image_path, trimap_path = item
  image, note, original = load_image(image_path, size)
  seg = load_trimap(trimap_path, image_path, original, size)
  return {"image": image, "seg": seg, "_note": note}


def labeled_example(item, size):
  path, label = item
  image, note, _ = load_image(path, size)
  return {"image": image, "label": np.int32(label), "_note": note}


def unlabeled_example(path, size):
  image, note, _ = load_image(path, size)
  return {"image": image, "_note": note}


# ------------------------------------------------------------------------------ layouts on disk


def require_dir(path, what, layout):
  if not path:
    raise DataNotFoundError(f"data.dir is not set for {what}; set it to a directory laid out as "
                            f"{layout} (--config.stages.NAME.data.dir=PATH)")
  if not os.path.isdir(path):
    raise DataNotFoundError(f"{what}: directory {path} does not exist; data.dir must point to "
                            f"{layout}")
  return path


def list_images(directory):
  """Image files under `directory` (recursive, sorted, hidden files skipped)."""
  out = []
  for root, dirs, files in os.walk(directory):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    out += [os.path.join(root, f) for f in sorted(files)
            if f.lower().endswith(IMAGE_EXTS) and not f.startswith(".")]
  return out


def pet_items(root):
  """[(image path, trimap path)] of trainval.txt + test.txt, sorted by name."""
  layout = "images/*.jpg, annotations/trimaps/*.png, annotations/{trainval,test}.txt"
  images, trimaps = os.path.join(root, "images"), os.path.join(root, "annotations", "trimaps")
  for d in (images, trimaps):
    if not os.path.isdir(d):
      raise DataNotFoundError(f"oxford_iiit_pet: {d} does not exist; data.dir must hold {layout} "
                              f"(extract {' and '.join(PET_URLS)} into it)")
  names = set()
  for list_name in ("trainval.txt", "test.txt"):
    path = os.path.join(root, "annotations", list_name)
    if not os.path.isfile(path):
      raise DataNotFoundError(f"oxford_iiit_pet: list file {path} is missing; it comes with "
                              "annotations.tar.gz")
    with open(path) as f:
      names.update(line.split()[0] for line in f if line.strip() and not line.startswith("#"))
  if not names:
    raise DataError(f"oxford_iiit_pet: the list files in {root}/annotations name no images")
  items = []
  for name in sorted(names):
    item = (os.path.join(images, name + ".jpg"), os.path.join(trimaps, name + ".png"))
    for p in item:
      if not os.path.isfile(p):
        raise DataNotFoundError(f"oxford_iiit_pet: {p} is listed in annotations/*.txt but "
                                "missing; re-extract the official archives")
    items.append(item)
  return items


def class_folder_items(root, classes=None, what="data set"):
  """[(path, label)] of root/<class>/* images; `classes` fixes names and order if given."""
  found = sorted(d for d in os.listdir(root)
                 if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
  if classes is None:
    classes = found
  elif set(found) != set(classes):
    raise DataError(f"{what}: {root} must hold exactly the class folders {list(classes)}; "
                    f"found {found}")
  if not classes:
    raise DataError(f"{what}: {root} has no class folders (<class>/*.jpg)")
  items = []
  for label, name in enumerate(classes):
    files = list_images(os.path.join(root, name))
    if not files:
      raise DataError(f"{what}: class folder {os.path.join(root, name)} holds no images")
    items += [(p, label) for p in files]
  return items, tuple(classes)


def intel_root(root, split):
  """DIR/seg_train, or Kaggle's DIR/seg_train/seg_train."""
  path = os.path.join(root, split)
  nested = os.path.join(path, split)
  if os.path.isdir(nested):
    return nested
  if not os.path.isdir(path):
    raise DataNotFoundError(f"intel_scenes: {path} does not exist; data.dir must hold "
                            f"seg_train/<class>/*.jpg and seg_test/<class>/*.jpg with classes "
                            f"{', '.join(INTEL_CLASSES)}")
  return path
