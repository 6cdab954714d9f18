"""Prepared TFDS data sets (array_record format) as cache inputs; no TensorFlow is imported.

`tfds build oxford_iiit_pet --file_format=array_record` needs TensorFlow on the real data: its
builder re-encodes 12 known-corrupt JPEGs with `tf.image.decode_image` (everything else
prepares without it). Prepare in a separate environment with TensorFlow, or point data.dir at
the extracted official archives instead (image_files.pet_items), which needs nothing extra.
Reading a prepared directory here uses `tfds.builder_from_directory(...).as_data_source()`:
random access to the array_record shards, images decoded by PIL, once, into our cache.
"""

import glob
import os

import numpy as np
import tensorflow_datasets as tfds

from ssl_seg.data import image_files, records


def _versioned_dir(root, name):
  """ROOT/NAME/<latest version>/ (the directory holding dataset_info.json)."""
  infos = sorted(glob.glob(os.path.join(root, name, "*", "dataset_info.json")))
  infos += sorted(glob.glob(os.path.join(root, name, "*", "*", "dataset_info.json")))
  if not infos:
    raise image_files.DataNotFoundError(
        f"{os.path.join(root, name)} holds no prepared TFDS data set (no */dataset_info.json); "
        f"prepare it with `tfds build {name} --data_dir={root} --file_format=array_record`")
  return os.path.dirname(infos[-1])


def _data_sources(directory, name):
  builder = tfds.builder_from_directory(directory)
  if builder.info.file_format.value != "array_record":
    raise image_files.DataError(
        f"{directory}: {name} was prepared as {builder.info.file_format.value}, which cannot be "
        "read without TensorFlow; prepare it again with --file_format=array_record")
  return [(split, builder.as_data_source(split)) for split in sorted(builder.info.splits)]


def pet_pool(data, root, cache):
  """Every example of every split of a prepared oxford_iiit_pet (the study pools them)."""
  directory = _versioned_dir(root, "oxford_iiit_pet")
  sources = _data_sources(directory, "oxford_iiit_pet")
  items = [(split, i) for split, ds in sources for i in range(len(ds))]
  by_split = dict(sources)
  size = int(data.size)

  def load(item):
    split, i = item
    where = f"{directory} ({split} example {i})"
    try:
      ex = by_split[split][i]
    except Exception as e:  # TFDS wraps PIL's errors in its own types.
      raise image_files.DataError(f"{where}: cannot decode ({type(e).__name__}: {e}); prepare the "
                              "data set again from good archives") from None
    image = np.asarray(ex["image"])
    mask = np.asarray(ex["segmentation_mask"])[..., 0]
    if image.shape[:2] != mask.shape:
      raise image_files.DataError(f"{where}: image {image.shape[:2]} and mask {mask.shape} differ")
    bad = np.setdiff1d(np.unique(mask), image_files.TRIMAP_VALUES)
    if bad.size:
      raise image_files.DataError(f"{where}: trimap values must be 1/2/3, found {bad.tolist()[:8]}")
    from PIL import Image
    img = Image.fromarray(image.astype(np.uint8)).convert("RGB").resize((size, size),
                                                                       Image.BILINEAR)
    seg = Image.fromarray(mask.astype(np.uint8)).resize((size, size), Image.NEAREST)
    return {"image": np.asarray(img), "seg": np.asarray(seg) - 1}

  shards = sorted(glob.glob(os.path.join(directory, "*.array_record*")))
  return cache(data, "oxford_iiit_pet", {"tfds": records.file_fingerprint(shards)}, items, load)
