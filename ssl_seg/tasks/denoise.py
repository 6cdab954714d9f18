"""CurveNet pretraining as a denoising / masked autoencoder on unlabeled scans.

The scan is corrupted on device (hidden patches and column spans, noise, blur, ink dropout;
`ssl_seg.data.corrupt`) and the net redraws the clean scan. Hidden pixels weigh `hidden_weight`
more (filling a hole where a curve ran is what teaches the encoder what curves look like) and
ink pixels `ink_weight` more (ink is rare, so unweighted L1 is won by drawing blank paper).
Beside the model's loss we log `identity_loss`, the loss of a net that returns its corrupted
input: a model that does not clearly beat it is copying, not learning.
"""

import dataclasses

import jax
import jax.numpy as jnp

from ssl_seg import config_utils, models, tasks
from ssl_seg.data import corrupt as corrupt_lib
from ssl_seg.tasks import curve_segment, losses

BATCH_KEYS = ("image",)
MODEL = "curvenet"


def corruption_config(cfg) -> corrupt_lib.CorruptionConfig:
  """CorruptionConfig from the stage's `corruption` fields (same names)."""
  names = {f.name for f in dataclasses.fields(corrupt_lib.CorruptionConfig)}
  return corrupt_lib.CorruptionConfig(**{k: v for k, v in cfg.items() if k in names})


def validate(stage, f):
  """The loss kind and the corruption strengths."""
  config_utils.need(stage.corruption.loss in losses.ERROR_KINDS, f"{f}.corruption.loss",
                    f"must be one of {losses.ERROR_KINDS}, got {stage.corruption.loss!r}")
  try:
    corruption_config(stage.corruption)
  except ValueError as e:
    raise config_utils.ConfigError(f"config.{f}.corruption: {e}") from None


def reconstruction_loss(pred, target, valid, *, weights=None, kind="l1"):
  """Mean L1 / L2 error over valid pixels (weighted per pixel by weights [B, H, W] if given)."""
  if kind not in losses.ERROR_KINDS:
    raise ValueError(f"kind must be one of {losses.ERROR_KINDS}, got {kind!r}")
  err = losses.pixel_error(pred.astype(jnp.float32), target.astype(jnp.float32), kind)
  w = valid.astype(jnp.float32)
  if weights is not None:
    w = w * weights.astype(jnp.float32)
  return (err.mean(axis=-1) * w).sum() / jnp.maximum(w.sum(), 1e-6)


def identity_baseline_loss(image, corrupted, valid, *, weights=None, kind="l1"):
  """`reconstruction_loss` of a model that returns its corrupted input unchanged.

  Pass the same weights, kind and image space (raw or normalised) as the model's loss, so the
  two numbers compare.
  """
  return reconstruction_loss(corrupted, image, valid, weights=weights, kind=kind)


def make_task(stage):
  cfg = stage.corruption
  corruption = corruption_config(cfg)
  kind = cfg.loss

  def build_model(rngs):
    return models.build(stage.model, rngs, out_channels=1)

  def forward(model, batch, key, train):
    k_corrupt, k_model = jax.random.split(key)
    clean = curve_segment.brightness(batch["image"])  # 1 = paper.
    valid = batch["valid_px"] & batch["_valid"][:, None, None]
    corrupted, hidden = corrupt_lib.corrupt(k_corrupt, clean, valid, corruption)
    # The net sees and predicts ink density (0 = paper), so padding and blank paper are zeros;
    # the same transform as curve_segment's input, which grafting the encoder relies on.
    pred, _ = model(curve_segment.invert(corrupted), valid=valid, train=train, key=k_model)
    pred = curve_segment.invert(pred)  # Back to brightness, the space of the loss.
    # Ink is ~2 % of a scan: unweighted L1 is minimised by blank paper (its median), so ink
    # pixels of the clean scan and hidden pixels weigh more.
    ink_px = clean[..., 0] < cfg.ink_level
    weights = 1.0 + cfg.hidden_weight * hidden + cfg.ink_weight * ink_px
    loss = reconstruction_loss(pred, clean, valid, weights=weights, kind=kind)
    identity = identity_baseline_loss(clean, corrupted, valid, weights=weights, kind=kind)
    return loss, identity, (valid * weights).sum(), (clean, corrupted, pred)

  def loss_fn(model, batch, key, train):
    loss, identity, _, _ = forward(model, batch, key, train)
    return loss, {"identity_loss": identity}

  def eval_fn(model, batch, key):
    loss, identity, weight, _ = forward(model, batch, key, train=False)
    return {"loss_sum": loss * weight, "identity_sum": identity * weight, "weight": weight}

  def summarize(totals):
    w = max(float(totals["weight"]), 1e-6)
    loss, identity = float(totals["loss_sum"]) / w, float(totals["identity_sum"]) / w
    return {"loss": loss, "identity_loss": identity, "loss_vs_identity": loss / max(identity, 1e-9)}

  def pictures(model, batch, key):
    """Clean, corrupted and reconstructed scans of one eval batch (uint8 [B, H, W] each)."""
    _, _, _, images = forward(model, batch, key, train=False)
    to_u8 = lambda x: (jnp.clip(x[..., 0], 0, 1) * 255).astype(jnp.uint8)
    return dict(zip(("scan", "corrupted", "reconstruction"), map(to_u8, images)))

  return tasks.Task(build_model, loss_fn, eval_fn, summarize, pictures=pictures)
