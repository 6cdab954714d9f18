"""Evaluation logs rendered from LAS files, with their truth sidecars (`ssl_seg.render_las`).

`render_set` writes DIR/images, DIR/masks and DIR/las (the truth: per pixel column the source
depth and values drawn, per curve where its scale sits); `read_truth` reads a sidecar back for
`ssl_seg.evaluate`. The command's docstring describes the files.
"""

import dataclasses
import os

import lasio
import numpy as np
from tqdm import tqdm

from ssl_seg.data import welllog_curves, welllog_render, welllog_style
from ssl_seg.digitizer import curve_values, las, scans

# Mnemonics tried, in order, for curve1 and curve2 when --curves is not given.
GAMMA = ("GR", "GAMN", "SGR", "CGR", "GRC", "GAM")


SECOND = ("RHOB", "DNEAR", "RHOZ", "DEN", "ZDEN", "DTMN", "DT", "DTC", "AC", "NPHI", "NEUT")


def _scale(rng, values, p_wrap):
  """A fixed scale for a curve from its range (as `welllog_curves` does for training renders)."""
  lo, hi, floor = welllog_curves.scale_range(values)
  return curve_values.Scale(*welllog_curves.random_scale(rng, lo, hi, p_wrap, wrap_floor=floor))


def render_one(rng, source, width, height, style):
  """(image, mask, depth [W], values [2, W] drawn in source units, scales, value_rows)."""
  depth, values, scales = source
  [(start, n_win)] = las.depth_windows(rng, values, width)
  top, bottom = depth[start], depth[start + n_win - 1]
  cols = las.resample_to_width(depth, values, width, top=top, bottom=bottom)
  track = np.stack([las.las_to_track(v, left=s.left, right=s.right, log=s.log)
                    for v, s in zip(cols, scales)])
  image, mask, layout = welllog_render.render_log_with_layout(rng, height=height, width=width,
                                                              curves=track, style=style)
  drawn = np.where(np.isfinite(layout["curves"]), cols, np.nan)
  return image, mask, np.linspace(top, bottom, width), drawn, layout["value_rows"]


def default_curves(path):
  """The two mnemonics drawn from a LAS file without --curves (see the module docstring)."""
  _, curves = las.header(path)
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
  las.write(path, depth, values, depth_unit=depth_unit.replace(" ", "_"), well=source,
            units=units, descriptions=descriptions, params=params,
            other=f"Truth of a log rendered by ssl_seg.render_las from {source}.")


@dataclasses.dataclass
class Truth:
  """A sidecar read back: per curve k (1-based) its values per column, scale and rows."""
  values: dict
  scales: dict
  rows: dict


def read_truth(path):
  sidecar = lasio.read(os.fspath(path))
  out = Truth({}, {}, {})
  for k in (1, 2):
    name = f"CURVE{k}"
    if name not in sidecar.keys():
      continue
    p = {key: sidecar.params[f"C{k}{key}"].value for key in ("TOP", "BOT", "LEFT", "RIGHT", "LOG")}
    out.values[k] = las.curve_values(sidecar, name)
    out.scales[k] = curve_values.Scale(float(p["LEFT"]), float(p["RIGHT"]), bool(int(p["LOG"])))
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
  style = style or welllog_style.RenderStyle(p_skew=0.0)
  data = []
  for p in las_paths:
    names = list(curves) if curves else default_curves(p)
    depth, values = las.read_las_curves(p, names)
    depth_unit, declared = las.header(p)
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
    scans.write_png(os.path.join(out_dir, "images", f"{name}.png"), image)
    scans.write_png(os.path.join(out_dir, "masks", f"{name}_mask.png"), mask)
    write_truth(os.path.join(out_dir, "las", f"{name}.las"), dep, drawn, scales, rows, source,
                depth_unit=depth_unit, curves=drawn_curves)
    names.append(name)
  return names
