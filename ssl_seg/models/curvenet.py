"""CurveNet: a convolutional U-Net around a small transformer, for thin curves on well logs.

Logs are long and vary in width, so batches are padded on the right. Given `valid` [B, H, W]
the model is padding-exact: the conv stages have no norm by default (`norm="none"`; the option
`"layer"` is a per-pixel LayerNorm over channels, as in checkpoints made before 2026-12; batch
or group statistics would mix padding in), features are zeroed outside the valid region after
every conv (a coarse cell is valid when any of its pixels is), and padded bottleneck tokens are
masked out of attention as keys. Outputs on valid pixels then depend neither on padded content
nor on how much padding there is, and the output is zero on padded pixels. Without `valid`
every pixel counts.

Why no norm: on this CPU the per-pixel LayerNorms over 4-16 channels cost about a third of a
train step, and an A/B on synthetic logs (README, "What we learnt") segmented no better with them.

The two full-resolution convolutions (the stem's and the last decoder stage's) are computed at
half resolution by `half_res_conv`: the same function and parameters, 0.90x the CPU train step.

Parameters (in_channels=1, out_channels 1 / 3; encoder alone), norm="none", logit_strides
(1, 4): tiny 105,074 / 105,118 (58,392), small 297,842 / 297,886 (184,280), base 7,015,042 /
7,015,206 (4,316,000); without the stride-4 head (logit_strides=(1,)) 17 / 51 (tiny, small)
and 65 / 195 (base) fewer; norm="layer" adds 360 (tiny), 552 (small), 2,592 (base).
"""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ssl_seg.models import layers

NUM_STAGES = 5
STRIDE = 2**NUM_STAGES


@dataclasses.dataclass(frozen=True)
class CurveNetSize:
  """Architecture hyper-parameters; `CurveNetModel(..., **dataclasses.asdict(size))`."""
  widths: tuple[int, ...] = (16, 32, 64, 128, 192)
  bottleneck_layers: int = 2
  heads: int = 4
  head_dim: int = 32
  mlp_ratio: int = 2
  norm: str = "none"  # After each 3x3 conv: "none" (conv bias) or "layer" (per-pixel LayerNorm).
  stem_width: int = 0  # Channels at full resolution; 0 = max(widths[0] // 2, 4).
  # Decoder strides whose features also feed the logits (FCN-style skip heads, upsampled and
  # added). (1, 4): the stride-4 features, which see a dash pattern, vote on the class
  # directly instead of only through the narrow full-resolution stage; in an A/B it turned a
  # run that never found curve2 into one that did (README, "What we learnt"). (1,): none.
  logit_strides: tuple[int, ...] = (1, 4)


NORMS = ("none", "layer")
# Architecture fields a config may set one by one over its variant (`model.<field>`).
SIZE_FIELDS = tuple(f.name for f in dataclasses.fields(CurveNetSize))
# Values for fields missing from configs saved before the field existed (their checkpoints).
LEGACY_DEFAULTS = {"norm": "layer", "stem_width": 0, "logit_strides": (1,)}


VARIANTS = {
    "tiny": CurveNetSize(widths=(8, 16, 16, 32, 32), heads=2, head_dim=16),  # Tests.
    "small": CurveNetSize(widths=(8, 16, 32, 48, 64), heads=4, head_dim=16),  # CPU demo.
    "base": CurveNetSize(widths=(32, 64, 128, 256, 320), heads=8, head_dim=32),  # GPU.
}


def decode_variant(variant) -> CurveNetSize:
  """'tiny' | 'small' | 'base' -> CurveNetSize; ValueError naming the choices."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown CurveNet variant {variant!r}; choose one of {sorted(VARIANTS)}")
  return VARIANTS[variant]


def full_res_width(widths, width=0):
  """Channels of the stride-1 stem (and of the last decoder stage); `width` > 0 sets them."""
  return width if width > 0 else max(widths[0] // 2, 4)


def check_input(x, in_channels, valid=None):
  """Raises ValueError unless x is [B, H, W, in_channels] with H, W multiples of 32."""
  if x.ndim != 4 or x.shape[-1] != in_channels:
    raise ValueError(f"CurveNet expects images [B, H, W, {in_channels}], got {list(x.shape)}")
  h, w = x.shape[1:3]
  if h % STRIDE or w % STRIDE:
    pad_h, pad_w = -h % STRIDE, -w % STRIDE
    raise ValueError(f"CurveNet needs H and W to be multiples of {STRIDE} ({NUM_STAGES} "
                     f"stride-2 stages), got H={h}, W={w}: pad {pad_h} rows at the bottom and "
                     f"{pad_w} columns on the right (to {h + pad_h} x {w + pad_w}) and mark "
                     "them valid=False")
  if valid is not None and valid.shape != x.shape[:3]:
    raise ValueError(f"valid must be [B, H, W] = {list(x.shape[:3])}, got {list(valid.shape)}")


def valid_pyramid(valid):
  """bool [B, H, W] -> masks at strides 1, 2, ..., 32; a cell is valid if any pixel in it is."""
  masks = [valid]
  for _ in range(NUM_STAGES):
    b, h, w = masks[-1].shape
    masks.append(masks[-1].reshape(b, h // 2, 2, w // 2, 2).any(axis=(2, 4)))
  return masks


def _zero_invalid(x, mask):
  """Zeroes features [B, h, w, C] where mask [B, h, w] is False (a no-op for mask None).

  A product, not `jnp.where`: the same values for finite features (-0 where x < 0, equal to
  0 in every sum), and the CurveNet-small curve_segment train step 0.94x on the 2-core CPU
  (benchmarks/RESULTS.md, "Masks as products"). XLA fuses it differently, so training's float
  rounding (not its padding-exactness) changed with it.
  """
  return x if mask is None else x * mask[..., None].astype(x.dtype)


def _phase_taps():
  """Index arrays over (output phase a, b; tap i, j): a full-resolution output pixel at row
  phase a (row index mod 2) reads, through tap i (row offset i - 1), the half-resolution row
  offset u - 1 and sub-row p: a + i - 1 = 2 (u - 1) + p; likewise columns (b, j, v, q)."""
  a, i, b, j = np.meshgrid(range(2), range(3), range(2), range(3), indexing="ij")
  a, i, b, j = (x.ravel() for x in (a, i, b, j))
  return a, i, (a + i - 1) // 2 + 1, (a + i - 1) % 2, b, j, (b + j - 1) // 2 + 1, (b + j - 1) % 2


def half_res_conv(x, skip, kernel):
  """3x3 SAME conv of concat(nearest x2 upsampling of x, skip), computed at half resolution.

  x [B, h, w, Cx] (None: no x, Cx = 0), skip [B, 2h, 2w, Cs], kernel [3, 3, Cx + Cs, O] ->
  [B, 2h, 2w, O], equal to the conv on the full-resolution concatenation up to float
  rounding. Each output pixel's 3x3 window over the upsampled x and the skip reads a 3x3
  window of half-resolution cells: x as it is, the skip as 2x2 pixel blocks (space-to-depth).
  So one half-resolution conv with 4 x O outputs (one per output pixel of a 2x2 block, its
  kernel gathered from `kernel` by `_phase_taps`) replaces the full-resolution one. Why: on
  the CPU, XLA ran CurveNet-small's full-resolution convs through Eigen (the last decoder
  stage's 12 -> 4 at 10 GFLOP/s, about a sixth of the train step) and half-resolution ones
  with more channels through its fast YNNPACK kernels (benchmarks/RESULTS.md).
  """
  b, h2, w2, cs = skip.shape
  h, w, co = h2 // 2, w2 // 2, kernel.shape[-1]
  if x is None:
    x = jnp.zeros((b, h, w, 0), skip.dtype)
  cx = x.shape[-1]
  pa, ti, u, p, pb, tj, v, q = _phase_taps()
  # Scatter-adds, not einsums: the kernel is folded in its own precision (float32 under mixed
  # precision), and no matmul outside the compute dtype appears in the step.
  k_x = jnp.zeros((3, 3, cx, 2, 2, co), kernel.dtype).at[u, v, :, pa, pb, :].add(
      kernel[ti, tj, :cx])
  k_skip = jnp.zeros((3, 3, 2, 2, cs, 2, 2, co), kernel.dtype).at[u, v, p, q, :, pa, pb, :].add(
      kernel[ti, tj, cx:])
  k_half = jnp.concatenate([k_x.reshape(3, 3, cx, 4 * co), k_skip.reshape(3, 3, 4 * cs, 4 * co)],
                           axis=2)
  blocks = skip.reshape(b, h, 2, w, 2, cs).transpose(0, 1, 3, 2, 4, 5).reshape(b, h, w, 4 * cs)
  y = jax.lax.conv_general_dilated(jnp.concatenate([x, blocks], axis=-1),
                                   k_half.astype(x.dtype), (1, 1),
                                   "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return y.reshape(b, h, w, 2, 2, co).transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, co)


class ConvNormAct(nnx.Module):
  """3x3 conv -> optional per-pixel LayerNorm -> GELU, zeroed off `mask`."""

  def __init__(self, in_channels, out_channels, *, stride=1, norm="none", dtype=jnp.float32,
               rngs: nnx.Rngs):
    if norm not in NORMS:
      raise ValueError(f"CurveNet norm must be one of {NORMS}, got {norm!r}")
    # The conv carries a bias only when no norm follows (a norm's own bias replaces it).
    self.conv = nnx.Conv(in_channels, out_channels, (3, 3), strides=stride, padding="SAME",
                         use_bias=norm == "none", dtype=dtype, rngs=rngs)
    self.norm = (nnx.LayerNorm(out_channels, epsilon=1e-6, dtype=dtype, rngs=rngs)
                 if norm == "layer" else None)

  def __call__(self, x, mask=None):
    return self.activate(self.conv(x), mask)

  def at_half_res(self, x, skip, mask=None):
    """This block on concat(nearest x2 upsampling of x, skip) (on skip alone for x None), its
    conv computed by `half_res_conv`."""
    conv = self.conv
    dtype = conv.dtype or skip.dtype
    # The kernel is folded in the parameters' precision, then cast with the features.
    y = half_res_conv(None if x is None else x.astype(dtype), skip.astype(dtype),
                      conv.kernel[...])
    if conv.bias is not None:
      y = y + conv.bias[...].astype(y.dtype)
    return self.activate(y, mask)

  def activate(self, x, mask=None):
    """Norm, GELU and mask on the conv's output."""
    if self.norm is not None:
      x = self.norm(x)
    return _zero_invalid(jax.nn.gelu(x), mask)


class EncoderStage(nnx.Module):
  """Stride-2 ConvNormAct then a stride-1 one."""

  def __init__(self, in_channels, out_channels, *, norm="none", dtype=jnp.float32,
               rngs: nnx.Rngs):
    self.down = ConvNormAct(in_channels, out_channels, stride=2, norm=norm, dtype=dtype,
                            rngs=rngs)
    self.refine = ConvNormAct(out_channels, out_channels, norm=norm, dtype=dtype, rngs=rngs)

  def __call__(self, x, mask=None):
    return self.refine(self.down(x, mask), mask)


class DecoderStage(nnx.Module):
  """Nearest x2 upsampling, concatenated skip, then one or two ConvNormAct."""

  def __init__(self, in_channels, skip_channels, out_channels, *, refine=True,
               fuse_at_half_res=False, norm="none", dtype=jnp.float32, rngs: nnx.Rngs):
    # fuse_at_half_res: the fuse conv by `half_res_conv` (same function, same parameters).
    self.fuse_at_half_res = fuse_at_half_res
    self.fuse = ConvNormAct(in_channels + skip_channels, out_channels, norm=norm, dtype=dtype,
                            rngs=rngs)
    self.refine = (ConvNormAct(out_channels, out_channels, norm=norm, dtype=dtype, rngs=rngs)
                   if refine else None)

  def __call__(self, x, skip, mask=None):
    if self.fuse_at_half_res:
      x = self.fuse.at_half_res(x, skip, mask)
    else:
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
      x = jnp.concatenate([x, skip.astype(x.dtype)], axis=-1)
      x = self.fuse(x, mask)
    return x if self.refine is None else self.refine(x, mask)


class CurveNetEncoder(nnx.Module):
  """Stem + five stride-2 conv stages + transformer over the stride-32 tokens."""

  def __init__(self, in_channels, widths=CurveNetSize.widths,
               bottleneck_layers=CurveNetSize.bottleneck_layers, heads=CurveNetSize.heads,
               head_dim=CurveNetSize.head_dim, mlp_ratio=CurveNetSize.mlp_ratio,
               dropout_rate=0.0, *, norm=CurveNetSize.norm, stem_width=CurveNetSize.stem_width,
               dtype=jnp.float32, rngs: nnx.Rngs):
    widths = tuple(widths)
    if len(widths) != NUM_STAGES:
      raise ValueError(f"CurveNet needs {NUM_STAGES} widths (one per stage), got {widths}")
    if widths[-1] % 4:
      raise ValueError(f"the bottleneck width widths[-1] must be divisible by 4 for the 2-D "
                       f"sin-cos position embedding, got {widths[-1]}")
    self.in_channels, self.widths, self.dropout_rate = in_channels, widths, dropout_rate
    channels = (full_res_width(widths, stem_width),) + widths
    self.stem = ConvNormAct(in_channels, channels[0], norm=norm, dtype=dtype, rngs=rngs)
    self.stages = nnx.List([EncoderStage(c_in, c_out, norm=norm, dtype=dtype, rngs=rngs)
                            for c_in, c_out in itertools.pairwise(channels)])
    dim = widths[-1]
    self.blocks = nnx.List([
        layers.TransformerBlock(dim, heads, head_dim, mlp_ratio * dim, dropout_rate, dtype=dtype,
                                rngs=rngs) for _ in range(bottleneck_layers)])
    self.norm = nnx.LayerNorm(dim, dtype=dtype, rngs=rngs)

  def __call__(self, x, *, valid=None, train=False, key=None):
    """Encodes x [B, H, W, C] (H, W multiples of 32); `valid` optional bool [B, H, W].

    Returns:
      (bottleneck [B, H/32, W/32, widths[-1]], aux) with aux "skips" (features at strides 1,
      2, 4, 8, 16), "tokens" [B, N, D] (the bottleneck, row-major) and "token_valid" ([B, N]
      bool, or None without `valid`).
    """
    check_input(x, self.in_channels, valid)
    masks = valid_pyramid(valid) if valid is not None else [None] * (NUM_STAGES + 1)
    # At half resolution: a 0.96-0.97x train step on the CPU (`half_res_conv`).
    h = self.stem.at_half_res(None, _zero_invalid(x, masks[0]), masks[0])
    skips = [h]
    for stage, mask in zip(self.stages, masks[1:]):
      h = stage(h, mask)
      skips.append(h)
    bottom = skips.pop()
    b, gh, gw, dim = bottom.shape
    # Fixed sin-cos of absolute (row, column) token indices: defined for any width, and the
    # same for a token however much padding follows it.
    tokens = bottom.reshape(b, gh * gw, dim) + layers.sincos_posemb_2d(gh, gw, dim, bottom.dtype)
    token_valid = None if valid is None else masks[-1].reshape(b, gh * gw)
    keys = layers.split_key(key, len(self.blocks) + 1)
    tokens = layers.dropout(tokens, self.dropout_rate, keys[0], train=train)
    for block, k in zip(self.blocks, keys[1:]):
      tokens = block(tokens, mask=token_valid, train=train, key=k)
    tokens = self.norm(tokens)
    bottleneck = _zero_invalid(tokens.reshape(b, gh, gw, dim), masks[-1])
    return bottleneck, {"skips": skips, "tokens": tokens, "token_valid": token_valid}


class CurveNetDecoder(nnx.Module):
  """Five x2 upsampling stages with U-Net skips back to full resolution, then a 1x1 conv."""

  def __init__(self, widths, out_channels, *, norm=CurveNetSize.norm,
               stem_width=CurveNetSize.stem_width, logit_strides=CurveNetSize.logit_strides,
               dtype=jnp.float32, rngs: nnx.Rngs):
    widths = tuple(widths)
    skip_channels = ((full_res_width(widths, stem_width),) + widths[:-1])[::-1]
    strides = [2**(NUM_STAGES - 1 - i) for i in range(NUM_STAGES)]  # Of each stage's output.
    if 1 not in logit_strides or not set(logit_strides) <= set(strides):
      raise ValueError(f"CurveNet logit_strides must include 1 and be among {sorted(strides)}, "
                       f"got {tuple(logit_strides)}")
    in_channels = widths[::-1]
    # The full-resolution stage gets a single conv: a second one there would be the most
    # expensive layer of the whole net (about a fifth of a CPU train step). Its conv runs at
    # half resolution (`half_res_conv`): a 0.87-0.94x train step on the CPU. At the coarser
    # stages the same rewrite was slower (1.02x with every stage).
    last = NUM_STAGES - 1
    self.stages = nnx.List([
        DecoderStage(c_in, c_skip, c_skip, refine=i < last, fuse_at_half_res=i == last,
                     norm=norm, dtype=dtype, rngs=rngs)
        for i, (c_in, c_skip) in enumerate(zip(in_channels, skip_channels))])
    # Small init: near-constant outputs at the start, yet gradients reach every layer.
    small_init = nnx.initializers.variance_scaling(0.01, "fan_in", "normal")
    self.head = nnx.Conv(skip_channels[-1], out_channels, (1, 1), dtype=dtype,
                         kernel_init=small_init, rngs=rngs)
    # Coarse heads, keyed by decoder stage index (stride 2**(4 - index)).
    self.coarse_stages = tuple(sorted(strides.index(s) for s in set(logit_strides) if s > 1))
    self.coarse_heads = nnx.List([
        nnx.Conv(skip_channels[i], out_channels, (1, 1), dtype=dtype, kernel_init=small_init,
                 rngs=rngs) for i in self.coarse_stages])

  def __call__(self, x, skips, *, valid=None):
    """x: [B, H/32, W/32, D]; skips: strides 1..16 as the encoder returns them -> [B, H, W, K]."""
    masks = valid_pyramid(valid) if valid is not None else [None] * (NUM_STAGES + 1)
    coarse = []
    for i, (stage, skip, mask) in enumerate(zip(self.stages, skips[::-1], masks[-2::-1])):
      x = stage(x, skip, mask)
      if i in self.coarse_stages:
        coarse.append((x, 2**(NUM_STAGES - 1 - i)))
    logits = self.head(x)
    for head, (features, stride) in zip(self.coarse_heads, coarse):
      up = head(features)
      logits = logits + jnp.repeat(jnp.repeat(up, stride, axis=1), stride, axis=2)
    return _zero_invalid(logits, masks[0])


class CurveNetModel(nnx.Module):
  """Encoder-decoder for reconstruction (out_channels = in_channels) or segmentation logits."""

  def __init__(self, *, in_channels=1, out_channels, widths=CurveNetSize.widths,
               bottleneck_layers=CurveNetSize.bottleneck_layers, heads=CurveNetSize.heads,
               head_dim=CurveNetSize.head_dim, mlp_ratio=CurveNetSize.mlp_ratio,
               dropout_rate=0.0, norm=CurveNetSize.norm, stem_width=CurveNetSize.stem_width,
               logit_strides=CurveNetSize.logit_strides, dtype=jnp.float32, rngs: nnx.Rngs):
    self.encoder = CurveNetEncoder(in_channels, widths, bottleneck_layers, heads, head_dim,
                                   mlp_ratio, dropout_rate, norm=norm, stem_width=stem_width,
                                   dtype=dtype, rngs=rngs)
    self.decoder = CurveNetDecoder(widths, out_channels, norm=norm, stem_width=stem_width,
                                   logit_strides=tuple(logit_strides), dtype=dtype, rngs=rngs)

  def __call__(self, x, *, valid=None, train=False, key=None):
    """x [B, H, W, C], valid optional bool [B, H, W] -> (out [B, H, W, out_channels], aux).

    aux is the encoder's plus "bottleneck" [B, H/32, W/32, D].
    """
    bottleneck, aux = self.encoder(x, valid=valid, train=train, key=key)
    out = self.decoder(bottleneck, aux["skips"], valid=valid)
    return out, {**aux, "bottleneck": bottleneck}
