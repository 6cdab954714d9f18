"""Layout files (`predict --layout=FILE.json`) and manifests (`--manifest=FILE.csv`).

A layout file says how one scan (or every scan of a run) maps to numbers; it is read into the
arguments of `scan_layout.make_layout`, the same ones predict's shortcut flags build:

  {"depth_axis": "vertical",                       // auto (default), vertical, horizontal
   "depth": {"unit": "FT", "first": 1000, "last": 1500},   // at the first / last pixel, or
   //       {"unit": "FT", "ties": [[120, 1000], [17700, 1500]]}  (pixel, depth), >= 2
   "well": "TOTEM 9",                               // optional; default: the manifest / stem
   "tracks": [{"span": [40, 975],                   // pixels across the value axis, end excl.
               "curves": [{"class": 1, "mnemonic": "GR", "unit": "GAPI",
                           "left": 0, "right": 150, "scale": "linear",
                           "description": "Gamma ray"}]}]}

Every key is optional but `class` (a curve) and `span` (a track, where there are several);
an unknown key is an error, so a typo never passes silently. A curve without left / right
has no values (its track position is still in the CSV). `examples/layout.json` is one.

A manifest is a CSV with columns `file`, `layout` and optionally `well` and `page`, one row
per scan file or per page of a multi-page TIFF; paths are relative to the manifest's folder, an
empty layout cell takes `--layout` (or the flags), a well cell names the LAS's WELL. A page cell
(1-based) makes the row that page's alone, winning over the file's row without one (which then
serves its other pages); empty: every page, or the one page of a one-page file.
"""

import csv
import json
import os

from ssl_seg.digitizer import curve_values, las, scan_layout, scans

_TOP = {"depth_axis", "depth", "well", "tracks"}
_DEPTH = {"unit", "first", "last", "ties"}
_TRACK = {"span", "curves"}
_CURVE = {"class", "mnemonic", "unit", "left", "right", "scale", "description"}


def _keys(where, obj, allowed):
  if not isinstance(obj, dict):
    raise ValueError(f"{where}: expected an object {{...}}, got {type(obj).__name__}")
  unknown = sorted(set(obj) - allowed)
  if unknown:
    raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; known: "
                     f"{', '.join(sorted(allowed))}")


def _number(where, value):
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ValueError(f"{where}: expected a number, got {value!r}")
  return float(value)


def _curve(where, c):
  _keys(where, c, _CURVE)
  if "class" not in c or isinstance(c["class"], bool) or not isinstance(c["class"], int):
    raise ValueError(f"{where}: 'class' (the curve's class id, e.g. 1) is required")
  mnemonic = str(c.get("mnemonic", "")).upper()
  if mnemonic:
    las.check_mnemonic(mnemonic)
  unit = las.check_unit(str(c.get("unit", "")))
  kind = c.get("scale", "linear")
  if kind not in ("linear", "log"):
    raise ValueError(f"{where}: 'scale' must be linear or log, got {kind!r}")
  if ("left" in c) != ("right" in c):
    raise ValueError(f"{where}: give both 'left' and 'right' (the values at the track's edges) "
                     "or neither")
  scale = None
  if "left" in c:
    scale = curve_values.Scale(_number(f"{where}.left", c["left"]),
                               _number(f"{where}.right", c["right"]), kind == "log")
  return scan_layout.Curve(c["class"], mnemonic, unit, scale, str(c.get("description", "")))


def parse(obj, where="layout"):
  """`scan_layout.make_layout` keyword arguments from a layout file's JSON object."""
  _keys(where, obj, _TOP)
  out = {"depth_axis": obj.get("depth_axis", "auto")}
  if out["depth_axis"] not in ("auto", "vertical", "horizontal"):
    raise ValueError(f"{where}: depth_axis must be auto, vertical or horizontal, got "
                     f"{out['depth_axis']!r}")
  if "well" in obj:
    out["well"] = str(obj["well"])
  if "depth" in obj:
    out.update(_depth(f"{where}.depth", obj["depth"]))
  tracks = obj.get("tracks", [])
  if not isinstance(tracks, list):
    raise ValueError(f"{where}.tracks: expected a list of tracks, got {tracks!r}")
  spans, curves = _tracks(where, tracks)
  out["tracks"] = tuple(spans)
  if any(c is not None for c in curves):
    if any(c is None for c in curves):
      raise ValueError(f"{where}.tracks: give 'curves' for every track or for none")
    out["curves"] = tuple(curves)
  return out


def _depth(where, d):
  """{"depth_unit", "depth"} from a layout's "depth" object."""
  _keys(where, d, _DEPTH)
  out = {"depth_unit": las.check_unit(str(d.get("unit", "M")))}
  if "ties" in d:
    if "first" in d or "last" in d:
      raise ValueError(f"{where}: give 'ties' or 'first' and 'last', not both")
    ties = d["ties"]
    if not isinstance(ties, list) or not all(isinstance(t, list) and len(t) == 2
                                             for t in ties):
      raise ValueError(f"{where}.ties: expected [[pixel, depth], ...], got {ties!r}")
    out["depth"] = tuple((_number(f"{where}.ties", p), _number(f"{where}.ties", v))
                         for p, v in ties)
  elif "first" in d and "last" in d:
    out["depth"] = (_number(f"{where}.first", d["first"]),
                    _number(f"{where}.last", d["last"]))
  else:
    raise ValueError(f"{where}: give 'first' and 'last' (depth at the first and last "
                     "pixel) or 'ties' ([[pixel, depth], ...])")
  return out


def _tracks(where, tracks):
  """(spans, per track its curves or None) from a layout's "tracks" list."""
  spans, curves = [], []
  for t, track in enumerate(tracks):
    w = f"{where}.tracks[{t}]"
    _keys(w, track, _TRACK)
    if "span" in track:
      span = track["span"]
      if (not isinstance(span, list) or len(span) != 2
          or not all(isinstance(v, int) and not isinstance(v, bool) for v in span)):
        raise ValueError(f"{w}.span: expected [X0, X1] (integer pixels), got {span!r}")
      spans.append(tuple(span))
    elif len(tracks) > 1:
      raise ValueError(f"{w}: 'span' is required where there are several tracks")
    cs = track.get("curves")
    if cs is not None:
      if not isinstance(cs, list) or not cs:
        raise ValueError(f"{w}.curves: expected a non-empty list of curves")
      curves.append(tuple(_curve(f"{w}.curves[{i}]", c) for i, c in enumerate(cs)))
    else:
      curves.append(None)
  return spans, curves


def load(path):
  """`parse` of a layout file; errors name the file."""
  path = os.fspath(path)
  try:
    with open(path) as f:
      obj = json.load(f)
  except FileNotFoundError:
    raise FileNotFoundError(f"layout file not found: {path}") from None
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ValueError(f"layout file {path}: not valid JSON ({e})") from None
  return parse(obj, where=f"layout file {path}")


def read_manifest(path, default=None):
  """{(absolute scan path, 1-based page or None): make_layout kwargs} from a manifest CSV (see
  the module docstring); look a scan up with `manifest_layout`.

  `default`: the kwargs for rows with an empty layout cell (None: such a row is an error).
  """
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  try:
    with open(path, newline="") as f:
      rows = list(csv.DictReader(f))
      header = rows[0].keys() if rows else []
  except FileNotFoundError:
    raise FileNotFoundError(f"manifest not found: {path}") from None
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise ValueError(f"manifest {path}: cannot read it ({e})") from None
  if not rows or not {"file", "layout"} <= set(header):
    raise ValueError(f"manifest {path}: expected a CSV with columns file, layout[, well, page] "
                     "and one row per scan file (or per page of a multi-page TIFF)")
  unknown = sorted(set(header) - set(_COLUMNS))
  if unknown:
    raise ValueError(f"manifest {path}: unknown column(s) {', '.join(unknown)}; known: "
                     f"{', '.join(_COLUMNS)}")
  cache, out, pages = {}, {}, {}
  for i, row in enumerate(rows, start=2):  # Line numbers as an editor shows them.
    where = f"manifest {path}, line {i}"
    if not row["file"]:
      raise ValueError(f"{where}: empty file cell")
    scan = os.path.normpath(os.path.join(folder, row["file"]))
    if not os.path.isfile(scan):
      raise FileNotFoundError(f"{where}: scan not found: {scan}")
    page = _page(where, row, scan, pages)
    if (scan, page) in out:
      raise ValueError(f"{where}: {row['file']}"
                       f"{'' if page is None else f' page {page}'} is listed twice")
    if row["layout"]:
      lpath = os.path.normpath(os.path.join(folder, row["layout"]))
      if lpath not in cache:
        cache[lpath] = load(lpath)
      kw = dict(cache[lpath])
    elif default is not None:
      kw = dict(default)
    else:
      raise ValueError(f"{where}: empty layout cell and no --layout for such rows")
    if row.get("well"):
      kw["well"] = row["well"]
    out[(scan, page)] = kw
  return out


_COLUMNS = ("file", "layout", "well", "page")


def _page(where, row, scan, pages):
  """A row's 1-based page, or None (an empty cell); `pages` caches the files' page counts."""
  text = (row.get("page") or "").strip()
  if not text:
    return None
  if not text.isdigit() or int(text) < 1:
    raise ValueError(f"{where}: page {text!r}: expected a page number (1, 2, ...) or nothing")
  if scan not in pages:
    pages[scan] = scans.page_count(scan)
  page, n = int(text), pages[scan]
  if n == 1:
    raise ValueError(f"{where}: page {page}: {row['file']} has one page; leave the page cell "
                     "empty")
  if page > n:
    raise ValueError(f"{where}: page {page}: {row['file']} has only {n} pages")
  return page


def manifest_layout(manifest, path, page=None):
  """The kwargs `read_manifest` gives scan `path`'s 1-based `page` (None: a one-page file):
  its page row, else its file's row; None where the manifest has neither."""
  path = os.path.abspath(path)
  if page is not None and (path, page) in manifest:
    return manifest[(path, page)]
  return manifest.get((path, None))
