"""Per-pixel segmentation with the study's linear per-token head (trimap-like 3 classes)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ssl_seg import config_utils, metrics, models, tasks
from ssl_seg.data import augment
from ssl_seg.models import heads

BATCH_KEYS = ("image", "seg")
MODEL = "vit"


def pixel_cross_entropy(logits, labels, weights, class_weights=None):
  """Mean cross-entropy over pixels with weight > 0, optionally class-weighted."""
  losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
  if class_weights is not None:
    weights = weights * jnp.asarray(class_weights, jnp.float32)[labels]
  return (losses * weights).sum() / jnp.maximum(weights.sum(), 1e-6)


def segmentation_eval_stats(logits, labels, pixel_weights, num_classes, decision_logits=None):
  """Summable sufficient statistics: confusion matrix, per-image IoU sum, loss sum.

  Predictions are the argmax of `decision_logits` when given (else of `logits`); the loss is
  always that of `logits`.
  """
  preds = (logits if decision_logits is None else decision_logits).argmax(-1)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
  image_valid = pixel_weights.reshape(pixel_weights.shape[0], -1).max(-1)
  return {
      "confusion": metrics.confusion_matrix(labels, preds, pixel_weights, num_classes),
      "image_iou_sum": (metrics.per_image_iou(labels, preds, pixel_weights, num_classes)
                        * image_valid).sum(),
      "images": image_valid.sum(),
      "loss_sum": (losses * pixel_weights).sum(),
      "pixels": pixel_weights.sum(),
  }


def summarize_segmentation(totals, class_names, per_image_miou):
  out = metrics.from_confusion(totals["confusion"], class_names)
  out["loss"] = float(totals["loss_sum"]) / max(float(totals["pixels"]), 1.0)
  if per_image_miou:
    out["miou_per_image"] = float(totals["image_iou_sum"]) / max(float(totals["images"]), 1.0)
  return out


def check_class_weights(class_weights, class_names, f):
  """Empty (unweighted) or one weight per class; ConfigError naming the field."""
  weights = tuple(class_weights or ())
  config_utils.need(not weights or len(weights) == len(class_names), f"{f}.class_weights",
                    f"has {len(weights)} entries for {len(class_names)} classes "
                    f"{tuple(class_names)}; give one weight per class or () for none")


def validate(stage, f):
  check_class_weights(stage.class_weights, stage.class_names, f)


def make_task(stage):
  class_names = tuple(stage.class_names)
  num_classes = len(class_names)
  class_weights = np.asarray(stage.class_weights, np.float32) if stage.class_weights else None

  def build_model(rngs):
    return heads.LinearSegmenter(models.build(stage.model, rngs), num_classes,
                                 rngs=rngs)

  def loss_fn(model, batch, key, train):
    k_geo, k_color, k_model = jax.random.split(key, 3)
    images = batch["image"].astype(jnp.float32) / 255.0
    labels = batch["seg"].astype(jnp.int32)
    if train and stage.augment.enabled:
      # Crop and flip move the trimap with the image (nearest neighbour), so labels stay exact.
      images, labels = augment.crop_flip(k_geo, images, labels, scale=stage.augment.scale)
      j = stage.augment.jitter
      images = augment.color_jitter(k_color, images, brightness=j, contrast=j, saturation=j)
    images = augment.standardize(images)
    logits, _ = model(images, train=train, key=k_model)
    weights = jnp.ones(labels.shape, jnp.float32)
    loss = pixel_cross_entropy(logits, labels, weights, class_weights)
    return loss, {"pixel_acc": (logits.argmax(-1) == labels).mean()}

  def eval_fn(model, batch, key):
    logits, _ = model(augment.normalize(batch["image"]), train=False)
    weights = jnp.broadcast_to(batch["_valid"][:, None, None], batch["seg"].shape)
    return segmentation_eval_stats(logits, batch["seg"].astype(jnp.int32),
                                   weights.astype(jnp.float32), num_classes)

  def summarize(totals):
    return summarize_segmentation(totals, class_names, stage.eval.per_image_miou)

  def pictures(model, batch, key):
    """The study's Fig. 3 per example: image, true trimap, predicted trimap (overlays)."""
    del key
    logits, _ = model(augment.normalize(batch["image"]), train=False)
    return {"scan": batch["image"], "truth": batch["seg"].astype(jnp.int32),
            "prediction": logits.argmax(-1)}

  return tasks.Task(build_model, loss_fn, eval_fn, summarize, class_names, pictures)
