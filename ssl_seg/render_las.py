r"""Render an evaluation set of scanned logs from LAS files, with the truth for `evaluate`.

  python -m ssl_seg.render_las --las=ssl_seg/data/las_samples/scorpio_e1_6038187.las \
      --curves=GAMN,DNEAR --n=16 --out=DIR [--height=128 --min-width=400 --max-width=2400]

Without --curves each file draws a gamma ray (GR, GAMN, ...) and a density, sonic or neutron
curve (RHOB, DNEAR, DTMN, ...) where it has them, else its first two curves: GAMN and DNEAR
of the shipped Scorpio E1, GR and DTMN of Totem 9.

Writes DIR/images/NAME.png, DIR/masks/NAME_mask.png and DIR/las/NAME.las, the truth sidecar:
one row per pixel column with the source depth (DEPT, in the source's depth unit) and the
source values that were drawn (CURVE1, CURVE2, with the source curve's unit and mnemonic in
the description; NULL where no ink), and in ~Parameter, per curve k, where its scale sits:
CkTOP / CkBOT (the rows of scale positions 1 and 0), CkLEFT / CkRIGHT / CkLOG (the scale).
`ssl_seg.evaluate --las=DIR/las` reads it to score extracted curves against the source values.

Each log is a random depth window of a random file at 0.25-4 samples per column, on a fixed
scale per file and curve (log for curves spanning > 20x, sometimes reversed, sometimes short
enough to wrap), rendered by `welllog_render.render_log_with_layout` with the default scan style
except skew: skew moves ink by up to 3 px after layout, which would be scored as error.

Archive mode (`--archive`, `ssl_seg/archive.py` has the details) writes instead the folder a
team would hold, to run the whole product on: scans with depth in the source's units, some
portrait (--portrait-fraction), some with two tracks of two curves each (--two-track-fraction),
the last a multi-page TIFF (--tiff-pages; 0: none), each with its true mask, its layout file
and the source's samples over its depth window, and a manifest for `predict --manifest`:

  python -m ssl_seg.render_las --archive --las=ssl_seg/data/las_samples/totem9_gr_dtmn.las,\
ssl_seg/data/las_samples/scorpio_e1_6038187.las --n=8 --out=ARCHIVE
  python -m ssl_seg.predict --checkpoint=runs/demo/finetune_warm --input=ARCHIVE/scans \
      --manifest=ARCHIVE/manifest.csv --output=OUT
  python -m ssl_seg.archive_check --archive=ARCHIVE --predicted=OUT   # R² per scan and curve
"""

import sys

from absl import app, flags, logging

from ssl_seg import config_utils
from ssl_seg.data import welllog_style
from ssl_seg.digitizer import archive, render


def _flag(name):
  return flags.FLAGS[name].value


def define_flags():
  """The command's flags; defined only when run, so the CLI modules import side by side."""
  flags.DEFINE_list("las", None, "LAS files to render from.")
  flags.DEFINE_list("curves", None, "Two curve mnemonics (curve1, curve2); default: per file "
                    "a gamma ray (GR, GAMN...) and a density / sonic / neutron curve (RHOB, "
                    "DNEAR, DTMN...), else its first two. With --archive two or four (the "
                    "four of a two-track scan; default: two more where the file has them).")
  flags.DEFINE_integer("n", 16, "Number of logs.")
  flags.DEFINE_string("out", None, "Output folder.")
  flags.DEFINE_integer("seed", 0, "Seed.")
  flags.DEFINE_integer("height", 128, "Image height, px.")
  flags.DEFINE_integer("min-width", 400, "Smallest width, px.")
  flags.DEFINE_integer("max-width", 2400, "Largest width, px.")
  flags.DEFINE_bool("archive", False, "Write a scan archive instead (see the module docstring): "
                    "OUT/scans, masks, layouts, truth and manifest.csv; --n counts scan files, "
                    "--height is a track's size across, widths run along depth.")
  flags.DEFINE_float("portrait-fraction", 0.5, "With --archive: share of scans with depth "
                     "down the page.")
  flags.DEFINE_float("two-track-fraction", 0.5, "With --archive: share of scans with two "
                     "tracks (four curves where the file has four, else one per track).")
  flags.DEFINE_integer("tiff-pages", 3, "With --archive: pages of the multi-page TIFF that is "
                       "the last scan (0: no TIFF).")


ARCHIVE_ONLY = ("portrait-fraction", "two-track-fraction", "tiff-pages")


def check_archive_flags(curves, height, min_width):
  """ValueError for archive flags that do not fit (or are given without --archive)."""
  if not _flag("archive"):
    given = [f"--{n}" for n in ARCHIVE_ONLY if flags.FLAGS[n].present]
    if given:
      raise ValueError(f"{', '.join(given)} only apply with --archive (archive mode)")
    return
  for name in ("portrait-fraction", "two-track-fraction"):
    if not 0 <= _flag(name) <= 1:
      raise ValueError(f"--{name}={_flag(name)}: need a share in [0, 1]")
  if _flag("tiff-pages") == 1 or _flag("tiff-pages") < 0:
    raise ValueError(f"--tiff-pages={_flag('tiff-pages')}: need 0 (no TIFF) or >= 2 pages")
  if curves is not None and len(curves) not in (2, 4):
    raise ValueError(f"--curves with --archive needs two or four mnemonics, got {curves}")
  # The long side must be depth, so that depth_axis=auto (training, predict without a layout)
  # reads every scan's orientation right; two-track scans are 2 x --height across.
  if min_width <= 2 * height:
    raise ValueError(f"--min-width={min_width} --height={height}: with --archive need "
                     "--min-width > 2 x --height, so depth runs along each scan's long side")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # lasio logs every file's encoding at INFO.
  las, curves, out = _flag("las"), _flag("curves"), _flag("out")
  try:
    if not las or not out:
      raise ValueError("--las and --out are required")
    if curves is not None and len(curves) != 2 and not _flag("archive"):
      raise ValueError(f"--curves needs two mnemonics, got {curves}")
    lo, hi, height = _flag("min-width"), _flag("max-width"), _flag("height")
    if not welllog_style.MIN_WIDTH <= lo <= hi:
      raise ValueError(f"--min-width={lo} --max-width={hi}: need {welllog_style.MIN_WIDTH} <= "
                       "--min-width <= --max-width (px)")
    if height < welllog_style.MIN_HEIGHT or _flag("n") < 1:
      raise ValueError(f"--height={height} --n={_flag('n')}: need --height >= "
                       f"{welllog_style.MIN_HEIGHT} px and --n >= 1")
    check_archive_flags(curves, height, lo)
  except ValueError as e:  # Flags: a usage error, before any file is read.
    print(f"error: {e}", file=sys.stderr)
    sys.exit(config_utils.USAGE_EXIT_CODE)
  try:
    if _flag("archive"):
      names = _archive(las, curves, out)
    else:
      names = render.render_set(las, curves, _flag("n"), out, seed=_flag("seed"),
                                height=_flag("height"), min_width=_flag("min-width"),
                                max_width=_flag("max-width"))
  except (ValueError, FileNotFoundError) as e:  # A bad or missing LAS file, named.
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  except OSError as e:
    print(f"error: --out {out}: cannot write {e.filename or out} ({e.strerror or e}); choose "
          "a writable folder", file=sys.stderr)
    sys.exit(1)
  if _flag("archive"):
    print(f"{_flag('n')} scan files ({len(names)} scans, TIFF pages counted each) in "
          f"{out}/scans, masks, layouts, truth; {out}/manifest.csv")
  else:
    print(f"{len(names)} logs in {out}/images, masks and las (truth)")


def _archive(las_paths, curves, out):
  return archive.render_archive(
      las_paths, curves, _flag("n"), out, seed=_flag("seed"), height=_flag("height"),
      min_width=_flag("min-width"), max_width=_flag("max-width"),
      portrait_fraction=_flag("portrait-fraction"),
      two_track_fraction=_flag("two-track-fraction"), tiff_pages=_flag("tiff-pages"))


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=config_utils.parse_flags)
