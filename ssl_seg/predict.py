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
the page, each on its own scale; `digitizer.replot`; --replot=false skips it) and
NAME_curves.csv (see `digitizer.curve_values.table`); where the depth and a curve's scale are
known also NAME.las (LAS 2.0 through `digitizer.las`: the scaled curves with units, each with its
confidence as NAME_CONF, on a regular --step, WELL from the layout / manifest or NAME, a
provenance note in ~Other). A curve without a scale stays out of the LAS and a warning names
it; with no scale at all no LAS is written and a warning says so. OUT/summary.csv has one row
per scan: status (ok, low_coverage, no_curve, failed), coverage and mean confidence per curve,
warnings.

The layout (depth axis, depth, tracks, per curve class, mnemonic, unit, scale) comes from
--layout (one JSON file for every scan), --manifest (a CSV naming each scan's layout and
well, per file or per TIFF page; `digitizer.layout_files`) or the shortcut flags, which build
the same `digitizer.scan_layout.Layout`.
One --scale serves every curve (a note says so); otherwise give one per curve.

Tracks: where neither --track nor the layout gives track spans, one track covers the whole
image; with --track-detect each scan's tracks are found from its long border lines
(`ssl_seg.digitizer.tracks`) and a line per scan says what was found (`scan.png: 2 tracks found
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
The models are trained on grayscale, so every scan is read as grayscale (`scans`); a colour
one gets a line saying so (`scan.png: colour scan read as grayscale (the model was trained on
grayscale)`).
Scans sharing a stem (a.png, a.tif) write a_png_* and a_tif_*; where such a name is still
taken (a_png.png writes a_png_* too) the renamed scan is refused, never overwritten. A scan
whose header claims more than --max-pixels is refused before it is decoded, unless it can be
read in bands of rows (an uncompressed TIFF, depth down the page: `digitizer.tiled`). Files
named like these outputs (*_mask, *_overlay, *_replot) are not read as scans, and a note says so.

Resolution: every track is scaled across the value axis to the model's training height
(default, --resolution=height); --resolution=stroke scales it so the curves' strokes are as wide
as in training, from --px-per-stroke or estimated per scan (a line per scan says what was
found), and --target-height=N scales every track to N px (`ssl_seg.digitizer.resolution`).

The work is in `ssl_seg.digitizer`: `digitize` (per file), `segmenter` (windows), `scan_layout`
(rotation, tracks), `tracer` (curve extraction), `curve_values` (the CSV columns), `las`.
"""

import os
import shlex
import sys
from collections import Counter

from absl import app, flags, logging

from ssl_seg import config_utils
from ssl_seg.digitizer import (
  curve_values,
  digitize,
  las,
  layout_files,
  options,
  output_files,
  scans,
  shortcuts as shortcuts_lib,
)

_flag = options.flag


def define_flags():
  """The command's flags; defined only when run, so the CLI modules import side by side.

  The shared digitizer flags (`options`) are adopted as this module's key flags, so --help
  lists them.
  """
  flags.DEFINE_string("checkpoint", None, "Stage directory (or its checkpoints/).")
  flags.DEFINE_string("input", None, "A scan (PNG, JPEG, TIFF; every page of a multi-page "
                      "TIFF) or a folder of them.")
  flags.DEFINE_string("output", None, "Folder for NAME_mask.png, _overlay.png, _curves.csv, "
                      "NAME.las and summary.csv.")
  options.define_flags()
  flags.adopt_module_key_flags(options)
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
  options.define_aliased(flags.DEFINE_float, "min-coverage", 0.5, "Warn about a curve with a "
                         "value on fewer than this share of a file's depth columns (0..1).")
  for name, default, text in (
      ("strict", False, "Exit 1 after all files if a file is below --min-coverage or no curve "
       "was found at all."),
      ("replot", True, "Write NAME_replot.png: the digitized curves re-plotted, each on its own "
       "scale, beside the scan (--replot=false to skip it)."),
      ("cleanup", True, "Drop grid lines and specks painted as curve before tracing (see "
       "ssl_seg.digitizer.mask_cleanup.cleanup_mask).")):
    flags.DEFINE_bool(name, default, text)


_SHORTCUTS = ("depth-axis", "track", "scale", "depth", "depth-unit", "curve-names",
              "curve-units")


def _check_flags():
  """(scales, depth): the values of the flags, checked before anything is read."""
  options.require_flags("checkpoint", "input", "output")
  scales = [curve_values.Scale.parse(s) for s in _flag("scale")]
  depth = shortcuts_lib.parse_depth(_flag("depth"))
  if not 0 <= _flag("min-coverage") <= 1:
    raise ValueError(f"--min-coverage must be in [0, 1], got {_flag('min-coverage')}")
  if _flag("step") is not None and not _flag("step") > 0:
    raise ValueError(f"--step must be > 0, got {_flag('step')}")
  for name in _flag("curve-names") or ():
    las.check_mnemonic(name.upper())
  for unit in _flag("curve-units") or ():
    las.check_unit(unit)
  las.check_unit(_flag("depth-unit"))
  return scales, depth


def _shortcuts(seg, scales, depth, notes):
  """The shortcut flags as `digitize.run` arguments, checked; notes about them go to `notes`."""
  shortcuts = dict(depth_axis=_flag("depth-axis"), tracks=_flag("track"), scales=scales,
                   depth=depth, depth_unit=_flag("depth-unit"), names=_flag("curve-names"),
                   units=_flag("curve-units"))
  detect = _flag("track-detect") and not _flag("track")
  # Checked now, not per scan: values per curve say how many tracks they are for.
  n_tracks = shortcuts_lib.tracks_implied(seg.class_names, scales, shortcuts["names"],
                                          shortcuts["units"]) if detect else None
  layout = shortcuts_lib.shortcut_layout(seg.class_names, **shortcuts, n_tracks=n_tracks)
  n_curves = sum(len(c) for c in layout["curves"])
  if len(scales) == 1 and (n_curves > 1 or detect):
    which = "every curve of every track found" if detect else f"all {n_curves} curves"
    notes.append(f"note: the one --scale {_flag('scale')[0]} is used for {which}; give one "
                 "--scale per curve if they differ")
  if depth is not None and not scales:
    notes.append("note: --depth without --scale: no NAME.las (no values to write); the "
                 "CSV has depth and track positions")
  return shortcuts, layout


def _setup(notes):
  """(segmenter, inputs, output folder, layout source for `digitize.run`, manifest or None)."""
  scales, depth = _check_flags()
  given = [f"--{n}" for n in _SHORTCUTS if flags.FLAGS[n].present]
  layout = None
  if _flag("layout"):
    if given:
      raise ValueError(f"--layout gives the layout; drop {', '.join(given)} (or put them "
                       "into the layout file)")
    layout = layout_files.load(_flag("layout"))
  inputs = scans.list_scans(_flag("input"))
  out_dir = options.writable_dir(_flag("output"), "--output")  # Before the long work.
  seg = options.load_from_flags(_flag("checkpoint"))
  source = {"layout": layout}
  if layout is None:
    source, layout = _shortcuts(seg, scales, depth, notes)  # Shortcuts fit each scan.
  per_file = None
  if _flag("manifest"):
    per_file = layout_files.read_manifest(_flag("manifest"), default=layout)
  return seg, inputs, out_dir, source, per_file


def _summary(done, failed, out_dir, min_coverage):
  """(the closing line, whether --strict fails the run)."""
  by_status = Counter(output_files.status(out, min_coverage) for out in done)
  low = [output_files.label(out) for out in done
         if output_files.status(out, min_coverage) == "low_coverage"]
  none = [output_files.label(out) for out in done
          if output_files.status(out, min_coverage) == "no_curve"]
  below = bool(low or none)
  if done and len(none) == len(done):
    parts = [f"no curve found in {len(done)} file(s): {', '.join(none)} (outputs written into "
             f"{out_dir})"]
    none = []  # Named in the first part already.
  else:
    parts = [f"{len(done)} file(s) digitized into {out_dir}"]
  failed_names = [os.path.basename(p) for p, _ in failed]
  for names, what in ((none, "with no curve at all"),
                      (low, f"below --min-coverage={min_coverage:g}"), (failed_names, "failed")):
    if names:
      parts.append(f"{len(names)} {what}: {', '.join(names)}")
  parts.append(f"{by_status['ok']} ok; per file: {os.path.join(out_dir, 'summary.csv')}")
  return "; ".join(parts), below


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  notes = []
  try:
    seg, inputs, out_dir, source, per_file = _setup(notes)
  except (ValueError, FileNotFoundError) as e:  # Incl. checkpoint errors (ValueErrors).
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  for note in notes:
    print(note, file=sys.stderr)
  skipped = scans.skipped_outputs(_flag("input"))
  if skipped:
    print(f"note: {len(skipped)} file(s) in {_flag('input')} are named like predict's outputs "
          f"(*_mask, *_overlay, *_replot) and are not read as scans: {', '.join(skipped[:5])}"
          f"{' ...' if len(skipped) > 5 else ''}", file=sys.stderr)
  provenance = {"checkpoint": os.path.abspath(_flag("checkpoint")),
                "command": shlex.join(["python", "-m", "ssl_seg.predict", *sys.argv[1:]])}
  min_coverage = _flag("min-coverage")
  done, failed = digitize.run(seg, inputs, out_dir, manifest=per_file, max_gap=_flag("max-gap"),
                              cleanup=_flag("cleanup"), step=_flag("step"),
                              provenance=provenance, min_coverage=min_coverage,
                              max_pixels=_flag("max-pixels"), replot=_flag("replot"),
                              find_tracks=_flag("track-detect"), **source)
  line, below = _summary(done, failed, out_dir, min_coverage)
  print(line)
  sys.exit(1 if failed or (_flag("strict") and below) else 0)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=config_utils.parse_flags)
