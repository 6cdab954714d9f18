"""The study's natural-image data sets, read from their official layouts into decode-once caches.

  oxford_iiit_pet    DIR/images/*.jpg, DIR/annotations/trimaps/*.png, DIR/annotations/
                     {trainval,test}.txt (the archives from the VGG page, extracted); or a TFDS
                     data dir holding a prepared `oxford_iiit_pet` in array_record format.
                     Trimap 1/2/3 -> class ids 0 pet / 1 background / 2 border. As in the study,
                     the official split is ignored: all 7,349 images are pooled, a fixed
                     `num_eval` (1,000) is the test set, labels are drawn from the rest.
  intel_scenes       DIR/seg_train/<class>/*.jpg and DIR/seg_test/<class>/*.jpg (Kaggle's extra
                     seg_train/seg_train nesting is accepted); classes in INTEL_CLASSES order.
  imagenet_subset    DIR/train/<wnid>/*.JPEG (or DIR/<wnid>/*.JPEG): a class-balanced subset of
                     `subset` images for training, `num_eval` further images for eval.
  image_folder       every image under DIR, recursively, unlabeled (pretraining).

Images are decoded once, converted to RGB (grayscale, palette, RGBA, CMYK: explicitly, with a
count printed), resized to `size` x `size` (bilinear, antialiased; masks nearest neighbour) and
stored as uint8 in array_record caches under `data.cache_dir` (records.py). Which examples form
a split or a label subset is a pure function of `data.seed` (subsets.py); label subsets nest
(250 within 500 within 1k ...). A bad file stops the build with one error naming it and what to do.
"""

import os

import numpy as np
from PIL import Image

from ssl_seg.data import records, subsets

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


def _pet_example(item, size):
  image_path, trimap_path = item
  image, note, original = load_image(image_path, size)
  seg = load_trimap(trimap_path, image_path, original, size)
  return {"image": image, "seg": seg, "_note": note}


def _labeled_example(item, size):
  path, label = item
  image, note, _ = load_image(path, size)
  return {"image": image, "label": np.int32(label), "_note": note}


def _unlabeled_example(path, size):
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


# ------------------------------------------------------------------------- subsets by data.seed


def _rng(seed, salt):
  return np.random.default_rng([seed, salt])


def check_count(requested, available, field, what):
  """-1 means all; 0 or more than available is an error naming the field."""
  if requested == -1:
    return available
  if requested <= 0:
    raise DataError(f"{what}: data.{field}={requested} selects no examples; use -1 for all or "
                    "a positive count")
  if requested > available:
    raise DataError(f"{what}: data.{field}={requested} but only {available} examples are "
                    "available; lower it or add data")
  return requested


def balanced_subset(labels, count, seed, salt):
  """Sorted positions of `count` examples, as equal per class as the classes allow."""
  labels = np.asarray(labels)
  classes = np.unique(labels)
  rng = _rng(seed, salt)
  per_class = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
  quota = dict.fromkeys(classes, count // len(classes))
  for c in rng.permutation(classes)[:count % len(classes)]:
    quota[c] += 1
  short = {int(c): len(per_class[c]) for c in classes if len(per_class[c]) < quota[c]}
  if short:
    raise DataError(f"a class-balanced subset of {count} needs {count // len(classes)}+ images "
                    f"per class; classes {sorted(short)[:10]} have fewer; lower data.subset")
  return np.sort(np.concatenate([per_class[c][:quota[c]] for c in classes]))


# ------------------------------------------------------------------------------ sources by name


def _cache(data, name, description, items, load_fn):
  description = {"dataset": name, "size": int(data.size), **description}
  return records.build(data.get("cache_dir", ""), name, description, items, load_fn,
                       workers=int(data.get("workers", 0)))


def _pet_pool(data):
  root = require_dir(data.dir, "oxford_iiit_pet", "images/ + annotations/ or a TFDS data dir")
  if os.path.isdir(os.path.join(root, "oxford_iiit_pet")) and not os.path.isdir(
      os.path.join(root, "annotations")):
    try:
      from ssl_seg.data import tfds_sources  # Imports tensorflow_datasets only when needed.
    except ModuleNotFoundError as e:
      if e.name != "tensorflow_datasets":
        raise
      raise ValueError(f"{root} is a prepared TFDS directory, which needs tensorflow-datasets "
                       "(an optional extra): install ssl_seg[tfds] (pip install "
                       "'ssl_seg[tfds]', or uv sync --extra tfds), or point data.dir at the raw "
                       "Pet layout (images/, annotations/)") from None
    return tfds_sources.pet_pool(data, root, _cache)
  items = pet_items(root)
  size = int(data.size)
  return _cache(data, "oxford_iiit_pet", {"files": records.file_fingerprint(
      [p for item in items for p in item])}, items, lambda it: _pet_example(it, size))


def oxford_iiit_pet(data, split):
  pool = _pet_pool(data)
  n = len(pool)
  num_eval = int(data.num_eval) if data.num_eval > 0 else 1000  # The study's fixed test set.
  if num_eval >= n:
    raise DataError(f"oxford_iiit_pet: data.num_eval={num_eval} leaves no training images of "
                    f"{n}; lower it")
  order = _rng(data.seed, 0x7e57).permutation(n)
  if split == "eval":
    return pool.subset(np.sort(order[:num_eval]))
  train = np.sort(order[num_eval:])
  count = check_count(int(data.num_labels), len(train), "num_labels", "oxford_iiit_pet")
  return pool.subset(train[subsets.nested_subset(len(train), count, data.seed)])


def intel_scenes(data, split):
  root = require_dir(data.dir, "intel_scenes", "seg_train/<class>/*.jpg + seg_test/<class>/*.jpg")
  folder = intel_root(root, "seg_train" if split == "train" else "seg_test")
  items, _ = class_folder_items(folder, INTEL_CLASSES, "intel_scenes")
  size = int(data.size)
  source = _cache(data, f"intel_scenes_{split}",
                  {"files": records.file_fingerprint([p for p, _ in items])}, items,
                  lambda it: _labeled_example(it, size))
  field = "num_labels" if split == "train" else "num_eval"
  count = check_count(int(data[field]), len(source), field, "intel_scenes")
  if count == len(source):
    return source
  return source.subset(balanced_subset(source.column("label"), count, data.seed,
                                       subsets.LABEL_SALT))


def imagenet_subset(data, split):
  root = require_dir(data.dir, "imagenet_subset", "train/<wnid>/*.JPEG (ImageNet's train folder)")
  train_dir = os.path.join(root, "train")
  items, _ = class_folder_items(train_dir if os.path.isdir(train_dir) else root,
                                what="imagenet_subset")
  labels = np.array([label for _, label in items])
  count = check_count(int(data.subset), len(items), "subset", "imagenet_subset")
  chosen = balanced_subset(labels, count, data.seed, 0x5eb5e7)
  if split == "eval":
    rest = np.setdiff1d(np.arange(len(items)), chosen)
    num_eval = check_count(int(data.num_eval) if data.num_eval > 0 else 1000, len(rest),
                           "num_eval", "imagenet_subset (images outside the training subset)")
    chosen = rest[balanced_subset(labels[rest], num_eval, data.seed, 0xe7a1)]
  picked = [items[i] for i in chosen]
  size = int(data.size)
  return _cache(data, f"imagenet_{split}", {"files": records.file_fingerprint(
      [p for p, _ in picked])}, picked, lambda it: _labeled_example(it, size))


def image_folder(data, split):
  root = require_dir(data.dir, "image_folder", "any folder of images (searched recursively)")
  paths = list_images(root)
  if not paths:
    raise DataError(f"image_folder: no images ({', '.join(IMAGE_EXTS)}) under {root}")
  num_eval = int(data.num_eval) if data.num_eval > 0 else max(1, len(paths) // 20)
  if num_eval >= len(paths):
    raise DataError(f"image_folder: data.num_eval={num_eval} leaves no training images of "
                    f"{len(paths)} in {root}; lower it or add images")
  order = _rng(data.seed, 0xf01d).permutation(len(paths))
  if split == "eval":
    picked = np.sort(order[:num_eval])
  else:
    rest = np.sort(order[num_eval:])
    count = check_count(int(data.subset), len(rest), "subset", "image_folder")
    picked = rest[subsets.nested_subset(len(rest), count, data.seed, 0x5eb5e7)]
  files = [paths[i] for i in picked]
  size = int(data.size)
  return _cache(data, f"image_folder_{split}", {"files": records.file_fingerprint(files)},
                files, lambda p: _unlabeled_example(p, size))


LOADERS = {"oxford_iiit_pet": oxford_iiit_pet, "intel_scenes": intel_scenes,
           "imagenet_subset": imagenet_subset, "image_folder": image_folder}


def build_source(data, split, keys):
  """The cached RecordSource of `split` ('train' | 'eval') holding only `keys`."""
  source = LOADERS[data.name](data, split)
  missing = [k for k in keys if k not in source.meta["keys"]]
  if missing:
    raise DataError(f"{data.name} has no {missing} for this task (it holds "
                    f"{source.meta['keys']}); pick a data set with those fields")
  return source.with_keys(keys)
