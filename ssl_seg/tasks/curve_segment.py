"""Per-pixel curve segmentation of scanned logs with CurveNet (background / curve1 / curve2).

Curves cover about 1 % of pixels, so plain cross-entropy is dominated by background. Losses:
  "ce"       cross-entropy, optionally class-weighted (`class_weights`);
  "dice"     soft Dice over the curve classes (overlap loss, insensitive to class frequency);
  "ce_dice"  the sum of both.
`binary=True` merges the curves into one class (the binary curve / background stage).
Padding (`valid_px` False) and padding rows (`_valid` False) count nowhere. Predictions (eval,
pictures, `inference`) are the argmax of `decision_logits`: `weight_correction` in [0, 1] removes
that share of the class weights' bias towards the curves. `test_time_flip` averages the logits
with those of each log reversed along depth (`predict_logits`), the mirror image training
augments with.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ssl_seg import config_utils, metrics, models, tasks
from ssl_seg.data import augment
from ssl_seg.tasks import segment

BATCH_KEYS = ("image", "seg")
MODEL = "curvenet"
LOSSES = ("ce", "dice", "ce_dice")


# The input transform of both CurveNet tasks: the denoise task corrupts in brightness and
# feeds `invert` of it, this one feeds `ink`. Grafting a denoise encoder into this task relies
# on the two agreeing, so both go through these functions.
def brightness(images_u8):
  """uint8 scans (255 = paper) -> float brightness in [0, 1] (1 = paper)."""
  return images_u8.astype(jnp.float32) / 255.0


def invert(x):
  """Brightness (1 = paper) <-> ink density (0 = paper); its own inverse."""
  return 1.0 - x


def ink(images_u8):
  """uint8 scans [B, H, W, 1] (255 = paper) -> float ink density in [0, 1] (0 = paper)."""
  return invert(brightness(images_u8))


def pixel_weights(valid_px, row_valid):
  """1.0 on real pixels of real rows, 0.0 on width padding and on empty (padding) rows."""
  return valid_px.astype(jnp.float32) * row_valid[:, None, None]


def soft_dice_loss(logits, labels, weights, classes):
  """1 - mean soft Dice of `classes`, summed over the batch's valid pixels."""
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
  onehot = jax.nn.one_hot(labels, logits.shape[-1])
  w = weights[..., None]
  axes = tuple(range(labels.ndim))
  inter = (probs * onehot * w).sum(axes)
  denom = ((probs + onehot) * w).sum(axes)
  dice = (2 * inter + 1.0) / (denom + 1.0)
  return 1.0 - dice[jnp.asarray(classes)].mean()


def decision_logits(logits, class_weights, correction=1.0):
  """Logits to take the argmax of: `correction` of the class-weighted loss's bias removed.

  A cross-entropy with class weights w is minimised by probabilities proportional to
  w_c p(c | x), so its argmax over-predicts the up-weighted curves (low precision, thick
  curves). Subtracting correction * log w moves towards the unweighted posterior's argmax
  (correction 1) while keeping the weights' stronger gradients on rare curve pixels. It pays
  once the net is confident: on held-out synthetic logs a half correction raised strict F1 by
  0.06 / 0.02 (curve1 / curve2) after 600 steps at lr 6e-3, a full one by 0.06 / 0.06 after
  1,500 steps; but a net trained 600 steps at lr 3e-3 (flat logits) lost every curve (README).
  """
  if class_weights is None or not correction:
    return logits
  return logits - correction * jnp.log(jnp.asarray(class_weights, jnp.float32))


def flip_depth(a, valid):
  """`a` [B, H, W, ...] with each log's valid columns reversed along depth (W), padding left in
  place at the right end, so the flipped log is exactly the mirrored log, padded as before.
  `valid` [B, H, W]: a log's valid columns are a prefix (buckets, crops and windows pad at the
  right). Its own inverse."""
  width = valid.any(axis=1).sum(-1, keepdims=True)  # [B, 1]
  col = jnp.arange(a.shape[2])[None]
  idx = jnp.where(col < width, width - 1 - col, col)  # [B, W]
  idx = idx.reshape(idx.shape[:1] + (1,) + idx.shape[1:] + (1,) * (a.ndim - 3))
  return jnp.take_along_axis(a, jnp.broadcast_to(idx, a.shape[:2] + idx.shape[2:]), axis=2)


def predict_logits(model, x, valid, test_time_flip):
  """Eval-mode logits [B, H, W, K]; with `test_time_flip`, the mean of the log's and its
  depth-reversed copy's (flipped back). Two forward passes; on the long recipe's model +0.009 /
  +0.011 strict F1 and +0.005 / +0.009 within 1 px on held-out synthetic logs (README)."""
  logits, _ = model(x, valid=valid, train=False)
  if test_time_flip:
    mirrored, _ = model(flip_depth(x, valid), valid=flip_depth(valid, valid), train=False)
    logits = 0.5 * (logits + flip_depth(mirrored, valid))
  return logits


def _class_names(stage):
  return ("background", "curve") if stage.binary else tuple(stage.class_names)


def validate(stage, f):
  """The loss, one class weight per class, and the weight correction's range."""
  config_utils.need(stage.loss in LOSSES, f"{f}.loss",
                    f"must be one of {LOSSES}, got {stage.loss!r}")
  segment.check_class_weights(stage.class_weights, _class_names(stage), f)
  correction = stage.get("weight_correction", 0.0)
  config_utils.need(0.0 <= correction <= 1.0, f"{f}.weight_correction",
                    f"must be in [0, 1] (share of the class weights' bias removed), got "
                    f"{correction}")
  config_utils.need(isinstance(stage.get("test_time_flip", False), bool),
                    f"{f}.test_time_flip", "must be True or False")


def make_task(stage):
  binary = stage.binary
  class_names = _class_names(stage)
  num_classes = len(class_names)
  class_weights = np.asarray(stage.class_weights, np.float32) if stage.class_weights else None
  correction = stage.get("weight_correction", 0.0)  # See decision_logits.
  test_time_flip = stage.get("test_time_flip", False)  # See predict_logits.

  def build_model(rngs):
    return models.build(stage.model, rngs, out_channels=num_classes)

  def labels_of(batch):
    seg = batch["seg"].astype(jnp.int32)
    return jnp.minimum(seg, 1) if binary else seg

  def loss_fn(model, batch, key, train):
    k_flip, k_jit, k_model = jax.random.split(key, 3)
    x, labels, valid = ink(batch["image"]), labels_of(batch), batch["valid_px"]
    if train and stage.augment.enabled:
      x, labels, valid = augment.flip_lr(k_flip, x, labels, valid)
      x = x * jax.random.uniform(k_jit, (x.shape[0], 1, 1, 1), minval=1 - stage.augment.jitter,
                                 maxval=1 + stage.augment.jitter)
    weights = pixel_weights(valid, batch["_valid"])
    logits, _ = model(x, valid=valid, train=train, key=k_model)
    loss = 0.0
    if stage.loss in ("ce", "ce_dice"):
      loss += segment.pixel_cross_entropy(logits, labels, weights, class_weights)
    if stage.loss in ("dice", "ce_dice"):
      loss += soft_dice_loss(logits, labels, weights, tuple(range(1, num_classes)))
    return loss, {}

  def eval_fn(model, batch, key):
    valid, x = batch["valid_px"], ink(batch["image"])
    logits = predict_logits(model, x, valid, test_time_flip)
    weights = pixel_weights(valid, batch["_valid"])
    labels = labels_of(batch)
    decision = decision_logits(logits, class_weights, correction)
    stats = segment.segmentation_eval_stats(logits, labels, weights, num_classes,
                                            decision_logits=decision)
    stats["tolerant"] = metrics.tolerant_counts(labels, decision.argmax(-1), weights, num_classes)
    # The trivial rule on the same pixels, so no model score is read without it.
    rule = metrics.threshold_rule(x[..., 0], valid)
    stats["rule_confusion"] = metrics.confusion_matrix(labels, rule, weights, num_classes)
    stats["rule_tolerant"] = metrics.tolerant_counts(labels, rule, weights, num_classes)
    return stats

  def summarize(totals):
    out = segment.summarize_segmentation(totals, class_names, False)
    out.update(metrics.from_tolerant_counts(totals["tolerant"], class_names))
    out.update(metrics.rule_scores(totals["rule_confusion"], totals["rule_tolerant"],
                                   class_names))
    return out

  def pictures(model, batch, key):
    logits = predict_logits(model, ink(batch["image"]), batch["valid_px"], test_time_flip)
    return {"scan": batch["image"][..., 0], "truth": labels_of(batch),
            "prediction": decision_logits(logits, class_weights, correction).argmax(-1)
                          * batch["valid_px"]}

  return tasks.Task(build_model, loss_fn, eval_fn, summarize, class_names, pictures)
