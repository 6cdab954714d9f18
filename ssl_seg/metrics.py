"""Segmentation and classification metrics from data-set-level sufficient statistics.

Device side sums a confusion matrix per batch (`confusion_matrix`); the host turns the total
into IoU / precision / recall / F1 (`from_confusion`). This is the data-set-level mIoU: each
class's IoU is computed over all pixels of the split, then averaged. The study's code averages
per-image mIoU instead (`per_image_iou`), which weighs small images and rare classes in one
image as much as large ones; we report both when asked.
"""

import jax
import jax.numpy as jnp
import numpy as np


def confusion_matrix(labels, preds, weights, num_classes):
  """[K, K] int32 counts, rows = truth, cols = prediction; pixels with weight 0 are ignored."""
  idx = labels.reshape(-1).astype(jnp.int32) * num_classes + preds.reshape(-1).astype(jnp.int32)
  counts = jnp.zeros(num_classes * num_classes, jnp.int32)
  counts = counts.at[idx].add(weights.reshape(-1).astype(jnp.int32))
  return counts.reshape(num_classes, num_classes)


def per_image_iou(labels, preds, weights, num_classes):
  """Per-image mean IoU over the classes present in truth or prediction: [B] float."""
  onehot_t = jax.nn.one_hot(labels, num_classes) * weights[..., None]
  onehot_p = jax.nn.one_hot(preds, num_classes) * weights[..., None]
  axes = tuple(range(1, labels.ndim))
  inter = (onehot_t * onehot_p).sum(axes)
  union = (jnp.maximum(onehot_t, onehot_p)).sum(axes)
  present = union > 0
  iou = jnp.where(present, inter / jnp.maximum(union, 1), 0.0)
  return iou.sum(-1) / jnp.maximum(present.sum(-1), 1)


def _safe_div(a, b):
  return np.where(b > 0, a / np.maximum(b, 1e-12), 0.0)


def from_confusion(cm, class_names):
  """Host-side metrics dict from a [K, K] confusion matrix (flat keys of INTERFACES.md)."""
  cm = np.asarray(cm, np.float64)
  tp = np.diag(cm)
  truth, pred = cm.sum(1), cm.sum(0)
  iou = _safe_div(tp, truth + pred - tp)
  precision, recall = _safe_div(tp, pred), _safe_div(tp, truth)
  f1 = _safe_div(2 * precision * recall, precision + recall)
  out = {"miou": float(iou.mean()), "pixel_acc": float(tp.sum() / max(cm.sum(), 1))}
  for i, name in enumerate(class_names):
    out[f"iou/{name}"] = float(iou[i])
    out[f"precision/{name}"] = float(precision[i])
    out[f"recall/{name}"] = float(recall[i])
    out[f"f1/{name}"] = float(f1[i])
  return out


def _dilate(m, tol):
  """bool [B, H, W] grown by `tol` px in every direction (a (2 tol + 1)^2 max filter)."""
  k = 2 * tol + 1
  grown = jax.lax.reduce_window(m.astype(jnp.float32), -jnp.inf, jax.lax.max, (1, k, k),
                                (1, 1, 1), "SAME")
  return grown > 0


def tolerant_counts(labels, preds, weights, num_classes, tol=1):
  """Summable counts for F1 with a `tol`-px tolerance, per class: [4, K] int32.

  Rows: predicted pixels, predicted pixels with a true pixel of the same class within `tol`
  px (Chebyshev), true pixels, true pixels with a predicted one within `tol` px. This is the
  relaxed precision / recall of thin-structure segmentation (roads, vessels, cracks): on 1-2 px
  curves a prediction one row off is the right curve in the right place, yet strict pixel F1
  counts it wrong twice. labels, preds: int [B, H, W]; weights 0 excludes a pixel.
  """
  w = weights > 0
  rows = []
  for c in range(num_classes):
    t, p = (labels == c) & w, (preds == c) & w
    rows.append(jnp.stack([p.sum(), (p & _dilate(t, tol)).sum(), t.sum(),
                           (t & _dilate(p, tol)).sum()]))
  return jnp.stack(rows, axis=1).astype(jnp.int32)


def from_tolerant_counts(counts, class_names, tol=1):
  """`f1_tol{tol}/<class>`, `precision_tol{tol}/<class>`, `recall_tol{tol}/<class>`."""
  n_pred, hit_pred, n_true, hit_true = np.asarray(counts, np.float64)
  precision, recall = _safe_div(hit_pred, n_pred), _safe_div(hit_true, n_true)
  f1 = _safe_div(2 * precision * recall, precision + recall)
  out = {}
  for i, name in enumerate(class_names):
    out[f"precision_tol{tol}/{name}"] = float(precision[i])
    out[f"recall_tol{tol}/{name}"] = float(recall[i])
    out[f"f1_tol{tol}/{name}"] = float(f1[i])
  return out


def pixel_scores(confusion, tolerant, class_names):
  """`from_confusion` and `from_tolerant_counts` of one set of summed counts."""
  return {**from_confusion(confusion, class_names),
          **from_tolerant_counts(tolerant, class_names)}


RULE_PREFIX = "rule/"  # Keys of `threshold_rule`'s scores beside a model's.


def rule_scores(confusion, tolerant, class_names):
  """The threshold rule's precision / recall / F1 (strict and tolerant) as `rule/<key>`."""
  return {f"{RULE_PREFIX}{k}": v for k, v in pixel_scores(confusion, tolerant,
                                                           class_names).items()
          if k.startswith(("f1", "precision", "recall"))}


# The trivial rule printed beside every curve model: a pixel darker than its image's paper by
# more than this (ink density, 0 = paper, 1 = black) is curve1, everything else background.
# 0.4 maximised the rule's curve1 F1 on synthetic logs (0.15 .. 0.6 tried: 0.20 .. 0.36).
THRESHOLD_RULE_CONTRAST = 0.4


def threshold_rule(ink, valid):
  """Baseline prediction [B, H, W]: 1 where ink [B, H, W] exceeds the paper level + contrast.

  The paper level is the median ink density of the image's valid pixels (curves cover ~1 %).
  """
  paper = jnp.nanmedian(jnp.where(valid, ink, jnp.nan), axis=(1, 2), keepdims=True)
  return ((ink > paper + THRESHOLD_RULE_CONTRAST) & valid).astype(jnp.int32)


def format_table(rows, columns, title=None):
  """Plain-text table: rows is a list of (name, {column: value})."""
  widths = [max(12, *(len(r[0]) for r in rows))] + [max(9, len(c)) for c in columns]
  def fmt(v):
    return f"{v:.4f}" if isinstance(v, float) else ("-" if v is None else str(v))
  lines = [title] if title else []
  lines.append("  ".join(h.ljust(w) for h, w in zip(["", *columns], widths)))
  lines.append("  ".join("-" * w for w in widths))
  for name, vals in rows:
    cells = [fmt(vals.get(c)) for c in columns]
    lines.append("  ".join(s.ljust(w) for s, w in zip([name, *cells], widths)))
  return "\n".join(lines)


PER_CLASS = ("iou", "precision", "recall", "f1")


def summary_table(final, class_names=(), title=None):
  """One row per class (IoU, precision, recall, F1), then a row of data-set totals."""
  totals = {k: v for k, v in final.items() if "/" not in k}
  rows = [(c, {m: final.get(f"{m}/{c}") for m in PER_CLASS}) for c in class_names]
  rows.append(("all", totals))
  columns = (list(PER_CLASS) if class_names else []) + list(totals)
  return format_table(rows, columns, title)
