r"""Score predict's LAS files on an archive from `render_las --archive` against the source.

  python -m ssl_seg.archive_check --archive=ARCHIVE --predicted=OUT [--out=FILE.csv] \
      [--truth-masks]

For every scan (TIFF page) of ARCHIVE/truth, OUT/NAME.las (predict's, read with lasio) is
compared per curve with the source's samples (ARCHIVE/truth/NAME.las, the source LAS over the
scan's depth window), resampled linearly at the LAS's depths:
  r2            R² in the source's units, on log scales of log10 of them (`digitize.r2`);
  mae_track     the mean |error| in track widths (the scale's axis units / |right - left|);
  spread_track  the source's std over the scan in track widths: below 0.01 (about a pixel)
                the curve is flat on its scale, and its R² only measures pixel rounding;
  coverage      the share of the LAS's depths with a source value where the LAS has one too;
  status        predict's for the scan (OUT/summary.csv: ok, low_coverage, no_curve), or
                `no LAS` where it wrote none, `no curve` where the LAS lacks the mnemonic.
Prints a line per scan and curve and per curve the mean and median R², mean error and
coverage over the scans, and writes the rows to --out (default OUT/archive_scores.csv).

Scans are scored at the depths predict wrote: the archive's manifest gives each TIFF page its
own layout, and an archive whose manifest gives a scan another layout than its truth names (one
written before manifests had pages) is refused. With --truth-masks predict's digitizing path
(layouts, tracing, LAS) first runs on the archive's true masks in place of a model, writing into
--predicted: the ceiling that extraction and calibration leave, without any segmentation error.
"""

import csv
import os
import sys

import lasio
import numpy as np
from absl import app, flags, logging

from ssl_seg import config_utils, digitize, inference, las_io, layouts, scan_io

CLASS_NAMES = ("background", "curve1", "curve2")  # INTERFACES.md's well-log classes.


def _scan_layouts(archive_dir):
  """{truth name: the layout kwargs predict uses for that scan (or TIFF page)}, checked
  against the scan's own layout file (the truth's LAYOUT)."""
  manifest = layouts.read_manifest(os.path.join(archive_dir, "manifest.csv"))
  out = {}
  for name in sorted(scan_io.stem(n) for n in os.listdir(os.path.join(archive_dir, "truth"))
                     if n.endswith(".las")):
    truth = lasio.read(os.path.join(archive_dir, "truth", f"{name}.las"), ignore_data=True)
    scan = os.path.join(archive_dir, str(truth.params["SCAN"].value))
    page = int(truth.params["PAGE"].value) or None
    own = layouts.load(os.path.join(archive_dir, str(truth.params["LAYOUT"].value)))
    given = layouts.manifest_layout(manifest, scan, page)
    # The well may differ (a manifest cell); anything else would score at wrong depths.
    if given is None or {**given, "well": None} != {**own, "well": None}:
      raise ValueError(f"{os.path.join(archive_dir, 'manifest.csv')} does not give {name} its "
                       f"layout {truth.params['LAYOUT'].value}; write the archive again with "
                       "python -m ssl_seg.render_las --archive")
    out[name] = given
  return out


def _statuses(pred_dir):
  path = os.path.join(pred_dir, "summary.csv")
  if not os.path.isfile(path):
    return {}
  with open(path, newline="") as f:
    return {r["name"]: r["status"] for r in csv.DictReader(f) if r.get("name")}


def score_scan(name, archive_dir, pred_dir, layout, status=""):
  """Rows (dicts) for the curves of one scan (`layout`: its kwargs); see the module docstring."""
  truth = lasio.read(os.path.join(archive_dir, "truth", f"{name}.las"))
  curves = [(c.mnemonic, c.unit, c.scale or digitize.Scale(0.0, 1.0)) for t in layout["curves"]
            for c in t]
  base = {"name": name, "status": status}
  path = os.path.join(pred_dir, f"{name}.las")
  if not os.path.isfile(path):
    return [{**base, "curve": m, "unit": u, "scale": "log" if s.log else "linear",
             "status": status or "no LAS", "r2": np.nan, "mae_track": np.nan,
             "spread_track": np.nan, "coverage": 0.0, "samples": 0}
            for m, u, s in curves]
  pred = lasio.read(path)
  depth = np.asarray(pred.index, np.float64)
  t_depth = np.asarray(truth.index, np.float64)
  rows = []
  for m, u, s in curves:
    row = {**base, "curve": m, "unit": u, "scale": "log" if s.log else "linear"}
    t = las_io.resample(t_depth, las_io.curve_values(truth, m), depth)
    if m not in pred.keys():
      rows.append({**row, "status": status or "no curve", "r2": np.nan, "mae_track": np.nan,
                   "spread_track": np.nan, "coverage": 0.0, "samples": 0})
      continue
    p = las_io.curve_values(pred, m)
    known, both = np.isfinite(t), np.isfinite(t) & np.isfinite(p)
    width = abs(float(np.diff(s.axis([s.left, s.right]))[0]))  # One track width, axis units.
    ta, pa = s.axis(t[both]), s.axis(p[both])
    rows.append({**row, "r2": digitize.r2(s.axis(t), s.axis(p)),
                 "mae_track": float(np.mean(np.abs(pa - ta)) / width) if both.any() else np.nan,
                 "spread_track": float(np.std(ta) / width) if both.any() else np.nan,
                 "coverage": float(both.sum() / max(known.sum(), 1)),
                 "samples": int(both.sum())})
  return rows


def score_archive(archive_dir, pred_dir):
  """Rows for every scan and curve of the archive (see the module docstring)."""
  statuses = _statuses(pred_dir)
  rows = []
  for name, layout in _scan_layouts(archive_dir).items():
    rows.extend(score_scan(name, archive_dir, pred_dir, layout, statuses.get(name, "")))
  return rows


def _mean(values, median=False):
  v = [x for x in values if np.isfinite(x)]
  return float((np.median if median else np.mean)(v)) if v else float("nan")


def means(rows):
  """{curve: {r2, r2_median, mae_track, coverage, scans}} over the scans with an R²."""
  out = {}
  for c in dict.fromkeys(r["curve"] for r in rows):
    rs = [r for r in rows if r["curve"] == c]
    out[c] = {"r2": _mean(r["r2"] for r in rs), "r2_median": _mean((r["r2"] for r in rs), True),
              "mae_track": _mean(r["mae_track"] for r in rs),
              "coverage": _mean(r["coverage"] for r in rs),
              "scans": sum(np.isfinite(r["r2"]) for r in rs)}
  return out


COLUMNS = ("name", "curve", "unit", "scale", "r2", "mae_track", "spread_track", "coverage",
           "samples", "status")
FLAT = 0.01  # Truth spread (std) under a hundredth of the track: ~1 px, R² is pixel noise.


def _cell(x):
  if isinstance(x, float):
    return "" if not np.isfinite(x) else repr(x)
  return x


def write_csv(path, rows):
  with open(path + ".tmp", "w", newline="") as f:  # Atomically, as the other outputs.
    writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
  os.replace(path + ".tmp", path)


def report(rows):
  """Lines for a person: per scan and curve, then the mean per curve."""
  lines = [f"{'scan':<28} {'curve':<7} {'scale':<6} {'R²':>8} {'err':>6} {'spread':>6} "
           f"{'cover':>5}  status"]
  for r in rows:
    notes = [r["status"]]
    if r["spread_track"] < FLAT:
      notes.append("flat: R² is pixel noise")
    lines.append(f"{r['name']:<28} {r['curve']:<7} {r['scale']:<6} {r['r2']:>8.3f} "
                 f"{r['mae_track']:>6.3f} {r['spread_track']:>6.3f} {r['coverage']:>5.2f}  "
                 f"{'; '.join(n for n in notes if n)}")
  lines.append("(err: mean |error|, spread: the truth's std, both in track widths)")
  lines.append("per curve, over the scans:")
  for c, m in means(rows).items():
    lines.append(f"  {c:<7} R² mean {m['r2']:.3f}, median {m['r2_median']:.3f} ({m['scans']} "
                 f"scan(s)); err {m['mae_track']:.3f} track; coverage {m['coverage']:.2f}")
  return lines


class TrueMasks:
  """A segmenter for predict (duck-typed: `class_names`, `segment`) that answers each track
  crop of the archive's scans with the true mask there."""
  class_names = CLASS_NAMES

  def __init__(self, archive_dir):
    self.crops = {}
    for name, applied in _scan_layouts(archive_dir).items():
      truth = lasio.read(os.path.join(archive_dir, "truth", f"{name}.las"), ignore_data=True)
      page = int(truth.params["PAGE"].value)
      scan = os.path.join(archive_dir, str(truth.params["SCAN"].value))
      image = scan_io.read_image(scan, page=page - 1 if page else None)
      mask = scan_io.read_mask(os.path.join(archive_dir, "masks", f"{name}_mask.png"), 3)
      layout = inference.make_layout(image.shape, **applied)
      for t in range(len(layout.tracks)):
        crop = np.ascontiguousarray(layout.crop(image, t))
        self.crops[(crop.shape, crop.tobytes())] = np.ascontiguousarray(layout.crop(mask, t))

  def segment(self, image, **kwargs):
    del kwargs  # A true mask needs no sizing.
    return self.crops[(image.shape, image.tobytes())]


def predict_true_masks(archive_dir, pred_dir, log=None):
  """predict.run over the archive's scans with its manifest and true masks (no model)."""
  from ssl_seg import predict  # Imported here: it brings matplotlib, for --truth-masks only.
  scans = scan_io.list_scans(os.path.join(archive_dir, "scans"))
  manifest = layouts.read_manifest(os.path.join(archive_dir, "manifest.csv"))
  return predict.run(TrueMasks(archive_dir), scans, pred_dir, manifest=manifest, replot=False,
                     log=log)


def _flag(name):
  return flags.FLAGS[name].value


def define_flags():
  """The command's flags; defined only when run, so the CLI modules import side by side."""
  flags.DEFINE_string("archive", None, "Folder written by render_las --archive (manifest.csv, "
                      "layouts/, truth/, masks/, scans/).")
  flags.DEFINE_string("predicted", None, "predict's --output folder (NAME.las, summary.csv).")
  flags.DEFINE_string("out", None, "CSV of the rows (default PREDICTED/archive_scores.csv).")
  flags.DEFINE_bool("truth-masks", False, "First run predict's digitizing path on the "
                    "archive's true masks in place of a model, writing into --predicted.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # lasio logs every file's encoding at INFO.
  archive, pred = _flag("archive"), _flag("predicted")
  try:
    if not archive or not pred:
      raise ValueError("--archive and --predicted are required")
    for sub in ("truth", "layouts"):
      if not os.path.isdir(os.path.join(archive, sub)):
        raise ValueError(f"--archive {archive} has no {sub}/ folder; write it with "
                         "python -m ssl_seg.render_las --archive")
    if not _flag("truth-masks") and not os.path.isdir(pred):
      raise ValueError(f"--predicted {pred} not found; run ssl_seg.predict --output={pred} "
                       "first (or give --truth-masks)")
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(config_utils.USAGE_EXIT_CODE)
  try:
    if _flag("truth-masks"):
      predict_true_masks(archive, pred)
    rows = score_archive(archive, pred)
    out = _flag("out") or os.path.join(pred, "archive_scores.csv")
    write_csv(out, rows)
  except (ValueError, FileNotFoundError, KeyError) as e:  # A broken archive, named.
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print("\n".join(report(rows)))
  print(f"{len(rows)} rows in {out}")


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=config_utils.parse_flags)
