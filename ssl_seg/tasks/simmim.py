"""SimMIM: random patch masking (exact count per image), linear decoder, loss on masked only.

`mim.mask_patch_size` (px, 0 = the ViT's patch) masks square groups of tokens, as SimMIM's
own default does (32-px mask patches over 16-px tokens).
"""

import jax
import jax.numpy as jnp
from einops import rearrange, repeat

from ssl_seg import config_utils, models, tasks
from ssl_seg.data import augment
from ssl_seg.models import heads, vit
from ssl_seg.tasks import losses

BATCH_KEYS = ("image",)
MODEL = "vit"


def random_patch_mask(key, batch, num_patches, ratio):
  """bool [B, N] with exactly round(ratio * N) True entries per row."""
  num_masked = int(round(ratio * num_patches))
  if not 0 < num_masked < num_patches:
    raise ValueError(f"mask ratio {ratio} masks {num_masked} of {num_patches} patches; "
                     "need at least one masked and one visible patch")
  ranks = jnp.argsort(jnp.argsort(jax.random.uniform(key, (batch, num_patches)), axis=1), axis=1)
  return ranks < num_masked


def block_patch_mask(key, batch, grid, ratio, block):
  """bool [B, grid**2]: `random_patch_mask` over cells of block x block tokens, each cell's
  mask repeated over its tokens (SimMIM masks 32-px patches over 16-px tokens: block 2)."""
  if block == 1:
    return random_patch_mask(key, batch, grid * grid, ratio)
  if grid % block:
    raise ValueError(f"mask patch of {block} x {block} tokens does not tile the {grid} x {grid} "
                     "token grid")
  cells = grid // block
  mask = random_patch_mask(key, batch, cells * cells, ratio)
  mask = rearrange(mask, "b (h w) -> b h w", h=cells)
  return repeat(mask, "b h w -> b (h p) (w q)", p=block, q=block).reshape(batch, grid * grid)


def mask_block(mask_patch_size, patch_size, img_size):
  """Tokens per side of one mask patch (0 = the ViT's patch); ValueError naming the sizes."""
  if not mask_patch_size:
    return 1
  if mask_patch_size < 0 or mask_patch_size % patch_size or img_size % mask_patch_size:
    raise ValueError(f"mim.mask_patch_size {mask_patch_size} must be a multiple of the ViT patch "
                     f"size {patch_size} and divide the image size {img_size} (0: the patch "
                     "size)")
  return mask_patch_size // patch_size


def masked_patch_loss(pred, target, mask, kind):
  """Mean L1/L2 over the pixels of masked patches only (visible patches contribute nothing)."""
  per_patch = losses.pixel_error(pred, target, kind).mean(axis=-1)
  return (per_patch * mask).sum() / jnp.maximum(mask.sum(), 1)


def validate(stage, f):
  """The loss kind, and mask patches that tile the (resolved) ViT's token grid."""
  config_utils.need(stage.mim.loss in losses.ERROR_KINDS, f"{f}.mim.loss",
                    f"must be one of {losses.ERROR_KINDS}, got {stage.mim.loss!r}")
  size, _ = models.resolve_size(stage.model)
  try:
    mask_block(stage.mim.get("mask_patch_size", 0), size.patch_size, size.img_size)
  except ValueError as e:
    raise config_utils.ConfigError(f"config.{f}.{e}") from None


def make_task(stage):
  mim = stage.mim

  def build_model(rngs):
    return heads.SimMIM(models.build(stage.model, rngs), rngs=rngs)

  def prepare(key, batch, train):
    images = batch["image"].astype(jnp.float32) / 255.0
    if train and stage.augment.enabled:
      k_crop, k_flip, k_color = jax.random.split(key, 3)
      (images,) = augment.random_resized_crop(k_crop, images, scale=tuple(stage.augment.scale))
      (images,) = augment.flip_lr(k_flip, images)
      images = augment.color_jitter(k_color, images, brightness=stage.augment.jitter,
                                    contrast=stage.augment.jitter,
                                    saturation=stage.augment.jitter)
    return augment.standardize(images)

  def forward(model, batch, key, train):
    k_aug, k_mask, k_model = jax.random.split(key, 3)
    images = prepare(k_aug, batch, train)
    size = model.encoder.size
    block = mask_block(mim.get("mask_patch_size", 0), size.patch_size, size.img_size)
    mask = block_patch_mask(k_mask, images.shape[0], model.encoder.grid, mim.mask_ratio, block)
    pred, _ = model(images, mask, train=train, key=k_model)
    target = vit.patchify(images, size.patch_size)
    return pred.astype(jnp.float32), target, mask

  def loss_fn(model, batch, key, train):
    pred, target, mask = forward(model, batch, key, train)
    return masked_patch_loss(pred, target, mask, mim.loss), {}

  def eval_fn(model, batch, key):
    pred, target, mask = forward(model, batch, key, train=False)
    err = losses.pixel_error(pred, target, mim.loss)
    valid = batch["_valid"][:, None] * mask
    return {"loss_sum": (err.mean(-1) * valid).sum(), "count": valid.sum()}

  def summarize(totals):
    return {"loss": float(totals["loss_sum"] / max(totals["count"], 1))}

  def pictures(model, batch, key):
    """The study's Fig. 1 per example: input, masked input (mask = mean grey), reconstruction
    (predicted masked patches, visible ones as given)."""
    pred, target, mask = forward(model, batch, key, train=False)
    grid, patch = model.encoder.grid, model.encoder.size.patch_size

    def to_u8(patches):
      images = vit.unpatchify(patches, patch, grid) * augment.IMAGENET_STD + augment.IMAGENET_MEAN
      return (jnp.clip(images, 0.0, 1.0) * 255.0).round().astype(jnp.uint8)

    masked = jnp.where(mask[..., None], 0.0, target)  # 0 after normalisation: the mean colour.
    return {"scan": batch["image"], "corrupted": to_u8(masked),
            "reconstruction": to_u8(jnp.where(mask[..., None], pred, target))}

  return tasks.Task(build_model, loss_fn, eval_fn, summarize, pictures=pictures)
