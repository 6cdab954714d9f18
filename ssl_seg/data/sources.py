"""Data sets by name (`SOURCES`) -> random-access sources -> grain data sets for a stage.

Every source is random access (`len`, `[i]` -> dict of numpy arrays), so the grain pipelines
in `pipeline.py` (fixed shapes) and `buckets.py` (variable-width logs) can serve any of them.
A new data set is one builder `(stage, split, keys) -> source` and one line in `SOURCES`.
The caller says which arrays (`keys`) an example must hold: its task's batch keys.
"""

import dataclasses
from collections.abc import Callable

import grain
import numpy as np
from tqdm import tqdm

from ssl_seg import config_utils
from ssl_seg.data import (
  buckets,
  crops,
  natural,
  pipeline,
  scan_folders,
  subsets,
  synthetic,
  welllogs,
)
from ssl_seg.data.welllog_style import RenderStyle
from ssl_seg.models import curvenet


@dataclasses.dataclass
class StageData:
  train: grain.MapDataset  # Element i is the batch of global step i.
  steps_per_epoch: int
  eval: grain.MapDataset | None


def _split_seed(data, split):
  # Independent streams per split, so eval examples are never training examples.
  return int(np.random.SeedSequence([data.seed, split == "eval"]).generate_state(1)[0])


def _labels_drawn(stage, split, n):
  """Sorted indices of the label subset of a split of `n` examples, drawn by the stage's seed
  (budget studies vary the labels with it), or None: every example of the split."""
  if split == "train" and stage.data.num_labels > 0:
    return subsets.label_indices(n, stage.data.num_labels, stage.seed)
  return None


def _label_subset(source, stage, split):
  """`source` restricted to its label subset when one is set."""
  order = _labels_drawn(stage, split, len(source))
  if order is None:
    return source
  if isinstance(source, list):
    return [source[i] for i in order]
  return source.subset(order)


def _synthetic_shapes(stage, split, keys):
  data = stage.data
  n = data.num_train if split == "train" else data.num_eval
  if n <= 0:
    raise ValueError(f"data.num_{split} must be > 0 for synthetic_shapes, got {n}")
  images, seg, label = synthetic.make_images(_split_seed(data, split), n, data.size)
  arrays = {"image": images, "seg": seg, "label": label}
  return _label_subset(pipeline.ArraySource({k: arrays[k] for k in keys}), stage, split)


def _rendered_logs(stage, split, keys):
  """Rendered scans (list of dicts, variable widths); LAS files give the curves if listed.

  A label budget renders only the logs it draws: a small budget from a large pool costs only
  the logs it uses.
  """
  data = stage.data
  n = data.num_train if split == "train" else data.num_eval
  if n <= 0:
    raise ValueError(f"data.num_{split} must be > 0 for {data.name}, got {n}")
  subset = _labels_drawn(stage, split, n)
  seed, las = _split_seed(data, split), tuple(data.las_paths)
  kw = dict(height=data.height, min_width=data.min_width, max_width=data.max_width)
  if las:
    if "las_curves" in data:  # Configs saved before the field keep welllogs' default curves.
      kw["las_curves"] = tuple(data.las_curves)
    examples = welllogs.render_dataset(seed, n, labeled=True, las_paths=las, **kw)
    examples = examples if subset is None else [examples[i] for i in subset]
  else:
    indices = range(n) if subset is None else subset
    examples = [dict(zip(("image", "seg"), welllogs.render_example(seed, int(i), **kw)))
                for i in tqdm(indices, desc=f"rendering {split} logs", leave=False)]
  return [{k: e[k] for k in keys} for e in examples]


def _scan_folders(stage, split, keys):
  num_classes = len(stage.get("class_names", ())) or 3
  return _label_subset(scan_folders.build_source(stage.data, split, keys, num_classes), stage,
                       split)


def _natural(stage, split, keys):
  # Splits and label subsets of the natural data sets are fixed by data.seed (natural.py).
  return natural.build_source(stage.data, split, keys)


@dataclasses.dataclass(frozen=True)
class Source:
  build: Callable  # (stage, split, keys) -> random-access source of dicts holding `keys`.
  logs: bool = False  # Variable-width logs: width-bucketed or cropped batches, not fixed shapes.


SOURCES = {
    "synthetic_shapes": Source(_synthetic_shapes),
    "welllog_synthetic": Source(_rendered_logs, logs=True),
    "welllog_files": Source(_scan_folders, logs=True),  # A team's own scans (scan_folders.py).
    # The study's natural images: ImageNet subsets, Intel scenes, Oxford-IIIT Pet, a folder.
    **{name: Source(_natural) for name in natural.LOADERS},
}


def source_of(data):
  """The registry entry of `data.name`; ValueError naming the known data sets."""
  if data.name not in SOURCES:
    raise ValueError(f"unknown data.name {data.name!r}; known: {', '.join(SOURCES)}")
  return SOURCES[data.name]


def train_style(overrides):
  """The look of freshly rendered training logs: `RenderStyle` with the fields of
  `data.render_style` (e.g. p_spikes) replaced; evaluation logs keep the default look."""
  return dataclasses.replace(RenderStyle(), **{
      k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in dict(overrides).items()})


def validate(data, f):
  """Raises config_utils.ConfigError for a bad field of data config `f` ('stages.NAME.data'):
  a known data set, non-empty splits and label subsets, logs at least CurveNet's stride."""
  need = config_utils.need
  need(data.name in SOURCES, f"{f}.name", f"unknown data set {data.name!r}; known: "
       f"{', '.join(SOURCES)}")
  for split in ("num_train", "num_eval"):
    if split in data:
      need(data[split] != 0, f"{f}.{split}", "must be -1 (all) or >= 1, got 0 (an empty "
           "data set cannot train or evaluate)")
  if "num_labels" in data:
    need(data.num_labels == -1 or data.num_labels >= 1, f"{f}.num_labels",
         f"must be -1 (all examples) or >= 1, got {data.num_labels} (an empty label subset)")
  if "las_curves" in data:
    need(len(data.las_curves) == 2 and all(isinstance(c, str) and c for c in data.las_curves),
         f"{f}.las_curves", f"must name two LAS curves (curve1, curve2), e.g. GR,RHOB; got "
         f"{tuple(data.las_curves)}")
  stride = curvenet.STRIDE  # Narrower logs have no bottleneck column.
  if data.get("crop_width", 0):
    need(data.crop_width % stride == 0 and data.crop_width > 0, f"{f}.crop_width",
         f"must be 0 (whole logs) or a positive multiple of {stride} px (the network's "
         f"stride), got {data.crop_width}")
  if "las_fraction" in data:
    need(0.0 <= data.las_fraction <= 1.0, f"{f}.las_fraction",
         f"must be a share in [0, 1], got {data.las_fraction}")
  if data.get("render_style"):
    unknown = sorted(set(data.render_style) - {x.name for x in dataclasses.fields(RenderStyle)})
    need(not unknown, f"{f}.render_style", f"unknown RenderStyle field(s) {', '.join(unknown)}")
    need(data.get("fresh", False) or train_style(data.render_style) == RenderStyle(),
         f"{f}.render_style", "only a stage on fresh renders (data.fresh=True) draws its "
         "training logs in another look")
  if "min_width" in data:
    need(data.min_width >= stride, f"{f}.min_width", f"must be >= {stride} px (the network's "
         f"stride), got {data.min_width}")
  if data.get("manifest"):
    # Read now, not when the stage's data is built: a typo in a path, or a bad layout file,
    # would otherwise stop the run after the stages before it have trained.
    try:
      scan_folders.read_manifests(data.manifest, depth_axis=data.get("depth_axis", "auto"),
                                  tracks=tuple(data.get("tracks", ())))
    except (ValueError, OSError) as e:
      raise config_utils.ConfigError(f"config.{f}.manifest: {e}") from None


def build_source(stage, split, keys):
  """The source of `split` ('train' | 'eval') for a stage, examples holding `keys`."""
  return source_of(stage.data).build(stage, split, keys)


def stage_data(stage, keys, *, devices_per_process=1, process_index=0,
               process_count=1) -> StageData:
  """Train and eval data of a stage, examples holding `keys` (its task's batch keys); batch
  sizes in the config are global (all processes)."""
  shard = (devices_per_process, process_index, process_count)
  if source_of(stage.data).logs and stage.data.get("crop_width", 0) > 0:
    return _cropped_stage_data(stage, keys, *shard)
  if source_of(stage.data).logs:
    return _bucketed_stage_data(stage, keys, *shard)
  train, steps = pipeline.train_dataset(build_source(stage, "train", keys), stage.batch_size,
                                        stage.seed, stage.epochs, process_index=process_index,
                                        process_count=process_count)
  eval_ds = pipeline.eval_dataset(build_source(stage, "eval", keys), stage.eval_batch_size)
  if process_count > 1:  # Each process feeds its own rows of every global eval batch.
    rows = slice(process_index * stage.eval_batch_size // process_count,
                 (process_index + 1) * stage.eval_batch_size // process_count)
    eval_ds = eval_ds.map(lambda batch: {k: v[rows] for k, v in batch.items()})
  return StageData(train, steps, eval_ds)


def _log_widths(source, split):
  """Widths of a split's logs; a log narrower than the network's stride is an error."""
  w = buckets.source_widths(source)
  narrow = np.flatnonzero(w < curvenet.STRIDE)
  if narrow.size:
    i = int(narrow[0])
    raise ValueError(f"{split} log {i} is {w[i]} px wide, narrower than the network's stride "
                     f"({curvenet.STRIDE} px; {narrow.size} such log(s)); drop it or pad it to >= "
                     f"{curvenet.STRIDE} px")
  return w


def _bucketed_stage_data(stage, keys, devices_per_process=1, process_index=0,
                         process_count=1) -> StageData:
  """Variable-width logs: one bucket plan over train and eval widths, constant pixels/batch.

  `batch_size` is the batch of the widest bucket; narrower buckets get proportionally more
  logs (capped at `data.max_batch_size`), so every step holds about the same pixel count and
  XLA compiles once per bucket shape (at most `data.num_buckets` train and eval programs).
  Several devices: every bucket's batch size is a multiple of this process's device count, so
  each batch splits evenly; several processes: each loads every `process_count`-th batch.
  """
  data = stage.data
  train_src, eval_src = build_source(stage, "train", keys), build_source(stage, "eval", keys)
  train_w, eval_w = _log_widths(train_src, "train"), _log_widths(eval_src, "eval")
  shards = dict(multiple_of=devices_per_process, max_batch_size=data.max_batch_size or None)
  bucket_widths = buckets.bucket_widths_for(np.concatenate([train_w, eval_w]),
                                            multiple=curvenet.STRIDE,
                                            max_buckets=data.num_buckets)
  count = lambda w: np.bincount(buckets.assign_buckets(w, bucket_widths),
                                minlength=len(bucket_widths))
  batch_sizes = buckets.batch_sizes_for(bucket_widths,
                                        base_batch_size=stage.batch_size // process_count,
                                        counts=-(-count(train_w) // process_count), **shards)
  # Partial batches are kept and filled by wrapping around within the bucket: with a dozen
  # labelled logs spread over a few buckets, dropping remainders would drop most of the labels,
  # and empty rows would cost as much compute as real ones.
  plan = buckets.BucketPlan(train_w, bucket_widths, batch_sizes, seed=stage.seed,
                            drop_remainder=False, fill_remainder=True, shard_count=process_count)
  train = buckets.plan_dataset(train_src, plan, num_epochs=stage.epochs,
                               shard_index=process_index)
  eval_ds = _bucketed_eval(stage, eval_src, eval_w, bucket_widths, devices_per_process,
                           process_index, process_count)
  return StageData(train, plan.batches_per_shard, eval_ds)


def _bucketed_eval(stage, source, widths, bucket_widths, devices_per_process, process_index,
                   process_count):
  """Whole eval logs in `bucket_widths`, every log once, batch sizes as for training."""
  counts = np.bincount(buckets.assign_buckets(widths, bucket_widths),
                       minlength=len(bucket_widths))
  sizes = buckets.batch_sizes_for(
      bucket_widths, base_batch_size=stage.eval_batch_size // process_count,
      counts=-(-counts // process_count), multiple_of=devices_per_process,
      max_batch_size=stage.data.max_batch_size or None)
  return buckets.bucketed_eval_dataset(source, widths, bucket_widths=bucket_widths,
                                       batch_sizes=sizes, shard_index=process_index,
                                       shard_count=process_count)


def _cropped_stage_data(stage, keys, devices_per_process=1, process_index=0,
                        process_count=1) -> StageData:
  """Train on fixed-width windows (`crops.py`), evaluate on whole logs in width buckets.

  `data.fresh`: every window is a new render and `data.num_train` is the number rendered per
  epoch; otherwise windows are random crops of the `num_train` (or `num_labels`) fixed logs,
  `data.epoch_steps` steps per epoch (0: one window of every log).
  """
  data = stage.data
  shard = dict(shard_index=process_index, shard_count=process_count)
  if data.get("fresh", False):
    las = welllogs.load_las_data(tuple(data.las_paths), tuple(data.las_curves))
    seed = int(np.random.SeedSequence([data.seed, stage.seed, 0xf7e5]).generate_state(1)[0])
    load = crops.FreshRenders(seed=seed, batch_size=stage.batch_size, height=data.height,
                              crop_width=data.crop_width, labeled="seg" in keys,
                              min_width=data.min_width, max_width=data.max_width, las_data=las,
                              las_fraction=data.las_fraction,
                              style=train_style(data.get("render_style", {})), **shard)
    steps = max(1, data.num_train // stage.batch_size)
  else:
    train_src = build_source(stage, "train", keys)
    _log_widths(train_src, "train")
    load = crops.RandomCrops(train_src, seed=stage.seed, batch_size=stage.batch_size,
                             crop_width=data.crop_width,
                             epoch_steps=data.get("epoch_steps", 0), **shard)
    steps = load.steps_per_epoch
  train = grain.MapDataset.range(steps * stage.epochs).map(load)
  eval_src = build_source(stage, "eval", keys)
  eval_w = _log_widths(eval_src, "eval")
  bucket_widths = buckets.bucket_widths_for(eval_w, multiple=curvenet.STRIDE,
                                            max_buckets=data.num_buckets)
  eval_ds = _bucketed_eval(stage, eval_src, eval_w, bucket_widths, devices_per_process,
                           process_index, process_count)
  return StageData(train, steps, eval_ds)
