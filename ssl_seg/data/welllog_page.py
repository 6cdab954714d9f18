"""The page under the curves of a rendered scan: paper, track boxes, grids, borders and text.

All of it is background (mask 0); `welllog_render` paints the curves over it.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ssl_seg.data.welllog_style import TEXT_H

# (mnemonic, left, right, unit): header text that looks like real track headers.
HEADERS = (
    ("GR", 0, 150, "API"), ("SP", -80, 20, "MV"), ("ILD", 0.2, 2000, "OHMM"),
    ("RHOB", 1.95, 2.95, "G/C3"), ("NPHI", 0.45, -0.15, "V/V"), ("DT", 140, 40, "US/F"),
    ("CALI", 6, 16, "IN"), ("LLS", 0.2, 2000, "OHMM"), ("PEF", 0, 10, "B/E"),
)


def layout(rng, style, height, two_tracks):
  """Track boxes [(top, bottom)] (border rows; curves go strictly inside) and depth text row."""
  m_top = int(rng.integers(1, max(1, height // 12) + 1))
  m_bot = int(rng.integers(1, max(1, height // 12) + 1))
  avail = height - m_top - m_bot
  numbers = rng.random() < style.p_depth_numbers
  text_row = None
  if two_tracks:
    # Real logs print depths in a strip between tracks; give it room when the image has it.
    gap = TEXT_H + 2 if numbers and height >= 80 else int(rng.integers(2, height // 16 + 3))
    h1 = round((avail - gap) * rng.uniform(0.4, 0.6))
    boxes = [(m_top, m_top + h1 - 1), (m_top + h1 + gap, height - m_bot - 1)]
    if numbers and gap > TEXT_H:
      text_row = m_top + h1 + 1
  else:
    boxes = [(m_top, height - m_bot - 1)]
  if numbers and text_row is None and boxes[0][1] - boxes[0][0] >= 3 * TEXT_H:
    text_row = boxes[0][0] + 2 if rng.random() < 0.5 else boxes[0][1] - TEXT_H - 1
  return boxes, text_row


def paper(rng, style, height, width):
  """Paper luminance [H, W] float32 and its mean tone."""
  if rng.random() < style.p_yellowed:
    tone = rng.uniform(*style.paper_yellowed)
  else:
    tone = rng.uniform(*style.paper_white)
  paper = np.full((height, width), tone, np.float32)
  if style.blotch_strength > 0:
    cell = int(rng.integers(max(4, height // 3), max(5, height) + 1))
    small = rng.normal(0.0, style.blotch_strength, (height // cell + 2, width // cell + 2))
    paper += np.asarray(Image.fromarray(small.astype(np.float32)).resize(
        (width, height), Image.Resampling.BILINEAR))
  if style.grain_sigma > 0:
    grain = rng.standard_normal((height, width), dtype=np.float32)
    grain *= np.float32(style.grain_sigma)
    paper += grain
  return paper, tone


def _grid_rows(rng, top, bottom, log_grid):
  """Rows of value-axis grid lines inside a track box, and which of them are heavy."""
  length = bottom - top - 2
  if log_grid:
    n_dec = int(rng.integers(2, 5))
    m = np.tile(np.arange(1, 10), n_dec)
    u = (np.repeat(np.arange(n_dec), 9) + np.log10(m)) / n_dec
    heavy = m == 1
  else:
    n_div = int(rng.choice([4, 5, 10]))
    u = np.arange(n_div) / n_div
    heavy = np.arange(n_div) * 2 == n_div
  # The track's bottom edge is the border, not a grid line.
  return bottom - 1 - np.round(u[1:] * length).astype(int), heavy[1:]


def draw_layout(rng, style, bg, boxes, text_row, x0, curve_labels):
  """Paints borders, grids, depth lines and text (all mask 0) into the alpha map `bg`."""
  height, width = bg.shape
  texts = []
  if rng.random() < style.p_grid:
    a = rng.uniform(*style.grid_alpha)
    log_grid = rng.random() < style.p_log_grid
    for top, bottom in boxes:
      rows, heavy = _grid_rows(rng, top, bottom, log_grid)
      bg[rows, x0:] = np.maximum(bg[rows, x0:], np.where(heavy, min(1.0, 1.8 * a), a)[:, None])
  if rng.random() < style.p_depth_grid:
    a = rng.uniform(*style.grid_alpha)
    spacing = rng.uniform(8.0, 24.0)
    xs = np.round(x0 + rng.uniform(0, spacing) + spacing * np.arange(width / spacing + 1))
    xs = xs.astype(int)
    first = int(rng.integers(0, 5))
    heavy = (np.arange(len(xs)) + first) % 5 == 0
    xs, heavy = xs[xs < width], heavy[xs < width]
    alpha = np.where(heavy, min(1.0, 1.8 * a), a).astype(np.float32)
    for top, bottom in boxes:
      bg[top:bottom + 1, xs] = np.maximum(bg[top:bottom + 1, xs], alpha)
    if text_row is not None:
      unit = float(rng.choice([0.5, 1.0, 2.0, 5.0, 10.0]))
      depth0 = float(rng.integers(10, 400)) * 10.0
      for j in np.flatnonzero(heavy):
        label = depth0 + unit * (j + first)
        texts.append((int(xs[j]) + 2, text_row, f"{label:g}"))
  if rng.random() < style.p_border:
    a = rng.uniform(0.6, 0.95)
    for top, bottom in boxes:
      bg[[top, bottom], max(0, x0 - 1):] = a
      if x0 > 0:
        bg[top:bottom + 1, x0 - 1] = a
  if x0 > 0:
    # Header block: a box per track holding one "NAME left right UNIT" line per curve.
    a = rng.uniform(0.6, 0.95)
    for (top, bottom), labels in zip(boxes, curve_labels):
      bg[[top, bottom], :x0 - 3] = a
      bg[top:bottom + 1, [0, x0 - 4]] = a
      for i, label in enumerate(labels):
        y = top + 2 + i * (TEXT_H + 1)
        if y + TEXT_H < bottom:
          texts.append((3, y, label))
  if texts:
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    font = ImageFont.load_default_imagefont()
    for x, y, s in texts:
      draw.text((x, y), s, fill=255, font=font)
    text_alpha = np.asarray(layer, np.float32) * np.float32(rng.uniform(*style.text_alpha) / 255)
    np.maximum(bg, text_alpha, out=bg)
