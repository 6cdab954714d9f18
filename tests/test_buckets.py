"""Width bucketing: bucket choice, batch sizes, deterministic plans, padding, grain, sharding."""

import itertools

import grain
import numpy as np
import pytest

from ssl_seg.data import buckets

HEIGHT = 4


class LogSource:
  """Random-access source of variable-width logs: grayscale or RGB, with or without seg."""

  def __init__(self, widths, *, channels=None, with_seg=True, seed=0):
    rng = np.random.default_rng(seed)
    self.examples = []
    for w in widths:
      shape = (HEIGHT, int(w)) if channels is None else (HEIGHT, int(w), channels)
      example = {"image": rng.integers(0, 255, shape, dtype=np.uint8)}
      if with_seg:
        example["seg"] = rng.integers(1, 4, (HEIGHT, int(w)), dtype=np.uint8)
      self.examples.append(example)

  def __len__(self):
    return len(self.examples)

  def __getitem__(self, i):
    return self.examples[i]


def small_widths(n=60, seed=0):
  return np.random.default_rng(seed).integers(3, 70, n)


def padded_area(widths, bucket_widths):
  return np.asarray(bucket_widths)[buckets.assign_buckets(widths, bucket_widths)].sum()


def test_assign_buckets_picks_smallest_fitting_bucket():
  ids = buckets.assign_buckets([1, 32, 33, 64, 65, 100, 128], (32, 64, 128))
  np.testing.assert_array_equal(ids, [0, 0, 1, 1, 2, 2, 2])
  widths, bucket_widths = small_widths(200), (16, 24, 40, 72)
  ids = buckets.assign_buckets(widths, bucket_widths)
  for w, b in zip(widths, ids):
    assert bucket_widths[b] == min(bw for bw in bucket_widths if bw >= w)


def test_assign_buckets_errors_name_the_example():
  with pytest.raises(ValueError, match=r"example 2 has width 200, wider than .* 128"):
    buckets.assign_buckets([10, 20, 200, 300], (64, 128))
  with pytest.raises(ValueError, match="example 1 has width 0"):
    buckets.assign_buckets([10, 0, 20], (64, 128))
  with pytest.raises(ValueError, match="example 0 has width -5"):
    buckets.assign_buckets([-5], (64,))
  with pytest.raises(ValueError, match="strictly increasing"):
    buckets.assign_buckets([10], (64, 32))


def test_bucket_widths_are_optimal_multiples():
  rng = np.random.default_rng(1)
  for _ in range(30):
    widths = rng.integers(1, 300, int(rng.integers(1, 25)))
    multiple, max_buckets = int(rng.integers(1, 40)), int(rng.integers(1, 5))
    chosen = buckets.bucket_widths_for(widths, multiple=multiple, max_buckets=max_buckets)
    assert list(chosen) == sorted(set(chosen)) and len(chosen) <= max_buckets
    assert all(b % multiple == 0 for b in chosen) and chosen[-1] >= widths.max()
    cands = np.unique(-(-widths // multiple) * multiple)
    brute = min(padded_area(widths, sorted({*c, cands[-1]}))
                for r in range(max_buckets) for c in itertools.combinations(cands, r))
    assert padded_area(widths, chosen) == brute


def test_padding_waste_log_uniform_six_buckets():
  rng = np.random.default_rng(0)
  widths = np.exp(rng.uniform(np.log(300), np.log(3000), 5000)).astype(np.int64)
  chosen = buckets.bucket_widths_for(widths, multiple=32, max_buckets=6)
  waste = buckets.padding_waste(widths, chosen)
  print(f"buckets {chosen}: padding waste {waste:.1%}")
  assert len(chosen) == 6 and waste < 0.20
  # The DP must beat the obvious alternative, quantiles rounded up to the multiple.
  quantiles = np.quantile(widths, np.linspace(0, 1, 7)[1:])
  naive = tuple(np.unique(-(-quantiles.astype(np.int64) // 32) * 32))
  assert waste <= buckets.padding_waste(widths, naive)
  assert buckets.padding_waste([10, 20], (20,)) == pytest.approx(0.25)
  assert buckets.padding_waste([32, 64], (32, 64)) == 0.0


@pytest.mark.parametrize("bucket_widths,kwargs", [
    ((256, 512, 1024, 2048), {"base_batch_size": 4}),
    ((320, 480, 736, 1216, 2016), {"pixels_per_batch": 20000, "multiple_of": 4}),
    ((96, 160, 224), {"pixels_per_batch": 5000, "multiple_of": 3}),
])
def test_batch_size_times_width_is_about_constant(bucket_widths, kwargs):
  sizes = buckets.batch_sizes_for(bucket_widths, **kwargs)
  multiple = kwargs.get("multiple_of", 1)
  budget = kwargs.get("pixels_per_batch") or kwargs["base_batch_size"] * bucket_widths[-1]
  for w, b in zip(bucket_widths, sizes):
    assert b >= multiple and b % multiple == 0
    assert budget - multiple * w < b * w <= budget
  assert sizes == tuple(sorted(sizes, reverse=True))


def test_batch_sizes_floor_and_cap():
  assert buckets.batch_sizes_for((100, 1000), pixels_per_batch=500) == (5, 1)
  assert buckets.batch_sizes_for((10, 1000), base_batch_size=2, max_batch_size=50) == (50, 2)
  assert buckets.batch_sizes_for((10, 1000), base_batch_size=1, multiple_of=8) == (96, 8)
  with pytest.raises(ValueError, match="exactly one"):
    buckets.batch_sizes_for((10,), base_batch_size=1, pixels_per_batch=10)


def _plan_args():
  widths = small_widths(200)
  bucket_widths = buckets.bucket_widths_for(widths, multiple=8, max_buckets=4)
  return widths, bucket_widths, buckets.batch_sizes_for(bucket_widths, base_batch_size=3)


def _as_tuples(batches):
  return [(b, tuple(idx)) for b, idx in batches]


def test_plan_batches_are_deterministic_per_seed_and_epoch():
  widths, bucket_widths, sizes = _plan_args()

  def make(seed, epoch):
    return _as_tuples(buckets.BucketPlan(widths, bucket_widths, sizes, seed=seed).batches(epoch))

  assert make(seed=3, epoch=1) == make(seed=3, epoch=1)
  assert make(seed=3, epoch=1) != make(seed=3, epoch=2)
  assert make(seed=3, epoch=1) != make(seed=4, epoch=1)
  # Not just the order: which examples share a batch changes from epoch to epoch.
  members = [{frozenset(idx) for _, idx in make(seed=3, epoch=e)} for e in (1, 2)]
  assert members[0] != members[1]
  assert [b for b, _ in make(seed=3, epoch=1)] != sorted(b for b, _ in make(seed=3, epoch=1))


def test_each_example_once_in_eval_at_most_once_in_train():
  widths, bucket_widths, sizes = _plan_args()
  ids = buckets.assign_buckets(widths, bucket_widths)
  for drop in (True, False):
    batches = buckets.BucketPlan(widths, bucket_widths, sizes, seed=0,
                                 drop_remainder=drop).batches(5)
    seen = np.concatenate([idx[idx >= 0] for _, idx in batches])
    assert len(seen) == len(set(seen.tolist()))
    for b, idx in batches:
      assert len(idx) == sizes[b] and np.all(ids[idx[idx >= 0]] == b)
      assert not drop or np.all(idx >= 0)
    if drop:
      assert len(seen) > 0.8 * len(widths)
    else:
      assert sorted(seen.tolist()) == list(range(len(widths)))


def _check_batch(batch, bucket_widths, pad_value):
  size, height, width, channels = batch["image"].shape
  assert width in bucket_widths and height == HEIGHT
  assert batch["image"].dtype == np.uint8 and batch["valid_px"].shape == (size, height, width)
  assert batch["width"].dtype == np.int32 and batch["_valid"].shape == (size,)
  for r in range(size):
    w = batch["width"][r]
    expected = np.zeros((height, width), bool)
    expected[:, :w] = batch["_valid"][r]
    np.testing.assert_array_equal(batch["valid_px"][r], expected)
    assert np.all(batch["image"][r, :, w:] == pad_value)
    if "seg" in batch:
      assert np.all(batch["seg"][r, :, w:] == 0)
      assert np.all(batch["seg"][r, :, :w] > 0) or not batch["_valid"][r]
  return (size, height, width, channels)


def test_padding_valid_px_and_shapes_per_bucket():
  widths = small_widths(80)
  source = LogSource(widths)
  bucket_widths = buckets.bucket_widths_for(widths, multiple=8, max_buckets=3)
  sizes = buckets.batch_sizes_for(bucket_widths, base_batch_size=2)
  plan = buckets.BucketPlan(widths, bucket_widths, sizes, seed=0)
  ds = buckets.plan_dataset(source, plan, num_epochs=1, pad_value=200)
  shapes = set()
  for i, (bucket, idx) in enumerate(plan.batches(0)):
    batch = ds[i]
    shape = _check_batch(batch, bucket_widths, 200)
    assert shape == (sizes[bucket], HEIGHT, bucket_widths[bucket], 1)
    shapes.add(shape)
    for r, j in enumerate(idx):
      np.testing.assert_array_equal(batch["image"][r, :, :widths[j], 0], source[j]["image"])
      np.testing.assert_array_equal(batch["seg"][r, :, :widths[j]], source[j]["seg"])
  assert len(ds) == plan.num_batches and len(shapes) <= len(bucket_widths)


def test_rgb_source_without_seg_and_stale_widths():
  widths = small_widths(20)
  source = LogSource(widths, channels=3, with_seg=False)
  ds = buckets.plan_dataset(source, buckets.BucketPlan(widths, (32, 72), (4, 2)), num_epochs=1)
  batch = ds[0]
  assert "seg" not in batch and batch["image"].shape[-1] == 3
  _check_batch(batch, (32, 72), 255)
  stale = buckets.plan_dataset(source, buckets.BucketPlan(widths - 1, (32, 72), (4, 2)),
                               num_epochs=1)
  with pytest.raises(ValueError, match="plan says"):
    stale[0]


def test_eval_dataset_covers_every_example_once():
  widths = small_widths(37)
  source = LogSource(widths)
  ds = buckets.bucketed_eval_dataset(source, widths, bucket_widths=(24, 48, 72),
                                     batch_sizes=(5, 3, 2))
  batches = [ds[i] for i in range(len(ds))]
  for batch in batches:
    _check_batch(batch, (24, 48, 72), 255)
  valid_widths = np.concatenate([b["width"][b["_valid"]] for b in batches])
  assert sorted(valid_widths.tolist()) == sorted(widths.tolist())
  assert sum(not b["_valid"].all() for b in batches) >= 1
  assert all(np.all(b["width"][~b["_valid"]] == 0) for b in batches)


def test_grain_random_access_iteration_and_checkpoint():
  widths = small_widths(60)
  source = LogSource(widths)
  plan = buckets.BucketPlan(widths, (24, 48, 72), (6, 3, 2), seed=7)
  ds = buckets.plan_dataset(source, plan, num_epochs=3)
  assert isinstance(ds, grain.MapDataset) and len(ds) == 3 * plan.num_batches
  options = grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)
  elements = list(ds.to_iter_dataset(options))
  assert len(elements) == len(ds)
  # Element i is global step i: epoch i // num_batches of the plan, epochs concatenated.
  for i, element in enumerate(elements):
    epoch, j = divmod(i, plan.num_batches)
    np.testing.assert_array_equal(element["width"], widths[plan.batches(epoch)[j][1]])
  for i in (0, 1, plan.num_batches, len(ds) - 1):
    for key in ds[i]:
      np.testing.assert_array_equal(elements[i][key], ds[i][key])
  it = iter(ds.to_iter_dataset(options))
  k = plan.num_batches + 2
  for _ in range(k):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(3)]
  fresh = iter(ds.to_iter_dataset(options))
  fresh.set_state(state)
  for want in expected:
    got = next(fresh)
    assert want.keys() == got.keys()
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])
  np.testing.assert_array_equal(expected[0]["width"], elements[k]["width"])


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_shards_partition_the_global_plan(drop_remainder):
  widths, bucket_widths, sizes = _plan_args()
  plan = buckets.BucketPlan(widths, bucket_widths, sizes, seed=2, shard_count=3,
                            drop_remainder=drop_remainder)
  for epoch in (0, 1):
    shards = [plan.shard_batches(epoch, s) for s in range(3)]
    assert len({len(s) for s in shards}) == 1
    interleaved = [batch for step in zip(*shards) for batch in step]
    assert _as_tuples(interleaved) == _as_tuples(plan.batches(epoch))
    # All processes load the same bucket at each step, so the global batch has one shape.
    for step in zip(*shards):
      assert len({b for b, _ in step}) == 1
    seen = np.concatenate([idx[idx >= 0] for s in shards for _, idx in s])
    assert len(seen) == len(set(seen.tolist()))
    if not drop_remainder:
      assert sorted(seen.tolist()) == list(range(len(widths)))
  source = LogSource(widths)
  datasets = [buckets.plan_dataset(source, plan, num_epochs=1, shard_index=s) for s in range(3)]
  assert len(datasets[0]) == plan.batches_per_shard
  for step in (0, len(datasets[0]) - 1):
    assert len({d[step]["image"].shape for d in datasets}) == 1
  with pytest.raises(ValueError, match="shard_index"):
    plan.shard_batches(0, 3)


def test_batch_sizes_shrink_to_bucket_counts_without_adding_steps():
  bucket_widths = (256, 512, 1024)
  full = buckets.batch_sizes_for(bucket_widths, base_batch_size=2)
  assert full == (8, 4, 2)
  # 2 logs never fill a batch of 8; 5 logs need 2 batches of 4, which 2 batches of 3 also give.
  assert buckets.batch_sizes_for(bucket_widths, base_batch_size=2, counts=(2, 5, 9)) == (2, 3, 2)
  assert buckets.batch_sizes_for(bucket_widths, base_batch_size=2, counts=(0, 40, 1)) == (1, 4, 1)
  assert buckets.batch_sizes_for(bucket_widths, base_batch_size=4, multiple_of=2,
                                 counts=(3, 5, 9)) == (4, 6, 4)
  with pytest.raises(ValueError, match="one count per bucket"):
    buckets.batch_sizes_for(bucket_widths, base_batch_size=2, counts=(1, 2))


@pytest.mark.parametrize("shard_count", [1, 2])
def test_fill_remainder_wraps_around_within_the_bucket(shard_count):
  widths = np.array([100, 90, 300, 310, 290, 305, 295] * 2)
  plan = buckets.BucketPlan(widths, (128, 320), (4, 3), seed=3, drop_remainder=False,
                            fill_remainder=True, shard_count=shard_count)
  for epoch in (0, 1):
    batches = plan.batches(epoch)
    seen = np.concatenate([idx for _, idx in batches])
    assert (seen >= 0).all()  # no empty rows
    assert set(seen) == set(range(len(widths)))  # every example at least once
    for bucket, idx in batches:
      assert (plan.bucket_ids[idx] == bucket).all()  # repeats come from the same bucket
    # Wrap-around repeats are few: at most a batch minus one per bucket and shard group.
    assert len(seen) - len(widths) < sum(plan.batch_sizes) * shard_count
  assert [i.tolist() for _, i in plan.batches(1)] != [i.tolist() for _, i in plan.batches(0)]
  with pytest.raises(ValueError, match="exclude each other"):
    buckets.BucketPlan(widths, (128, 320), (4, 3), drop_remainder=True, fill_remainder=True)
