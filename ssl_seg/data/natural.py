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

Images are decoded once (image_files.py: converted to RGB, grayscale, palette, RGBA, CMYK
explicitly, with a count printed; resized to `size` x `size`, bilinear, antialiased, masks
nearest neighbour) and stored as uint8 in array_record caches under `data.cache_dir`
(records.py). Which examples form a split or a label subset is a pure function of `data.seed`
(subsets.py); label subsets nest (250 within 500 within 1k ...). A bad file stops the build with
one error naming it and what to do.
"""

import os

import numpy as np

from ssl_seg.data import image_files, records, subsets

# ------------------------------------------------------------------------- subsets by data.seed


def _rng(seed, salt):
  return np.random.default_rng([seed, salt])


def check_count(requested, available, field, what):
  """-1 means all; 0 or more than available is an error naming the field."""
  if requested == -1:
    return available
  if requested <= 0:
    raise image_files.DataError(f"{what}: data.{field}={requested} selects no examples; use -1 "
                                "for all or a positive count")
  if requested > available:
    raise image_files.DataError(f"{what}: data.{field}={requested} but only {available} "
                                "examples are available; lower it or add data")
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
    raise image_files.DataError(f"a class-balanced subset of {count} needs "
                                f"{count // len(classes)}+ images per class; classes "
                                f"{sorted(short)[:10]} have fewer; lower data.subset")
  return np.sort(np.concatenate([per_class[c][:quota[c]] for c in classes]))


# ------------------------------------------------------------------------------ sources by name


def _cache(data, name, description, items, load_fn):
  description = {"dataset": name, "size": int(data.size), **description}
  return records.build(data.get("cache_dir", ""), name, description, items, load_fn,
                       workers=int(data.get("workers", 0)))


def _pet_pool(data):
  root = image_files.require_dir(data.dir, "oxford_iiit_pet",
                                 "images/ + annotations/ or a TFDS data dir")
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
  items = image_files.pet_items(root)
  size = int(data.size)
  return _cache(data, "oxford_iiit_pet", {"files": records.file_fingerprint(
      [p for item in items for p in item])}, items, lambda it: image_files.pet_example(it, size))


def oxford_iiit_pet(data, split):
  pool = _pet_pool(data)
  n = len(pool)
  num_eval = int(data.num_eval) if data.num_eval > 0 else 1000  # The study's fixed test set.
  if num_eval >= n:
    raise image_files.DataError(f"oxford_iiit_pet: data.num_eval={num_eval} leaves no training "
                                f"images of {n}; lower it")
  order = _rng(data.seed, 0x7e57).permutation(n)
  if split == "eval":
    return pool.subset(np.sort(order[:num_eval]))
  train = np.sort(order[num_eval:])
  count = check_count(int(data.num_labels), len(train), "num_labels", "oxford_iiit_pet")
  return pool.subset(train[subsets.nested_subset(len(train), count, data.seed)])


def intel_scenes(data, split):
  root = image_files.require_dir(data.dir, "intel_scenes",
                                 "seg_train/<class>/*.jpg + seg_test/<class>/*.jpg")
  folder = image_files.intel_root(root, "seg_train" if split == "train" else "seg_test")
  items, _ = image_files.class_folder_items(folder, image_files.INTEL_CLASSES, "intel_scenes")
  size = int(data.size)
  source = _cache(data, f"intel_scenes_{split}",
                  {"files": records.file_fingerprint([p for p, _ in items])}, items,
                  lambda it: image_files.labeled_example(it, size))
  field = "num_labels" if split == "train" else "num_eval"
  count = check_count(int(data[field]), len(source), field, "intel_scenes")
  if count == len(source):
    return source
  return source.subset(balanced_subset(source.column("label"), count, data.seed,
                                       subsets.LABEL_SALT))


def imagenet_subset(data, split):
  root = image_files.require_dir(data.dir, "imagenet_subset",
                                 "train/<wnid>/*.JPEG (ImageNet's train folder)")
  train_dir = os.path.join(root, "train")
  items, _ = image_files.class_folder_items(train_dir if os.path.isdir(train_dir) else root,
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
      [p for p, _ in picked])}, picked, lambda it: image_files.labeled_example(it, size))


def image_folder(data, split):
  root = image_files.require_dir(data.dir, "image_folder",
                                 "any folder of images (searched recursively)")
  paths = image_files.list_images(root)
  if not paths:
    raise image_files.DataError(f"image_folder: no images "
                                f"({', '.join(image_files.IMAGE_EXTS)}) under {root}")
  num_eval = int(data.num_eval) if data.num_eval > 0 else max(1, len(paths) // 20)
  if num_eval >= len(paths):
    raise image_files.DataError(f"image_folder: data.num_eval={num_eval} leaves no training "
                                f"images of {len(paths)} in {root}; lower it or add images")
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
                files, lambda p: image_files.unlabeled_example(p, size))


LOADERS = {"oxford_iiit_pet": oxford_iiit_pet, "intel_scenes": intel_scenes,
           "imagenet_subset": imagenet_subset, "image_folder": image_folder}


def build_source(data, split, keys):
  """The cached RecordSource of `split` ('train' | 'eval') holding only `keys`."""
  source = LOADERS[data.name](data, split)
  missing = [k for k in keys if k not in source.meta["keys"]]
  if missing:
    raise image_files.DataError(f"{data.name} has no {missing} for this task (it holds "
                    f"{source.meta['keys']}); pick a data set with those fields")
  return source.with_keys(keys)
