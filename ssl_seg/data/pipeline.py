"""grain pipelines over random-access sources: seeded per-epoch shuffles, fixed-shape batches.

A training data set is a `grain.MapDataset` whose i-th element is the batch of global step i
(epochs concatenated), so resuming at step k is `ds.slice(slice(k, None))`: the checkpoint
needs no iterator state beyond the step, and the order never depends on how often we stopped.
Eval data sets see every example once; the last batch is padded and carries `_valid`.
"""

import functools

import grain
import jax
import numpy as np


class ArraySource:
  """Random-access source over a dict of equally long arrays; item i is a dict of rows."""

  def __init__(self, arrays: dict):
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
      raise ValueError(f"arrays differ in length: {lengths}")
    self.arrays = arrays
    self._len = next(iter(lengths.values()))

  def __len__(self):
    return self._len

  def __getitem__(self, i):
    return {k: v[i] for k, v in self.arrays.items()}

  def subset(self, indices):
    return ArraySource({k: v[indices] for k, v in self.arrays.items()})


def collate(examples):
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


class EpochSampler:
  """Step -> example indices: a fresh permutation per epoch from (seed, epoch), full batches."""

  def __init__(self, num_examples, batch_size, seed):
    if num_examples < batch_size:
      raise ValueError(f"data set has {num_examples} examples, fewer than the batch size "
                       f"{batch_size}; lower the batch size or add data")
    self.num_examples, self.batch_size, self.seed = num_examples, batch_size, seed
    self.steps_per_epoch = num_examples // batch_size
    # Per-instance cache (a loader touches one or two epochs at a time).
    self._permutation = functools.lru_cache(maxsize=4)(self._make_permutation)

  def _make_permutation(self, epoch):
    return np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)

  def indices(self, step):
    epoch, i = divmod(step, self.steps_per_epoch)
    return self._permutation(epoch)[i * self.batch_size:(i + 1) * self.batch_size]


def read(source, indices):
  """Examples at `indices`; one batched read when the source offers it (array_record caches)."""
  if hasattr(source, "__getitems__"):
    return source.__getitems__([int(i) for i in indices])
  return [source[int(i)] for i in indices]


def train_dataset(source, batch_size, seed, num_epochs, *, process_index=None,
                  process_count=None):
  """(MapDataset of training batches over all epochs, steps per epoch).

  `batch_size` is global: every process draws the same permutation and loads its own
  contiguous slice of each step's batch (defaults: jax.process_index() / process_count()).
  """
  pi = jax.process_index() if process_index is None else process_index
  pc = jax.process_count() if process_count is None else process_count
  if batch_size % pc:
    raise ValueError(f"batch_size {batch_size} does not split over {pc} processes; use a "
                     f"multiple of {pc}")
  local = batch_size // pc
  sampler = EpochSampler(len(source), batch_size, seed)
  total = sampler.steps_per_epoch * num_epochs
  ds = grain.MapDataset.range(total).map(
      lambda step: collate(read(source, sampler.indices(step)[pi * local:(pi + 1) * local])))
  return ds, sampler.steps_per_epoch


def eval_dataset(source, batch_size):
  """MapDataset of eval batches covering every example once; padding rows have _valid False."""
  n = len(source)
  if n == 0:
    raise ValueError("eval data set is empty")
  num_batches = -(-n // batch_size)

  def load(b):
    idx = np.arange(b * batch_size, (b + 1) * batch_size)
    valid = idx < n
    batch = collate(read(source, np.where(valid, idx, n - 1)))
    batch["_valid"] = valid
    return batch

  return grain.MapDataset.range(num_batches).map(load)


def iterate(ds, start=0, *, num_threads=2, prefetch=4):
  """Iterates a MapDataset from element `start`, with background prefetching."""
  return iter(ds.slice(slice(start, None)).to_iter_dataset(
      grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)))
