"""Data sets by name -> random-access sources -> grain data sets for a stage.

Every source is random access (`len`, `[i]` -> dict of numpy arrays), so the grain pipelines
in `pipeline.py` (fixed shapes) and `buckets.py` (variable-width logs) can serve any of them.
"""

import dataclasses

import grain
import numpy as np
from tqdm import tqdm

from ssl_seg.data import buckets, pipeline, synthetic, welllogs

# Loaders of the real data sets of the study (ImageNet subsets, Intel scenes, Oxford-IIIT Pet).
REAL_DATASETS = ("imagenet_subset", "intel_scenes", "oxford_iiit_pet", "image_folder")
# Which arrays each task reads from an example.
TASK_KEYS = {"mim": ("image",), "classify": ("image", "label"), "segment": ("image", "seg"),
             "denoise": ("image",), "curve_segment": ("image", "seg")}
WELLLOG_DATASETS = ("welllog_synthetic",)


@dataclasses.dataclass
class StageData:
  train: grain.MapDataset  # Element i is the batch of global step i.
  steps_per_epoch: int
  eval: grain.MapDataset | None


def _synthetic_shapes(data, split, keys):
  n = data.num_train if split == "train" else data.num_eval
  if n <= 0:
    raise ValueError(f"data.num_{split} must be > 0 for synthetic_shapes, got {n}")
  images, seg, label = synthetic.make_images(_split_seed(data, split), n, data.size)
  arrays = {"image": images, "seg": seg, "label": label}
  return pipeline.ArraySource({k: arrays[k] for k in keys})


def _split_seed(data, split):
  # Independent streams per split, so eval examples are never training examples.
  return int(np.random.SeedSequence([data.seed, split == "eval"]).generate_state(1)[0])


def _welllogs(data, split, keys):
  """Rendered scans (list of dicts, variable widths); LAS files give the curves if listed."""
  n = data.num_train if split == "train" else data.num_eval
  if n <= 0:
    raise ValueError(f"data.num_{split} must be > 0 for {data.name}, got {n}")
  seed, las = _split_seed(data, split), tuple(data.las_paths)
  kw = dict(height=data.height, min_width=data.min_width, max_width=data.max_width)
  if las:
    examples = welllogs.render_dataset(seed, n, labeled=True, las_paths=las, **kw)
  else:
    examples = [dict(zip(("image", "seg"), welllogs.render_example(seed, i, **kw)))
                for i in tqdm(range(n), desc=f"rendering {split} logs", leave=False)]
  return [{k: e[k] for k in keys} for e in examples]


def build_source(stage, split):
  """The source of `split` ('train' | 'eval') for a stage's task."""
  data = stage.data
  keys = TASK_KEYS.get(stage.task, ("image", "seg"))
  if data.name == "synthetic_shapes":
    source = _synthetic_shapes(data, split, keys)
  elif data.name in WELLLOG_DATASETS:
    source = _welllogs(data, split, keys)
  elif data.name in REAL_DATASETS:
    raise ValueError(f"data set {data.name!r} has no loader in this version yet; run the same "
                     "schedule offline with the config argument data=synthetic")
  else:
    raise ValueError(f"unknown data.name {data.name!r}; known: synthetic_shapes, "
                     f"{', '.join(WELLLOG_DATASETS + REAL_DATASETS)}")
  if split == "train" and data.num_labels > 0:
    source = label_subset(source, data.num_labels, stage.seed)
  return source


def label_subset(source, num_labels, seed):
  """The first `num_labels` of a seeded permutation: budgets nest (250 within 500 ...)."""
  if num_labels > len(source):
    raise ValueError(f"label subset of {num_labels} requested from {len(source)} examples")
  order = np.sort(np.random.default_rng([seed, 0x1abe1]).permutation(len(source))[:num_labels])
  if isinstance(source, list):
    return [source[i] for i in order]
  return source.subset(order)


def stage_data(stage) -> StageData:
  if stage.data.name in WELLLOG_DATASETS:
    return _bucketed_stage_data(stage)
  train, steps = pipeline.train_dataset(build_source(stage, "train"), stage.batch_size,
                                        stage.seed, stage.epochs)
  eval_ds = pipeline.eval_dataset(build_source(stage, "eval"), stage.eval_batch_size)
  return StageData(train, steps, eval_ds)


def _bucketed_stage_data(stage) -> StageData:
  """Variable-width logs: one bucket plan over train and eval widths, constant pixels/batch.

  `batch_size` is the batch of the widest bucket; narrower buckets get proportionally more
  logs (capped at `data.max_batch_size`), so every step holds about the same pixel count and
  XLA compiles once per bucket shape (at most `data.num_buckets` train and eval programs).
  """
  data = stage.data
  train_src, eval_src = build_source(stage, "train"), build_source(stage, "eval")
  train_w, eval_w = buckets.source_widths(train_src), buckets.source_widths(eval_src)
  bucket_widths = buckets.bucket_widths_for(np.concatenate([train_w, eval_w]), multiple=32,
                                            max_buckets=data.num_buckets)
  batch_sizes = buckets.batch_sizes_for(bucket_widths, base_batch_size=stage.batch_size,
                                        max_batch_size=data.max_batch_size or None)
  # Partial batches are kept, their empty rows marked _valid False: with a dozen labelled logs
  # spread over a few buckets, dropping remainders would drop most of the labels.
  plan = buckets.BucketPlan(train_w, bucket_widths, batch_sizes, seed=stage.seed,
                            drop_remainder=False)
  train = buckets.plan_dataset(train_src, plan, num_epochs=stage.epochs)
  eval_sizes = buckets.batch_sizes_for(bucket_widths, base_batch_size=stage.eval_batch_size,
                                       max_batch_size=data.max_batch_size or None)
  eval_ds = buckets.bucketed_eval_dataset(eval_src, eval_w, bucket_widths=bucket_widths,
                                          batch_sizes=eval_sizes)
  return StageData(train, plan.batches_per_shard, eval_ds)
