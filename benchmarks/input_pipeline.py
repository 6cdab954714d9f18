r"""Input pipeline vs training step: which one limits images/s?

  python benchmarks/input_pipeline.py [--variant=paper --batch=32 --num_images=512]
      [--dir=FOLDER_OF_IMAGES] [--out=FILE.json]

Rows (images_per_s each):
  jpeg_decode         decode + RGB + resize of the source files, one thread: what every epoch
                      would cost without the cache (the cache build pays it once, in threads);
  cache_build         the one-time build of the array_record cache (records.py), all threads;
  grain_records       batches from the cache through the training pipeline (pipeline.py: seeded
                      shuffle, collate, grain prefetch threads), host only;
  grain_augment       the same batches put on the device and augmented there (crop, flip,
                      colour jitter, normalisation: the SimMIM stage's `prepare`), jitted;
  train_step_VARIANT  the jitted SimMIM train step alone on a device-resident batch;
  end_to_end          pipeline -> device -> train step, as `ssl_seg.train` runs it.
The bottleneck is the slower of grain_augment and the train step. Without --dir, synthetic
JPEGs (--src_size px, like ImageNet's typical 500x375 at the default) are written to a temp dir.
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks import output  # noqa: E402
from configs import common, vit_paper  # noqa: E402
from ssl_seg import state as state_lib, step as step_lib  # noqa: E402
from ssl_seg.data import image_files, natural, pipeline  # noqa: E402

_VARIANT = flags.DEFINE_enum("variant", "paper", ["paper", "tiny"], "ViT size of the step.")
_BATCH = flags.DEFINE_integer("batch", 32, "Batch size (pipeline and step).")
_NUM = flags.DEFINE_integer("num_images", 512, "Synthetic images to write (without --dir).")
_SRC = flags.DEFINE_string("src_size", "500x375", "Synthetic JPEG size WxH.")
_DIR = flags.DEFINE_string("dir", None, "A folder of images to use instead of synthetic ones.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed batches per row (after 2 warm-up batches).")
_THREADS = flags.DEFINE_integer("threads", 2, "grain read threads.")
_OUT = flags.DEFINE_string("out", None, "Write the JSON rows here.")


def _write_jpegs(folder, n, size):
  w, h = size
  rng = np.random.default_rng(0)
  for i in range(n):
    # Smooth gradients plus noise: compresses like a photo, not like pure noise.
    base = np.linspace(0, 255, w)[None, :, None] * rng.random(3) + rng.normal(0, 20, (h, w, 3))
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(
        os.path.join(folder, f"{i:05d}.jpg"), quality=90)


def _rate(fn, n_items, steps):
  """Images per second of `steps` calls of fn() after 2 warm-up calls."""
  for _ in range(2):
    fn()
  t0 = time.perf_counter()
  for _ in range(steps):
    fn()
  return n_items * steps / (time.perf_counter() - t0)


def _stage(size_variant, batch):
  stage = vit_paper.get_config("data=synthetic,intermediate=false").stages.pretrain
  stage.model = common.vit_model(size_variant)
  stage.batch_size = batch
  return stage


def main(argv):
  del argv
  stage = _stage(_VARIANT.value, _BATCH.value)
  size, batch, steps = stage.model.img_size, _BATCH.value, _STEPS.value
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    folder = _DIR.value
    if folder is None:
      folder = os.path.join(tmp, "images")
      os.makedirs(folder)
      _write_jpegs(folder, _NUM.value, tuple(int(v) for v in _SRC.value.split("x")))
    files = image_files.list_images(folder)

    t0 = time.perf_counter()
    for p in files[:64]:
      image_files.load_image(p, size)
    rows.append({"name": "jpeg_decode", "images_per_s": min(64, len(files))
                 / (time.perf_counter() - t0)})

    data = ml_collections.ConfigDict(dict(name="image_folder", dir=folder, size=size,
                                          num_eval=1, subset=-1, seed=0,
                                          cache_dir=os.path.join(tmp, "cache"), workers=0))
    t0 = time.perf_counter()
    source = natural.build_source(data, "train", ("image",))
    rows.append({"name": "cache_build", "images_per_s": len(source) / (time.perf_counter() - t0)})

    epochs = -(-(steps + 2) * 4 * batch // len(source)) + 1
    ds, _ = pipeline.train_dataset(source, batch, seed=0, num_epochs=epochs)
    batches = pipeline.iterate(ds, num_threads=_THREADS.value)
    rows.append({"name": "grain_records", "images_per_s": _rate(lambda: next(batches), batch,
                                                                steps)})

    built = state_lib.build(stage, 100, 10_000, seed=0)
    augment = jax.jit(lambda b, k: _augment_only(stage, b, k))
    key = jax.random.key(0)
    rows.append({"name": "grain_augment", "images_per_s": _rate(
        lambda: jax.block_until_ready(augment(next(batches), key)), batch, steps)})

    train_step = step_lib.make_train_step(built.graphdef, built.tx, built.task.loss_fn)
    fixed = jax.device_put(next(batches))
    box = {"state": built.state()}

    def step(batch_data):
      box["state"], m = train_step(box["state"], batch_data, key)
      jax.block_until_ready(m["loss"])

    rows.append({"name": f"train_step_{_VARIANT.value}",
                 "images_per_s": _rate(lambda: step(fixed), batch, steps)})
    rows.append({"name": "end_to_end", "images_per_s": _rate(lambda: step(next(batches)), batch,
                                                             steps)})

  device = jax.devices()[0].device_kind
  for r in rows:
    r.update(batch=batch, variant=_VARIANT.value, img_size=size, device=device)
  width = max(len(r["name"]) for r in rows)
  print(f"\ninput pipeline vs step, batch {batch}, ViT {_VARIANT.value} ({size} px), {device}")
  for r in rows:
    print(f"  {r['name']:<{width}}  {r['images_per_s']:10.1f} images/s")
  feed = next(r for r in rows if r["name"] == "grain_augment")["images_per_s"]
  need = next(r for r in rows if r["name"].startswith("train_step"))["images_per_s"]
  verdict = ("the input pipeline" if feed < need else "the training step")
  print(f"bottleneck: {verdict} (pipeline+augment {feed:.0f} vs step {need:.0f} images/s)")
  output.write_rows(_OUT.value, rows)


def _augment_only(stage, batch, key):
  """simmim.prepare's augmentation on a uint8 batch (crop, flip, colour jitter, normalise)."""
  from ssl_seg.data import augment
  images = batch["image"].astype(np.float32) / 255.0
  k_crop, k_flip, k_color = jax.random.split(key, 3)
  (images,) = augment.random_resized_crop(k_crop, images, scale=tuple(stage.augment.scale))
  (images,) = augment.flip_lr(k_flip, images)
  j = stage.augment.jitter
  images = augment.color_jitter(k_color, images, brightness=j, contrast=j, saturation=j)
  return augment.standardize(images)


if __name__ == "__main__":
  app.run(main)
