"""The scale a track is segmented at: the training height (default) or the scan's stroke width.

CurveNet is fully convolutional, so it runs at any scale; what it learned is curves whose
strokes are about `TRAIN_STROKE_PX` across on tracks of the training height (128 px). The
default, `--resolution=height`, scales every track across the value axis to the training
height whatever its strokes (as before issue 15: the README's numbers and the tests rely on
it). On a 300-dpi portrait scan whose track is ~935 px across that shrinks 3-px strokes below a
pixel. `--resolution=stroke` scales a track so its strokes become `TRAIN_STROKE_PX` instead,
from `--px-per-stroke` or from `stroke_width`'s estimate of the scan; `--target-height` sets the
scaled height outright. A track scaled taller than the training height is cut into windows
along the value axis too (`segmenter.Segmenter.logits`), so there is still one compile.

The estimator: pixels darker than paper by `INK_THRESHOLD` of the paper's level are ink; each
ink pixel's stroke width is the shorter of its two runs of ink (along rows, along columns):
across a curve's stroke, whichever way the curve runs. The estimate is their harmonic mean over
pixels, which is the mean over runs (a run of r pixels adds r times 1/r): long runs (text,
blots, a stretch of curve along the axis) weigh little. Grid lines and text dark enough count
too; they scale with the scan as the strokes do. On 300 default renders (`welllogs`, 128 px
high, 768 or 1024 wide, `RenderStyle.line_width` drawn from (1.0, 1.7) px) its median is
1.38 px (quartiles 1.26, 1.66): `TRAIN_STROKE_PX`, the typical training log, pinned by
tests/test_resolution.py. Upscaled k times by nearest resampling a render reads exactly k times
as much; by bilinear / bicubic 4x, 0.98 / 0.97 times that (12 renders): a scanner's blur does
not fool it much.
"""

import dataclasses

import numpy as np
from scipy import ndimage

# The estimator's median reading of training renders (module docstring), not a property of
# RenderStyle.line_width alone: a sloped stretch of curve is inked down to its neighbour's row,
# which widens its runs, and grid lines and text count too.
TRAIN_STROKE_PX = 1.4
INK_THRESHOLD = 0.35  # Ink: darker than paper by this share of the paper's level.
MIN_INK_PIXELS = 50  # Fewer ink pixels say nothing about strokes: no estimate.
SAMPLE_PIXELS = 4_000_000  # A larger track is read in blocks of columns spread over its length.
SAMPLE_COLUMNS = 512
MODES = ("height", "stroke")


def stroke_width(images):
  """Estimated stroke width (px) of the curves in uint8 images [H, W] (the tracks of one scan,
  in any orientation), or None where they hold fewer than MIN_INK_PIXELS ink pixels."""
  if isinstance(images, np.ndarray):
    images = [images]
  runs = [_min_runs(block) for image in images for block in _blocks(np.asarray(image))]
  runs = np.concatenate(runs) if runs else np.zeros(0)
  if runs.size < MIN_INK_PIXELS:
    return None
  return float(1.0 / np.mean(1.0 / runs))


def _blocks(image):
  """The image, or for a large one blocks of SAMPLE_COLUMNS columns spread over its width."""
  h, w = image.shape
  if image.size <= SAMPLE_PIXELS or w <= SAMPLE_COLUMNS:
    return [image]
  n = max(1, SAMPLE_PIXELS // (h * SAMPLE_COLUMNS))
  starts = np.linspace(0, w - SAMPLE_COLUMNS, n).round().astype(int)
  return [image[:, s:s + SAMPLE_COLUMNS] for s in starts]


def _min_runs(image):
  """float [N]: per ink pixel, the shorter of its ink runs along rows and along columns."""
  counts = np.bincount(image.ravel(), minlength=256)
  paper = np.searchsorted(np.cumsum(counts), 0.9 * image.size)  # 90th percentile: paper.
  ink = image < paper * (1.0 - INK_THRESHOLD)
  return np.minimum(_run_lengths(ink, 0), _run_lengths(ink, 1))[ink].astype(np.float64)


def _run_lengths(ink, axis):
  """int [H, W]: the length of the run of ink along `axis` that each pixel is in."""
  structure = np.zeros((3, 3), bool)
  if axis == 0:
    structure[:, 1] = True
  else:
    structure[1, :] = True
  labels, n = ndimage.label(ink, structure)
  return np.bincount(labels.ravel(), minlength=n + 1)[labels]


@dataclasses.dataclass(frozen=True)
class Resolution:
  """How tall (across the value axis) a track is for the model; see the module docstring.

  mode "height": the training height; "stroke": strokes of `px_per_stroke` px (None: estimated
  per scan) become TRAIN_STROKE_PX. `target_height` overrides both.
  """
  mode: str = "height"
  px_per_stroke: float | None = None
  target_height: int | None = None

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"--resolution must be one of {', '.join(MODES)}, got {self.mode!r}")
    if self.px_per_stroke is not None and not 0 < self.px_per_stroke < float("inf"):
      raise ValueError(f"--px-per-stroke must be > 0 (the curves' stroke width in the scan, "
                       f"px), got {self.px_per_stroke:g}")
    if self.target_height is not None and self.target_height < 1:
      raise ValueError(f"--target-height must be >= 1 (px across the value axis), got "
                       f"{self.target_height}")
    if self.px_per_stroke is not None and self.mode != "stroke":
      raise ValueError("--px-per-stroke needs --resolution=stroke (the default, height, scales "
                       "every track to the training height)")
    if self.px_per_stroke is not None and self.target_height is not None:
      raise ValueError("give --px-per-stroke or --target-height, not both")

  @property
  def estimates(self):
    """Whether each scan's stroke width is estimated (stroke mode, no width or height given)."""
    return self.mode == "stroke" and self.px_per_stroke is None and self.target_height is None

  def rows(self, track_px, train_height, stroke=None):
    """Rows that a track `track_px` across is scaled to; `stroke` is the scan's estimate (px;
    None or 0: none could be made)."""
    if self.target_height is not None:
      return self.target_height
    stroke = self.px_per_stroke or stroke
    if self.mode == "height" or not stroke:
      return train_height  # Also where no estimate could be made: as by default.
    return max(1, round(track_px * TRAIN_STROKE_PX / stroke))


def describe(stroke, tracks_px, rows):
  """A line for a person: the estimated stroke width and the heights it gives the tracks."""
  if not stroke:
    return ("too little ink to measure strokes (--resolution=stroke): tracks scaled to the "
            "training height; give --px-per-stroke")
  sizes = ", ".join(f"{a} -> {b}" for a, b in zip(tracks_px, rows))
  return (f"strokes {stroke:.1f} px across (estimated; the model's are {TRAIN_STROKE_PX:g}): "
          f"track px across the value axis {sizes}")
