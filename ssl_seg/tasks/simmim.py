"""SimMIM: random patch masking (exact count per image), linear decoder, loss on masked only."""

import jax
import jax.numpy as jnp

from ssl_seg import models, tasks
from ssl_seg.data import augment
from ssl_seg.models import heads, vit


def random_patch_mask(key, batch, num_patches, ratio):
  """bool [B, N] with exactly round(ratio * N) True entries per row."""
  num_masked = int(round(ratio * num_patches))
  if not 0 < num_masked < num_patches:
    raise ValueError(f"mask ratio {ratio} masks {num_masked} of {num_patches} patches; "
                     "need at least one masked and one visible patch")
  ranks = jnp.argsort(jnp.argsort(jax.random.uniform(key, (batch, num_patches)), axis=1), axis=1)
  return ranks < num_masked


def masked_patch_loss(pred, target, mask, kind):
  """Mean L1/L2 over the pixels of masked patches only (visible patches contribute nothing)."""
  err = jnp.abs(pred - target) if kind == "l1" else jnp.square(pred - target)
  per_patch = err.mean(axis=-1)
  return (per_patch * mask).sum() / jnp.maximum(mask.sum(), 1)


def make_task(stage):
  mim = stage.mim
  if mim.loss not in ("l1", "l2"):
    raise ValueError(f"mim.loss must be 'l1' or 'l2', got {mim.loss!r}")

  def build_model(rngs):
    return heads.SimMIM(models.build_vit_encoder(stage.model, rngs), rngs=rngs)

  def prepare(key, batch, train):
    images = batch["image"].astype(jnp.float32) / 255.0
    if train and stage.augment.enabled:
      k_crop, k_flip, k_color = jax.random.split(key, 3)
      (images,) = augment.random_resized_crop(k_crop, images, scale=tuple(stage.augment.scale))
      (images,) = augment.flip_lr(k_flip, images)
      images = augment.color_jitter(k_color, images, brightness=stage.augment.jitter,
                                    contrast=stage.augment.jitter,
                                    saturation=stage.augment.jitter)
    return (images - augment.IMAGENET_MEAN) / augment.IMAGENET_STD

  def forward(model, batch, key, train):
    k_aug, k_mask, k_model = jax.random.split(key, 3)
    images = prepare(k_aug, batch, train)
    size = model.encoder.size
    mask = random_patch_mask(k_mask, images.shape[0], model.encoder.grid**2, mim.mask_ratio)
    pred, _ = model(images, mask, train=train, key=k_model)
    target = vit.patchify(images, size.patch_size)
    return pred.astype(jnp.float32), target, mask

  def loss_fn(model, batch, key, train):
    pred, target, mask = forward(model, batch, key, train)
    return masked_patch_loss(pred, target, mask, mim.loss), {}

  def eval_fn(model, batch, key):
    pred, target, mask = forward(model, batch, key, train=False)
    err = jnp.abs(pred - target) if mim.loss == "l1" else jnp.square(pred - target)
    valid = batch["_valid"][:, None] * mask
    return {"loss_sum": (err.mean(-1) * valid).sum(), "count": valid.sum()}

  def summarize(totals):
    return {"loss": float(totals["loss_sum"] / max(totals["count"], 1))}

  return tasks.Task("mim", build_model, loss_fn, eval_fn, summarize)
