"""Data sets by name -> random-access sources -> grain data sets for a stage.

Every source is random access (`len`, `[i]` -> dict of numpy arrays), so the grain pipelines
in `pipeline.py` (fixed shapes) and `buckets.py` (variable-width logs) can serve any of them.
"""

import dataclasses

import grain
import numpy as np

from ssl_seg.data import pipeline, synthetic

# Loaders of the real data sets of the study (ImageNet subsets, Intel scenes, Oxford-IIIT Pet).
REAL_DATASETS = ("imagenet_subset", "intel_scenes", "oxford_iiit_pet", "image_folder")
# Which arrays each task reads from an example.
TASK_KEYS = {"mim": ("image",), "classify": ("image", "label"), "segment": ("image", "seg")}


@dataclasses.dataclass
class StageData:
  train: grain.MapDataset  # Element i is the batch of global step i.
  steps_per_epoch: int
  eval: grain.MapDataset | None


def _synthetic_shapes(data, split, keys):
  n = data.num_train if split == "train" else data.num_eval
  if n <= 0:
    raise ValueError(f"data.num_{split} must be > 0 for synthetic_shapes, got {n}")
  # Independent streams per split, so eval images are never training images.
  seed = int(np.random.SeedSequence([data.seed, split == "eval"]).generate_state(1)[0])
  images, seg, label = synthetic.make_images(seed, n, data.size)
  arrays = {"image": images, "seg": seg, "label": label}
  return pipeline.ArraySource({k: arrays[k] for k in keys})


def build_source(stage, split):
  """The source of `split` ('train' | 'eval') for a stage's task."""
  data = stage.data
  keys = TASK_KEYS.get(stage.task, ("image", "seg"))
  if data.name == "synthetic_shapes":
    source = _synthetic_shapes(data, split, keys)
  elif data.name in REAL_DATASETS:
    raise ValueError(f"data set {data.name!r} has no loader in this version yet; run the same "
                     "schedule offline with the config argument data=synthetic")
  else:
    raise ValueError(f"unknown data.name {data.name!r}; known: synthetic_shapes, "
                     f"{', '.join(REAL_DATASETS)}")
  if split == "train" and data.num_labels > 0:
    source = label_subset(source, data.num_labels, stage.seed)
  return source


def label_subset(source, num_labels, seed):
  """The first `num_labels` of a seeded permutation: budgets nest (250 within 500 ...)."""
  if num_labels > len(source):
    raise ValueError(f"label subset of {num_labels} requested from {len(source)} examples")
  order = np.random.default_rng([seed, 0x1abe1]).permutation(len(source))
  return source.subset(np.sort(order[:num_labels]))


def stage_data(stage) -> StageData:
  train, steps = pipeline.train_dataset(build_source(stage, "train"), stage.batch_size,
                                        stage.seed, stage.epochs)
  eval_ds = pipeline.eval_dataset(build_source(stage, "eval"), stage.eval_batch_size)
  return StageData(train, steps, eval_ds)
