"""Scores of a curve segmenter on scans with known masks, and of its digitized curves on the
values a truth sidecar knows (`ssl_seg.evaluate` describes them)."""

import os
import sys

import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ssl_seg import metrics
from ssl_seg.digitizer import curve_values, mask_cleanup, render, scan_layout, scans, tracer
from ssl_seg.tasks import curve_segment


def track_grid_rows(image, truth):
  """{curve k: bool rows} of `mask_cleanup.value_grid_rows` of each sidecar track of the scan."""
  return {k: mask_cleanup.value_grid_rows(image[top:bottom + 1])
          for k, (top, bottom) in truth.rows.items()}


def curve_scores(mask, truth, max_gap=8, cleanup=True, grid_rows=None):
  """{curve k: {"r2", "coverage", "mae_track"}} of the curves in `mask` against a sidecar.

  `cleanup`: trace curve k from `mask_cleanup.cleanup_mask` of its track's rows, as predict
  does, with the scan's grid rows where `grid_rows` ({k: rows}, `track_grid_rows`) is given.
  """
  out = {}
  for k, values in truth.values.items():
    top, bottom = truth.rows[k]
    if values.shape[0] != mask.shape[1] or not 0 <= top < bottom < mask.shape[0]:
      raise ValueError(f"truth has {values.shape[0]} columns and rows {top}..{bottom} but the "
                       f"mask is {mask.shape[0]} x {mask.shape[1]}")
    scale = truth.scales[k]
    track = mask[top:bottom + 1]
    if cleanup:
      grid = None if grid_rows is None else grid_rows[k]
      track = mask_cleanup.cleanup_mask(track, (k,), grid_rows=grid)
    tr = tracer.trace(track, k, top=0, bottom=bottom - top, max_gap=max_gap,
                      wrap_side=scale.wrap_side)
    truth_axis = scale.axis(values)
    pred_axis = scale.axis(scale.values(tr.frac))
    inked = np.isfinite(truth_axis)
    both = inked & np.isfinite(pred_axis)
    lo, hi = scale.axis([scale.left, scale.right])
    out[k] = {"r2": curve_values.r2(truth_axis, pred_axis),
              "coverage": float(both.sum() / max(inked.sum(), 1)),
              "mae_track": float(np.mean(np.abs(pred_axis[both] - truth_axis[both]))
                                 / abs(hi - lo)) if both.any() else float("nan")}
  return out


def _counts(truth, pred, k):
  """(confusion [K, K], tolerant counts [4, K]) of one mask against its truth."""
  t, p = jnp.asarray(truth)[None], jnp.asarray(pred)[None]
  w = jnp.ones(t.shape, jnp.int32)
  return (np.asarray(metrics.confusion_matrix(t, p, w, k)),
          np.asarray(metrics.tolerant_counts(t, p, w, k)))


def rule_mask(image):
  """`metrics.threshold_rule` on one grayscale scan: every dark pixel is curve1."""
  ink = curve_segment.ink(jnp.asarray(image)[None, ..., None])[..., 0]
  return np.asarray(metrics.threshold_rule(ink, jnp.ones(ink.shape, bool))[0])


def evaluate_files(seg, images, masks_dir, *, las_dir=None, depth_axis="auto", tracks=(),
                   max_gap=8, log=None, max_pixels=scans.DEFAULT_MAX_PIXELS,
                   find_tracks=False):
  """(summary dict, per-file list, failed [(path, message)]) over the image files.

  find_tracks: without `tracks`, segment the tracks found in each scan (`scan_layout.find_tracks`)
  and log what was found.
  """
  log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
  k = len(seg.class_names)
  # Model and threshold rule: confusion and tolerant counts summed over files.
  totals = {who: [np.zeros((k, k), np.int64), np.zeros((4, k), np.int64)]
            for who in ("model", "rule")}
  per_file, failed = [], []
  for path in tqdm(images, desc="evaluating", unit="file", dynamic_ncols=True):
    try:
      row, counts = evaluate_file(seg, path, masks_dir, las_dir=las_dir, depth_axis=depth_axis,
                                  tracks=tracks, max_gap=max_gap, log=log,
                                  max_pixels=max_pixels, find_tracks=find_tracks)
    except (ValueError, OSError) as e:
      failed.append((path, str(e)))
      log(f"error: {path}: {e} (skipped)")
      continue
    for who, (cm, tol) in counts.items():
      totals[who][0] += cm
      totals[who][1] += tol
    per_file.append(row)
  summary = {"files": len(per_file), "failed": len(failed)}
  if per_file:
    summary.update(metrics.pixel_scores(*totals["model"], seg.class_names))
    summary.update(metrics.rule_scores(*totals["rule"], seg.class_names))
    summary.update(curve_summary(per_file))
  return summary, per_file, failed


def evaluate_file(seg, path, masks_dir, *, las_dir, depth_axis, tracks, max_gap, log,
                  max_pixels, find_tracks):
  """(the file's row, {"model", "rule": (confusion, tolerant counts)}); see `evaluate_files`."""
  k = len(seg.class_names)
  name = scans.stem(path)
  pages = scans.page_count(path)
  if pages > 1:  # Masks match by stem: one mask cannot be the truth of several pages.
    raise ValueError(f"{pages} pages; evaluate reads one scan per file (its mask matched "
                     "by stem): save each page as its own file")
  image = scans.read_image(path, max_pixels)
  if scans.is_colour(path):
    log(f"{path}: {scans.COLOUR_NOTE}")
  truth = scans.read_mask(scans.find_mask(masks_dir, name), k, max_pixels)
  if truth.shape != image.shape:
    raise ValueError(f"mask is {truth.shape[0]} x {truth.shape[1]} but the image is "
                     f"{image.shape[0]} x {image.shape[1]}")
  sidecar = None
  if las_dir:
    sidecar = render.read_truth(os.path.join(las_dir, f"{name}.las"))
  spans = tracks
  if find_tracks and not tracks:
    spans, found = scan_layout.find_tracks(image, depth_axis)
    log(f"{path}: {found}")
  layout = scan_layout.make_layout(image.shape, depth_axis, spans)
  stroke = None
  if scan_layout.estimates_stroke(seg):
    stroke, sizing = scan_layout.scan_stroke(seg, image, layout)
    log(f"{path}: {sizing}")
  pred = scan_layout.segment_scan(seg, image, layout, stroke)
  rule = rule_mask(image)
  counts = {"model": _counts(truth, pred, k), "rule": _counts(truth, rule, k)}
  row = {"file": os.path.basename(path),
         **metrics.pixel_scores(*counts["model"], seg.class_names),
         **metrics.rule_scores(*counts["rule"], seg.class_names)}
  if sidecar is not None:
    grid_rows = track_grid_rows(image, sidecar)  # Once per scan, for the model and the rule.
    for tag, m in (("", pred), ("_truth_mask", truth), ("_rule", rule)):
      for c, scores in curve_scores(m, sidecar, max_gap, cleanup=tag != "_truth_mask",
                                    grid_rows=grid_rows).items():
        for key, v in scores.items():
          row[f"{key}{tag}/{seg.class_names[c]}"] = v
  return row, counts


def curve_summary(per_file):
  """Per-log digitized-curve scores -> their mean over logs (NaN where none), plus the count
  and the median of every R^2."""
  out = {}
  keys = sorted({key for r in per_file for key in r if key.split("/")[0] in
                 {f"{m}{t}" for m in ("r2", "coverage", "mae_track")
                  for t in ("", "_truth_mask", "_rule")}})
  for key in keys:
    vals = np.array([r.get(key, np.nan) for r in per_file], np.float64)
    found = np.isfinite(vals).any()
    out[key] = float(np.nanmean(vals)) if found else float("nan")
    if key.startswith("r2"):
      out[f"n_{key}"] = int(np.isfinite(vals).sum())
      # One log whose curve was read a track width off (a missed wrap, a swapped stretch)
      # drives the mean far below zero; the median says what a typical log gets.
      out[key.replace("r2", "r2_median", 1)] = float(np.nanmedian(vals)) if found else float("nan")
  return out


def json_safe(x):
  """NaN (e.g. R^2 of a log where no curve was found) as null: strict JSON has no NaN."""
  if isinstance(x, dict):
    return {k: json_safe(v) for k, v in x.items()}
  if isinstance(x, list):
    return [json_safe(v) for v in x]
  return None if isinstance(x, float) and not np.isfinite(x) else x


def versus_rule_table(summary, class_names):
  """Model against the threshold rule on the same files: F1, tolerant F1, digitized R^2."""
  cols = [f"{m}/{c}" for m in ("f1", "f1_tol1") for c in class_names[1:]]
  cols += [f"r2/{c}" for c in class_names[1:] if f"r2/{c}" in summary]
  rows = [("model", {c: summary.get(c) for c in cols}),
          ("threshold rule", {c: summary.get(metrics.RULE_PREFIX + c, summary.get(
              c.replace("r2/", "r2_rule/"))) for c in cols})]
  return metrics.format_table(rows, cols, title="model vs the threshold rule (every dark pixel "
                              "is curve1), same files")


def curve_table(summary, class_names):
  cols = ["r2", "r2_median", "coverage", "mae_track", "r2_truth_mask", "mae_track_truth_mask"]
  rows = [(c, {m: summary.get(f"{m}/{c}") for m in cols}) for c in class_names[1:]
          if f"r2/{c}" in summary]
  return metrics.format_table(rows, cols, title="digitized curves vs source values "
                              "(mean over logs)") if rows else ""
