"""Tracks found in a scan from its long border lines, for predict / evaluate without a layout.

A track is a box whose borders are dark lines along the depth axis; inside are curves, lighter
grid lines and depth lines, between two tracks often a strip of depth numbers. `find_tracks`
reads the scan with the value axis down and depth across:

  darkness   per row, the ink's opacity 1 - pixel / paper (paper: that depth position's 90th
             percentile) averaged over >= 64 chunks of the depth axis (<= 100 px each), less the
             lighter of the row's two sides (2-3 rows away): a border is darker than the paper
             outside it whatever lies inside. The shear of the chunks giving the sharpest rows
             undoes a skew first. A line's *mass*: its darkness summed over its rows (+-1),
             opacity x px, so a line blurred over two rows counts in full.
  long line  a line whose mass is reached in >= `min_share` (80 %) of the chunks: gaps and
             crossing curves do not matter; curves and text are not long.
  border     a long line of mass >= 0.4 that has on one side the image's edge or another such
             line at least 0.7 as dark, and is at least 0.7 as dark as the darkest of those. A
             grid line, even a heavy one darker than the borders, has lighter ones beside it.
  track      the rows between two borders >= `min_width` apart that hold a grid line or ink in
             most chunks (the strip of depth numbers holds neither). Of borders closer than
             that (a strip, or a dark grid band just inside a border), a track takes the
             outermost, or its side of the widest gap where another track is beyond them.

Why 0.7 and 0.4: synthetic renders (`ssl_seg.data.welllogs`) draw borders at opacity 0.6-0.95,
grid lines at 0.12-0.45, heavy grid lines at 1.8x that: a light grid line is at most 0.75 of a
border and mostly under 0.4, a border at least 0.74 of a heavy line. On 200 renders each (grid
and depth lines on, no skew, value axis 200-400 px), the spans are right within 2 px for one
track 200 times, two tracks 195, default renders with borders and skew 197; without borders
the whole extent comes back 200 times. Misses: a border 0.7 as dark as another, a heavy grid
line beside a band of a decade's dense lines (tests/test_tracks.py pins some seeds).
"""

import numpy as np
from scipy import signal

MIN_BORDER = 0.4  # Mass (opacity x px) of the lightest border; see the module docstring.
BORDER_RATIO = 0.7
_FLOOR = 0.03  # Opacity under which a row holds no line (grain, stains).
_LINE_PX = 9  # A line's rows lie within 4 of its darkest.
_TEXT_PX = 5  # A light "line" this many rows wide is a band of text, not a grid line.
_CHUNKS = 64
_MAX_DEPTH = 4096  # Depth positions read (evenly spaced): lines run along depth anyway.
_CONTENT_SHARE = 0.5  # A track's interior has ink in at least this share of the chunks.


def find_tracks(image, vertical, *, min_width=16, min_share=0.8):
  """((a, b), ...) track spans across the value axis of a uint8 [H, W] scan (original pixels,
  b exclusive, as `scan_layout.Layout.tracks`); the whole extent where no pair of borders is
  found. vertical: depth runs down the page (the value axis is the columns)."""
  x = np.asarray(image).T if vertical else np.asarray(image)  # [value, depth]
  extent, length = x.shape
  x = x[:, ::-(-length // _MAX_DEPTH)].astype(np.float32)
  if x.shape[1] < 8 or extent < 2 * min_width:
    return ((0, extent),)
  mean, peak = _chunk_ink(x, length)
  drift = _skew(mean, length)
  mean, peak = _shear(mean, drift), _shear(peak, drift)
  lines = _long_lines(_ridges(mean, max(2, extent // 400)), min_share)
  return tuple(_pair(_borders(lines), peak, lines, min_width)) or ((0, extent),)


def describe(spans, extent, vertical):
  """What `find_tracks` found, in words for a person."""
  if tuple(spans) == ((0, extent),):
    return f"no track borders found; using the whole {'width' if vertical else 'height'}"
  listed = ", ".join(f"{a}:{b}" for a, b in spans)
  return (f"{len(spans)} track{'s' * (len(spans) > 1)} found automatically "
          f"({'columns' if vertical else 'rows'} {listed})")


def _chunk_ink(x, length):
  """(mean, max) float [value, n] of the ink's opacity over n chunks of the depth axis (the
  columns of `x`, `length` positions in the scan)."""
  # Ink multiplies the paper: 1 - pixel / paper is its opacity on any paper tone.
  paper = np.maximum(np.quantile(x, 0.9, axis=0, keepdims=True), 1.0)
  ink = 1.0 - x / paper
  n = min(x.shape[1] // 4, max(_CHUNKS, length // 100))
  starts = np.linspace(0, x.shape[1], n + 1).astype(int)[:-1]
  sizes = np.diff(np.append(starts, x.shape[1]))
  return (np.add.reduceat(ink, starts, axis=1) / sizes,
          np.maximum.reduceat(ink, starts, axis=1))


def _shear(chunks, total):
  """`chunks` with chunk j moved by round(total * (j / (n - 1) - 0.5)) rows (edge-padded)."""
  n = chunks.shape[1]
  shifts = np.rint(total * (np.arange(n) / max(n - 1, 1) - 0.5)).astype(int)
  rows = np.clip(np.arange(chunks.shape[0])[:, None] + shifts[None, :], 0, chunks.shape[0] - 1)
  return np.take_along_axis(chunks, rows, axis=0)


def _skew(chunks, length):
  """The drift in whole rows over the depth extent (up to 1 % of its `length`, at least 4) whose
  `_shear` gives the sharpest rows, 0 on a tie: a skewed scan's lines then lie in one row."""
  reach = max(4, length // 100)
  return max(range(-reach, reach + 1),
             key=lambda t: (np.square(_shear(chunks, t).mean(1)).sum(), -abs(t)))


def _ridges(mean, gap):
  """`mean` [value, n] less its background: per row, the lighter of its two sides, each the mean
  of the rows `gap` and `gap + 1` away (a thicker line at a higher resolution needs a larger
  gap). A border is darker than its outer side (paper) even with curves and text along its
  inner side, a grid line than the track around it (depth lines' plateau included)."""
  v = mean.shape[0]
  padded = np.pad(mean, ((gap + 1, gap + 1), (0, 0)), mode="edge")
  before = (padded[:v] + padded[1:v + 1]) / 2
  after = (padded[2 * gap + 1:2 * gap + 1 + v] + padded[2 * gap + 2:2 * gap + 2 + v]) / 2
  return mean - np.minimum(before, after)


def _long_lines(ridges, min_share):
  """[(first row, last row, mass)] of the lines in >= min_share of the chunks (module
  docstring); a line's rows are those by a peak of the mean at least half as dark as it."""
  profile = ridges.mean(1)
  peaks, props = signal.find_peaks(np.pad(profile, 1), prominence=_FLOOR / 2)
  peaks -= 1
  # A shoulder of a blurred or JPEG-ringing line is no line of its own.
  peaks = peaks[props["prominences"] >= 0.3 * profile[peaks]]
  lines = []
  for i, p in enumerate(peaks):
    lo = max(p - _LINE_PX // 2, (peaks[i - 1] + p) // 2 + 1 if i else 0)
    hi = min(p + _LINE_PX // 2, (p + peaks[i + 1]) // 2 if i + 1 < len(peaks) else p + _LINE_PX,
             len(profile) - 1)
    a, b = p, p
    while a > lo and profile[a - 1] >= profile[p] / 2:
      a -= 1
    while b < hi and profile[b + 1] >= profile[p] / 2:
      b += 1
    mass = ridges[max(lo, min(a, p - 1)):min(hi, max(b, p + 1)) + 1].sum(0)
    lines.append((int(a), int(b), float(np.quantile(mass, 1.0 - min_share))))
  floor = max(_FLOOR, 0.15 * max((m for _, _, m in lines), default=0.0))
  return [(a, b, m) for a, b, m in lines
          if m >= floor and (m >= MIN_BORDER or b - a + 1 < _TEXT_PX)]


def _borders(lines):
  """The long lines that are borders (see the module docstring)."""
  mass = [m for _, _, m in lines]

  def like(i, j):  # Line j, beside line i, is the edge or a border about as dark.
    return j < 0 or j == len(lines) or (mass[j] >= MIN_BORDER
                                         and mass[j] >= BORDER_RATIO * mass[i])

  keep = [i for i, m in enumerate(mass)
          if m >= MIN_BORDER and (like(i, i - 1) or like(i, i + 1))]
  top = max((mass[i] for i in keep), default=0.0)
  return [lines[i] for i in keep if mass[i] >= BORDER_RATIO * top]


def _pair(borders, peak, lines, min_width):
  """Spans between borders that are tracks (see the module docstring)."""
  # Runs of borders with no room for a track between them: a strip of depth numbers, or a
  # border with a dark grid band just inside it.
  runs = []
  for i, (start, _, _) in enumerate(borders):
    if runs and start - borders[i - 1][1] - 1 < min_width:
      runs[-1].append(i)
    else:
      runs.append([i])
  level = max(_FLOOR, 0.5 * min((m for _, _, m in borders), default=0.0))
  tracks = []  # Indices k of the runs k, k + 1 with a track between them.
  for k in range(len(runs) - 1):
    a, b = borders[runs[k][-1]][1] + 1, borders[runs[k + 1][0]][0]
    grid = any(a <= lo and hi < b for lo, hi, _ in lines)
    inner = peak[a + 2:b - 2]  # Off the borders' blur.
    if grid or (inner >= level).any(0).mean() >= _CONTENT_SHARE:
      tracks.append(k)

  def split(run):  # Two tracks share a run: each takes its side of the widest gap in it.
    gaps = [borders[j + 1][0] - borders[j][1] for j in run[:-1]]
    return int(np.argmax(gaps)) + 1 if gaps else 0

  spans = []
  for k in tracks:
    before, after = runs[k], runs[k + 1]
    # Without a track beyond it, a run's outermost line is the track's edge.
    top = before[split(before) if k - 1 in tracks else 0]
    bottom = after[split(after) - 1 if k + 1 in tracks else -1]
    spans.append((borders[top][1] + 1, borders[bottom][0]))
  return spans
