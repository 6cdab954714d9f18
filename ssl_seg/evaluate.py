r"""Score a curve segmenter on scans with known masks, and its digitized curves on known values.

  python -m ssl_seg.evaluate --checkpoint=runs/demo/finetune_warm --images=DIR --masks=DIR \
      [--out=FILE.json] [--las=DIR] [--depth-axis=auto|vertical|horizontal] \
      [--track=X0:X1 ... | --track-detect] \
      [--resolution=height|stroke [--px-per-stroke=3] | --target-height=420]

Masks are PNGs of class ids matched to images by file stem (NAME.png or NAME_mask.png).
Images are read as predict reads them (`scans`), in grayscale: a colour one gets a line
saying so.
Segmentation metrics come from one confusion matrix summed over all files (`ssl_seg.metrics`).
Only the tracks are segmented, as `ssl_seg.predict` does: those of --track, else with
--track-detect those found from each scan's border lines (a line per file says what was
found; `ssl_seg.digitizer.tracks`), else the whole image. The rest of the image counts as predicted
background, so curves drawn outside the tracks count as misses.
With --las, a truth sidecar NAME.las per image (written by `ssl_seg.render_las`) gives the
source values drawn in each pixel column and where each curve's scale sits; the curve extracted
from the predicted mask (`ssl_seg.digitizer.tracer`, within that curve's track rows) is converted to
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

from absl import app, flags, logging

from ssl_seg import config_utils, metrics
from ssl_seg.digitizer import evaluation, options, scans

_flag = options.flag


def define_flags():
  """The command's flags; defined only when run, so the CLI modules import side by side."""
  flags.DEFINE_string("checkpoint", None, "Stage directory (or its checkpoints/).")
  flags.DEFINE_string("images", None, "Folder (or file) of scans.")
  flags.DEFINE_string("masks", None, "Folder of NAME[_mask].png class-id masks.")
  flags.DEFINE_string("out", None, "Write the metrics here as JSON.")
  flags.DEFINE_string("las", None, "Folder of NAME.las truth sidecars (render_las) "
                      "for R^2 of the digitized curves.")
  options.define_flags()
  flags.adopt_module_key_flags(options)  # So that --help lists them, not only --helpfull.


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  ckpt, masks, las_dir, out = (_flag(n) for n in ("checkpoint", "masks", "las", "out"))
  try:
    options.require_flags("checkpoint", "images", "masks")
    if not os.path.isdir(masks):
      raise FileNotFoundError(f"--masks folder not found: {masks}")
    if las_dir and not os.path.isdir(las_dir):
      raise FileNotFoundError(f"--las folder not found: {las_dir}")
    images = scans.list_scans(_flag("images"))
    if out:
      options.writable_file(out, "--out")  # Before the evaluation, not after it.
    seg = options.load_from_flags(ckpt)
  except (ValueError, FileNotFoundError) as e:  # Incl. checkpoint errors (ValueErrors).
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  summary, per_file, failed = evaluation.evaluate_files(
      seg, images, masks, las_dir=las_dir, depth_axis=_flag("depth-axis"), tracks=_flag("track"),
      max_gap=_flag("max-gap"), max_pixels=_flag("max-pixels"), find_tracks=_flag("track-detect"))
  if per_file:
    seg_keys = {k: v for k, v in summary.items()
                if k in ("miou", "pixel_acc") or k.split("/")[0] in metrics.PER_CLASS}
    print(metrics.summary_table(seg_keys, seg.class_names,
                                title=f"{summary['files']} file(s), {ckpt}"))
    print(evaluation.versus_rule_table(summary, seg.class_names))
    table = evaluation.curve_table(summary, seg.class_names)
    if table:
      print(table)
  if out:  # Atomically: an interrupted write never leaves half a JSON file.
    failed_rows = [{"file": p, "error": m} for p, m in failed]
    try:
      with open(out + ".tmp", "w") as f:
        json.dump(evaluation.json_safe({**summary, "failed_files": failed_rows,
                                        "per_file": per_file}), f, indent=1)
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
