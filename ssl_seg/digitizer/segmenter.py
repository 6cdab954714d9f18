"""A restored curve segmenter run over a track of any size in windows of one fixed shape.

A track (in the model's layout, depth along the width: `scan_layout` crops and turns it) is
scaled (keeping its aspect ratio) to the model's training height, or where asked to the height
at which its strokes are as wide as in training (`resolution`), and cut into windows of the
training height x `window` px that overlap by `overlap` px along depth and by `row_overlap`
across the value axis (a crop taller than the training height); window logits are blended
with linear ramps across the overlaps, and the mask is scaled back to the input's size
(nearest). Every window has the same shape and every batch the same size, so a folder of scans
of any sizes compiles once per model; an image smaller than a window is padded and the padding
masked out (CurveNet is padding-exact).
"""

import dataclasses

import jax
import numpy as np
from flax import nnx
from PIL import Image

from ssl_seg import checkpoint, state as state_lib
from ssl_seg.digitizer import resolution as resolution_lib
from ssl_seg.models import curvenet
from ssl_seg.tasks import curve_segment


@dataclasses.dataclass
class Segmenter:
  """A restored curve segmenter and the fixed window / batch geometry it runs at."""
  apply: object  # jitted (params, images uint8 [B, H, W, 1], valid [B, H, W]) -> logits
  params: object
  height: int
  class_names: tuple
  window: int
  overlap: int
  batch_size: int
  traces: list  # One entry per compilation (shape), for tests and logs.
  resolution: resolution_lib.Resolution = resolution_lib.Resolution()

  @property
  def row_overlap(self):
    """Overlap of windows across the value axis: --overlap, at most a quarter of a window."""
    return min(self.overlap, self.height // 4)

  def logits(self, image):
    """float32 [H, W, K] logits of a uint8 [H, W] image at the scale the model sees it."""
    h, w = image.shape
    tiles = [(r, c) for r in window_starts(h, self.height, self.row_overlap)
             for c in window_starts(w, self.window, self.overlap)]
    n = -(-len(tiles) // self.batch_size) * self.batch_size
    # Padding rows are white paper marked valid: their outputs are dropped, and an all-invalid
    # row would leave the bottleneck attention without any key.
    x = np.full((n, self.height, self.window, 1), 255, np.uint8)
    valid = np.ones((n, self.height, self.window), bool)
    for i, (r, c) in enumerate(tiles):
      part = image[r:r + self.height, c:c + self.window]
      x[i, :part.shape[0], :part.shape[1], 0] = part
      valid[i, part.shape[0]:] = False
      valid[i, :, part.shape[1]:] = False
    total = np.zeros((h, w, len(self.class_names)), np.float32)
    weight = np.zeros((h, w), np.float32)
    for b in range(0, n, self.batch_size):
      out = np.asarray(jax.device_get(self.apply(self.params, x[b:b + self.batch_size],
                                                 valid[b:b + self.batch_size])))
      for i in range(b, min(b + self.batch_size, len(tiles))):
        r0, c0 = tiles[i]
        r1, c1 = min(r0 + self.height, h), min(c0 + self.window, w)
        # Separable ramps, so overlaps along both axes blend as along one.
        ramp = (blend_weights(r0, r1, h, self.row_overlap)[:, None]
                * blend_weights(c0, c1, w, self.overlap)[None, :])
        total[r0:r1, c0:c1] += out[i - b, :r1 - r0, :c1 - c0] * ramp[..., None]
        weight[r0:r1, c0:c1] += ramp
    return total / weight[..., None]

  def target_height(self, track_px, stroke=None):
    """Rows across the value axis that a track `track_px` across is segmented at (`stroke`:
    the scan's estimated stroke width, px, where `resolution` estimates it)."""
    return self.resolution.rows(track_px, self.height, stroke)

  def segment(self, image, stroke=None):
    """uint8 [H, W] scan (model layout) -> uint8 [H, W] class ids, same size.

    stroke: the scan's stroke width (px) estimated over all its tracks (`scan_stroke`);
    None estimates it from this image where the resolution asks for an estimate.
    """
    h, w = image.shape
    if stroke is None and self.resolution.estimates:
      stroke = resolution_lib.stroke_width(image)
    rows = self.target_height(h, stroke)
    scale = rows / h
    new_w = max(1, round(w * scale))
    small = image
    if (h, w) != (rows, new_w):
      resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
      small = np.asarray(Image.fromarray(image).resize((new_w, rows), resample))
    mask = self.logits(small).argmax(-1).astype(np.uint8)
    if mask.shape != (h, w):
      mask = np.asarray(Image.fromarray(mask).resize((w, h), Image.Resampling.NEAREST))
    return mask


def window_starts(width, window, overlap):
  """Left edges of windows covering [0, width); the last one ends at the image's end."""
  if width <= window:
    return [0]
  stride = window - overlap
  return list(range(0, width - window, stride)) + [width - window]


def blend_weights(start, end, width, overlap):
  """Per-column weights of a window: ramps up / down across overlaps, 1 at the image's ends."""
  n = end - start
  wgt = np.ones(n, np.float32)
  if overlap > 0:
    ramp = (np.arange(min(overlap, n)) + 0.5) / overlap
    if start > 0:
      wgt[:len(ramp)] = np.minimum(wgt[:len(ramp)], ramp)
    if end < width:
      wgt[n - len(ramp):] = np.minimum(wgt[n - len(ramp):], ramp[::-1])
  return wgt


def _curve_segmenter_only(stage, stage_dir):
  if stage.task != "curve_segment":
    raise checkpoint.CheckpointMismatchError(
        f"checkpoint in {stage_dir} is a {stage.task!r} stage; predict needs a "
        "curve_segment stage (e.g. WORKDIR/finetune_warm)")


def load(path, *, window=1024, overlap=128, batch_size=4, step=None, log=None,
         resolution=resolution_lib.Resolution(), test_time_flip=None):
  """A Segmenter from a stage directory (or its checkpoints/), restoring only the params.

  Without `step`, the newest step that can be read (an unreadable newer one is named through
  `log`). `resolution`: the scale tracks are segmented at (`ssl_seg.digitizer.resolution`).
  `test_time_flip`: average with each window reversed along depth (None: as the stage's eval).
  """
  checkpoint.stage_dir_of(path)  # A path that is no stage directory is the first error named.
  if window % curvenet.STRIDE or window < 2 * curvenet.STRIDE:
    raise ValueError(f"--window must be a multiple of {curvenet.STRIDE} and >= "
                     f"{2 * curvenet.STRIDE}, got {window}")
  if not 0 <= overlap < window // 2:
    raise ValueError(f"--overlap must be in [0, window / 2), got {overlap}")
  if batch_size < 1:
    raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
  stage, task, graphdef, params, rest, _ = state_lib.restore(path, step, log=log,
                                                              check=_curve_segmenter_only)
  traces = []
  # The same decision rule as the stage's eval (curve_segment.decision_logits).
  class_weights = tuple(stage.class_weights) if stage.get("class_weights") else None
  correction = stage.get("weight_correction", 0.0)
  if test_time_flip is None:
    test_time_flip = stage.get("test_time_flip", False)

  def forward(params, images, valid):
    traces.append(images.shape)  # Runs once per compilation, never per call.
    model = nnx.merge(graphdef, params, rest)
    logits = curve_segment.predict_logits(model, curve_segment.ink(images), valid,
                                          test_time_flip)
    return curve_segment.decision_logits(logits, class_weights, correction).astype(np.float32)

  height = int(stage.data.height)
  return Segmenter(jax.jit(forward), params, height, tuple(task.class_names), window, overlap,
                   batch_size, traces, resolution)
