r"""Segment scans of any size with a trained CurveNet and digitize their curves.

  python -m ssl_seg.predict --checkpoint=runs/demo/finetune_warm --input=scans/ --output=out/ \
      [--layout=examples/layout.json | --manifest=scans/manifest.csv] [--step=0.5] \
      [--depth-axis=auto|vertical|horizontal] [--track=X0:X1 ... | --track-detect] \
      [--scale=LEFT:RIGHT[:log] ...] [--depth=FIRST:LAST] [--depth-unit=M] \
      [--curve-names=GR,DT] [--curve-units=GAPI,US/F] [--min-coverage=0.5] [--strict] \
      [--resolution=height|stroke [--px-per-stroke=3] | --target-height=420]

Writes, per input NAME: NAME_mask.png (class ids, the input's exact size), NAME_overlay.png
(mask and centre lines over the scan, the tracks' edges in orange, a legend of class colours
and curve names top left), NAME_replot.png (the curves re-plotted beside the scan, depth down
the page, each on its own scale; `ssl_seg.replot`; --replot=false skips it) and
NAME_curves.csv (see `ssl_seg.digitize.table`); where the depth and a curve's scale are known
also NAME.las (LAS 2.0 through `ssl_seg.las_io`: the scaled curves with units, each with its
confidence as NAME_CONF, on a regular --step, WELL from the layout / manifest or NAME, a
provenance note in ~Other). A curve without a scale stays out of the LAS and a warning names
it; with no scale at all no LAS is written and a warning says so. OUT/summary.csv has one row
per scan: status (ok, low_coverage, no_curve, failed), coverage and mean confidence per curve,
warnings.

The layout (depth axis, depth, tracks, per curve class, mnemonic, unit, scale) comes from
--layout (one JSON file for every scan), --manifest (a CSV naming each scan's layout and
well, per file or per TIFF page; `ssl_seg.layouts`) or the shortcut flags, which build the same
`inference.Layout`.
One --scale serves every curve (a note says so); otherwise give one per curve.

Tracks: where neither --track nor the layout gives track spans, one track covers the whole
image; with --track-detect each scan's tracks are found from its long border lines
(`ssl_seg.tracks`) and a line per scan says what was found (`scan.png: 2 tracks found
automatically (rows 10:168, 175:285)`, or `no track borders found; using the whole height`).
Detection is opt-in: on logs rendered from LAS files it split or dropped a track in 3 of 16
scans (README).
--scale, --curve-names and --curve-units given once serve every curve of every track found;
given per curve (tracks x curves, in order) they are for that many tracks, and a scan where
another number is found fails with one line naming what was found (give --track for it).
A layout file's curves without spans are for as many tracks as it lists, likewise.

Coverage: a curve with a value on fewer than --min-coverage of a file's depth columns gets a
warning line on stderr; with --strict the command then exits 1 after all files, naming them,
as it does for files that fail. A run that found no curve at all says so instead of reporting
files digitized.

Every page of a multi-page TIFF is a scan of its own, written as NAME_p1, NAME_p2, ...
The models are trained on grayscale, so every scan is read as grayscale (`scan_io`); a colour
one gets a line saying so (`scan.png: colour scan read as grayscale (the model was trained on
grayscale)`).
Scans sharing a stem (a.png, a.tif) write a_png_* and a_tif_*; where such a name is still
taken (a_png.png writes a_png_* too) the renamed scan is refused, never overwritten. A scan
whose header claims more than --max-pixels is refused before it is decoded, unless it can be
read in bands of rows (an uncompressed TIFF, depth down the page: `ssl_seg.tiled`). Files named like
these outputs (*_mask, *_overlay, *_replot) are not read as scans, and a note says so.

Resolution: every track is scaled across the value axis to the model's training height
(default, --resolution=height); --resolution=stroke scales it so the curves' strokes are as wide
as in training, from --px-per-stroke or estimated per scan (a line per scan says what was
found), and --target-height=N scales every track to N px (`ssl_seg.resolution`).

Inference (windows, rotation, tracks) is in `ssl_seg.inference`; curve extraction and the
CSV columns in `ssl_seg.digitize`; the LAS format in `ssl_seg.las_io`.
"""

import math
import os
import shlex
import sys
from collections import Counter

import numpy as np
from absl import app, flags, logging
from tqdm import tqdm

from ssl_seg import (
  config_utils,
  digitize,
  inference,
  las_io,
  layouts,
  output_files,
  plots,
  replot as replot_lib,
  scan_io,
  tiled,
)

_flag = inference.flag

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
  (`ssl_seg.tiled`); the traces are the whole scan's, `scan_shape` its (H, W).
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


def curve_names(class_names, n_tracks, names=None):
  """LAS mnemonics per (track, curve): CURVE1 / T2_CURVE1 ..., or the user's list in order."""
  default = [(f"T{t + 1}_" if n_tracks > 1 else "") + c.upper()
             for t in range(n_tracks) for c in class_names[1:]]
  if not names:
    return default
  if len(names) != len(default):
    raise ValueError(f"--curve-names needs {len(default)} names (tracks x curves, in order "
                     f"{', '.join(default)}), got {len(names)}")
  return [digitize.check_mnemonic(n.upper()) for n in names]


def _per_curve(flag, given, default_names):
  """`given` spread over every curve: none, one for all, or one per curve in order."""
  n = len(default_names)
  if len(given) in (0, 1, n):
    return list(given) * n if len(given) == 1 else list(given) or [None] * n
  raise ValueError(f"give one {flag} for every curve or one per curve ({n}: "
                   f"{', '.join(default_names)}, in that order), got {len(given)}; each curve "
                   "of a track has its own scale")


def shortcut_layout(class_names, *, depth_axis="auto", tracks=(), scales=(), depth=None,
                    depth_unit="M", names=None, units=None, well="", n_tracks=None):
  """`inference.make_layout` arguments from predict's flags, as a layout file gives them.

  n_tracks: the tracks the curves are for (default: one per span of `tracks`, at least one).
  """
  n_tracks = n_tracks or max(len(tracks), 1)
  default = curve_names(class_names, n_tracks)
  mnemonics = curve_names(class_names, n_tracks, names) if names else [""] * len(default)
  scales = _per_curve("--scale", scales, default)
  units = [las_io.check_unit(u) if u else "" for u in _per_curve("--curve-units", units or (),
                                                                 default)]
  k = len(class_names) - 1
  curves = tuple(tuple(inference.Curve(c + 1, mnemonics[t * k + c], units[t * k + c] or "",
                                       scales[t * k + c]) for c in range(k))
                 for t in range(n_tracks))
  if not any((names, units, *scales)):
    curves = ()  # Every curve class under its default name, in however many tracks.
  return dict(depth_axis=depth_axis, tracks=tuple(tracks), curves=curves, depth=depth,
              depth_unit=depth_unit, well=well)


def tracks_implied(class_names, *per_curve):
  """The tracks that flag values given per curve are for (k curve classes: k values a track);
  1 where each is given once or not at all."""
  k = len(class_names) - 1
  return max([-(-len(v) // k) for v in per_curve if v and len(v) > 1] or [1])


def with_found_tracks(class_names, image, depth_axis, layout, shortcuts):
  """(make_layout arguments with the tracks `inference.find_tracks` finds in `image`, the line
  saying what was found), from `layout` or from `shortcut_layout`'s `shortcuts`. Shortcuts are
  spread over the tracks found; a layout's curves (per curve values) must fit their number."""
  spans, found = inference.find_tracks(image, depth_axis)
  try:
    if layout is None:
      return shortcut_layout(class_names, **{**shortcuts, "tracks": spans}), found
    if layout.get("curves") and len(layout["curves"]) != len(spans):
      raise ValueError(f"the layout gives curves for {len(layout['curves'])} track(s)")
  except ValueError as e:
    fix = "--track=X0:X1 per track" if layout is None else "each track's span in the layout"
    raise ValueError(f"{found}: {e}; or give {fix} (without --track-detect: one track over "
                     "the whole image)") from None
  return {**layout, "tracks": spans}, found


def digitize_file(seg, path, out_dir, *, layout=None, name=None, page=None, step=None,
                  provenance=None, max_gap=8, cleanup=True,
                  max_pixels=scan_io.DEFAULT_MAX_PIXELS, replot=True, find_tracks=False,
                  **shortcuts):
  """Writes the mask, overlay, CSV (and LAS where depth and a scale are known) for one scan.

  Args:
    layout: `inference.make_layout` arguments (from `layouts.load`); without it, from the
      shortcut arguments of `shortcut_layout` (depth_axis, tracks, scales, depth, ...).
    page: the page of a multi-page TIFF (0-based; None: the first and only).
    step: the LAS depth step (None: the scan's own pitch, one sample per pixel).
    provenance: {"checkpoint": ..., "command": ...} for the LAS's ~Other note.
    replot: also write NAME_replot.png (`ssl_seg.replot`: the curves re-plotted beside the scan).
    find_tracks: where the layout gives no track spans, find them from the scan's border lines
      (`with_found_tracks`; the command's --track-detect).

  Outputs are named after `name` (default: the file's stem). Returns the paths written by
  kind ("mask", "overlay", "replot", "csv", "las"), plus "input" (`path`), "name", "page",
  "tracks" (the spans used), "colour" (whether the scan is stored in colour, read as
  grayscale: `scan_io.is_colour`), "found" (what `find_tracks` found, a line for a person; None
  without it), "sizing" (with --resolution=stroke and no --px-per-stroke, the estimated stroke
  width and track heights, a line; else None), "coverage" and "confidence" ({CSV name of each
  curve: share of depth columns with a value, read or bridged / mean confidence there}) and
  "warnings" (lines for a person).
  """
  if layout is not None and shortcuts:
    raise TypeError(f"give a layout or the shortcuts, not both: {sorted(shortcuts)}")
  depth_axis = (layout or shortcuts).get("depth_axis", "auto")
  bands = None
  try:
    image = scan_io.read_image(path, max_pixels, page=page)
  except scan_io.ImageTooLarge as e:  # Read in bands where the file allows it, else refused.
    bands = tiled.open_bands(path, page, max_pixels, depth_axis, error=e)
    image = None
  shape = image.shape if bands is None else bands.shape
  found = None
  if find_tracks and not (layout or shortcuts).get("tracks"):
    # A banded scan runs down the page (`tiled.open_bands`); every k-th row shows its lines.
    sample, axis = ((image, depth_axis) if bands is None
                    else (tiled.depth_sample(bands), "vertical"))
    layout, found = with_found_tracks(seg.class_names, sample, axis, layout, shortcuts)
  elif layout is None:
    layout = shortcut_layout(seg.class_names, **shortcuts)
  layout = inference.make_layout(shape, **layout)
  n = len(layout.tracks)
  series, las_names, labels, class_ids = [], [], [], []
  traces = None
  track_curves = layout.track_curves(seg.class_names)
  for t, curves in enumerate(track_curves):
    for c in curves:
      if not 0 < c.class_id < len(seg.class_names):
        raise ValueError(f"track {t + 1}: curve class {c.class_id} is not a curve class of the "
                         f"model (1..{len(seg.class_names) - 1}: "
                         f"{', '.join(seg.class_names[1:])})")
  stroke, sizing = None, None
  if inference.estimates_stroke(seg):  # Once per scan, so its tracks and bands scale alike.
    sample = image if bands is None else tiled.stroke_sample(bands)
    stroke, sizing = inference.scan_stroke(seg, sample, layout)
  if bands is None:
    mask = inference.segment_scan(seg, image, layout, stroke)
  else:
    mask, image = tiled.segment(seg, bands, layout, replot_lib.max_thumb_rows(), stroke)
  traces = inference.trace_scan(mask, layout, seg.class_names, max_gap, cleanup=cleanup)
  for t, curves in enumerate(track_curves):
    for c in curves:
      cname = seg.class_names[c.class_id]
      default = (f"T{t + 1}_" if n > 1 else "") + cname.upper()
      series.append(digitize.Series(c.mnemonic or default.lower(), traces[t][cname],
                                    layout.to_original(t), c.scale, c.unit))
      las_names.append(c.mnemonic or default)
      labels.append(c.description or f"{cname} of track {t + 1}, digitized")
      class_ids.append(c.class_id)
  seen = set()
  for las_name in las_names:
    if las_name in seen:
      raise ValueError(f"two curves are both named {las_name}; give each its own mnemonic")
    seen.add(las_name)
  name = name or scan_io.stem(path)
  n_depth = shape[0] if layout.vertical else shape[1]
  depth_values = layout.depth_at(np.arange(n_depth))
  columns = digitize.table(np.arange(n_depth), series, depth=depth_values,
                           depth_unit=layout.depth_unit if depth_values is not None else "")
  outputs = {"mask": os.path.join(out_dir, f"{name}_mask.png"),
             "overlay": os.path.join(out_dir, f"{name}_overlay.png"),
             "csv": os.path.join(out_dir, f"{name}_curves.csv")}
  scan_io.write_png(outputs["mask"], mask)
  edges = shows_tracks(layout, shape)
  label = "track edges" + (" (found automatically)" if found else "") if edges else None
  legend = legend_entries(seg.class_names, class_ids, las_names, label)
  if bands is None:
    scan_io.write_png(outputs["overlay"], draw_overlay(image, mask, layout, traces, legend,
                                                       edges=edges))
  else:  # `image` is a thumbnail: the overlay is drawn from the bands again.
    tiled.write_overlay(outputs["overlay"], bands, mask, lambda im, m, y0, y1: draw_overlay(
        im, m, layout, traces, legend if y0 == 0 else (), rows=(y0, y1), scan_shape=shape,
        edges=edges))
  digitize.write_csv(outputs["csv"], columns)
  if replot:
    outputs["replot"] = os.path.join(out_dir, f"{name}_replot.png")
    replot_lib.replot(outputs["replot"], image, layout, list(zip(las_names, series, class_ids)),
                      depth=depth_values, depth_unit=layout.depth_unit, title=name, shape=shape)
  warnings = []
  if depth_values is not None:
    unscaled = [m for m, s in zip(las_names, series) if s.scale is None]
    if len(unscaled) == len(series):
      warnings.append(f"no LAS written: no curve has a scale (give --scale=LEFT:RIGHT per curve "
                      f"or left / right in the layout); {name}_curves.csv has the depth and "
                      "track positions")
    else:
      if unscaled:
        warnings.append(f"{', '.join(unscaled)} left out of {name}.las: no scale given")
      outputs["las"] = os.path.join(out_dir, f"{name}.las")
      source = os.path.basename(path) + (f" (page {page + 1})" if page is not None else "")
      output_files.write_las(outputs["las"], layout, depth_values, series, las_names, labels,
                             step, well=layout.well or name, source=source,
                             provenance=provenance or {})
  outputs.update(input=path, name=name, page=page, tracks=layout.tracks, found=found,
                 sizing=sizing, warnings=warnings, colour=scan_io.is_colour(path, page))
  outputs["coverage"] = {s.name: digitize.coverage(s.trace) for s in series}
  outputs["confidence"] = {s.name: output_files.mean_confidence(s.trace) for s in series}
  return outputs


def output_names(paths):
  """({path: output name}, {path: why refused}). The name is the file's stem, or stem_ext where
  two inputs share a stem (a.png and a.tif would otherwise write over each other's
  a_mask.png). A name still taken (a.png's a_png beside a_png.png) is refused, never shared:
  plain stems keep theirs."""
  stems = {p: scan_io.stem(p) for p in paths}
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
    pages = scan_io.page_count(path)
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
    manifest: `layouts.read_manifest`'s {(absolute path, 1-based page or None): make_layout
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
        given = layouts.manifest_layout(manifest, path, None if page is None else page + 1)
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
      log(f"{label}: {scan_io.COLOUR_NOTE}")
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


def define_flags():
  """The command's flags; defined only when run, so the CLI modules import side by side.

  The shared inference flags are adopted as this module's key flags, so --help lists them.
  """
  flags.DEFINE_string("checkpoint", None, "Stage directory (or its checkpoints/).")
  flags.DEFINE_string("input", None, "A scan (PNG, JPEG, TIFF; every page of a multi-page "
                      "TIFF) or a folder of them.")
  flags.DEFINE_string("output", None, "Folder for NAME_mask.png, _overlay.png, _curves.csv, "
                      "NAME.las and summary.csv.")
  inference.define_flags()
  flags.adopt_module_key_flags(inference)
  flags.DEFINE_string("layout", None, "Layout file (JSON, see README 'Layout files'): depth "
                      "axis, depth, tracks, per curve class, mnemonic, unit, scale. Replaces "
                      "--depth-axis, --track, --scale, --depth, --depth-unit, --curve-names, "
                      "--curve-units; with --manifest, the layout of rows without one.")
  flags.DEFINE_string("manifest", None, "CSV with columns file, layout[, well, page]: per "
                      "scan its layout file (paths relative to the CSV) and well name; a page "
                      "row (1-based) gives one page of a multi-page TIFF its own.")
  flags.DEFINE_multi_string("scale", [], "LEFT:RIGHT[:log] values at a track's left and right "
                            "edge: one for every curve, or one per curve in the order of "
                            "--curve-names (tracks x curves).")
  flags.DEFINE_string("depth", None, "FIRST:LAST depth at the first and last pixel along the "
                      "depth axis. NAME.las is written for the curves with a --scale; "
                      "without any --scale no LAS is written and a warning says so.")
  flags.DEFINE_string("depth-unit", "M", "Depth unit (LAS DEPT, CSV depth[UNIT]).")
  flags.DEFINE_float("step", None, "LAS depth step, in --depth-unit (default: the scan's own "
                     "pitch, one sample per pixel); curves are resampled to it.")
  flags.DEFINE_list("curve-names", None, "Mnemonics (LAS and CSV), tracks x curves in order, "
                    "e.g. GR,DT or T1 curve1, T1 curve2, T2 curve1, ...")
  flags.DEFINE_list("curve-units", None, "Units of the curves, one for all or one per curve "
                    "in the order of --curve-names, e.g. GAPI,US/F.")
  flags.DEFINE_float("min-coverage", 0.5, "Warn about a curve with a value on fewer than this "
                     "share of a file's depth columns (0..1).")
  # The underscore spelling too: absl treats the two as different names.
  flags.DEFINE_alias("min_coverage", "min-coverage")
  flags.DEFINE_bool("strict", False, "Exit 1 after all files if a file is below "
                    "--min-coverage or no curve was found at all.")
  flags.DEFINE_bool("replot", True, "Write NAME_replot.png: the digitized curves re-plotted, "
                    "each on its own scale, beside the scan (--replot=false to skip it).")
  flags.DEFINE_bool("cleanup", True, "Drop grid lines and specks painted as curve before "
                    "tracing (see ssl_seg.digitize.cleanup_mask).")


def parse_depth(text):
  if text is None:
    return None
  try:
    first, last = (float(v) for v in text.split(":"))
  except ValueError:
    raise ValueError(f"--depth {text!r}: expected FIRST:LAST (numbers)") from None
  return first, last


_SHORTCUTS = ("depth-axis", "track", "scale", "depth", "depth-unit", "curve-names",
              "curve-units")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  notes = []
  try:
    inference.require_flags("checkpoint", "input", "output")
    scales = [digitize.Scale.parse(s) for s in _flag("scale")]
    depth = parse_depth(_flag("depth"))
    min_coverage = _flag("min-coverage")
    if not 0 <= min_coverage <= 1:
      raise ValueError(f"--min-coverage must be in [0, 1], got {min_coverage}")
    if _flag("step") is not None and not _flag("step") > 0:
      raise ValueError(f"--step must be > 0, got {_flag('step')}")
    for name in _flag("curve-names") or ():
      digitize.check_mnemonic(name.upper())
    for unit in _flag("curve-units") or ():
      las_io.check_unit(unit)
    las_io.check_unit(_flag("depth-unit"))
    given = [f"--{n}" for n in _SHORTCUTS if flags.FLAGS[n].present]
    layout = None
    if _flag("layout"):
      if given:
        raise ValueError(f"--layout gives the layout; drop {', '.join(given)} (or put them "
                         "into the layout file)")
      layout = layouts.load(_flag("layout"))
    inputs = scan_io.list_scans(_flag("input"))
    out_dir = inference.writable_dir(_flag("output"), "--output")  # Before the long work.
    seg = inference.load_from_flags(_flag("checkpoint"))
    find_tracks = _flag("track-detect")
    shortcuts = None
    if layout is None:
      shortcuts = dict(depth_axis=_flag("depth-axis"), tracks=_flag("track"), scales=scales,
                       depth=depth, depth_unit=_flag("depth-unit"), names=_flag("curve-names"),
                       units=_flag("curve-units"))
      detect = find_tracks and not _flag("track")
      # Checked now, not per scan: values per curve say how many tracks they are for.
      n_tracks = tracks_implied(seg.class_names, scales, shortcuts["names"],
                                shortcuts["units"]) if detect else None
      layout = shortcut_layout(seg.class_names, **shortcuts, n_tracks=n_tracks)
      n_curves = sum(len(c) for c in layout["curves"])
      if len(scales) == 1 and (n_curves > 1 or detect):
        which = "every curve of every track found" if detect else f"all {n_curves} curves"
        notes.append(f"note: the one --scale {_flag('scale')[0]} is used for {which}; give one "
                     "--scale per curve if they differ")
      if depth is not None and not scales:
        notes.append("note: --depth without --scale: no NAME.las (no values to write); the "
                     "CSV has depth and track positions")
    per_file = None
    if _flag("manifest"):
      per_file = layouts.read_manifest(_flag("manifest"), default=layout)
  except (ValueError, FileNotFoundError) as e:  # Incl. checkpoint errors (ValueErrors).
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  for note in notes:
    print(note, file=sys.stderr)
  skipped = scan_io.skipped_outputs(_flag("input"))
  if skipped:
    print(f"note: {len(skipped)} file(s) in {_flag('input')} are named like predict's outputs "
          f"(*_mask, *_overlay, *_replot) and are not read as scans: {', '.join(skipped[:5])}"
          f"{' ...' if len(skipped) > 5 else ''}", file=sys.stderr)
  provenance = {"checkpoint": os.path.abspath(_flag("checkpoint")),
                "command": shlex.join(["python", "-m", "ssl_seg.predict", *sys.argv[1:]])}
  source = {"layout": layout} if shortcuts is None else shortcuts  # Shortcuts fit each scan.
  done, failed = run(seg, inputs, out_dir, manifest=per_file, max_gap=_flag("max-gap"),
                     cleanup=_flag("cleanup"), step=_flag("step"), provenance=provenance,
                     min_coverage=min_coverage, max_pixels=_flag("max-pixels"),
                     replot=_flag("replot"), find_tracks=find_tracks, **source)
  by_status = Counter(output_files.status(out, min_coverage) for out in done)
  low = [output_files.label(out) for out in done
         if output_files.status(out, min_coverage) == "low_coverage"]
  none = [output_files.label(out) for out in done
          if output_files.status(out, min_coverage) == "no_curve"]
  if done and len(none) == len(done):
    parts = [f"no curve found in {len(done)} file(s): {', '.join(none)} (outputs written into "
             f"{out_dir})"]
  else:
    parts = [f"{len(done)} file(s) digitized into {out_dir}"]
    if none:
      parts.append(f"{len(none)} with no curve at all: {', '.join(none)}")
  if low:
    parts.append(f"{len(low)} below --min-coverage={min_coverage:g}: {', '.join(low)}")
  if failed:
    parts.append(f"{len(failed)} failed: {', '.join(os.path.basename(p) for p, _ in failed)}")
  parts.append(f"{by_status['ok']} ok; per file: {os.path.join(out_dir, 'summary.csv')}")
  print("; ".join(parts))
  strict_fail = _flag("strict") and bool(low or none)
  sys.exit(1 if failed or strict_fail else 0)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=config_utils.parse_flags)
