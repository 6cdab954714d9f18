"""Pictures for a person: mask overlays and convergence curves (matplotlib, Agg backend)."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

# Class colours: background transparent, curve1 red, curve2 blue (pets: pet, bg, border).
CLASS_COLOURS = np.array([[0, 0, 0], [230, 25, 25], [25, 80, 230]], np.uint8)


def overlay(image, mask, alpha=1.0):
  """RGB uint8: grayscale or RGB `image` with non-zero mask classes painted over it."""
  rgb = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3].copy()
  rgb = rgb.astype(np.float32)
  painted = mask > 0
  colours = CLASS_COLOURS[np.clip(mask, 0, len(CLASS_COLOURS) - 1)].astype(np.float32)
  rgb[painted] = (1 - alpha) * rgb[painted] + alpha * colours[painted]
  return rgb.astype(np.uint8)


def legend(rgb, entries, shape=None):
  """Draws a legend box into the top-left corner of RGB uint8 `rgb` (in place, same size):
  per entry, a swatch of its colour and its text. entries: [(RGB colour, text)]. Sized from
  the image (or `shape`, where `rgb` is the top band of a larger one); on an image too small
  for it, only the part that fits is drawn."""
  h, w = shape or rgb.shape[:2]
  size = int(np.clip(min(h, w) / 30, 10, 48))
  font = ImageFont.load_default(size)
  picture = Image.fromarray(rgb)
  draw = ImageDraw.Draw(picture)
  pad, line = max(2, size // 4), size + max(2, size // 4)
  text_w = max(draw.textlength(text, font=font) for _, text in entries)
  box = (0, 0, int(2 * pad + size + pad + text_w), int(pad + line * len(entries)))
  draw.rectangle(box, fill=(255, 255, 255), outline=(0, 0, 0))
  for i, (colour, text) in enumerate(entries):
    top = pad + i * line
    draw.rectangle((pad, top, pad + size - 1, top + size - 1), fill=tuple(int(c) for c in colour))
    draw.text((2 * pad + size, top), text, fill=(0, 0, 0), font=font)
  rgb[...] = np.asarray(picture)
  return rgb


def save_panel(path, panel):
  """Stacks a task's picture rows vertically into one full-resolution PNG.

  `panel` maps names to [H, W] arrays: "scan" (uint8), class maps "truth" / "prediction"
  (drawn over the scan), any other uint8 image as grayscale ("corrupted", "reconstruction")
  or as RGB when [H, W, 3]. Returns the stacked uint8 [H', W, 3] picture.
  """
  image = np.asarray(panel["scan"])
  order = ["scan", "truth", "prediction", "corrupted", "reconstruction"]
  rows = []
  # jax.device_get returns dicts with sorted keys: put rows in reading order again.
  for name in sorted(panel, key=lambda k: order.index(k) if k in order else len(order)):
    x = np.asarray(panel[name])
    rows.append(overlay(image, x) if name in ("truth", "prediction") else
                np.repeat(x[..., None], 3, -1) if x.ndim == 2 else x[..., :3])
  sep = np.full((4, image.shape[1], 3), 128, np.uint8)
  stacked = np.concatenate([r for row in rows for r in (row, sep)][:-1], axis=0)
  Image.fromarray(stacked).save(path)
  return stacked


def convergence(records, metrics_to_plot, path):
  """Eval metrics vs epoch, one panel per metric, one line per stage that reports it."""
  metrics_to_plot = [m for m in metrics_to_plot
                     if any(r["split"] == "eval" and m in r for r in records)]
  if not metrics_to_plot:
    return None
  fig, axes = plt.subplots(1, len(metrics_to_plot), figsize=(5 * len(metrics_to_plot), 3.6),
                           dpi=110, squeeze=False)
  stages = list(dict.fromkeys(r["stage"] for r in records))
  for ax, metric in zip(axes[0], metrics_to_plot):
    for stage in stages:
      rows = [r for r in records if r["stage"] == stage and r["split"] == "eval" and metric in r]
      if rows:
        ax.plot([r["epoch"] for r in rows], [r[metric] for r in rows], marker="o", ms=3,
                label=stage)
    _style(ax, "epoch", metric, f"eval {metric}")
  return _save(fig, path)


def metric_vs_x(series, xlabel, ylabel, path, title=None):
  """Lines with error bars: series maps a label to [(x, mean, std, ...)]."""
  fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
  for label, pts in series.items():
    x, mean, std = (np.array([p[i] for p in pts], np.float64) for i in range(3))
    ax.errorbar(x, mean, yerr=std, marker="o", ms=4, capsize=3, label=label)
  _style(ax, xlabel, ylabel, title or "")
  return _save(fig, path)


def _style(ax, xlabel, ylabel, title):
  ax.set(xlabel=xlabel, ylabel=ylabel, ylim=(0, 1), title=title)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)


def _save(fig, path):
  fig.tight_layout()
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path)
  plt.close(fig)
  return path
