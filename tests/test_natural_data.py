"""Real loaders on tiny fake data sets in the official on-disk layouts; nothing is mocked.

Layouts: Oxford-IIIT Pet (images/*.jpg, annotations/trimaps/*.png with values 1/2/3,
annotations/{trainval,test}.txt), Intel scenes (seg_train|seg_test/<class>/*.jpg), ImageNet
(train/<wnid>/*.JPEG), a plain image folder, and a TFDS `oxford_iiit_pet` prepared in
array_record format by TFDS's own builder (its download step pointed at the local files).
"""

import os

import ml_collections
import numpy as np
import pytest
from PIL import Image

from configs import vit_tiny_files
from ssl_seg import main, run_log
from ssl_seg.data import image_files, natural, pipeline, records

W, H, SIZE = 40, 30, 32
BREEDS = ("Bengal", "boxer")  # Not among the 12 names TFDS re-encodes with TensorFlow.


def _jpeg(path, rng, mode="RGB"):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  img = Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
  img.convert(mode).save(path, "JPEG" if path.lower().endswith(("jpg", "jpeg")) else None)


def _trimap(h=H, w=W, x=None):
  """Pet (1) on the left, background (2) on the right, a border (3) column between."""
  t = np.full((h, w), 2, np.uint8)
  x = w // 2 if x is None else x
  t[:, :x] = 1
  t[:, x:x + 2] = 3
  return t


def make_pet(root, n=12, seed=0):
  rng = np.random.default_rng(seed)
  names = [f"{BREEDS[i % 2]}_{i + 1}" for i in range(n)]
  for i, name in enumerate(names):
    _jpeg(os.path.join(root, "images", name + ".jpg"), rng)
    os.makedirs(os.path.join(root, "annotations", "trimaps"), exist_ok=True)
    Image.fromarray(_trimap(x=10 + i)).save(os.path.join(root, "annotations", "trimaps",
                                                         name + ".png"))
  lines = [f"{name} {i % 2 + 1} {i % 2 + 1} 1\n" for i, name in enumerate(names)]
  half = n // 2
  with open(os.path.join(root, "annotations", "trainval.txt"), "w") as f:
    f.writelines(lines[:half])
  with open(os.path.join(root, "annotations", "test.txt"), "w") as f:
    f.writelines(lines[half:])
  return names


def make_intel(root, train=3, test=1, seed=0, nested=False):
  rng = np.random.default_rng(seed)
  for split, n in (("seg_train", train), ("seg_test", test)):
    base = os.path.join(root, split, split) if nested else os.path.join(root, split)
    for c in image_files.INTEL_CLASSES:
      for i in range(n):
        _jpeg(os.path.join(base, c, f"{i}.jpg"), rng)


def make_folder(root, n=8, seed=0):
  rng = np.random.default_rng(seed)
  for i in range(n):
    _jpeg(os.path.join(root, f"sub{i % 2}", f"img{i}.jpg"), rng)


def make_imagenet(root, classes=3, per_class=5, seed=0):
  rng = np.random.default_rng(seed)
  for c in range(classes):
    for i in range(per_class):
      _jpeg(os.path.join(root, "train", f"n0000{c}", f"n0000{c}_{i}.JPEG"), rng)


def data_config(name, directory, cache, **kw):
  fields = dict(name=name, dir=str(directory), size=SIZE, num_train=-1, num_eval=-1,
                num_labels=-1, seed=0, subset=-1, cache_dir=str(cache), workers=2)
  return ml_collections.ConfigDict({**fields, **kw})


@pytest.fixture(scope="module")
def pet(tmp_path_factory):
  root = tmp_path_factory.mktemp("pet")
  return root, make_pet(root)


def test_pet_trimap_mapping_splits_and_nested_subsets(pet, tmp_path):
  root, names = pet
  cfg = data_config("oxford_iiit_pet", root, tmp_path, num_eval=4, num_labels=6)
  train = natural.build_source(cfg, "train", ("image", "seg"))
  test = natural.build_source(cfg, "eval", ("image", "seg"))
  assert len(train) == 6 and len(test) == 4
  assert not set(train.indices) & set(test.indices)  # Pooled, then split by data.seed.
  ex = test[0]
  assert ex["image"].shape == (SIZE, SIZE, 3) and ex["image"].dtype == np.uint8
  assert ex["seg"].shape == (SIZE, SIZE) and set(np.unique(ex["seg"])) == {0, 1, 2}
  # Trimap 1/2/3 -> 0 pet / 1 background / 2 border, resized by nearest neighbour.
  i = int(test.indices[0])  # Pool order is sorted by name.
  name = sorted(names)[i]
  trimap = Image.open(os.path.join(root, "annotations", "trimaps", name + ".png"))
  expected = np.asarray(trimap.resize((SIZE, SIZE), Image.NEAREST)) - 1
  np.testing.assert_array_equal(ex["seg"], expected)
  # Nested budgets, same test set, both from data.seed only.
  cfg3 = data_config("oxford_iiit_pet", root, tmp_path, num_eval=4, num_labels=3)
  sub = natural.build_source(cfg3, "train", ("image", "seg"))
  assert set(sub.indices) < set(train.indices)
  other = data_config("oxford_iiit_pet", root, tmp_path, num_eval=4, num_labels=6, seed=1)
  assert set(natural.build_source(other, "eval", ("seg",)).indices) != set(test.indices)
  assert len(os.listdir(tmp_path)) == 1  # One cache serves every split and subset.


def test_cache_is_reused_and_keyed_by_size_and_files(pet, tmp_path):
  root, names = pet
  cfg = data_config("oxford_iiit_pet", root, tmp_path, num_eval=4)
  first = natural.build_source(cfg, "train", ("image",))
  cache_dir = first.directory
  stamp = os.stat(os.path.join(cache_dir, "meta.json")).st_mtime_ns
  again = natural.build_source(cfg, "train", ("image",))
  assert again.directory == cache_dir
  assert os.stat(os.path.join(cache_dir, "meta.json")).st_mtime_ns == stamp
  np.testing.assert_array_equal(first[0]["image"], again[0]["image"])
  bigger = natural.build_source(data_config("oxford_iiit_pet", root, tmp_path, num_eval=4,
                                            size=16), "train", ("image",))
  assert bigger.directory != cache_dir and bigger[0]["image"].shape == (16, 16, 3)


def test_pet_from_prepared_tfds_dir_matches_raw_layout(pet, tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  from tensorflow_datasets.datasets.oxford_iiit_pet import oxford_iiit_pet_dataset_builder as b
  root, _ = pet
  ann, img = str(root / "annotations"), str(root / "images")

  class LocalPet(b.Builder, skip_registration=True):
    """TFDS's own oxford_iiit_pet builder; only its download is replaced by the local files."""
    name = "oxford_iiit_pet"
    get_metadata = b.Builder.get_metadata

    def _split_generators(self, dl_manager):
      return [tfds.core.SplitGenerator(name=s, gen_kwargs=dict(
          images_dir_path=img, annotations_dir_path=ann,
          images_list_file=os.path.join(ann, f))) for s, f in (("train", "trainval.txt"),
                                                                ("test", "test.txt"))]

  tfds_dir = tmp_path / "tfds"
  LocalPet(data_dir=str(tfds_dir), file_format="array_record").download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          compute_stats=tfds.download.ComputeStatsMode.SKIP))
  # The whole pool from each route (TFDS orders train then test, the raw route by name):
  # the same trimaps (all different here) with the same images.
  pools = [natural._pet_pool(data_config("oxford_iiit_pet", d, tmp_path / c))
           for d, c in ((tfds_dir, "c1"), (root, "c2"))]
  by_mask = [{p[i]["seg"].tobytes(): p[i]["image"] for i in range(len(p))} for p in pools]
  assert len(by_mask[0]) == len(by_mask[1]) == 12 and by_mask[0].keys() == by_mask[1].keys()
  for k, image in by_mask[0].items():
    np.testing.assert_allclose(image, by_mask[1][k], atol=2)


def test_intel_layouts_labels_and_balanced_label_subset(tmp_path):
  make_intel(tmp_path / "intel", nested=True)  # Kaggle's seg_train/seg_train nesting.
  cfg = data_config("intel_scenes", tmp_path / "intel", tmp_path / "cache", num_labels=12)
  train = natural.build_source(cfg, "train", ("image", "label"))
  test = natural.build_source(cfg, "eval", ("image", "label"))
  assert len(train) == 12 and len(test) == 6
  np.testing.assert_array_equal(np.bincount(train.column("label")), [2] * 6)
  assert sorted(int(test[i]["label"]) for i in range(6)) == list(range(6))


def test_imagenet_subset_is_class_balanced_deterministic_and_disjoint_from_eval(tmp_path):
  make_imagenet(tmp_path / "imnet")
  cfg = data_config("imagenet_subset", tmp_path / "imnet", tmp_path / "cache", subset=9,
                    num_eval=3)
  train = natural.build_source(cfg, "train", ("image",))
  ev = natural.build_source(cfg, "eval", ("image", "label"))
  assert len(train) == 9 and len(ev) == 3
  np.testing.assert_array_equal(np.bincount(train.column("label")), [3, 3, 3])
  files = lambda src: {f for f, *_ in src.meta["description"]["files"]}
  assert not files(train) & files(ev)
  assert files(natural.build_source(cfg, "train", ("image",))) == files(train)
  other = data_config("imagenet_subset", tmp_path / "imnet", tmp_path / "cache", subset=9,
                      num_eval=3, seed=5)
  assert files(natural.build_source(other, "train", ("image",))) != files(train)


def test_modes_are_converted_to_rgb_explicitly(tmp_path, capsys):
  rng = np.random.default_rng(0)
  folder = tmp_path / "imgs"
  _jpeg(str(folder / "gray.jpg"), rng, "L")
  _jpeg(str(folder / "cmyk.jpg"), rng, "CMYK")
  _jpeg(str(folder / "rgba.png"), rng, "RGBA")
  _jpeg(str(folder / "rgb.jpg"), rng)
  cfg = data_config("image_folder", folder, tmp_path / "cache", num_eval=1)
  src = natural.build_source(cfg, "train", ("image",))
  everything = [src[i]["image"] for i in range(len(src))]
  everything.append(natural.build_source(cfg, "eval", ("image",))[0]["image"])
  assert all(x.shape == (SIZE, SIZE, 3) for x in everything)
  assert any(np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 1], x[..., 2])
             for x in everything)  # The grayscale one, replicated into R, G, B.
  out = capsys.readouterr().out
  assert "converted L images to RGB" in out or "converted CMYK images to RGB" in out


# --------------------------------------------------------------------------------- bad inputs


def _pet_with(tmp_path, change):
  root = tmp_path / "pet"
  names = make_pet(root, n=4)
  change(root, names)
  return data_config("oxford_iiit_pet", root, tmp_path / "cache", num_eval=1), names


def _corrupt(root, names):
  (root / "images" / f"{names[1]}.jpg").write_bytes(b"this is not a jpeg")


def _truncated(root, names):
  path = root / "images" / f"{names[2]}.jpg"
  path.write_bytes(path.read_bytes()[:200])


def _mask_values(root, names):
  t = _trimap()
  t[0, 0] = 7
  Image.fromarray(t).save(root / "annotations" / "trimaps" / f"{names[0]}.png")


def _mask_size(root, names):
  Image.fromarray(_trimap(h=H + 2)).save(root / "annotations" / "trimaps" / f"{names[3]}.png")


def _mask_rgb(root, names):
  Image.fromarray(np.stack([_trimap()] * 3, -1)).save(
      root / "annotations" / "trimaps" / f"{names[0]}.png")


def _missing_trimap(root, names):
  os.remove(root / "annotations" / "trimaps" / f"{names[1]}.png")


@pytest.mark.parametrize("change, file_index, message", [
    (_corrupt, 1, "cannot decode this image"),
    (_truncated, 2, "corrupt or truncated"),
    (_mask_values, 0, "found [7]"),
    (_mask_size, 3, "must be the same size"),
    (_mask_rgb, 0, "single-channel"),
    (_missing_trimap, 1, "missing"),
])
def test_bad_pet_files_name_the_file(tmp_path, change, file_index, message):
  cfg, names = _pet_with(tmp_path, change)
  with pytest.raises((ValueError, FileNotFoundError)) as err:
    natural.build_source(cfg, "train", ("image", "seg"))
  assert f"{names[file_index]}." in str(err.value)
  assert message in str(err.value)
  left = os.listdir(tmp_path / "cache") if os.path.isdir(tmp_path / "cache") else []
  assert left == []  # No partial cache is left behind.


def test_sixteen_bit_image_is_refused_with_a_clear_message(tmp_path):
  folder = tmp_path / "imgs"
  make_folder(folder, n=2)
  Image.fromarray(np.zeros((H, W), np.uint16)).save(folder / "deep.png")
  with pytest.raises(ValueError, match=r"deep\.png.*mode 'I;16'.*8-bit RGB"):
    natural.build_source(data_config("image_folder", folder, tmp_path / "c", num_eval=1),
                         "train", ("image",))
    natural.build_source(data_config("image_folder", folder, tmp_path / "c", num_eval=1),
                         "eval", ("image",))


@pytest.mark.parametrize("kind, message", [
    ("unset", "data.dir is not set"),
    ("missing_dir", "does not exist"),
    ("empty_folder", "no images"),
    ("empty_subset", "num_labels=0 selects no examples"),
    ("too_many_labels", "only 18 examples"),
    ("intel_missing_class", "exactly the class folders"),
    ("intel_empty_class", "holds no images"),
])
def test_bad_data_sets_fail_with_one_clear_error(tmp_path, kind, message):
  make_intel(tmp_path / "intel")
  (tmp_path / "empty").mkdir()
  cfg = {
      "unset": data_config("intel_scenes", "", tmp_path),
      "missing_dir": data_config("intel_scenes", tmp_path / "nope", tmp_path),
      "empty_folder": data_config("image_folder", tmp_path / "empty", tmp_path),
      "empty_subset": data_config("intel_scenes", tmp_path / "intel", tmp_path, num_labels=0),
      "too_many_labels": data_config("intel_scenes", tmp_path / "intel", tmp_path,
                                     num_labels=99),
      "intel_missing_class": data_config("intel_scenes", tmp_path / "intel", tmp_path),
      "intel_empty_class": data_config("intel_scenes", tmp_path / "intel", tmp_path),
  }[kind]
  if kind == "intel_missing_class":
    os.rename(tmp_path / "intel" / "seg_train" / "sea", tmp_path / "intel" / "seg_train" / "ocean")
  if kind == "intel_empty_class":
    for f in os.listdir(tmp_path / "intel" / "seg_train" / "sea"):
      os.remove(tmp_path / "intel" / "seg_train" / "sea" / f)
  with pytest.raises((ValueError, FileNotFoundError), match=message.replace("[", r"\[")):
    natural.build_source(cfg, "train", ("image", "label"))


# --------------------------------------------------------------------------- pipeline and main


def test_record_pipeline_batches_and_process_shards(pet, tmp_path):
  root, _ = pet
  src = natural.build_source(data_config("oxford_iiit_pet", root, tmp_path, num_eval=2),
                             "train", ("image", "seg"))
  full, steps = pipeline.train_dataset(src, 4, seed=3, num_epochs=2, process_index=0,
                                       process_count=1)
  assert steps == 2 and len(full) == 4
  halves = [pipeline.train_dataset(src, 4, seed=3, num_epochs=2, process_index=p,
                                   process_count=2)[0] for p in (0, 1)]
  for step in (0, 3):
    batch = full[step]
    assert batch["image"].shape == (4, SIZE, SIZE, 3) and batch["seg"].shape == (4, SIZE, SIZE)
    np.testing.assert_array_equal(
        np.concatenate([h[step]["image"] for h in halves]), batch["image"])
  assert isinstance(src, records.RecordSource)


def test_tiny_end_to_end_pretrain_classify_segment_from_files(tmp_path):
  make_folder(tmp_path / "images", n=10)
  make_intel(tmp_path / "intel", train=1, test=1)
  make_pet(tmp_path / "pet", n=12)
  arg = (f"images={tmp_path / 'images'},intel={tmp_path / 'intel'},pet={tmp_path / 'pet'},"
         f"cache={tmp_path / 'cache'}")
  cfg = vit_tiny_files.get_config(arg)
  results = main.run(cfg, str(tmp_path / "work"), log=lambda *a: None)
  assert set(results) == {"pretrain", "classify", "segment_via_classify"}
  rows = run_log.read(tmp_path / "work" / "metrics.jsonl")
  seg = [r for r in rows if r["stage"] == "segment_via_classify" and r["split"] == "eval"]
  # Each stage evaluated with its task's metrics (values are pinned per task in test_golden).
  assert seg and {"miou", "iou/border"} <= set(seg[-1])
  assert "acc" in [r for r in rows if r["stage"] == "classify" and r["split"] == "eval"][-1]
  caches = sorted(os.listdir(tmp_path / "cache"))
  assert len(caches) == 5  # Folder train/eval, Intel train/test, the Pet pool.
