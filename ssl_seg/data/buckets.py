"""Width bucketing for variable-width well logs: one shape per bucket, full batches.

Logs share a height but their widths vary from a few hundred to many thousands of px. Each
example goes to the smallest bucket width that fits it and is padded on the right to that width,
so XLA compiles once per bucket, not once per width. Batch sizes shrink as buckets widen so that
pixels per batch (memory, step time) stay about constant. The plan is index-level and a pure
function of (widths, seed, epoch): element i of the `grain.MapDataset` is the batch of global
step i, so a run resumes exactly from the step alone.

Multi-host: every process builds the same global plan from the same widths and seed and takes
every `shard_count`-th batch of it (`shard_index`, `shard_index + shard_count`, ...). The plan is
shuffled in groups of `shard_count` consecutive batches from one bucket, so at each step all
processes hold local batches of the same shape, which together form one global batch; the
per-bucket batch sizes are per-process sizes.
"""

import dataclasses

import grain
import numpy as np


def _as_widths(widths):
  """Widths as an int64 vector; a width that is not positive is an error naming the example."""
  w = np.asarray(widths)
  if w.ndim != 1:
    raise ValueError(f"widths must be a 1-D sequence, got shape {w.shape}")
  if w.size == 0:
    return np.zeros(0, np.int64)
  if not np.issubdtype(w.dtype, np.integer):
    raise TypeError(f"widths must be integers, got dtype {w.dtype}")
  w = w.astype(np.int64)
  bad = np.flatnonzero(w <= 0)
  if bad.size:
    i = int(bad[0])
    raise ValueError(f"example {i} has width {w[i]}; widths must be positive")
  return w


def _as_bucket_widths(bucket_widths):
  """Bucket widths as an int64 vector, checked to be positive and strictly increasing."""
  bw = np.asarray(bucket_widths)
  if bw.ndim != 1 or bw.size == 0 or not np.issubdtype(bw.dtype, np.integer):
    raise ValueError(f"bucket_widths must be a non-empty 1-D sequence of ints, got {bucket_widths}")
  if bw[0] <= 0 or np.any(np.diff(bw) <= 0):
    raise ValueError(f"bucket_widths must be positive and strictly increasing, got {bucket_widths}")
  return bw.astype(np.int64)


def _round_up(x, multiple):
  return -(-x // multiple) * multiple


def bucket_widths_for(widths, *, multiple=32, max_buckets=6, max_candidates=1024):
  """Sorted bucket widths (multiples of `multiple`) minimising total padded pixels, by DP."""
  if multiple < 1 or max_buckets < 1:
    raise ValueError(f"multiple and max_buckets must be >= 1, got {multiple}, {max_buckets}")
  w = _as_widths(widths)
  if w.size == 0:
    raise ValueError("cannot choose buckets for an empty list of widths")
  rounded = np.sort(_round_up(w, multiple))
  cands = np.unique(rounded)
  if cands.size > max_candidates:
    # The DP is quadratic in candidates; quantiles of the data keep it cheap and lose little.
    cands = np.unique(np.quantile(rounded, np.linspace(0, 1, max_candidates), method="higher"))
  # count[j]: examples whose rounded width is <= cands[j], i.e. that fit a bucket of cands[j].
  count = np.searchsorted(rounded, cands, side="right").astype(np.float64)
  top = cands.astype(np.float64)
  m = cands.size
  # best[j]: fewest padded-area pixels (per row) covering every example up to cands[j] with the
  # buckets placed so far, the widest being cands[j]; padded area = real area + padding.
  best = top * count
  choices = []
  below = np.tril(np.ones((m, m), bool))
  for _ in range(max_buckets - 1):
    # total[i, j]: best so far up to cands[i], plus a new bucket cands[j] over (cands[i], cands[j]].
    total = best[:, None] + top[None, :] * (count[None, :] - count[:, None])
    total[below] = np.inf
    prev = np.argmin(total, axis=0)
    new = total[prev, np.arange(m)]
    # Ties keep fewer buckets: each extra bucket costs an extra XLA compilation.
    keep = best <= new
    choices.append(np.where(keep, np.arange(m), prev))
    best = np.where(keep, best, new)
  j = m - 1
  chosen = {int(cands[j])}
  for prev in reversed(choices):
    j = int(prev[j])
    chosen.add(int(cands[j]))
  return tuple(sorted(chosen))


def assign_buckets(widths, bucket_widths):
  """Index of the smallest bucket at least as wide as each example (int64 array)."""
  w = _as_widths(widths)
  bw = _as_bucket_widths(bucket_widths)
  ids = np.searchsorted(bw, w, side="left")
  too_wide = np.flatnonzero(ids == bw.size)
  if too_wide.size:
    i = int(too_wide[0])
    raise ValueError(f"example {i} has width {w[i]}, wider than the largest bucket {bw[-1]} "
                     f"({too_wide.size} example(s) too wide)")
  return ids.astype(np.int64)


def padding_waste(widths, bucket_widths):
  """Fraction (0..1) of the padded area that is padding, each example padded to its bucket."""
  w = _as_widths(widths)
  bw = _as_bucket_widths(bucket_widths)
  padded = bw[assign_buckets(w, bw)].sum()
  return float(1.0 - w.sum() / padded) if padded else 0.0


def batch_sizes_for(bucket_widths, *, base_batch_size=None, pixels_per_batch=None, multiple_of=1,
                    max_batch_size=None, counts=None):
  """Per-bucket batch sizes, batch size x bucket width about constant (floored, >= multiple_of)."""
  # base_batch_size is the widest bucket's batch size; pixels_per_batch is batch size x bucket
  # width (the height is fixed, so it is pixels per batch row). Give exactly one.
  # counts (examples per bucket), when given, shrinks each size to the smallest that still needs
  # the same number of batches per epoch: 5 logs at size 4 become 2 batches of 3, not of 4 with 3
  # empty rows; a bucket of 2 logs gets batches of 2, not of 8.
  bw = _as_bucket_widths(bucket_widths)
  if (base_batch_size is None) == (pixels_per_batch is None):
    raise ValueError("give exactly one of base_batch_size and pixels_per_batch")
  if multiple_of < 1:
    raise ValueError(f"multiple_of must be >= 1, got {multiple_of}")
  if pixels_per_batch is None:
    if base_batch_size < 1:
      raise ValueError(f"base_batch_size must be >= 1, got {base_batch_size}")
    pixels_per_batch = base_batch_size * int(bw[-1])
  # Flooring keeps every batch within the pixel (memory) budget set by the caller.
  sizes = pixels_per_batch // bw // multiple_of * multiple_of
  if max_batch_size is not None:
    sizes = np.minimum(sizes, max_batch_size // multiple_of * multiple_of)
  sizes = np.maximum(sizes, multiple_of)
  if counts is not None:
    n = np.asarray(counts, np.int64)
    if n.shape != sizes.shape:
      raise ValueError(f"need one count per bucket, got {len(n)} for {len(sizes)} buckets")
    num_batches = np.maximum(-(-n // sizes), 1)
    sizes = np.minimum(sizes, _round_up(np.maximum(-(-n // num_batches), 1), multiple_of))
  return tuple(int(s) for s in sizes)


def _batch_counts(bucket_sizes, batch_sizes, drop_remainder, group_size):
  """Batches per bucket in one epoch; a multiple of group_size so shards share shapes."""
  counts = []
  for n, bs in zip(bucket_sizes, batch_sizes):
    if drop_remainder:
      counts.append(n // bs // group_size * group_size)
    else:
      counts.append(-(-n // (bs * group_size)) * group_size)
  return counts


def _batches(bucket_ids, batch_sizes, *, seed, epoch, shuffle, drop_remainder, group_size,
             fill_remainder=False):
  """The global batch list of one epoch from precomputed bucket ids."""
  rng = np.random.default_rng([seed, epoch])
  members_by_bucket = [np.flatnonzero(bucket_ids == b) for b in range(len(batch_sizes))]
  counts = _batch_counts([len(m) for m in members_by_bucket], batch_sizes, drop_remainder,
                         group_size)
  groups = []
  for b, (members, bs, n_batches) in enumerate(zip(members_by_bucket, batch_sizes, counts)):
    if shuffle:
      members = rng.permutation(members)
    if fill_remainder and len(members):
      # Wrap around: the bucket's own examples, in this epoch's order, fill the last batch.
      rows = np.resize(members, n_batches * bs).astype(np.int64)
    else:
      rows = np.full(n_batches * bs, -1, np.int64)
      kept = min(len(members), rows.size)
      rows[:kept] = members[:kept]
    rows.flags.writeable = False
    batches = rows.reshape(n_batches, bs)
    for g in range(0, n_batches, group_size):
      groups.append([(b, batches[g + r]) for r in range(group_size)])
  if shuffle:
    groups = [groups[i] for i in rng.permutation(len(groups))]
  return [batch for group in groups for batch in group]


@dataclasses.dataclass(frozen=True, eq=False)
class BucketPlan:
  """Bucket widths, per-bucket batch sizes and, per epoch, the deterministic list of batches.

  An epoch's batches are (bucket_id, indices) pairs, index -1 marking a padding row. Examples
  are shuffled within each bucket and batches across buckets, both from (seed, epoch).
  drop_remainder drops incomplete batches (each example at most once); otherwise the last batch
  of a bucket is padded with -1 (each example exactly once), or with fill_remainder completed
  by wrapping around to the bucket's first examples of the epoch (each example at least once,
  no empty rows: what training wants, since empty rows cost as much as real ones). Batches come
  in runs of shard_count from one bucket (see the module docstring), completed with all-padding
  (or wrapped-around) batches when not dropping.
  """

  widths: np.ndarray = dataclasses.field(repr=False)
  bucket_widths: tuple
  batch_sizes: tuple
  seed: int = 0
  shuffle: bool = True
  drop_remainder: bool = True
  shard_count: int = 1
  fill_remainder: bool = False  # Wrap around instead of empty rows (see above).

  def __post_init__(self):
    widths = _as_widths(self.widths).copy()
    widths.flags.writeable = False
    bucket_widths = tuple(int(w) for w in _as_bucket_widths(self.bucket_widths))
    batch_sizes = tuple(int(b) for b in self.batch_sizes)
    if len(batch_sizes) != len(bucket_widths) or min(batch_sizes) < 1:
      raise ValueError(f"need one batch size >= 1 per bucket, got {batch_sizes} for "
                       f"{len(bucket_widths)} buckets")
    if self.shard_count < 1:
      raise ValueError(f"shard_count must be >= 1, got {self.shard_count}")
    if self.drop_remainder and self.fill_remainder:
      raise ValueError("drop_remainder and fill_remainder exclude each other")
    bucket_ids = assign_buckets(widths, bucket_widths)
    bucket_ids.flags.writeable = False
    counts = _batch_counts(np.bincount(bucket_ids, minlength=len(bucket_widths)), batch_sizes,
                           self.drop_remainder, self.shard_count)
    for name, value in [("widths", widths), ("bucket_widths", bucket_widths),
                        ("batch_sizes", batch_sizes), ("bucket_ids", bucket_ids),
                        ("num_batches", sum(counts)), ("_cache", {})]:
      object.__setattr__(self, name, value)

  @property
  def batches_per_shard(self):
    return self.num_batches // self.shard_count

  def batches(self, epoch):
    """All shards' batches of `epoch`, as (bucket_id, indices) with -1 for padding rows."""
    batches = self._cache.get(epoch)
    if batches is None:
      batches = _batches(self.bucket_ids, self.batch_sizes, seed=self.seed, epoch=epoch,
                         shuffle=self.shuffle, drop_remainder=self.drop_remainder,
                         group_size=self.shard_count, fill_remainder=self.fill_remainder)
      # A loader touches one or two epochs at a time; clear() keeps the cache small and,
      # unlike evicting single keys, cannot race between prefetch threads.
      if len(self._cache) >= 4:
        self._cache.clear()
      self._cache[epoch] = batches
    return batches

  def shard_batches(self, epoch, shard_index):
    """The batches of `epoch` that process `shard_index` loads: every shard_count-th one."""
    if not 0 <= shard_index < self.shard_count:
      raise ValueError(f"shard_index {shard_index} not in [0, {self.shard_count})")
    return self.batches(epoch)[shard_index::self.shard_count]


def pad_batch(source, indices, bucket_width, *, pad_value=255):
  """Loads `indices` (-1 = padding row) from `source` and pads them to [B, H, bucket_width]."""
  indices = np.asarray(indices)
  valid = indices >= 0
  if not 0 <= pad_value <= 255:
    raise ValueError(f"pad_value must fit in uint8, got {pad_value}")
  # An all-padding batch still needs H, C and the keys, so it reads a reference example.
  ref_index = int(indices[valid][0]) if valid.any() else 0
  ref = source[ref_index]
  ref_image = np.asarray(ref["image"])
  height = ref_image.shape[0]
  channels = 1 if ref_image.ndim == 2 else ref_image.shape[-1]
  size = len(indices)
  batch = {
      "image": np.full((size, height, bucket_width, channels), pad_value, np.uint8),
      "valid_px": np.zeros((size, height, bucket_width), bool),
      "_valid": valid,
      "width": np.zeros(size, np.int32),
  }
  if "seg" in ref:
    batch["seg"] = np.zeros((size, height, bucket_width), np.uint8)
  for row, i in enumerate(indices):
    if i < 0:
      continue
    example = ref if i == ref_index else source[int(i)]
    image = np.asarray(example["image"])
    if image.ndim == 2:
      image = image[..., None]
    width = image.shape[1]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[::2] != (height, channels):
      raise ValueError(f"example {i}: image {image.dtype}{list(image.shape)}, expected uint8 "
                       f"[{height}, W, {channels}] like the rest of the batch")
    if width > bucket_width:
      raise ValueError(f"example {i} has width {width}, wider than its bucket {bucket_width}")
    batch["image"][row, :, :width] = image
    batch["valid_px"][row, :, :width] = True
    batch["width"][row] = width
    if "seg" in batch:
      seg = np.asarray(example["seg"])
      if seg.shape != (height, width) or not np.issubdtype(seg.dtype, np.integer):
        raise ValueError(f"example {i}: seg {seg.dtype}{list(seg.shape)}, expected integer "
                         f"[{height}, {width}]")
      batch["seg"][row, :, :width] = seg
  return batch


class _LoadStep:
  """Global step -> padded batch of one shard; a picklable class so grain workers can use it."""

  def __init__(self, source, plan, shard_index, pad_value):
    self.source, self.plan, self.shard_index, self.pad_value = source, plan, shard_index, pad_value

  def __call__(self, step):
    epoch, j = divmod(int(step), self.plan.batches_per_shard)
    bucket, indices = self.plan.shard_batches(epoch, self.shard_index)[j]
    batch = pad_batch(self.source, indices, self.plan.bucket_widths[bucket],
                      pad_value=self.pad_value)
    valid = batch["_valid"]
    # Widths listed at planning time must match the data, else buckets and batch sizes are stale.
    stale = np.flatnonzero(valid & (batch["width"] != self.plan.widths[np.maximum(indices, 0)]))
    if stale.size:
      r = int(stale[0])
      raise ValueError(f"example {indices[r]} has width {batch['width'][r]} but the plan says "
                       f"{self.plan.widths[indices[r]]}; recompute the widths")
    return batch


def plan_dataset(source, plan, *, num_epochs, shard_index=0, pad_value=255):
  """MapDataset whose element i is this shard's padded batch of global step i (all epochs)."""
  if len(source) != len(plan.widths):
    raise ValueError(f"source has {len(source)} examples but {len(plan.widths)} widths")
  if num_epochs < 1:
    raise ValueError(f"num_epochs must be >= 1, got {num_epochs}")
  if not 0 <= shard_index < plan.shard_count:
    raise ValueError(f"shard_index {shard_index} not in [0, {plan.shard_count})")
  if plan.batches_per_shard == 0:
    raise ValueError(f"no full batch in any bucket: bucket sizes "
                     f"{np.bincount(plan.bucket_ids, minlength=len(plan.bucket_widths)).tolist()}"
                     f", batch sizes {plan.batch_sizes}, {plan.shard_count} shard(s)")
  total = plan.batches_per_shard * num_epochs
  return grain.MapDataset.range(total).map(_LoadStep(source, plan, shard_index, pad_value))


def bucketed_eval_dataset(source, widths, *, bucket_widths, batch_sizes, pad_value=255,
                          shard_index=0, shard_count=1):
  """Eval MapDataset: every example exactly once, in order; padding rows have _valid False."""
  plan = BucketPlan(widths, bucket_widths, batch_sizes, seed=0, shuffle=False,
                    drop_remainder=False, shard_count=shard_count)
  return plan_dataset(source, plan, num_epochs=1, shard_index=shard_index, pad_value=pad_value)


def source_widths(source):
  """Widths of every example of `source` (reads each one; cache the result for large sources)."""
  return np.array([np.shape(source[i]["image"])[1] for i in range(len(source))], np.int64)
