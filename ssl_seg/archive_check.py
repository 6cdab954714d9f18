r"""Score predict's LAS files on an archive from `render_las --archive` against the source.

  python -m ssl_seg.archive_check --archive=ARCHIVE --predicted=OUT [--out=FILE.csv] \
      [--truth-masks]

For every scan (TIFF page) of ARCHIVE/truth, OUT/NAME.las (predict's, read with lasio) is
compared per curve with the source's samples (ARCHIVE/truth/NAME.las, the source LAS over the
scan's depth window), resampled linearly at the LAS's depths:
  r2            R² in the source's units, on log scales of log10 of them (`curve_values.r2`);
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

import os
import sys

from absl import app, flags, logging

from ssl_seg import config_utils
from ssl_seg.digitizer import archive_scores


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
      archive_scores.predict_true_masks(archive, pred)
    rows = archive_scores.score_archive(archive, pred)
    out = _flag("out") or os.path.join(pred, "archive_scores.csv")
    archive_scores.write_csv(out, rows)
  except (ValueError, FileNotFoundError, KeyError) as e:  # A broken archive, named.
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print("\n".join(archive_scores.report(rows)))
  print(f"{len(rows)} rows in {out}")


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=config_utils.parse_flags)
