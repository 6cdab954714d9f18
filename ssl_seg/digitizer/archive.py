r"""`render_las --archive`: a folder of scans as a team's archive holds them, with their truth.

  python -m ssl_seg.render_las --archive --las=A.las,B.las --n=8 --out=DIR \
      [--portrait-fraction=0.5] [--two-track-fraction=0.5] [--tiff-pages=3]

DIR/scans/NAME.png        the scans: depth along the width, or down the page (portrait, turned
                          clockwise: a track's left value on the left); the last file, with
                          --tiff-pages >= 2, is NAME.tif with that many pages
DIR/masks/NAME_mask.png   the true class ids (NAME_pK_mask.png for page K of the TIFF, the
                          names `configs/welllog_files.py` reads)
DIR/layouts/NAME.json     the `predict --layout` file of the scan (NAME_pK.json per page):
                          depth ties at the first and last pixel along the depth axis in the
                          source's depth unit, per track its span across the value axis, per
                          curve its class, SOURCE mnemonic and unit, left / right and scale
DIR/truth/NAME.las        the source's own samples over the scan's depth window (from the
                          first column not under a header block) for every curve drawn, in the
                          source's units (NaN where the source is null or a log scale cannot
                          draw it); ~Parameter SCAN / PAGE / LAYOUT name what it is the truth of
DIR/manifest.csv          file,page,layout,well: every scan for `predict --manifest`, a
                          row per page of the TIFF (page 1, 2...) with that page's layout

Each scan is a random depth window of one file (round-robin over --las) at 0.25-4 source
samples per pixel, on a fixed scale per file and curve (`welllog_curves.random_scale`, log for
curves spanning > 20x, sometimes reversed or narrow enough to wrap), with the default scan style
but no skew (skew moves ink off the layout's rows). Unlike the default mode the values are
drawn unclipped, so the truth is the source itself. --portrait-fraction and
--two-track-fraction of the files (rounded, a seeded draw) are portrait and two-track. A
two-track scan is twice --height across and draws four curves, curve1 / curve2 in each track,
where the file has four usable ones (--curves with four names, else the two of the one-track
scans plus two more: a resistivity, neutron, SP, caliper... curve with values on at least half
its depths); a file with fewer draws its two curves one per track (one class each).

The TIFF's pages are consecutive depth windows of one file on one chart (same size, tracks,
scales and paper), as a long log scanned in parts; each has its own depth ties.
"""

import csv
import dataclasses
import json
import os
import re

import lasio
import numpy as np
from PIL import Image
from tqdm import tqdm

from ssl_seg.data import welllog_curves, welllog_render, welllog_style
from ssl_seg.digitizer import curve_values, las, render, scans

# Mnemonics tried, in order, for a two-track scan's third and fourth curve; then the file's
# other curves in its own order.
EXTRA = ("ILD", "LLD", "RT", "RDEP", "RES", "PR", "LLS", "ILM", "NPHI", "NEUT", "TNPH", "SP",
         "CALI", "CAL", "PEF", "DT", "DTC", "RHOB", "DFAR")
MIN_FINITE = 0.5  # Share of a file's depths a curve needs values on to be drawn.


@dataclasses.dataclass
class Source:
  """One LAS file's drawn curves: values unclipped, in its units, NaN where null."""
  path: str
  well: str
  depth_unit: str
  depth: np.ndarray  # [n], increasing
  values: np.ndarray  # [C, n]
  mnemonics: list
  units: list
  scales: list  # A `curve_values.Scale` per curve, fixed per file as on a printed log.


def _read(path, names):
  """(depth, values [len(names), n]) unclipped: the truth is the source, not percentiles."""
  return las.read_las_curves(path, names, clip_percentiles=None)


def pick_curves(path, curves=None):
  """The mnemonics drawn from `path`: `curves` (2 or 4), else `render.default_curves`
  plus up to two more usable ones (see the module docstring)."""
  if curves:
    return list(curves)
  picked = render.default_curves(path)
  _, declared = las.header(path)
  others = [m for m, _ in declared if m.upper() != "DEPT" and m not in picked]
  rank = {m: i for i, m in enumerate(EXTRA)}
  others.sort(key=lambda m: rank.get(m.upper(), len(EXTRA)))  # Stable: file order after.
  for m in others:
    if len(picked) == 4:
      break
    try:
      _, v = _read(path, [m])
    except ValueError:  # All null or not numeric: not drawable.
      continue
    if np.isfinite(v).mean() >= MIN_FINITE:
      picked.append(m)
  return picked[:2] if len(picked) < 4 else picked


def _las_name(text):
  """A LAS mnemonic / unit a reader gets back unchanged (layout_files and las refuse others)."""
  return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_").upper() or "CURVE"


def load_source(path, curves, seed, index, p_wrap=0.4):
  """A `Source` of file number `index`; scales seeded by (seed, index, curve)."""
  names = pick_curves(path, curves)
  depth, values = _read(path, names)
  depth_unit, declared = las.header(path)
  units = {m.upper(): u for m, u in declared}
  scales = []
  for k, v in enumerate(values):
    # The 1st / 99th percentile, as the default mode's clipped range: rare spikes wrap.
    lo, hi = np.nanpercentile(v, [1, 99])
    floor = min(welllog_curves.wrap_floor(v), hi)
    rng = np.random.default_rng([seed, index, k])
    scales.append(curve_values.Scale(*welllog_curves.random_scale(rng, lo, hi, p_wrap,
                                                                  wrap_floor=floor)))
  well = lasio.read(path, ignore_data=True).well
  return Source(path, str(well["WELL"].value if "WELL" in well else "") or scans.stem(path),
                re.sub(r"[\s:]+", "_", depth_unit), depth, values,
                [_las_name(m) for m in names],
                [re.sub(r"[\s:]+", "_", units.get(m.upper(), "")) for m in names], scales)


@dataclasses.dataclass
class Page:
  """One rendered scan (or TIFF page): pixels, truth and its layout file's JSON object."""
  image: np.ndarray
  mask: np.ndarray
  layout: dict
  truth_depth: np.ndarray
  truth: dict  # {mnemonic: source values at truth_depth}


def _tracks(value_rows, classes, across, portrait):
  """[(span, [(curve index, class)])] in pixel order, from the renderer's value rows: the
  rows of values 1 and 0, so a span makes the track's edges the scale's left and right."""
  groups = {}
  for k, ((r1, r0), cls) in enumerate(zip(value_rows, classes)):
    groups.setdefault((int(r1), int(r0)), []).append((k, int(cls)))
  out = []
  for (r1, r0), curves in groups.items():
    # Portrait pixels are the landscape's turned clockwise: row r becomes column across-1-r.
    span = [across - 1 - r0, across - r1] if portrait else [r1, r0 + 1]
    out.append((span, sorted(curves, key=lambda c: c[1])))
  return sorted(out)


def render_page(seed, source, window, *, width, height, two_tracks, portrait, style):
  """A `Page` of `source`'s samples window (start, n). `seed` alone decides the chart (track
  boxes, grid, paper, header): pages of one TIFF share it."""
  start, n_win = window
  four = two_tracks and len(source.mnemonics) == 4
  idx = list(range(4 if four else 2))
  top, bottom = source.depth[start], source.depth[start + n_win - 1]
  cols = las.resample_to_width(source.depth, source.values[idx], width, top=top,
                               bottom=bottom)
  scales = [source.scales[i] for i in idx]
  track = np.stack([las.las_to_track(v, left=s.left, right=s.right, log=s.log)
                    for v, s in zip(cols, scales)])
  across = max(2 * height, 48) if two_tracks else height  # 48: the renderer's two-track least.
  style = dataclasses.replace(style, p_two_tracks=float(two_tracks))
  image, mask, drawn = welllog_render.render_log_with_layout(
      np.random.default_rng(seed), height=across, width=width, curves=track, style=style)
  if portrait:
    image, mask = (np.ascontiguousarray(np.rot90(a, -1)) for a in (image, mask))
  tracks = []
  for span, curves in _tracks(drawn["value_rows"], drawn["classes"], across, portrait):
    tracks.append({"span": span, "curves": [
        {"class": cls, "mnemonic": source.mnemonics[idx[k]], "unit": source.units[idx[k]],
         "left": scales[k].left, "right": scales[k].right,
         "scale": "log" if scales[k].log else "linear",
         "description": f"{source.mnemonics[idx[k]]} of {os.path.basename(source.path)}"}
        for k, cls in curves]})
  layout = {"depth_axis": "vertical" if portrait else "horizontal",
            "depth": {"unit": source.depth_unit, "ties": [[0, float(top)],
                                                          [width - 1, float(bottom)]]},
            "well": source.well, "tracks": tracks}
  # Columns under a header block hold no ink: the truth starts after them.
  inked = np.isfinite(drawn["curves"]).any(axis=0)
  first = np.linspace(top, bottom, width)[int(np.argmax(inked))]
  rows = slice(int(np.searchsorted(source.depth, first - 1e-9 * max(abs(first), 1.0))),
               start + n_win)
  truth = {}
  for i, s in zip(idx, scales):
    v = source.values[i, rows]
    truth[source.mnemonics[i]] = np.where(v > 0, v, np.nan) if s.log else v  # As drawn.
  return Page(image, mask, layout, source.depth[rows], truth)


def write_truth(path, page, source, scan, page_no, layout_file):
  units = dict(zip(source.mnemonics, source.units))
  las.write(path, page.truth_depth, page.truth, depth_unit=source.depth_unit,
            well=source.well, units={m: units[m] for m in page.truth},
            descriptions={m: f"{m} of {os.path.basename(source.path)}, as drawn"
                          for m in page.truth},
            params={"SCAN": scan, "PAGE": page_no, "LAYOUT": layout_file},
            other=f"Truth of {scan}{f' page {page_no}' if page_no else ''}, written by "
            f"ssl_seg.render_las --archive: the samples of {os.path.basename(source.path)} "
            "over the scan's depth window, NULL where the source is null or its log scale "
            "cannot draw them.")


def _write_json(path, obj):
  text = json.dumps(obj, indent=1)
  # Lists of numbers on one line each ([0, 45.6], [5, 97]): a layout a person can read.
  text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]",
                text)
  with open(path + ".tmp", "w") as f:  # Atomically, as the other outputs.
    f.write(text + "\n")
  os.replace(path + ".tmp", path)


def _flags(n, fraction, rng):
  """bool [n]: exactly round(n x fraction) True, at seeded places."""
  out = np.zeros(n, bool)
  out[rng.permutation(n)[:int(round(n * fraction))]] = True
  return out


def render_archive(las_paths, curves, n, out_dir, *, seed=0, height=128, min_width=400,
                   max_width=2400, portrait_fraction=0.5, two_track_fraction=0.5, tiff_pages=3,
                   style=None, p_wrap=0.4):
  """Writes the archive (module docstring) of n scan files; returns the names predict gives
  their outputs (NAME, or NAME_p1... for the TIFF's pages)."""
  style = style or welllog_style.RenderStyle(p_skew=0.0)
  sources = [load_source(p, curves, seed, i, p_wrap) for i, p in enumerate(las_paths)]
  for sub in ("scans", "masks", "layouts", "truth"):
    os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
  portrait = _flags(n, portrait_fraction, np.random.default_rng([seed, 0x9047]))
  two = _flags(n, two_track_fraction, np.random.default_rng([seed, 0x7777]))
  rows, names = [], []
  for i in tqdm(range(n), desc="rendering", unit="scan"):
    source = sources[i % len(sources)]
    rng = np.random.default_rng([seed, i])
    width = int(round(np.exp(rng.uniform(np.log(min_width), np.log(max_width)))))
    pages = tiff_pages if tiff_pages > 1 and i == n - 1 else 1
    name = f"{scans.stem(source.path)}_{i:03d}"
    scan = f"scans/{name}{'.tif' if pages > 1 else '.png'}"
    images = []
    for k, window in enumerate(las.depth_windows(rng, source.values, width, pages)):
      page = render_page([seed, i, 1], source, window, width=width, height=height,
                         two_tracks=bool(two[i]), portrait=bool(portrait[i]), style=style)
      out = name if pages == 1 else f"{name}_p{k + 1}"
      scans.write_png(os.path.join(out_dir, "masks", f"{out}_mask.png"), page.mask)
      _write_json(os.path.join(out_dir, "layouts", f"{out}.json"), page.layout)
      write_truth(os.path.join(out_dir, "truth", f"{out}.las"), page, source, scan,
                  k + 1 if pages > 1 else 0, f"layouts/{out}.json")
      images.append(page.image)
      names.append(out)
      rows.append({"file": scan, "page": k + 1 if pages > 1 else "",
                   "layout": f"layouts/{out}.json", "well": source.well})
    if pages == 1:
      scans.write_png(os.path.join(out_dir, scan), images[0])
    else:
      first, *rest = (Image.fromarray(a) for a in images)
      first.save(os.path.join(out_dir, scan + ".tmp"), format="TIFF", save_all=True,
                 append_images=rest)
      os.replace(os.path.join(out_dir, scan + ".tmp"), os.path.join(out_dir, scan))
  with open(os.path.join(out_dir, "manifest.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, ["file", "page", "layout", "well"])
    writer.writeheader()
    writer.writerows(rows)
  return names
