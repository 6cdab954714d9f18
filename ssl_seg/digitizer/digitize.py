"""Digitizing scan files: per scan its mask, overlay, CSV, replot and LAS; a summary per run.

`digitize_file` runs one scan (or TIFF page) through the layout, the segmenter, the tracer and
the writers; `run` does every file of a command's input, naming the outputs and reporting a
failing file on one line (`ssl_seg.predict` has the user's view of both).
"""

import math
import os
import sys
from collections import Counter

import numpy as np
from tqdm import tqdm

from ssl_seg.digitizer import (
  curve_values,
  layout_files,
  output_files,
  overlay,
  replot as replot_lib,
  scan_layout,
  scans,
  shortcuts as shortcuts_lib,
  tiled,
)


def digitize_file(seg, path, out_dir, *, layout=None, name=None, page=None, step=None,
                  provenance=None, max_gap=8, cleanup=True,
                  max_pixels=scans.DEFAULT_MAX_PIXELS, replot=True, find_tracks=False,
                  **shortcuts):
  """Writes the mask, overlay, CSV (and LAS where depth and a scale are known) for one scan.

  Args:
    layout: `scan_layout.make_layout` arguments (from `layout_files.load`); without it, from the
      shortcut arguments of `shortcut_layout` (depth_axis, tracks, scales, depth, ...).
    page: the page of a multi-page TIFF (0-based; None: the first and only).
    step: the LAS depth step (None: the scan's own pitch, one sample per pixel).
    provenance: {"checkpoint": ..., "command": ...} for the LAS's ~Other note.
    replot: also write NAME_replot.png (`replot`: the curves re-plotted beside the scan).
    find_tracks: where the layout gives no track spans, find them from the scan's border lines
      (`with_found_tracks`; the command's --track-detect).

  Outputs are named after `name` (default: the file's stem). Returns the paths written by
  kind ("mask", "overlay", "replot", "csv", "las"), plus "input" (`path`), "name", "page",
  "tracks" (the spans used), "colour" (whether the scan is stored in colour, read as
  grayscale: `scans.is_colour`), "found" (what `find_tracks` found, a line for a person; None
  without it), "sizing" (with --resolution=stroke and no --px-per-stroke, the estimated stroke
  width and track heights, a line; else None), "coverage" and "confidence" ({CSV name of each
  curve: share of depth columns with a value, read or bridged / mean confidence there}) and
  "warnings" (lines for a person).
  """
  if layout is not None and shortcuts:
    raise TypeError(f"give a layout or the shortcuts, not both: {sorted(shortcuts)}")
  depth_axis = (layout or shortcuts).get("depth_axis", "auto")
  image, bands = _read(path, page, max_pixels, depth_axis)
  shape = image.shape if bands is None else bands.shape
  found = None
  if find_tracks and not (layout or shortcuts).get("tracks"):
    # A banded scan runs down the page (`tiled.open_bands`); every k-th row shows its lines.
    sample, axis = ((image, depth_axis) if bands is None
                    else (tiled.depth_sample(bands), "vertical"))
    layout, found = shortcuts_lib.with_found_tracks(seg.class_names, sample, axis, layout,
                                                    shortcuts)
  elif layout is None:
    layout = shortcuts_lib.shortcut_layout(seg.class_names, **shortcuts)
  layout = scan_layout.make_layout(shape, **layout)
  track_curves = layout.track_curves(seg.class_names)
  _check_classes(track_curves, seg.class_names)
  mask, image, sizing = _segment(seg, image, bands, layout)
  # A banded scan's image is a thumbnail: its grid rows are not the mask's.
  traces = scan_layout.trace_scan(mask, layout, seg.class_names, max_gap, cleanup=cleanup,
                                  image=image if bands is None else None)
  curves = _curves(seg.class_names, layout, track_curves, traces)
  name = name or scans.stem(path)
  depth_values = layout.depth_at(np.arange(shape[0] if layout.vertical else shape[1]))
  outputs = _write(out_dir, name, seg.class_names, (image, bands, shape), layout, mask, traces,
                   curves, depth_values, found=found, replot=replot)
  source = os.path.basename(path) + (f" (page {page + 1})" if page is not None else "")
  warnings = _write_las(outputs, out_dir, name, layout, curves, depth_values, step=step,
                        source=source, provenance=provenance or {})
  series = curves[0]
  outputs.update(input=path, name=name, page=page, tracks=layout.tracks, found=found,
                 sizing=sizing, warnings=warnings, colour=scans.is_colour(path, page))
  outputs["coverage"] = {s.name: curve_values.coverage(s.trace) for s in series}
  outputs["confidence"] = {s.name: output_files.mean_confidence(s.trace) for s in series}
  return outputs


def _read(path, page, max_pixels, depth_axis):
  """(image, None), or (None, `tiled.Bands`) for a scan too large to read whole."""
  try:
    return scans.read_image(path, max_pixels, page=page), None
  except scans.ImageTooLarge as e:  # Read in bands where the file allows it, else refused.
    return None, tiled.open_bands(path, page, max_pixels, depth_axis, error=e)


def _segment(seg, image, bands, layout):
  """(class ids [H, W], the image or a thumbnail of a banded scan, the sizing line or None)."""
  stroke, sizing = None, None
  if scan_layout.estimates_stroke(seg):  # Once per scan, so its tracks and bands scale alike.
    sample = image if bands is None else tiled.stroke_sample(bands)
    stroke, sizing = scan_layout.scan_stroke(seg, sample, layout)
  if bands is None:
    return scan_layout.segment_scan(seg, image, layout, stroke), image, sizing
  mask, thumb = tiled.segment(seg, bands, layout, replot_lib.max_thumb_rows(), stroke)
  return mask, thumb, sizing


def _check_classes(track_curves, class_names):
  for t, curves in enumerate(track_curves):
    for c in curves:
      if not 0 < c.class_id < len(class_names):
        raise ValueError(f"track {t + 1}: curve class {c.class_id} is not a curve class of the "
                         f"model (1..{len(class_names) - 1}: {', '.join(class_names[1:])})")


def _curves(class_names, layout, track_curves, traces):
  """(series, LAS names, LAS descriptions, class ids), one entry per curve of every track."""
  n = len(layout.tracks)
  series, las_names, labels, class_ids = [], [], [], []
  for t, curves in enumerate(track_curves):
    for c in curves:
      cname = class_names[c.class_id]
      default = (f"T{t + 1}_" if n > 1 else "") + cname.upper()
      series.append(curve_values.Series(c.mnemonic or default.lower(), traces[t][cname],
                                        layout.to_original(t), c.scale, c.unit))
      las_names.append(c.mnemonic or default)
      labels.append(c.description or f"{cname} of track {t + 1}, digitized")
      class_ids.append(c.class_id)
  seen = set()
  for las_name in las_names:
    if las_name in seen:
      raise ValueError(f"two curves are both named {las_name}; give each its own mnemonic")
    seen.add(las_name)
  return series, las_names, labels, class_ids


def _write(out_dir, name, class_names, scan, layout, mask, traces, curves, depth_values, *,
           found, replot):
  """Writes NAME_mask.png, _overlay.png, _curves.csv (and _replot.png); returns their paths.

  scan: (image, bands, shape): the image is a thumbnail where the scan is read in bands."""
  image, bands, shape = scan
  series, las_names, _, class_ids = curves
  n_depth = shape[0] if layout.vertical else shape[1]
  columns = curve_values.table(np.arange(n_depth), series, depth=depth_values,
                               depth_unit=layout.depth_unit if depth_values is not None else "")
  outputs = {"mask": os.path.join(out_dir, f"{name}_mask.png"),
             "overlay": os.path.join(out_dir, f"{name}_overlay.png"),
             "csv": os.path.join(out_dir, f"{name}_curves.csv")}
  scans.write_png(outputs["mask"], mask)
  overlay.write(outputs["overlay"], scan, mask, layout, traces,
                overlay.legend_for(class_names, class_ids, las_names, layout, shape, found))
  curve_values.write_csv(outputs["csv"], columns)
  if replot:
    outputs["replot"] = os.path.join(out_dir, f"{name}_replot.png")
    replot_lib.replot(outputs["replot"], image, layout, list(zip(las_names, series, class_ids)),
                      depth=depth_values, depth_unit=layout.depth_unit, title=name, shape=shape)
  return outputs


def _write_las(outputs, out_dir, name, layout, curves, depth_values, *, step, source,
               provenance):
  """Writes NAME.las where the depth and a curve's scale are known; returns the warnings."""
  series, las_names, labels, _ = curves
  if depth_values is None:
    return []
  unscaled = [m for m, s in zip(las_names, series) if s.scale is None]
  if len(unscaled) == len(series):
    return [f"no LAS written: no curve has a scale (give --scale=LEFT:RIGHT per curve or left "
            f"/ right in the layout); {name}_curves.csv has the depth and track positions"]
  warnings = []
  if unscaled:
    warnings.append(f"{', '.join(unscaled)} left out of {name}.las: no scale given")
  outputs["las"] = os.path.join(out_dir, f"{name}.las")
  output_files.write_las(outputs["las"], layout, depth_values, series, las_names, labels,
                         step, well=layout.well or name, source=source, provenance=provenance)
  return warnings


def output_names(paths):
  """({path: output name}, {path: why refused}). The name is the file's stem, or stem_ext where
  two inputs share a stem (a.png and a.tif would otherwise write over each other's
  a_mask.png). A name still taken (a.png's a_png beside a_png.png) is refused, never shared:
  plain stems keep theirs."""
  stems = {p: scans.stem(p) for p in paths}
  count = Counter(stems.values())
  names = {p: s if count[s] == 1 else f"{s}_{os.path.splitext(p)[1].lstrip('.')}"
           for p, s in stems.items()}
  owner, refused = {}, {}
  for p in sorted(paths, key=lambda p: names[p] != stems[p]):
    if names[p] in owner:
      refused[p] = (f"its outputs would be named {names[p]}_*, as those of "
                    f"{os.path.basename(owner[names[p]])}; rename one of the two files")
    else:
      owner[names[p]] = p
  return {p: n for p, n in names.items() if p not in refused}, refused


def _jobs(paths, names, log, failed):
  """[(path, page or None, output name)]: every page of a multi-page TIFF is its own scan."""
  taken = set(names.values())
  jobs = []
  for path in paths:
    pages = scans.page_count(path)
    if pages == 1:
      jobs.append((path, None, names[path]))
      continue
    page_names = [f"{names[path]}_p{k + 1}" for k in range(pages)]
    clash = sorted(taken & set(page_names))
    if clash:
      why = (f"its {pages} pages would write {clash[0]}_*, as another scan does; rename one "
             "of the two files")
      failed.append((path, why))
      log(f"error: {path}: {why} (skipped)")
      continue
    taken.update(page_names)
    jobs.extend((path, k, n) for k, n in enumerate(page_names))
  return jobs


def run(seg, inputs, out_dir, *, log=None, min_coverage=0.5, manifest=None, **kw):
  """Digitizes every file (every page of a multi-page TIFF, named NAME_p1, NAME_p2...); a
  failing file is reported on one line and skipped, a curve read on fewer than `min_coverage`
  of a file's depth columns gets a warning line, and OUT/summary.csv lists them all.

  Args:
    manifest: `layout_files.read_manifest`'s {(absolute path, 1-based page or None): make_layout
      kwargs}: each file (or TIFF page) its own layout (one missing from it fails); None: `kw`
      (a layout or the shortcuts) for every file.

  Returns (outputs per good scan, [(path, message)] per failed file).
  """
  log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
  os.makedirs(out_dir, exist_ok=True)
  done, failed = [], []
  names, refused = output_names(inputs)
  for path, why in refused.items():
    failed.append((path, why))
    log(f"error: {path}: {why} (skipped)")
  jobs = _jobs([p for p in inputs if p in names], names, log, failed)
  for path, page, name in tqdm(jobs, desc="digitizing", unit="scan", dynamic_ncols=True):
    label = path if page is None else f"{path} (page {page + 1})"
    try:
      args = dict(kw)
      if manifest is not None:
        given = layout_files.manifest_layout(manifest, path, None if page is None else page + 1)
        if given is None:
          raise ValueError("not listed in the manifest; add a row for it"
                           f"{'' if page is None else ' (or for this page)'}")
        args = {k: v for k, v in kw.items() if k in _RUN_ARGS}
        args["layout"] = given
      done.append(digitize_file(seg, path, out_dir, name=name, page=page, **args))
    except (ValueError, OSError, MemoryError) as e:
      failed.append((label, str(e)))
      log(f"error: {label}: {e} (skipped)")
      continue
    if done[-1]["colour"]:
      log(f"{label}: {scans.COLOUR_NOTE}")
    if done[-1]["found"]:
      log(f"{label}: {done[-1]['found']}")
    if done[-1]["sizing"]:
      log(f"{label}: {done[-1]['sizing']}")
    for warning in done[-1]["warnings"]:
      log(f"warning: {label}: {warning}")
    for curve, share in output_files.low_coverage(done[-1], min_coverage):
      # Rounded down: 49.6 % under a 50 % threshold must not read "50%".
      log(f"warning: {label}: {curve} read on only {math.floor(100 * share)}% of depth columns")
  output_files.write_summary(os.path.join(out_dir, "summary.csv"), done, failed, min_coverage)
  return done, failed


# digitize_file's arguments that are not about the layout: kept when a manifest gives it.
_RUN_ARGS = ("step", "provenance", "max_gap", "cleanup", "max_pixels", "replot", "find_tracks")
