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

from ssl_seg import models, tasks
from ssl_seg.data import corrupt as corrupt_lib


def corruption_config(cfg) -> corrupt_lib.CorruptionConfig:
  """CorruptionConfig from the stage's `corruption` fields (same names)."""
  names = {f.name for f in dataclasses.fields(corrupt_lib.CorruptionConfig)}
  return corrupt_lib.CorruptionConfig(**{k: v for k, v in cfg.items() if k in names})


def make_task(stage):
  cfg = stage.corruption
  corruption = corruption_config(cfg)
  kind = cfg.loss

  def build_model(rngs):
    return models.build_curvenet(stage.model, 1, rngs)

  def forward(model, batch, key, train):
    k_corrupt, k_model = jax.random.split(key)
    clean = batch["image"].astype(jnp.float32) / 255.0  # 1 = paper.
    valid = batch["valid_px"] & batch["_valid"][:, None, None]
    corrupted, hidden = corrupt_lib.corrupt(k_corrupt, clean, valid, corruption)
    # The net sees and predicts ink density (0 = paper), so padding and blank paper are zeros.
    pred, _ = model(1.0 - corrupted, valid=valid, train=train, key=k_model)
    # Ink is ~2 % of a scan: unweighted L1 is minimised by blank paper (its median), so ink
    # pixels of the clean scan and hidden pixels weigh more.
    ink_px = clean[..., 0] < cfg.ink_level
    weights = 1.0 + cfg.hidden_weight * hidden + cfg.ink_weight * ink_px
    loss = corrupt_lib.reconstruction_loss(1.0 - pred, clean, valid, weights=weights, kind=kind)
    identity = corrupt_lib.identity_baseline_loss(clean, corrupted, valid, weights=weights,
                                                  kind=kind)
    return loss, identity, (valid * weights).sum(), (clean, corrupted, 1.0 - pred)

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

  return tasks.Task("denoise", build_model, loss_fn, eval_fn, summarize, pictures=pictures)
