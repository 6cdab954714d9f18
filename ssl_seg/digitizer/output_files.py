"""What predict writes from digitized curves besides the pictures: NAME.las and summary.csv.

NAME.las holds the curves with a scale, each beside its confidence (NAME_CONF), on a regular
depth step, with a provenance note; the format itself is `las`'s. summary.csv has a
row per scan (or page) with its status, coverage and mean confidence per curve and warnings.
"""

import csv
import datetime
import math
import os

import numpy as np

from ssl_seg.digitizer import las


def provenance_note(source, checkpoint_dir, command, *, step_note=""):
  """The ~Other text of a digitized LAS: what was read, with what, when, how."""
  date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
  lines = [f"Digitized from the scan {source} by ssl_seg.predict on {date}.",
           f"Model checkpoint: {checkpoint_dir or 'not recorded'}",
           f"Command: {command or 'not recorded (called from Python)'}",
           "Curves *_CONF: the digitizer's confidence per sample, 0..1 (ssl_seg.digitizer.tracer); "
           "NULL where the curve was not read."]
  if step_note:
    lines.append(step_note)
  return "\n".join(lines)


def mean_confidence(tr):
  """Mean confidence over the columns where the trace has a value (NaN where none)."""
  ok = np.isfinite(tr.frac)
  if tr.confidence is None or not ok.any():
    return float("nan")
  return float(np.mean(tr.confidence[ok]))


def write_las(path, layout, depth_values, series, las_names, labels, step, *, well, source,
               provenance):
  """NAME.las: the scaled curves and their confidences on a regular depth step."""
  first, last = depth_values[0], depth_values[-1]
  pitch = (last - first) / max(len(depth_values) - 1, 1)
  if step is None and len(layout.depth) == 2:
    depth, note = depth_values, ""  # Linear in the pixel: already a regular step.
  else:
    step = step or abs(pitch)
    depth = las.regular_depth(first, last, step)
    note = (f"Resampled (linear in track position) from the scan's pitch {abs(pitch):.6g} "
            f"{layout.depth_unit} to a step of {step:.6g} {layout.depth_unit}.")
  same = depth is depth_values

  def at(x):
    return x if same else las.resample(depth_values, x, depth)

  curves, units, descriptions = {}, {}, {}
  for m, s, label in zip(las_names, series, labels):
    if s.scale is None:
      continue
    # Resampled as track positions, then converted: linear in what the picture shows, also on
    # a log scale.
    curves[m] = s.scale.values(at(s.trace.frac))
    units[m], descriptions[m] = s.unit, label
    conf = s.trace.confidence if s.trace.confidence is not None else np.isfinite(s.trace.frac)
    conf = np.where(np.isfinite(s.trace.frac), conf, np.nan)
    curves[f"{m}_CONF"] = at(conf)
    descriptions[f"{m}_CONF"] = f"Confidence of {m}, 0..1"
  clash = set(las_names) & {f"{m}_CONF" for m in las_names}
  if clash:
    raise ValueError(f"curve name(s) {', '.join(sorted(clash))} clash with a confidence curve "
                     "(NAME_CONF); rename them")
  other = provenance_note(source, provenance.get("checkpoint"), provenance.get("command"),
                          step_note=note)
  las.write(path, depth, curves, depth_unit=layout.depth_unit, well=well, units=units,
            descriptions=descriptions, other=other)


def low_coverage(outputs, min_coverage):
  """[(curve, share)] of a file's curves with a value on fewer than `min_coverage` columns."""
  return [(c, v) for c, v in outputs["coverage"].items() if v < min_coverage]


def status(outputs, min_coverage):
  """ok, low_coverage (a curve below `min_coverage`) or no_curve (nothing read at all)."""
  cov = outputs["coverage"].values()
  if not any(v > 0 for v in cov):
    return "no_curve"
  return "low_coverage" if any(v < min_coverage for v in cov) else "ok"


def label(out):
  """A scan for a person: its file name, and the page of a multi-page TIFF."""
  name = os.path.basename(out["input"])
  return name if out["page"] is None else f"{name} (page {out['page'] + 1})"


def write_summary(path, done, failed, min_coverage):
  """summary.csv: per scan (page) its status, coverage and mean confidence per curve, and the
  warnings; failed files too, with the error."""
  curves = list(dict.fromkeys(c for out in done for c in out["coverage"]))
  rows = []
  for out in done:
    warnings = list(out["warnings"]) + [
        f"{c} read on only {math.floor(100 * v)}% of depth columns"
        for c, v in low_coverage(out, min_coverage)]
    row = {"file": out["input"], "page": "" if out["page"] is None else out["page"] + 1,
           "name": out["name"], "status": status(out, min_coverage)}
    for c in curves:
      cov, conf = out["coverage"].get(c), out["confidence"].get(c, float("nan"))
      row[f"coverage:{c}"] = "" if cov is None else repr(cov)
      row[f"confidence:{c}"] = "" if not np.isfinite(conf) else f"{conf:.3f}"
    row["warnings"] = "; ".join(warnings)
    rows.append(row)
  for p, why in failed:
    rows.append({"file": p, "status": "failed", "warnings": why})
  header = (["file", "page", "name", "status"]
            + [f"{k}:{c}" for c in curves for k in ("coverage", "confidence")] + ["warnings"])
  with open(path + ".tmp", "w", newline="") as f:  # Atomically, as the other outputs.
    writer = csv.DictWriter(f, header, restval="")
    writer.writeheader()
    writer.writerows(rows)
  os.replace(path + ".tmp", path)
  return path
