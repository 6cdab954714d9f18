r"""Score a curve segmenter on scans with known masks, and its digitized curves on known values.

  python -m ssl_seg.evaluate --checkpoint=runs/demo/finetune_warm --images=DIR --masks=DIR \
      [--out=FILE.json] [--las=DIR] [--depth-axis=auto|vertical|horizontal] \
      [--track=X0:X1 ... | --track-detect] \
      [--resolution=height|stroke [--px-per-stroke=3] | --target-height=420]

Masks are PNGs of class ids matched to images by file stem (NAME.png or NAME_mask.png).
Images are read as predict reads them (`scan_io`), in grayscale: a colour one gets a line
saying so.
Segmentation metrics come from one confusion matrix summed over all files (`ssl_seg.metrics`).
Only the tracks are segmented, as `ssl_seg.predict` does: those of --track, else with
--track-detect those found from each scan's border lines (a line per file says what was
found; `ssl_seg.tracks`), else the whole image. The rest of the image counts as predicted
background, so curves drawn outside the tracks count as misses.
With --las, a truth sidecar NAME.las per image (written by `ssl_seg.render_las`) gives the
source values drawn in each pixel column and where each curve's scale sits; the curve extracted
from the predicted mask (`ssl_seg.digitize`, within that curve's track rows) is converted to
values and scored per log and curve:
  r2        1 - SS_res / SS_tot over columns where both exist, in the scale's units (log10 of
            the value on a log scale), averaged over logs (`r2_median`: their median);
  coverage  the share of inked truth columns where a curve was extracted;
  mae_track the mean absolute error in track widths (0.01 = 1 % of the track).
The same numbers from the true masks (`*_truth_mask`) show what extraction alone loses.
"""

import json
import os
import sys

import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging
from tqdm import tqdm

from ssl_seg import config_utils, digitize, inference, metrics, render_las, scan_io
from ssl_seg.tasks import curve_segment

_flag = inference.flag


def curve_scores(mask, truth, max_gap=8, cleanup=True):
  """{curve k: {"r2", "coverage", "mae_track"}} of the curves in `mask` against a sidecar.

  `cleanup`: trace curve k from `digitize.cleanup_mask` of its track's rows, as predict does.
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
      track = digitize.cleanup_mask(track, (k,))
    tr = digitize.trace(track, k, top=0, bottom=bottom - top, max_gap=max_gap,
                        wrap_side=scale.wrap_side)
    truth_axis = scale.axis(values)
    pred_axis = scale.axis(scale.values(tr.frac))
    inked = np.isfinite(truth_axis)
    both = inked & np.isfinite(pred_axis)
    lo, hi = scale.axis([scale.left, scale.right])
    out[k] = {"r2": digitize.r2(truth_axis, pred_axis),
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
                   max_gap=8, log=None, max_pixels=scan_io.DEFAULT_MAX_PIXELS,
                   find_tracks=False):
  """(summary dict, per-file list, failed [(path, message)]) over the image files.

  find_tracks: without `tracks`, segment the tracks found in each scan (`inference.find_tracks`)
  and log what was found.
  """
  log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
  k = len(seg.class_names)
  # Model and threshold rule: confusion and tolerant counts summed over files.
  totals = {who: [np.zeros((k, k), np.int64), np.zeros((4, k), np.int64)]
            for who in ("model", "rule")}
  per_file, failed = [], []
  for path in tqdm(images, desc="evaluating", unit="file", dynamic_ncols=True):
    name = scan_io.stem(path)
    try:
      pages = scan_io.page_count(path)
      if pages > 1:  # Masks match by stem: one mask cannot be the truth of several pages.
        raise ValueError(f"{pages} pages; evaluate reads one scan per file (its mask matched "
                         "by stem): save each page as its own file")
      image = scan_io.read_image(path, max_pixels)
      if scan_io.is_colour(path):
        log(f"{path}: {scan_io.COLOUR_NOTE}")
      truth = scan_io.read_mask(scan_io.find_mask(masks_dir, name), k, max_pixels)
      if truth.shape != image.shape:
        raise ValueError(f"mask is {truth.shape[0]} x {truth.shape[1]} but the image is "
                         f"{image.shape[0]} x {image.shape[1]}")
      sidecar = None
      if las_dir:
        sidecar = render_las.read_truth(os.path.join(las_dir, f"{name}.las"))
      spans = tracks
      if find_tracks and not tracks:
        spans, found = inference.find_tracks(image, depth_axis)
        log(f"{path}: {found}")
      layout = inference.make_layout(image.shape, depth_axis, spans)
      stroke = None
      if inference.estimates_stroke(seg):
        stroke, sizing = inference.scan_stroke(seg, image, layout)
        log(f"{path}: {sizing}")
      pred = inference.segment_scan(seg, image, layout, stroke)
      rule = rule_mask(image)
      counts = {"model": _counts(truth, pred, k), "rule": _counts(truth, rule, k)}
      row = {"file": os.path.basename(path),
             **metrics.pixel_scores(*counts["model"], seg.class_names),
             **metrics.rule_scores(*counts["rule"], seg.class_names)}
      if sidecar is not None:
        for tag, m in (("", pred), ("_truth_mask", truth), ("_rule", rule)):
          for c, scores in curve_scores(m, sidecar, max_gap, cleanup=tag != "_truth_mask").items():
            for key, v in scores.items():
              row[f"{key}{tag}/{seg.class_names[c]}"] = v
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


def _json_safe(x):
  """NaN (e.g. R^2 of a log where no curve was found) as null: strict JSON has no NaN."""
  if isinstance(x, dict):
    return {k: _json_safe(v) for k, v in x.items()}
  if isinstance(x, list):
    return [_json_safe(v) for v in x]
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



def define_flags():
  """The command's flags; defined only when run, so the CLI modules import side by side."""
  flags.DEFINE_string("checkpoint", None, "Stage directory (or its checkpoints/).")
  flags.DEFINE_string("images", None, "Folder (or file) of scans.")
  flags.DEFINE_string("masks", None, "Folder of NAME[_mask].png class-id masks.")
  flags.DEFINE_string("out", None, "Write the metrics here as JSON.")
  flags.DEFINE_string("las", None, "Folder of NAME.las truth sidecars (render_las) "
                      "for R^2 of the digitized curves.")
  inference.define_flags()
  flags.adopt_module_key_flags(inference)  # So that --help lists them, not only --helpfull.


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  ckpt, masks, las_dir, out = (_flag(n) for n in ("checkpoint", "masks", "las", "out"))
  try:
    inference.require_flags("checkpoint", "images", "masks")
    if not os.path.isdir(masks):
      raise FileNotFoundError(f"--masks folder not found: {masks}")
    if las_dir and not os.path.isdir(las_dir):
      raise FileNotFoundError(f"--las folder not found: {las_dir}")
    images = scan_io.list_scans(_flag("images"))
    if out:
      inference.writable_file(out, "--out")  # Before the evaluation, not after it.
    seg = inference.load_from_flags(ckpt)
  except (ValueError, FileNotFoundError) as e:  # Incl. checkpoint errors (ValueErrors).
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  summary, per_file, failed = evaluate_files(seg, images, masks, las_dir=las_dir,
                                             depth_axis=_flag("depth-axis"),
                                             tracks=_flag("track"), max_gap=_flag("max-gap"),
                                             max_pixels=_flag("max-pixels"),
                                             find_tracks=_flag("track-detect"))
  if per_file:
    seg_keys = {k: v for k, v in summary.items()
                if k in ("miou", "pixel_acc") or k.split("/")[0] in metrics.PER_CLASS}
    print(metrics.summary_table(seg_keys, seg.class_names,
                                title=f"{summary['files']} file(s), {ckpt}"))
    print(versus_rule_table(summary, seg.class_names))
    table = curve_table(summary, seg.class_names)
    if table:
      print(table)
  if out:  # Atomically: an interrupted write never leaves half a JSON file.
    failed_rows = [{"file": p, "error": m} for p, m in failed]
    try:
      with open(out + ".tmp", "w") as f:
        json.dump(_json_safe({**summary, "failed_files": failed_rows, "per_file": per_file}), f,
                  indent=1)
      os.replace(out + ".tmp", out)
    except OSError as e:
      print(f"error: --out {out}: could not write it ({e.strerror or e}); the metrics are "
            "printed above", file=sys.stderr)
      sys.exit(1)
  if failed:
    print(f"{len(failed)} file(s) failed: {', '.join(os.path.basename(p) for p, _ in failed)}",
          file=sys.stderr)
  sys.exit(1 if failed or not per_file else 0)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=config_utils.parse_flags)
