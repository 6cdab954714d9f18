"""Fixed-width training batches of well logs: fresh renders every step, or random crops.

Whole logs in width buckets are what evaluation and inference need (every pixel once). For
training they were the wrong unit: a dozen labelled logs made a handful of batches of 2 per
epoch. Here every step gets `batch_size` windows of one width (`data.crop_width`, a multiple of
32), so batches stay full, XLA compiles one train program, and a log of 3,000 px yields many
different windows instead of one huge example. Cropping a log distorts nothing: the network is
fully convolutional and sees each window exactly as it would see that stretch of the whole log.

Two sources:
  FreshRenders  labels are free on synthetic data: every row of every step is a window of a
                new render (seeded by seed, step and row), so a supervised synthetic stage
                never sees a log twice and cannot overfit a fixed set. The log is rendered at
                a width drawn like the eval logs' (`min_width`..`max_width`) and cropped,
                so windows show what whole logs show: a log rendered only as wide as the
                window never has the header block of a wider log (README, "What we learnt");
  RandomCrops   a fixed list of logs (the few labelled ones): per epoch a seeded permutation
                of the logs, one window of each at a seeded random offset.
Both are pure functions of the global step, so resume is exact (`pipeline` docstring).
"""

import math

import numpy as np

from ssl_seg.data import buckets, welllogs
from ssl_seg.data.welllog_style import RenderStyle


def _as_batch(images, segs, crop_width):
  """Rows padded on the right to crop_width (paper white, valid_px False), as buckets pad."""
  rows = [{"image": img} if seg is None else {"image": img, "seg": seg}
          for img, seg in zip(images, segs)]
  return buckets.pad_batch(rows, np.arange(len(rows)), crop_width)


class FreshRenders:
  """Step -> a batch of `crop_width`-px windows of newly rendered logs (this process's rows)."""

  def __init__(self, *, seed, batch_size, height, crop_width, labeled, min_width=None,
               max_width=None, las_data=(), las_fraction=1.0, style=RenderStyle(),
               shard_index=0, shard_count=1):
    """Logs `min_width`..`max_width` px wide (log-uniform, as `welllogs.render_dataset`; both
    default to `crop_width`) in the look `style`, each seen through one random `crop_width`
    window."""
    if batch_size % shard_count:
      raise ValueError(f"batch_size {batch_size} does not divide over {shard_count} processes")
    self.seed, self.batch_size, self.height, self.crop_width = seed, batch_size, height, crop_width
    self.min_width = crop_width if min_width is None else min_width
    self.max_width = crop_width if max_width is None else max_width
    self.labeled, self.las_data, self.las_fraction = labeled, tuple(las_data), las_fraction
    self.style = style
    per = batch_size // shard_count
    self.rows = range(shard_index * per, (shard_index + 1) * per)

  def __call__(self, step):
    images, segs = [], []
    for row in self.rows:
      index = int(step) * self.batch_size + row
      image, seg = welllogs.render_indexed(
          self.seed, index, height=self.height, min_width=self.min_width,
          max_width=self.max_width, style=self.style, las_data=self.las_data,
          las_fraction=self.las_fraction)
      x0 = np.random.default_rng([self.seed, index, 0xc7091]).integers(
          0, max(image.shape[1] - self.crop_width, 0) + 1)
      images.append(image[:, x0:x0 + self.crop_width])
      segs.append(seg[:, x0:x0 + self.crop_width])
    return _as_batch(images, segs if self.labeled else [None] * len(images), self.crop_width)


def steps_per_epoch(num_logs, batch_size):
  """RandomCrops' epoch: one window of every log, the last batch filled by wrapping around."""
  return math.ceil(num_logs / batch_size)


class RandomCrops:
  """Step -> `batch_size` random `crop_width` windows of a fixed list of logs."""

  def __init__(self, source, *, seed, batch_size, crop_width, epoch_steps=0, shard_index=0,
               shard_count=1):
    """`epoch_steps` > 0 fixes an epoch's length whatever the log count (a folder of unknown
    size; windows cycle through the epoch's shuffled logs); 0: one window of every log."""
    if batch_size % shard_count:
      raise ValueError(f"batch_size {batch_size} does not divide over {shard_count} processes")
    if not source:
      raise ValueError("no logs to crop from")
    self.source, self.seed, self.batch_size, self.crop_width = source, seed, batch_size, crop_width
    self.widths = np.array([np.shape(e["image"])[1] for e in source], np.int64)
    self.steps_per_epoch = epoch_steps or steps_per_epoch(len(source), batch_size)
    per = batch_size // shard_count
    self.rows = range(shard_index * per, (shard_index + 1) * per)

  def _order(self, epoch):
    # Every log once per epoch, shuffled; the last batch wraps around into the same epoch's
    # order so batches stay full.
    order = np.random.default_rng([self.seed, epoch, 0xc409]).permutation(len(self.source))
    return np.resize(order, self.steps_per_epoch * self.batch_size)

  def __call__(self, step):
    epoch, i = divmod(int(step), self.steps_per_epoch)
    picks = self._order(epoch)[i * self.batch_size:(i + 1) * self.batch_size]
    rng = np.random.default_rng([self.seed, int(step), 0x0ff5e7])
    offsets = rng.integers(0, np.maximum(self.widths[picks] - self.crop_width, 0) + 1)
    images, segs = [], []
    for row in self.rows:
      example, x0 = self.source[picks[row]], int(offsets[row])
      window = slice(x0, x0 + self.crop_width)
      images.append(np.asarray(example["image"])[:, window])
      segs.append(np.asarray(example["seg"])[:, window] if "seg" in example else None)
    return _as_batch(images, segs, self.crop_width)
