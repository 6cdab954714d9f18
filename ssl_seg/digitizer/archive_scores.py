"""Scores of predict's LAS files on an archive from `render_las --archive` against the source
(`ssl_seg.archive_check` describes the rows), and predict's digitizing path run on the
archive's true masks."""

import csv
import os

import lasio
import numpy as np

from ssl_seg.digitizer import curve_values, las, layout_files, scan_layout, scans

CLASS_NAMES = ("background", "curve1", "curve2")  # INTERFACES.md's well-log classes.


def _scan_layouts(archive_dir):
  """{truth name: the layout kwargs predict uses for that scan (or TIFF page)}, checked
  against the scan's own layout file (the truth's LAYOUT)."""
  manifest = layout_files.read_manifest(os.path.join(archive_dir, "manifest.csv"))
  out = {}
  for name in sorted(scans.stem(n) for n in os.listdir(os.path.join(archive_dir, "truth"))
                     if n.endswith(".las")):
    truth = lasio.read(os.path.join(archive_dir, "truth", f"{name}.las"), ignore_data=True)
    scan = os.path.join(archive_dir, str(truth.params["SCAN"].value))
    page = int(truth.params["PAGE"].value) or None
    own = layout_files.load(os.path.join(archive_dir, str(truth.params["LAYOUT"].value)))
    given = layout_files.manifest_layout(manifest, scan, page)
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
  curves = [(c.mnemonic, c.unit, c.scale or curve_values.Scale(0.0, 1.0))
            for t in layout["curves"] for c in t]
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
    t = las.resample(t_depth, las.curve_values(truth, m), depth)
    if m not in pred.keys():
      rows.append({**row, "status": status or "no curve", "r2": np.nan, "mae_track": np.nan,
                   "spread_track": np.nan, "coverage": 0.0, "samples": 0})
      continue
    p = las.curve_values(pred, m)
    known, both = np.isfinite(t), np.isfinite(t) & np.isfinite(p)
    width = abs(float(np.diff(s.axis([s.left, s.right]))[0]))  # One track width, axis units.
    ta, pa = s.axis(t[both]), s.axis(p[both])
    rows.append({**row, "r2": curve_values.r2(s.axis(t), s.axis(p)),
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
      image = scans.read_image(scan, page=page - 1 if page else None)
      mask = scans.read_mask(os.path.join(archive_dir, "masks", f"{name}_mask.png"), 3)
      layout = scan_layout.make_layout(image.shape, **applied)
      for t in range(len(layout.tracks)):
        crop = np.ascontiguousarray(layout.crop(image, t))
        self.crops[(crop.shape, crop.tobytes())] = np.ascontiguousarray(layout.crop(mask, t))

  def segment(self, image, **kwargs):
    del kwargs  # A true mask needs no sizing.
    return self.crops[(image.shape, image.tobytes())]


def predict_true_masks(archive_dir, pred_dir, log=None):
  """digitize.run over the archive's scans with its manifest and true masks (no model)."""
  from ssl_seg.digitizer import digitize  # Imported here: it brings matplotlib.
  scan_paths = scans.list_scans(os.path.join(archive_dir, "scans"))
  manifest = layout_files.read_manifest(os.path.join(archive_dir, "manifest.csv"))
  return digitize.run(TrueMasks(archive_dir), scan_paths, pred_dir, manifest=manifest,
                      replot=False, log=log)
