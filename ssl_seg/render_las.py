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
enough to wrap), rendered by `welllogs.render_log_with_layout` with the default scan style
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

import dataclasses
import os
import sys

import lasio
import numpy as np
from absl import app, flags, logging
from tqdm import tqdm

from ssl_seg import config_utils, digitize, las_io, scan_io
from ssl_seg.data import welllogs

# Mnemonics tried, in order, for curve1 and curve2 when --curves is not given.
GAMMA = ("GR", "GAMN", "SGR", "CGR", "GRC", "GAM")
SECOND = ("RHOB", "DNEAR", "RHOZ", "DEN", "ZDEN", "DTMN", "DT", "DTC", "AC", "NPHI", "NEUT")


def _scale(rng, values, p_wrap):
  """A fixed scale for a curve from its range (as `welllogs` does for training renders)."""
  lo, hi, floor = np.nanpercentile(values, [0, 100, welllogs.WRAP_PERCENTILE])
  return digitize.Scale(*welllogs.random_scale(rng, lo, hi, p_wrap, wrap_floor=floor))


def depth_windows(rng, values, width, pages=1):
  """[(start, n)]: `pages` consecutive windows of a file's samples (values [C, n]) to draw
  across `width` px, at 0.25-4 samples per column, where every curve has values on over half
  the samples (10 tries, then the last)."""
  n = values.shape[1]
  n_win = int(np.clip(round(width * np.exp(rng.uniform(np.log(0.25), np.log(4.0)))), 2,
                      n // pages))
  for _ in range(10):
    start = int(rng.integers(0, n - pages * n_win + 1))
    if np.isfinite(values[:, start:start + pages * n_win]).mean(axis=1).min() > 0.5:
      break
  return [(start + k * n_win, n_win) for k in range(pages)]


def render_one(rng, las, width, height, style):
  """(image, mask, depth [W], values [2, W] drawn in source units, scales, value_rows)."""
  depth, values, scales = las
  [(start, n_win)] = depth_windows(rng, values, width)
  top, bottom = depth[start], depth[start + n_win - 1]
  cols = welllogs.resample_to_width(depth, values, width, top=top, bottom=bottom)
  track = np.stack([welllogs.las_to_track(v, left=s.left, right=s.right, log=s.log)
                    for v, s in zip(cols, scales)])
  image, mask, layout = welllogs.render_log_with_layout(rng, height=height, width=width,
                                                        curves=track, style=style)
  drawn = np.where(np.isfinite(layout["curves"]), cols, np.nan)
  return image, mask, np.linspace(top, bottom, width), drawn, layout["value_rows"]


def default_curves(path):
  """The two mnemonics drawn from a LAS file without --curves (see the module docstring)."""
  _, curves = las_io.header(path)
  names = [m for m, _ in curves if m.upper() != "DEPT"]
  by_upper = {m.upper(): m for m in names}
  first = next((by_upper[m] for m in GAMMA if m in by_upper), None)
  second = next((by_upper[m] for m in SECOND if m in by_upper and by_upper[m] != first), None)
  rest = [m for m in names if m not in (first, second)]
  picked = [m for m in (first, second) if m] + rest
  if len(picked) < 2:
    raise ValueError(f"LAS file {path} has {len(picked)} curve(s) besides depth; need two")
  return picked[:2]


def write_truth(path, depth, drawn, scales, value_rows, source, *, depth_unit="",
                curves=(("", ""), ("", ""))):
  """The sidecar LAS (see the module docstring); `curves`: (mnemonic, unit) of the source
  curves drawn as CURVE1 and CURVE2, `depth_unit` the source's."""
  params, units, descriptions, values = {}, {}, {}, {}
  for k, (v, s, (top, bot), (mnemonic, unit)) in enumerate(
      zip(drawn, scales, value_rows, curves), start=1):
    values[f"CURVE{k}"] = v
    units[f"CURVE{k}"] = unit.replace(" ", "_")
    descriptions[f"CURVE{k}"] = f"{mnemonic} of {source}" if mnemonic else ""
    for key, val in (("TOP", int(top)), ("BOT", int(bot)), ("LEFT", s.left),
                     ("RIGHT", s.right), ("LOG", int(s.log))):
      params[f"C{k}{key}"] = val
  las_io.write(path, depth, values, depth_unit=depth_unit.replace(" ", "_"), well=source,
               units=units, descriptions=descriptions, params=params,
               other=f"Truth of a log rendered by ssl_seg.render_las from {source}.")


@dataclasses.dataclass
class Truth:
  """A sidecar read back: per curve k (1-based) its values per column, scale and rows."""
  values: dict
  scales: dict
  rows: dict


def read_truth(path):
  las = lasio.read(os.fspath(path))
  out = Truth({}, {}, {})
  for k in (1, 2):
    name = f"CURVE{k}"
    if name not in las.keys():
      continue
    p = {key: las.params[f"C{k}{key}"].value for key in ("TOP", "BOT", "LEFT", "RIGHT", "LOG")}
    out.values[k] = las_io.curve_values(las, name)
    out.scales[k] = digitize.Scale(float(p["LEFT"]), float(p["RIGHT"]), bool(int(p["LOG"])))
    out.rows[k] = (int(p["TOP"]), int(p["BOT"]))
  if not out.values:
    raise ValueError(f"truth file {path} has no CURVE1 / CURVE2 (write it with "
                     "ssl_seg.render_las)")
  return out


def render_set(las_paths, curves, n, out_dir, *, seed=0, height=128, min_width=400,
               max_width=2400, style=None):
  """Renders n logs (files round-robin) into out_dir/{images,masks,las}; returns the names.

  `curves`: two mnemonics for every file, or None for each file's `default_curves`.
  """
  style = style or welllogs.RenderStyle(p_skew=0.0)
  data = []
  for p in las_paths:
    names = list(curves) if curves else default_curves(p)
    depth, values = welllogs.read_las_curves(p, names)
    depth_unit, declared = las_io.header(p)
    units = {m.upper(): u for m, u in declared}
    data.append((depth, values, os.path.basename(p), depth_unit,
                 [(m, units.get(m.upper(), "")) for m in names]))
  for sub in ("images", "masks", "las"):
    os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
  names = []
  for i in tqdm(range(n), desc="rendering", unit="log"):
    rng = np.random.default_rng([seed, i])
    depth, values, source, depth_unit, drawn_curves = data[i % len(data)]
    # One scale per file and curve, as on a printed log.
    scales = [_scale(np.random.default_rng([seed, i % len(data), k]), v, 0.4)
              for k, v in enumerate(values)]
    width = int(round(np.exp(rng.uniform(np.log(min_width), np.log(max_width)))))
    image, mask, dep, drawn, rows = render_one(rng, (depth, values, scales), width, height,
                                               style)
    name = f"{os.path.splitext(source)[0]}_{i:03d}"
    scan_io.write_png(os.path.join(out_dir, "images", f"{name}.png"), image)
    scan_io.write_png(os.path.join(out_dir, "masks", f"{name}_mask.png"), mask)
    write_truth(os.path.join(out_dir, "las", f"{name}.las"), dep, drawn, scales, rows, source,
                depth_unit=depth_unit, curves=drawn_curves)
    names.append(name)
  return names



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
    if not welllogs.MIN_WIDTH <= lo <= hi:
      raise ValueError(f"--min-width={lo} --max-width={hi}: need {welllogs.MIN_WIDTH} <= "
                       "--min-width <= --max-width (px)")
    if height < welllogs.MIN_HEIGHT or _flag("n") < 1:
      raise ValueError(f"--height={height} --n={_flag('n')}: need --height >= "
                       f"{welllogs.MIN_HEIGHT} px and --n >= 1")
    check_archive_flags(curves, height, lo)
  except ValueError as e:  # Flags: a usage error, before any file is read.
    print(f"error: {e}", file=sys.stderr)
    sys.exit(config_utils.USAGE_EXIT_CODE)
  try:
    if _flag("archive"):
      names = _archive(las, curves, out)
    else:
      names = render_set(las, curves, _flag("n"), out, seed=_flag("seed"),
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


def _archive(las, curves, out):
  from ssl_seg import archive  # Imported here: archive imports this module.
  return archive.render_archive(
      las, curves, _flag("n"), out, seed=_flag("seed"), height=_flag("height"),
      min_width=_flag("min-width"), max_width=_flag("max-width"),
      portrait_fraction=_flag("portrait-fraction"),
      two_track_fraction=_flag("two-track-fraction"), tiff_pages=_flag("tiff-pages"))


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=config_utils.parse_flags)
