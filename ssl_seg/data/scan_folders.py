"""A team's own scans as training data: a folder of unlabeled scans, or scans plus mask PNGs.

Each file is read as predict reads it (`scans`, any size, PNG / JPEG / TIFF), split into
tracks and turned into the model's layout (depth along the width) by the same `Layout` predict
uses, and every track is scaled, keeping its aspect ratio, to the training height: one log per
(file, track). The logs then go through the same pipeline as rendered ones (fixed-width random
windows for training, whole logs in width buckets for evaluation).

The layout is the folder-wide `depth_axis` / `tracks`, or, with `data.manifest` (one or more
predict manifests, `digitizer.layout_files`), each scan's (or TIFF page's) own: its row's layout
file gives the depth axis and the track spans, read by `layout_files.read_manifest` and built by
`scan_layout.make_layout` as predict builds them, so a folder may mix portrait and landscape,
one and two tracks. Scans the manifest does not list keep the folder-wide settings (one line
counts them); a row with an empty layout cell takes them too.

Every page of a multi-page TIFF is a scan of its own, read by the same `scans.read_image`
as predict reads it. Masks (class ids 0 / 1 / 2, same size as the scan) are matched by file
stem as `evaluate` matches them (`NAME_mask.png` or `NAME.png`); page k (1-based) of a
multi-page NAME.tif takes `NAME_pk_mask.png` (or `NAME_pk.png`), else page k of a mask TIFF
`NAME_mask.tif` with as many pages (a single-page scan may use such a TIFF too). Scaling a
1-px curve down by box filtering would blur it below any threshold, so a mask is scaled per
class with "any of the box" and curve2 painted last (the renderer's rule for overlaps): thin
curves stay connected.

A file (or page) that cannot be read, or whose mask is missing or does not fit, is skipped with
one line naming it; a folder that yields no log at all is an error. A colour scan is read as
grayscale, as predict reads it, with one line naming it: the models train on grayscale.
"""

import os

import numpy as np
from absl import logging
from PIL import Image
from tqdm import tqdm

from ssl_seg.data import image_files
from ssl_seg.digitizer import layout_files, scan_layout, scans


def scale_to_height(image, mask, height):
  """uint8 image [H, W] (and mask, or None) scaled to `height` rows, aspect ratio kept."""
  h, w = image.shape
  new_w = max(1, round(w * height / h))
  if (h, w) == (height, new_w):
    return image, mask
  resample = Image.Resampling.BOX if height < h else Image.Resampling.BILINEAR
  small = np.asarray(Image.fromarray(image).resize((new_w, height), resample))
  if mask is None:
    return small, None
  out = np.zeros((height, new_w), np.uint8)
  for k in range(1, int(mask.max(initial=0)) + 1):
    # Any pixel of class k in a box marks the box (BOX mean > 0); later classes win overlaps.
    share = np.asarray(Image.fromarray((mask == k).astype(np.float32)).resize(
        (new_w, height), Image.Resampling.BOX if height < h else Image.Resampling.NEAREST))
    out[share > 0] = k
  return small, out


def read_page_mask(masks_dir, path, page, pages, num_classes):
  """The mask of page `page` (0-based; None: a single-page scan) of scan `path`, which has
  `pages` pages: NAME[_pK]_mask.png / NAME[_pK].png, else page K of NAME_mask.tif(f)."""
  name = scans.stem(path)
  try:
    return scans.read_mask(scans.find_mask(
        masks_dir, name if page is None else f"{name}_p{page + 1}"), num_classes)
  except FileNotFoundError as e:
    tiffs = [os.path.join(masks_dir, f"{name}_mask{ext}") for ext in (".tif", ".tiff")]
    tiff = next((t for t in tiffs if os.path.isfile(t)), None)
    if tiff is None:
      raise FileNotFoundError(f"{e}, or a mask TIFF {name}_mask.tif") from None
  n = scans.page_count(tiff)
  if n != pages:
    raise ValueError(f"mask {tiff} has {n} page(s) but scan {path} has {pages}; give one mask "
                     "page per scan page (or per-page PNGs NAME_p1_mask.png, ...)")
  return scans.read_mask(tiff, num_classes, page=page)


def _file_logs(path, masks_dir, *, height, layout, num_classes, page=None, pages=1):
  """The logs (one per track) of one scan (a page of a multi-page TIFF: `page`, 0-based, of
  `pages`), as dicts of uint8 arrays; `layout`: `scan_layout.make_layout` kwargs."""
  image = scans.read_image(path, page=page)
  mask = None
  if masks_dir:
    mask = read_page_mask(masks_dir, path, page, pages, num_classes)
    if mask.shape != image.shape:
      raise ValueError(f"mask of {_label(path, page)} is {mask.shape[1]}x{mask.shape[0]} px but "
                       f"the scan is {image.shape[1]}x{image.shape[0]}")
  layout = scan_layout.make_layout(image.shape, **layout)
  logs = []
  for t in range(len(layout.tracks)):
    part = np.ascontiguousarray(layout.crop(image, t))
    part_mask = None if mask is None else np.ascontiguousarray(layout.crop(mask, t))
    img, seg = scale_to_height(part, part_mask, height)
    logs.append({"image": img} if seg is None else {"image": img, "seg": seg})
  return logs


def _label(path, page):
  return path if page is None else f"{path} (page {page + 1})"


def load_logs(paths, masks_dir, *, height, depth_axis="auto", tracks=(), num_classes=3,
              what="scans", manifest=None):
  """Logs of every readable scan in `paths` (each page of a multi-page TIFF one scan); bad
  files or pages are skipped with one line each.

  Args:
    manifest: `read_manifests`' {(absolute path, 1-based page or None): make_layout kwargs},
      each scan's (or page's) own layout; scans it does not list, and every scan without it,
      take `depth_axis` / `tracks`.
  """
  jobs = []
  for path in paths:
    pages = scans.page_count(path)
    jobs.extend((path, None if pages == 1 else k, pages) for k in range(pages))
  unit = "file(s)" if len(jobs) == len(paths) else "scan(s) (TIFF pages counted each)"
  folder_wide = {"depth_axis": depth_axis, "tracks": tuple(tracks)}
  logs, skipped, unlisted = [], 0, 0
  for path, page, pages in tqdm(jobs, desc=f"reading {what}", leave=False):
    layout = folder_wide
    if manifest is not None:
      layout = layout_files.manifest_layout(manifest, path,
                                            None if page is None else page + 1)
      if layout is None:
        unlisted += 1
        layout = folder_wide
    try:
      logs.extend(_file_logs(path, masks_dir, height=height, layout=layout,
                             num_classes=num_classes, page=page, pages=pages))
    except (ValueError, FileNotFoundError) as e:
      skipped += 1
      logging.warning("skipped %s: %s", _label(path, page), e)
      print(f"warning: skipped {_label(path, page)}: {e}")
    else:
      if scans.is_colour(path, page):
        print(f"{_label(path, page)}: colour scan read as grayscale (the model trains on "
              "grayscale)")
  if not logs:
    raise image_files.DataError(f"{what}: none of the {len(jobs)} {unit} could be used "
                            f"({skipped} skipped, see the lines above)")
  if skipped:
    print(f"{what}: {skipped} of {len(jobs)} {unit} skipped")
  if unlisted:
    spans = f"tracks={';'.join(map(str, tracks))}" if tracks else "one track"
    print(f"{what}: {unlisted} of {len(jobs)} {unit} not in the manifest, cut by the "
          f"folder-wide settings (depth_axis={depth_axis}, {spans})")
  return logs


def read_manifests(paths, *, depth_axis="auto", tracks=()):
  """`layout_files.read_manifest` of each CSV in `paths`, merged: {(absolute scan path, 1-based page
  or None): make_layout kwargs}; rows with an empty layout cell take `depth_axis` / `tracks`.
  A scan (or page) listed in two of them is an error: which layout wins would be a guess."""
  out, source = {}, {}
  for path in [paths] if isinstance(paths, str) else paths:
    for key, kw in layout_files.read_manifest(path, default={"depth_axis": depth_axis,
                                                             "tracks": tuple(tracks)}).items():
      if key in out:
        page = "" if key[1] is None else f" page {key[1]}"
        raise ValueError(f"manifest {path}: {key[0]}{page} is also listed in {source[key]}; "
                         "list each scan in one manifest")
      out[key], source[key] = kw, path
  return out


def split_files(paths, num_eval, seed):
  """(train, eval) file lists: `num_eval` files held out by a seeded draw (whole files, so
  the tracks of one scan never sit on both sides)."""
  if not 0 < num_eval < len(paths):
    raise image_files.DataError(f"data.num_eval={num_eval} must hold out at least one of the "
                            f"{len(paths)} file(s) and leave at least one for training; or set "
                            "data.eval_images")
  held = set(np.random.default_rng([seed, 0xe7a1]).permutation(len(paths))[:num_eval].tolist())
  return ([p for i, p in enumerate(paths) if i not in held],
          [p for i, p in enumerate(paths) if i in held])


def build_source(data, split, keys, num_classes=3):
  """Train or eval logs of a `welllog_files` data config (see configs/welllog_files.py)."""
  if not data.images:
    raise image_files.DataNotFoundError("welllog_files: data.images is not set; point it to a "
                                    "folder of scans")
  labeled = "seg" in keys
  if labeled and not data.masks:
    raise image_files.DataNotFoundError("welllog_files: this task needs labels but data.masks is "
                                    "not set; point it to the folder of mask PNGs")
  if data.eval_images:
    files = scans.list_scans(data.images if split == "train" else data.eval_images)
    masks = data.masks if split == "train" else (data.eval_masks or data.masks)
  else:
    train, held = split_files(scans.list_scans(data.images), data.num_eval, data.seed)
    files, masks = (train if split == "train" else held), data.masks
  manifest = None
  if data.get("manifest"):  # sources.validate read it once already: errors come early.
    manifest = read_manifests(data.manifest, depth_axis=data.depth_axis,
                              tracks=tuple(data.tracks))
  logs = load_logs(files, masks if labeled else "", height=data.height,
                   depth_axis=data.depth_axis, tracks=tuple(data.tracks),
                   num_classes=num_classes, what=f"{split} scans", manifest=manifest)
  return [{k: log[k] for k in keys} for log in logs]
