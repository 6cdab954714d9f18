"""The look of a rendered scan: `RenderStyle` (every scan feature's probability and strength)
and the sizes the renderer (`welllog_render`) works with."""

import dataclasses

MIN_HEIGHT = 16
MIN_WIDTH = 32
MIN_TWO_TRACK_HEIGHT = 48
TEXT_H = 11  # Pillow's default bitmap font: 11 px tall, 6 px per character.
CHAR_W = 6


@dataclasses.dataclass(frozen=True)
class RenderStyle:
  """Probabilities (p_*) and strengths of every scan feature; defaults mimic typical scans."""

  # Paper: luminance ranges of clean and yellowed paper, low-frequency stains, grain.
  paper_white: tuple[float, float] = (0.9, 1.0)
  p_yellowed: float = 0.4
  paper_yellowed: tuple[float, float] = (0.72, 0.88)
  blotch_strength: float = 0.04
  grain_sigma: float = 0.02
  # Layout: tracks, borders, grids, text.
  p_two_tracks: float = 0.4
  p_four_curves: float = 0.2  # Synthetic curves in two tracks: both curves in each track.
  p_border: float = 0.9
  p_grid: float = 0.85
  p_log_grid: float = 0.35  # Share of grids with logarithmic (decade) spacing.
  p_depth_grid: float = 0.85
  grid_alpha: tuple[float, float] = (0.12, 0.45)
  p_depth_numbers: float = 0.7
  p_header: float = 0.4
  text_alpha: tuple[float, float] = (0.5, 0.9)
  # Curves.
  line_width: tuple[float, float] = (1.0, 1.7)
  ink_alpha: tuple[float, float] = (0.7, 0.97)
  # Curve2 dashed or dotted; curve1 stays solid. Line style is the only thing that tells the
  # two curves apart in a grayscale scan: a solid curve2 (0.2 of logs before 2026-12) made
  # its label a coin flip, so it is always styled now.
  p_styled_curve2: float = 1.0
  p_fade: float = 0.5
  fade_strength: float = 0.6  # Largest fractional loss of ink intensity along a curve.
  p_broken: float = 0.4
  broken_gaps_per_1000px: float = 4.0
  broken_gap_len: tuple[float, float] = (2.0, 8.0)
  p_curve_gap: float = 0.3  # Synthetic curves: chance of a no-data (NaN) interval.
  p_curve_wrap: float = 0.4  # Synthetic and LAS curves: chance a curve runs past its scale.
  # Synthetic curves: chance a curve is jagged like a real log's (sample-to-sample scatter of
  # `roughness` x its span). Smooth blocky curves only taught the net that jagged ink is a
  # dashed curve2: on LAS renders it then read a jagged RHOB as curve2 (README).
  p_rough: float = 0.5
  roughness: tuple[float, float] = (0.02, 0.15)
  # Synthetic curves: chance a curve carries isolated 1-3 sample spikes (`spikes_per_100px`
  # of them, each `spike_height` x its span, up or down).
  p_spikes: float = 0.0
  spikes_per_100px: tuple[float, float] = (0.5, 3.0)
  spike_height: tuple[float, float] = (0.1, 0.6)
  # Scan degradations, applied in this order: skew, speckle, blur, JPEG.
  p_skew: float = 0.5
  skew_max_deg: float = 0.6
  skew_max_shift_px: float = 3.0  # Wide images rotate less so their ends move at most this.
  p_speckle: float = 0.5
  speckle_density: float = 0.003  # Largest fraction of pixels hit by a speck.
  p_blur: float = 0.5
  blur_sigma: tuple[float, float] = (0.3, 1.0)
  p_jpeg: float = 0.6
  jpeg_quality: tuple[int, int] = (25, 90)

  def __post_init__(self):
    for f in dataclasses.fields(self):
      value = getattr(self, f.name)
      if f.name.startswith("p_") and not 0.0 <= value <= 1.0:
        raise ValueError(f"RenderStyle.{f.name} must be a probability in [0, 1], got {value}")
      if isinstance(value, tuple) and value[0] > value[1]:
        raise ValueError(f"RenderStyle.{f.name} must be a (low, high) range, got {value}")

  @classmethod
  def clean(cls, **overrides) -> "RenderStyle":
    """White paper with curves only: no grid/text/borders, fading, skew, speckle, blur, JPEG."""
    kwargs = {
        "paper_white": (1.0, 1.0), "p_yellowed": 0.0, "blotch_strength": 0.0,
        "grain_sigma": 0.0, "p_border": 0.0, "p_grid": 0.0, "p_depth_grid": 0.0,
        "p_depth_numbers": 0.0, "p_header": 0.0, "p_fade": 0.0, "p_skew": 0.0,
        "p_speckle": 0.0, "p_blur": 0.0, "p_jpeg": 0.0}
    kwargs.update(overrides)
    return cls(**kwargs)


def check_size(height: int, width: int):
  if height < MIN_HEIGHT or width < MIN_WIDTH:
    raise ValueError(f"well-log images need height >= {MIN_HEIGHT} and width >= {MIN_WIDTH}, "
                     f"got height={height}, width={width}")
