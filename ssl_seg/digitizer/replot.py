"""NAME_replot.png: the digitized curves re-plotted as a log, beside the scan, for a person.

Depth runs down the page (a scan whose depth runs along its width is turned clockwise, so the
left edge of a track, track position 0, stays on the left). Each curve gets its own panel on
its own scale (the layout's left / right, linear or log), titled with its mnemonic and unit;
a curve without a scale is drawn at its track position, 0..1. All panels share the depth
axis (the layout's depth where known, else the pixel), so a value can be read across from the
scan at the same height. Panels are placed at fixed positions (no tight_layout), so a test can
map a value to a pixel column: `replot` returns each panel's pixel box.
"""

import os

import numpy as np
from PIL import Image

from ssl_seg import plots

plt = plots.plt  # plots selects the Agg backend.

DPI = 100
FIG_HEIGHT = 10.0  # Inches: a whole log at a glance, not at full resolution.
CURVE_WIDTH = 1.8  # Inches per curve panel.
_TOP, _BOTTOM, _LEFT, _GAP, _RIGHT = 0.9, 0.5, 0.9, 0.25, 0.2  # Margins, inches.


def _portrait(image, vertical):
  """The scan with depth down the page; a horizontal scan turned clockwise."""
  return image if vertical else np.rot90(image, -1)


def _thumbnail(image, max_rows):
  """uint8 image shrunk (box filter) to at most `max_rows` rows: matplotlib would otherwise
  resample a 30 M pixel scan on every draw."""
  h, w = image.shape[:2]
  if h <= max_rows:
    return image
  new_w = max(1, round(w * max_rows / h))
  return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(
      (new_w, max_rows), Image.Resampling.BOX))


def max_thumb_rows():
  """Rows of the scan panel's picture: twice the panel's pixels, so nothing finer is lost."""
  return int((FIG_HEIGHT - _TOP - _BOTTOM) * DPI * 2)


def replot(path, image, layout, curves, depth=None, depth_unit="", title="", shape=None):
  """Writes the re-plotted log; returns {"path", "size": (w, h) px, "boxes": {label:
  (x0, y0, x1, y1) px of its panel, y from the top}}.

  Args:
    image: uint8 [H, W] scan, original layout.
    layout: its `scan_layout.Layout`.
    curves: [(label, curve_values.Series, class_id)]: label the mnemonic shown, the class id picks
      the colour the overlay paints that class in.
    depth: float [N] depth per pixel along the depth axis, or None (pixels).
    shape: the scan's (H, W) where `image` is a thumbnail of it (`ssl_seg.digitizer.tiled`).
  """
  scan = _portrait(image, layout.vertical)
  h, w = shape or image.shape
  n_depth, extent = (h, w) if layout.vertical else (w, h)
  y = np.arange(n_depth, dtype=np.float64) if depth is None else np.asarray(depth, np.float64)
  plot_h = FIG_HEIGHT - _TOP - _BOTTOM
  scan_w = float(np.clip(plot_h * extent / n_depth, 0.8, 4.0))
  fig_w = _LEFT + scan_w + len(curves) * (_GAP + CURVE_WIDTH) + _RIGHT
  fig = plt.figure(figsize=(fig_w, FIG_HEIGHT), dpi=DPI)

  def axes(x, w):
    return fig.add_axes((x / fig_w, _BOTTOM / FIG_HEIGHT, w / fig_w, plot_h / FIG_HEIGHT))

  # Pixel edges: row k spans [k - 0.5, k + 0.5] of the depth axis.
  y_lim = (_edge(y, -1, 1), _edge(y, 0, -1))
  _scan_panel(axes(_LEFT, scan_w), scan, layout, extent, y_lim,
              f"depth [{depth_unit}]" if depth is not None and depth_unit else
              "depth" if depth is not None else "depth [px]")
  boxes = {}
  x = _LEFT + scan_w + _GAP
  for label, s, class_id in curves:
    boxes[label] = _curve_panel(axes(x, CURVE_WIDTH), label, s, class_id, y, y_lim)
    x += CURVE_WIDTH + _GAP
  if title:
    fig.suptitle(title, fontsize=10)
  fig.canvas.draw()
  height_px = fig.bbox.height
  out = {}
  for label, cax in boxes.items():
    b = cax.get_window_extent()
    out[label] = (b.x0, height_px - b.y1, b.x1, height_px - b.y0)
  fig.savefig(path + ".tmp", dpi=DPI, format="png")  # Atomically, as scans.write_png.
  os.replace(path + ".tmp", path)
  size = (round(fig.bbox.width), round(height_px))
  plt.close(fig)
  return {"path": path, "size": size, "boxes": out}



def _scan_panel(ax, scan, layout, extent, y_lim, ylabel):
  """The scan beside the curves (depth down the page), the tracks' edges in orange."""
  y_bottom, y_top = y_lim
  thumb = _thumbnail(scan, max_thumb_rows())
  ax.imshow(thumb, cmap="gray", vmin=0, vmax=255, aspect="auto", interpolation="nearest",
            extent=(0, extent, y_bottom, y_top))
  for a, b in layout.tracks:
    for edge in (a, b):
      ax.axvline(edge, color="orange", lw=0.6, alpha=0.7)
  ax.set_xticks([])
  ax.set_ylabel(ylabel)
  ax.set_title("scan", fontsize=9)
  ax.set_ylim(y_bottom, y_top)


def _curve_panel(cax, label, s, class_id, y, y_lim):
  """One curve on its own scale (track positions without one), in its class's colour."""
  colour = plots.CLASS_COLOURS[class_id % len(plots.CLASS_COLOURS)] / 255.0
  if s.scale is None:
    values, lo, hi = s.trace.frac, 0.0, 1.0
    cax.set_xlabel("track position (no scale)", fontsize=8)
  else:
    values, lo, hi = s.scale.values(s.trace.frac), s.scale.left, s.scale.right
    cax.set_xlabel(f"{_fmt(lo)} ... {_fmt(hi)}" + (" (log)" if s.scale.log else ""),
                   fontsize=8)
    if s.scale.log:
      cax.set_xscale("log")
  # A wrapped curve leaves its scale: widen the panel rather than cut the values off.
  ok = np.isfinite(values)
  if ok.any() and (s.scale is None or not s.scale.log or (values[ok] > 0).all()):
    vmin, vmax = float(values[ok].min()), float(values[ok].max())
    lo, hi = (min(lo, vmin), max(hi, vmax)) if lo < hi else (max(lo, vmax), min(hi, vmin))
  cax.plot(values, y, color=colour, lw=1.0)
  cax.set_xlim(lo, hi)
  cax.set_ylim(*y_lim)
  cax.tick_params(labelleft=False, labelsize=7)
  cax.grid(alpha=0.3)
  cax.set_title(f"{label}" + (f" [{s.unit}]" if s.unit else ""), fontsize=9)
  return cax


def _edge(y, i, side):
  """The depth of the outer edge of pixel `i` (0 or -1): half a pixel beyond its centre."""
  if len(y) < 2:
    return y[0] + 0.5 * side
  pitch = y[1] - y[0] if i == 0 else y[-1] - y[-2]
  return y[i] + 0.5 * pitch * side


def _fmt(v):
  return f"{v:g}"
