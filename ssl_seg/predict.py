r"""Segment scans of any size with a trained CurveNet and digitize their curves.

  python -m ssl_seg.predict --checkpoint=runs/demo/finetune_warm --input=scans/ --output=out/ \
      [--depth-axis=auto|vertical|horizontal] [--track=X0:X1 ...] \
      [--scale=LEFT:RIGHT[:log] ...] [--depth=FIRST:LAST] [--depth-unit=M] \
      [--min-coverage=0.5] [--strict] [--nocleanup]

Writes, per input NAME: NAME_mask.png (class ids, the input's exact size), NAME_overlay.png
(mask and centre lines over the scan) and NAME_curves.csv (see `ssl_seg.digitize`); with
--scale and --depth also NAME.las.

Coverage: a curve with a value on fewer than --min-coverage of a file's depth columns gets a
warning line on stderr; with --strict the command then exits 1 after all files, naming them,
as it does for files that fail. A run that found no curve at all says so instead of reporting
files digitized.

Scans sharing a stem (a.png, a.tif) write a_png_* and a_tif_*; where such a name is still
taken (a_png.png writes a_png_* too) the renamed scan is refused, never overwritten. A scan
whose header claims more than --max-pixels is refused before it is decoded. Files named like
these outputs (*_mask, *_overlay) are not read as scans, and a note says so.

Inference (windows, rotation, tracks) is in `ssl_seg.inference`; curve extraction and the
CSV / LAS formats in `ssl_seg.digitize`.
"""

import math
import os
import sys
from collections import Counter

import numpy as np
from absl import app, flags, logging
from tqdm import tqdm

from ssl_seg import config_utils, digitize, inference, plots, scan_io

_flag = inference.flag

CENTRE_COLOUR = np.array([0, 170, 0], np.uint8)


def draw_overlay(image, mask, layout, traces):
  """RGB: mask colours over the scan, centre lines in green."""
  rgb = plots.overlay(image, mask, alpha=0.6)
  n_depth = image.shape[0] if layout.vertical else image.shape[1]
  depth_idx = np.arange(n_depth)
  for t, track in enumerate(traces):
    to_orig = layout.to_original(t)
    for tr in track.values():
      ok = np.isfinite(tr.px)
      v = np.clip(np.rint(to_orig(tr.px[ok])).astype(np.int64), 0,
                  (image.shape[1] if layout.vertical else image.shape[0]) - 1)
      if layout.vertical:
        rgb[depth_idx[ok], v] = CENTRE_COLOUR
      else:
        rgb[v, depth_idx[ok]] = CENTRE_COLOUR
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


def digitize_file(seg, path, out_dir, *, depth_axis="auto", tracks=(), scales=(), depth=None,
                  depth_unit="M", names=None, max_gap=8, name=None, cleanup=True,
                  max_pixels=scan_io.DEFAULT_MAX_PIXELS):
  """Writes the mask, overlay, CSV (and LAS with scales and depth) for one scan.

  Outputs are named after `name` (default: the file's stem). Returns the paths written by
  kind ("mask", "overlay", "csv", "las"), plus "input" (`path`) and "coverage": {CSV column
  prefix of each curve: share of depth columns with a value, read or bridged}.
  """
  image = scan_io.read_image(path, max_pixels)
  layout = inference.make_layout(image.shape, depth_axis, tracks)
  n = len(layout.tracks)
  if scales and len(scales) not in (1, n):
    raise ValueError(f"give one --scale for all tracks or one per track ({n}), got "
                     f"{len(scales)}")
  scales = [scales[0]] * n if len(scales) == 1 else list(scales) if scales else [None] * n
  las_names = curve_names(seg.class_names, n, names)
  mask = inference.segment_scan(seg, image, layout)
  traces = inference.trace_scan(mask, layout, seg.class_names, max_gap, cleanup=cleanup)
  name = name or scan_io.stem(path)
  n_depth = image.shape[0] if layout.vertical else image.shape[1]
  depth_values = None if depth is None else np.linspace(depth[0], depth[1], n_depth)
  prefixes = [f"t{t + 1}_" if n > 1 else "" for t in range(n)]
  columns = digitize.table(np.arange(n_depth), traces, names=prefixes,
                           to_original=[layout.to_original(t) for t in range(n)],
                           scales=scales, depth=depth_values)
  outputs = {"mask": os.path.join(out_dir, f"{name}_mask.png"),
             "overlay": os.path.join(out_dir, f"{name}_overlay.png"),
             "csv": os.path.join(out_dir, f"{name}_curves.csv")}
  scan_io.write_png(outputs["mask"], mask)
  scan_io.write_png(outputs["overlay"], draw_overlay(image, mask, layout, traces))
  digitize.write_csv(outputs["csv"], columns)
  if depth_values is not None and all(s is not None for s in scales):
    values = [scales[t].values(tr.frac) for t in range(n) for tr in traces[t].values()]
    outputs["las"] = os.path.join(out_dir, f"{name}.las")
    digitize.write_las(outputs["las"], depth_values, dict(zip(las_names, values)),
                       depth_unit=depth_unit, well=name)
  outputs["input"] = path
  outputs["coverage"] = {f"{prefixes[t]}{curve}": digitize.coverage(tr)
                         for t in range(n) for curve, tr in traces[t].items()}
  return outputs


def low_coverage(outputs, min_coverage):
  """[(curve, share)] of a file's curves with a value on fewer than `min_coverage` columns."""
  return [(c, v) for c, v in outputs["coverage"].items() if v < min_coverage]


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


def run(seg, inputs, out_dir, *, log=None, min_coverage=0.5, **kw):
  """Digitizes every file; a failing file is reported on one line and skipped, and a curve
  read on fewer than `min_coverage` of a file's depth columns gets a warning line.

  Returns (outputs per good file, [(path, message)] per failed file).
  """
  log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
  os.makedirs(out_dir, exist_ok=True)
  done, failed = [], []
  names, refused = output_names(inputs)
  for path, why in refused.items():
    failed.append((path, why))
    log(f"error: {path}: {why} (skipped)")
  for path in tqdm([p for p in inputs if p in names], desc="digitizing", unit="file",
                   dynamic_ncols=True):
    try:
      done.append(digitize_file(seg, path, out_dir, name=names[path], **kw))
    except (ValueError, OSError, MemoryError) as e:
      failed.append((path, str(e)))
      log(f"error: {path}: {e} (skipped)")
      continue
    for curve, share in low_coverage(done[-1], min_coverage):
      # Rounded down: 49.6 % under a 50 % threshold must not read "50%".
      log(f"warning: {path}: {curve} read on only {math.floor(100 * share)}% of depth columns")
  return done, failed


def define_flags():
  """The command's flags; defined only when run, so the CLI modules import side by side."""
  flags.DEFINE_string("checkpoint", None, "Stage directory (or its checkpoints/).")
  flags.DEFINE_string("input", None, "A scan (PNG, JPEG, TIFF) or a folder of them.")
  flags.DEFINE_string("output", None, "Folder for NAME_mask.png, _overlay.png, ...")
  inference.define_flags()
  flags.DEFINE_multi_string("scale", [], "LEFT:RIGHT[:log] track scale, one for all "
                            "tracks or one per --track, in order.")
  flags.DEFINE_string("depth", None, "FIRST:LAST depth at the first and last pixel "
                      "along the depth axis (with --scale: writes NAME.las).")
  flags.DEFINE_string("depth-unit", "M", "Depth unit written to the LAS file.")
  flags.DEFINE_list("curve-names", None, "LAS mnemonics, tracks x curves in order.")
  flags.DEFINE_float("min-coverage", 0.5, "Warn about a curve with a value on fewer than this "
                     "share of a file's depth columns (0..1).")
  # The underscore spelling too: absl treats the two as different names.
  flags.DEFINE_alias("min_coverage", "min-coverage")
  flags.DEFINE_bool("strict", False, "Exit 1 after all files if a file is below "
                    "--min-coverage or no curve was found at all.")
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


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  try:
    inference.require_flags("checkpoint", "input", "output")
    scales = [digitize.Scale.parse(s) for s in _flag("scale")]
    depth = parse_depth(_flag("depth"))
    min_coverage = _flag("min-coverage")
    if not 0 <= min_coverage <= 1:
      raise ValueError(f"--min-coverage must be in [0, 1], got {min_coverage}")
    for name in _flag("curve-names") or ():
      digitize.check_mnemonic(name.upper())
    inputs = scan_io.list_scans(_flag("input"))
    out_dir = inference.writable_dir(_flag("output"), "--output")  # Before the long work.
    seg = inference.load_from_flags(_flag("checkpoint"))
  except (ValueError, FileNotFoundError) as e:  # Incl. checkpoint errors (ValueErrors).
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  skipped = scan_io.skipped_outputs(_flag("input"))
  if skipped:
    print(f"note: {len(skipped)} file(s) in {_flag('input')} are named like predict's outputs "
          f"(*_mask, *_overlay) and are not read as scans: {', '.join(skipped[:5])}"
          f"{' ...' if len(skipped) > 5 else ''}", file=sys.stderr)
  done, failed = run(seg, inputs, out_dir, depth_axis=_flag("depth-axis"),
                     tracks=_flag("track"), scales=scales, depth=depth,
                     depth_unit=_flag("depth-unit"), names=_flag("curve-names"),
                     max_gap=_flag("max-gap"), cleanup=_flag("cleanup"),
                     min_coverage=min_coverage, max_pixels=_flag("max-pixels"))
  found = any(v > 0 for out in done for v in out["coverage"].values())
  low = [os.path.basename(out["input"]) for out in done if low_coverage(out, min_coverage)]
  if done and not found:
    parts = [f"no curve found in {len(done)} file(s) (outputs written into {out_dir})"]
  else:
    parts = [f"{len(done)} file(s) digitized into {out_dir}"]
  if low:
    parts.append(f"{len(low)} below --min-coverage={min_coverage:g}: {', '.join(low)}")
  if failed:
    parts.append(f"{len(failed)} failed: {', '.join(os.path.basename(p) for p, _ in failed)}")
  print("; ".join(parts))
  strict_fail = _flag("strict") and (low or (done and not found))
  sys.exit(1 if failed or strict_fail else 0)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=config_utils.parse_flags)
