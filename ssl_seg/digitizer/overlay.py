"""NAME_overlay.png: the mask's colours over the scan, the traced centre lines, the tracks'
edges and a legend of class colours and curve names."""

import numpy as np

from ssl_seg import plots
from ssl_seg.digitizer import scans, tiled

CENTRE_COLOUR = np.array([0, 170, 0], np.uint8)


TRACK_COLOUR = np.array([255, 140, 0], np.uint8)  # Orange: no class colour, not the centre's.


def legend_entries(class_names, class_ids, names, tracks=None):
  """The overlay's legend: per curve class its colour and the curves it traces (`names`, in
  the order of `class_ids`), then the centre line and, where `tracks` names them, the tracks'
  edges."""
  entries = []
  for k in dict.fromkeys(class_ids):
    curves = ", ".join(n for c, n in zip(class_ids, names) if c == k)
    entries.append((plots.CLASS_COLOURS[k % len(plots.CLASS_COLOURS)],
                    f"{class_names[k]}: {curves}"))
  entries.append((CENTRE_COLOUR, "traced centre line"))
  return entries + ([(TRACK_COLOUR, tracks)] if tracks else [])


def shows_tracks(layout, shape):
  """Whether the overlay marks the tracks' edges: not for one track over the whole image."""
  return layout.tracks != ((0, shape[1] if layout.vertical else shape[0]),)


def draw_overlay(image, mask, layout, traces, legend=(), rows=None, scan_shape=None,
                 edges=False):
  """RGB: mask colours over the scan, centre lines in green, `legend` entries top left and,
  with `edges`, the tracks' edges in orange (the rows or columns just outside each track).

  rows: (y0, y1) where `image` is only those rows of a scan whose depth runs down the page
  (`ssl_seg.digitizer.tiled`); the traces are the whole scan's, `scan_shape` its (H, W).
  """
  rgb = plots.overlay(image, mask, alpha=0.6)
  n_depth = image.shape[0] if layout.vertical else image.shape[1]
  depth_idx = np.arange(n_depth)
  for t, track in enumerate(traces):
    to_orig = layout.to_original(t)
    for tr in track.values():
      px = tr.px if rows is None else tr.px[rows[0]:rows[1]]
      ok = np.isfinite(px)
      v = np.clip(np.rint(to_orig(px[ok])).astype(np.int64), 0,
                  (image.shape[1] if layout.vertical else image.shape[0]) - 1)
      if layout.vertical:
        rgb[depth_idx[ok], v] = CENTRE_COLOUR
      else:
        rgb[v, depth_idx[ok]] = CENTRE_COLOUR
  if edges:
    extent = image.shape[1] if layout.vertical else image.shape[0]
    width = max(1, min(scan_shape or image.shape) // 400)  # Still visible on a large scan.
    for a, b in layout.tracks:
      for lo in (max(a - width, 0), min(b, extent - width)):
        if layout.vertical:
          rgb[:, lo:lo + width] = TRACK_COLOUR
        else:
          rgb[lo:lo + width] = TRACK_COLOUR
  if legend:
    plots.legend(rgb, legend, shape=scan_shape)
  return rgb


def legend_for(class_names, class_ids, names, layout, shape, found):
  """`legend_entries` of a scan: the tracks' edges named where `shows_tracks`."""
  edges = shows_tracks(layout, shape)
  label = "track edges" + (" (found automatically)" if found else "") if edges else None
  return legend_entries(class_names, class_ids, names, label)


def write(path, scan, mask, layout, traces, legend):
  """Writes the overlay of `scan` ((image, bands, shape), see `digitize._write`)."""
  image, bands, shape = scan
  edges = shows_tracks(layout, shape)
  if bands is None:
    scans.write_png(path, draw_overlay(image, mask, layout, traces, legend, edges=edges))
  else:  # `image` is a thumbnail: the overlay is drawn from the bands again.
    tiled.write_overlay(path, bands, mask, lambda im, m, y0, y1: draw_overlay(
        im, m, layout, traces, legend if y0 == 0 else (), rows=(y0, y1), scan_shape=shape,
        edges=edges))
