"""Image classification (the study's intermediate stage): mean-pool head, optional MixUp."""

import jax
import jax.numpy as jnp
import optax

from ssl_seg import config_utils, models, tasks
from ssl_seg.data import augment
from ssl_seg.models import heads

BATCH_KEYS = ("image", "label")
MODEL = "vit"


def validate(stage, f):
  config_utils.need(stage.num_classes >= 2, f"{f}.num_classes",
                    f"must be >= 2, got {stage.num_classes}")
  config_utils.need(stage.augment.mixup_alpha >= 0, f"{f}.augment.mixup_alpha",
                    f"must be >= 0 (0 = off), got {stage.augment.mixup_alpha}")


def make_task(stage):
  num_classes = stage.num_classes

  def build_model(rngs):
    return heads.Classifier(models.build(stage.model, rngs), num_classes,
                            dropout_rate=stage.model.dropout, rngs=rngs)

  def loss_fn(model, batch, key, train):
    k_geo, k_color, k_mix, k_model = jax.random.split(key, 4)
    images = batch["image"].astype(jnp.float32) / 255.0
    targets = jax.nn.one_hot(batch["label"], num_classes)
    if train and stage.augment.enabled:
      (images,) = augment.crop_flip(k_geo, images, scale=stage.augment.scale)
      j = stage.augment.jitter
      images = augment.color_jitter(k_color, images, brightness=j, contrast=j, saturation=j)
    if train and stage.augment.mixup_alpha > 0:
      images, targets = augment.mixup(k_mix, images, targets, stage.augment.mixup_alpha)
    images = augment.standardize(images)
    logits, _ = model(images, train=train, key=k_model)
    logits = logits.astype(jnp.float32)
    loss = optax.softmax_cross_entropy(logits, targets).mean()
    acc = (logits.argmax(-1) == batch["label"]).mean()
    return loss, {"acc": acc}

  def eval_fn(model, batch, key):
    images = augment.normalize(batch["image"])
    logits, _ = model(images, train=False)
    logits = logits.astype(jnp.float32)
    valid = batch["_valid"].astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
    return {"loss_sum": (losses * valid).sum(),
            "correct": ((logits.argmax(-1) == batch["label"]) * valid).sum(),
            "count": valid.sum()}

  def summarize(totals):
    n = max(float(totals["count"]), 1.0)
    return {"loss": float(totals["loss_sum"]) / n, "acc": float(totals["correct"]) / n}

  return tasks.Task(build_model, loss_fn, eval_fn, summarize)
