"""Seeded renderer of scanned well-log images with exact per-pixel curve masks.

Depth runs along the image width (x) and the log value along the height (y): inside a track,
value 0 is the bottom interior row and value 1 the top one. Mask ids: 0 background (paper,
grid, text, borders), 1 curve1, 2 curve2. Curve2 is drawn after curve1, so where the two
overlap the pixel shows curve2's ink and the mask says 2.

Values outside [0, 1] wrap around the track (a value of 1.2 is drawn at 0.2, like the backup
scales of real logs). Curves come from a synthetic geology-like generator (`synthetic_curves`)
or from real LAS files (`ssl_seg.digitizer.las`: `read_las_curves` -> `las_to_track` ->
`resample_to_width`).

The mask is derived from the same pixel list the ink is painted from, after every step that
removes ink (dashes, broken ink, NaN gaps), so it is exact by construction. Appearance-only
steps (fading, paper, grid, text, speckle, blur, JPEG) never touch it; skew rotates image and
mask by the same angle (nearest neighbour for the mask).
"""

import io

import numpy as np
from PIL import Image, ImageFilter

from ssl_seg.data import welllog_curves, welllog_page
from ssl_seg.data.welllog_style import (
  CHAR_W,
  MIN_TWO_TRACK_HEIGHT,
  RenderStyle,
  check_size,
)


def _wrap_period(x, length):
  """Index of the wrap period holding x: [0, L] is 0, (kL, (k+1)L] is k, [-L, 0) is -1."""
  return np.where(x > 0, np.ceil(x / length) - 1, np.floor(x / length))


def _rasterize(v, top, bottom, line_width):
  """Ink pixels (rows, cols, arc position) of curve `v` [W] in the track rows top..bottom."""
  # Each column draws a vertical run through its sample and halfway to each finite neighbour,
  # so the polyline stays connected; a run crossing a track edge continues from the other edge.
  length = bottom - top  # Track coordinate q: 0 at the bottom row's centre, `length` at top's.
  ok = np.isfinite(v)
  q = np.where(ok, v, 0.0) * length
  ok_prev = np.r_[False, ok[:-1]]
  ok_next = np.r_[ok[1:], False]
  mid_prev = np.where(ok_prev, (q + np.r_[q[:1], q[:-1]]) / 2, q)
  mid_next = np.where(ok_next, (q + np.r_[q[1:], q[-1:]]) / 2, q)
  lo = np.minimum(np.minimum(mid_prev, mid_next), q)
  hi = np.maximum(np.maximum(mid_prev, mid_next), q)
  # Arc length at each column's entry, so dashes and ink breaks follow the line, not x.
  step = np.where(ok[:-1] & ok[1:], np.sqrt(1.0 + np.diff(q) ** 2), 1.0)
  arc = np.r_[0.0, np.cumsum(step)]
  cols = np.flatnonzero(ok)
  lo, hi = lo[cols], hi[cols]
  k0, k1 = _wrap_period(lo, length), _wrap_period(hi, length)
  same, once, many = k1 == k0, k1 == k0 + 1, k1 >= k0 + 2
  piece_col = np.concatenate([cols[same], cols[once], cols[once], cols[many]])
  piece_lo = np.concatenate([lo[same] - k0[same] * length, lo[once] - k0[once] * length,
                             np.zeros(once.sum()), np.zeros(many.sum())])
  piece_hi = np.concatenate([hi[same] - k0[same] * length, np.full(once.sum(), length),
                             hi[once] - k1[once] * length, np.full(many.sum(), length)])
  piece_k = np.concatenate([k0[same], k0[once], k1[once], k0[many] + 1])
  # Thicken each piece and keep the rows whose centres it covers, clipped to the track.
  r0 = np.clip(np.ceil(piece_lo - line_width / 2), 0, length).astype(np.int64)
  r1 = np.clip(np.ceil(piece_hi + line_width / 2) - 1, 0, length).astype(np.int64)
  n = r1 - r0 + 1
  starts = np.cumsum(n) - n
  offsets = np.arange(n.sum()) - np.repeat(starts, n)
  rows = np.repeat(r0, n) + offsets
  col = np.repeat(piece_col, n)
  unwrapped = rows + np.repeat(piece_k, n) * length
  s = arc[col] + np.abs(unwrapped - mid_prev[col])
  if line_width >= 1.6:
    # Steep segments are one column wide; widen them into the next column if it has data.
    nxt = np.minimum(col + 1, len(v) - 1)
    extra = (col + 1 < len(v)) & ok[nxt]
    rows = np.concatenate([rows, rows[extra]])
    col = np.concatenate([col, col[extra] + 1])
    s = np.concatenate([s, s[extra]])
  return bottom - rows, col, s


def _keep_ink(rng, s, style, dashed):
  """Which ink pixels survive the line style and broken-ink gaps (both remove ink and mask)."""
  keep = np.ones(s.shape, bool)
  if dashed:
    if rng.random() < 0.6:
      on, off = rng.uniform(5.0, 10.0), rng.uniform(3.0, 5.0)
    else:
      on, off = rng.uniform(1.5, 2.5), rng.uniform(2.0, 3.0)
    keep &= (s + rng.uniform(0.0, on + off)) % (on + off) < on
  if s.size and rng.random() < style.p_broken:
    total = s.max() + 1.0
    n_gaps = rng.poisson(style.broken_gaps_per_1000px * total / 1000.0)
    gap_start = rng.uniform(0.0, total, n_gaps)
    gap_end = gap_start + rng.uniform(*style.broken_gap_len, n_gaps)
    edges = np.zeros(int(total) + 2 + int(style.broken_gap_len[1]) + 1)
    np.add.at(edges, gap_start.astype(int), 1)
    np.add.at(edges, gap_end.astype(int), -1)
    keep &= np.cumsum(edges)[s.astype(int)] <= 0
  return keep


def render_log(seed_or_rng, *, height: int, width: int, curves: np.ndarray | None = None,
               style: RenderStyle = RenderStyle()) -> tuple[np.ndarray, np.ndarray]:
  """Renders one scanned log: (image uint8 [H, W], mask uint8 [H, W] in {0, 1, 2})."""
  image, mask, _ = render_log_with_layout(seed_or_rng, height=height, width=width,
                                          curves=curves, style=style)
  return image, mask


def render_log_with_layout(seed_or_rng, *, height: int, width: int,
                           curves: np.ndarray | None = None, style: RenderStyle = RenderStyle()):
  """`render_log` plus where each curve went: (image, mask, layout).

  layout: "curves" [C, W] the drawn curves in track units (NaN = no ink, header columns
  included), "classes" [C] their mask ids, and "value_rows" [C] (row of value 1, row of value
  0): the interior track rows the curve's ink is centred on. Skew (`style.p_skew`) moves ink
  by up to `style.skew_max_shift_px` after this, so use p_skew=0 where exact rows matter.
  """
  # `curves` is [2, W] (curve1, curve2) or [4, W] (curve1, curve2 of track 1, then of track 2)
  # in track units, NaN = no ink; None draws synthetic ones. With [2, W] curves and two tracks,
  # curve1 and curve2 go to different tracks. Columns under a header block get no ink.
  check_size(height, width)
  rng = np.random.default_rng(seed_or_rng)
  curves, two_tracks = _curves(rng, style, height, width, curves)
  placement = _placement(rng, len(curves), two_tracks)
  boxes, text_row = welllog_page.layout(rng, style, height, two_tracks)
  x0, labels = _header(rng, style, width, placement, len(boxes))
  curves[:, :x0] = np.nan
  paper, tone = welllog_page.paper(rng, style, height, width)
  bg = np.zeros((height, width), np.float32)
  welllog_page.draw_layout(rng, style, bg, boxes, text_row, x0, labels)
  ink, mask = _paint_curves(rng, style, curves, placement, boxes, height)
  # Multiplicative ink over paper, in place: these are the largest arrays of a render.
  img = np.subtract(1.0, bg, out=bg)
  img *= paper
  img *= np.subtract(1.0, ink, out=ink)
  img *= 255.0
  image = np.clip(np.rint(img, out=img), 0, 255, out=img).astype(np.uint8)
  image, mask = _degrade(rng, style, image, mask, tone)
  layout = {"curves": curves, "classes": np.array([cls for _, cls in placement]),
            "value_rows": np.array([(boxes[t][0] + 1, boxes[t][1] - 1) for t, _ in placement])}
  return image, mask, layout


def _curves(rng, style, height, width, curves):
  """(curves [2 or 4, W] in track units, a copy; whether the log has two tracks)."""
  can_split = height >= MIN_TWO_TRACK_HEIGHT
  if curves is None:
    two_tracks = can_split and rng.random() < style.p_two_tracks
    n_rows = 4 if two_tracks and rng.random() < style.p_four_curves else 2
    curves = np.concatenate([
        welllog_curves.synthetic_curves(rng, width, p_gap=style.p_curve_gap,
                                        p_wrap=style.p_curve_wrap, p_rough=style.p_rough,
                                        roughness=style.roughness, p_spikes=style.p_spikes,
                                        spikes_per_100px=style.spikes_per_100px,
                                        spike_height=style.spike_height)
        for _ in range(n_rows // 2)])
    return curves, two_tracks
  curves = np.array(curves, dtype=float)
  if curves.ndim != 2 or curves.shape[0] not in (2, 4) or curves.shape[1] != width:
    raise ValueError(f"curves must be [2, width] or [4, width] with width={width}, "
                     f"got shape {curves.shape}")
  if curves.shape[0] == 4 and not can_split:
    raise ValueError(f"four curves need two tracks, i.e. height >= {MIN_TWO_TRACK_HEIGHT}")
  return curves, curves.shape[0] == 4 or (can_split and rng.random() < style.p_two_tracks)


def _placement(rng, n_curves, two_tracks):
  """Per curve (track index, mask id)."""
  if n_curves == 4:
    return [(0, 1), (0, 2), (1, 1), (1, 2)]
  if two_tracks:
    first = int(rng.integers(2))
    return [(first, 1), (1 - first, 2)]
  return [(0, 1), (0, 2)]


def _header(rng, style, width, placement, n_tracks):
  """(x0, labels): the columns a header block takes (0: none) and per track its lines."""
  headers = welllog_page.HEADERS
  names = [headers[i] for i in rng.choice(len(headers), len(placement), replace=False)]
  labels = [[f"{n:<5}{lft:g}  {rgt:g} {unit}" for (t, _), (n, lft, rgt, unit)
             in zip(placement, names) if t == i] for i in range(n_tracks)]
  header_w = max(len(s) for ls in labels for s in ls) * CHAR_W + 10
  x0 = 0
  if rng.random() < style.p_header and width >= 3 * header_w:
    x0 = header_w + int(rng.integers(3, 8))
  return x0, labels


def _paint_curves(rng, style, curves, placement, boxes, height):
  """(ink alpha float32 [H, W], mask uint8 [H, W]) of the curves in their track boxes."""
  width = curves.shape[1]
  ink = np.zeros((height, width), np.float32)
  mask = np.zeros((height, width), np.uint8)
  # Curve2 rows are painted after curve1 rows, so curve2 wins where they overlap.
  for k in sorted(range(len(curves)), key=lambda k: placement[k][1]):
    track, cls = placement[k]
    top, bottom = boxes[track]
    rows, cols, s = _rasterize(curves[k], top + 1, bottom - 1, rng.uniform(*style.line_width))
    dashed = cls == 2 and rng.random() < style.p_styled_curve2
    keep = _keep_ink(rng, s, style, dashed)
    rows, cols = rows[keep], cols[keep]
    alpha = np.full(width, rng.uniform(*style.ink_alpha), np.float32)
    if rng.random() < style.p_fade:
      # Fading changes how dark the ink is, never where it is.
      fade = np.clip(welllog_curves.smooth_noise(rng, width, int(rng.integers(2, 12)), 0.5)
                     + 0.5, 0, 1)
      alpha *= (1.0 - style.fade_strength * fade).astype(np.float32)
    ink[rows, cols] = alpha[cols]
    mask[rows, cols] = cls
  return ink, mask


def _degrade(rng, style, image, mask, tone):
  """Scan degradations; only skew moves pixels, and it moves the mask identically."""
  height, width = image.shape
  if rng.random() < style.p_skew:
    max_deg = min(style.skew_max_deg,
                  np.degrees(np.arctan(style.skew_max_shift_px / (width / 2))))
    angle = rng.uniform(-max_deg, max_deg)
    fill = round(tone * 255)
    image = np.asarray(Image.fromarray(image).rotate(
        angle, resample=Image.Resampling.BILINEAR, fillcolor=fill))
    mask = np.asarray(Image.fromarray(mask).rotate(
        angle, resample=Image.Resampling.NEAREST, fillcolor=0))
  if rng.random() < style.p_speckle:
    n = rng.binomial(height * width, rng.uniform(0.0, style.speckle_density))
    ys, xs = rng.integers(0, height, n), rng.integers(0, width, n)
    # Mostly dark dust, some bright dropouts; neither is ink, so the mask is unchanged.
    dark = rng.random(n) < 0.7
    values = np.where(dark, rng.uniform(0, 0.5, n) * 255, tone * 255).astype(np.uint8)
    image = image.copy()
    image[ys, xs] = values
  if rng.random() < style.p_blur:
    image = np.asarray(Image.fromarray(image).filter(
        ImageFilter.GaussianBlur(rng.uniform(*style.blur_sigma))))
  if rng.random() < style.p_jpeg:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG",
                                quality=int(rng.integers(style.jpeg_quality[0],
                                                         style.jpeg_quality[1] + 1)))
    image = np.asarray(Image.open(buf).convert("L"))
  return np.ascontiguousarray(image), np.ascontiguousarray(mask)
