"""The PyTorch twin of ssl_seg's CurveNet and its curve_segment train step (torch_reference.py).

Same layers as ssl_seg/models/curvenet.py at its current defaults (norm="none": every 3x3 conv
carries a bias, no LayerNorm in the conv stages; stem width from `curvenet.full_res_width`):
stride-1 stem, five encoder stages (stride-2 conv, stride-1 conv), a pre-norm transformer over
the stride-32 tokens with the fixed 2-D sin-cos embedding and a final LayerNorm, five decoder
stages (nearest x2, concatenated skip, one or two convs) and a 1x1 head, plus a 1x1 coarse head
per further stride in `logit_strides` (nearest-upsampled logits added); tanh GELU, LayerNorm
eps 1e-6. Padding-exact like ours: features are zeroed off the valid pyramid after every conv
and padded tokens are masked as attention keys. Attribute names follow ours, so the parameter
names map one to one (`torch_reference.load_jax_params`).

Two details that make it the same function and not only the same shapes:
- Flax's "SAME" padding of a stride-2 3x3 conv on an even size pads 0 before and 1 after;
  PyTorch's `padding=1` pads 1 on both sides (windows shifted by one pixel). Stride-2 convs
  here pad (0, 1) explicitly and convolve unpadded.
- Flax conv kernels are [kh, kw, in, out], PyTorch's [out, in, kh, kw].
The loss is curve_segment's "ce": cross-entropy on ink = 1 - u8 / 255, weighted by the class
weights of the label and by valid pixels of valid rows, divided by the sum of those weights.
"""

import numpy as np

from ssl_seg.models import curvenet


def build_curvenet(torch, size, *, in_channels=1, out_channels=3):
  """The twin of `curvenet.CurveNetModel(**dataclasses.asdict(size))` at norm="none"."""
  if size.norm != "none":
    raise ValueError(f"the twin implements norm='none' only, got {size.norm!r}")
  nn, F = torch.nn, torch.nn.functional
  ln = lambda d: nn.LayerNorm(d, eps=1e-6)
  gelu = lambda x: F.gelu(x, approximate="tanh")  # jax.nn.gelu's default.

  def zero_invalid(x, mask):
    return x if mask is None else x * mask

  class ConvNormAct(nn.Module):
    def __init__(self, c_in, c_out, stride=1):
      super().__init__()
      self.stride = stride
      self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1 if stride == 1 else 0)

    def forward(self, x, mask=None):
      if self.stride == 2:
        x = F.pad(x, (0, 1, 0, 1))  # Flax "SAME" at stride 2: nothing before, one after.
      return zero_invalid(gelu(self.conv(x)), mask)

  class EncoderStage(nn.Module):
    def __init__(self, c_in, c_out):
      super().__init__()
      self.down, self.refine = ConvNormAct(c_in, c_out, stride=2), ConvNormAct(c_out, c_out)

    def forward(self, x, mask=None):
      return self.refine(self.down(x, mask), mask)

  class DecoderStage(nn.Module):
    def __init__(self, c_in, c_skip, c_out, refine):
      super().__init__()
      self.fuse = ConvNormAct(c_in + c_skip, c_out)
      self.refine = ConvNormAct(c_out, c_out) if refine else None

    def forward(self, x, skip, mask=None):
      x = torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), skip], dim=1)
      x = self.fuse(x, mask)
      return x if self.refine is None else self.refine(x, mask)

  class Attention(nn.Module):
    def __init__(self, dim):
      super().__init__()
      self.inner = size.heads * size.head_dim
      self.norm, self.qkv = ln(dim), nn.Linear(dim, 3 * self.inner, bias=False)
      self.out = nn.Linear(self.inner, dim)

    def forward(self, x, key_valid=None):
      b, n, _ = x.shape
      q, k, v = self.qkv(self.norm(x)).view(b, n, 3, size.heads, size.head_dim).permute(
          2, 0, 3, 1, 4)  # 3 x [B, heads, N, head_dim]
      logits = (q * size.head_dim**-0.5) @ k.transpose(-1, -2)
      if key_valid is not None:
        logits = logits.masked_fill(~key_valid[:, None, None, :], torch.finfo(logits.dtype).min)
      y = torch.softmax(logits, dim=-1) @ v
      return self.out(y.transpose(1, 2).reshape(b, n, self.inner))

  class MLP(nn.Module):
    def __init__(self, dim):
      super().__init__()
      self.norm = ln(dim)
      hidden = size.mlp_ratio * dim
      self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
      return self.fc2(gelu(self.fc1(self.norm(x))))

  class Block(nn.Module):
    def __init__(self, dim):
      super().__init__()
      self.attn, self.mlp = Attention(dim), MLP(dim)

    def forward(self, x, key_valid=None):
      x = x + self.attn(x, key_valid)
      return x + self.mlp(x)

  widths = tuple(size.widths)
  channels = (curvenet.full_res_width(widths, size.stem_width),) + widths
  logit_strides = tuple(getattr(size, "logit_strides", (1,)))

  class Encoder(nn.Module):
    def __init__(self):
      super().__init__()
      self.stem = ConvNormAct(in_channels, channels[0])
      self.stages = nn.ModuleList([EncoderStage(a, b) for a, b in zip(channels, channels[1:])])
      self.blocks = nn.ModuleList([Block(widths[-1]) for _ in range(size.bottleneck_layers)])
      self.norm = ln(widths[-1])

    def forward(self, x, masks):
      h = self.stem(zero_invalid(x, masks[0]), masks[0])
      skips = [h]
      for stage, mask in zip(self.stages, masks[1:]):
        h = stage(h, mask)
        skips.append(h)
      bottom = skips.pop()
      b, dim, gh, gw = bottom.shape
      tokens = bottom.flatten(2).transpose(1, 2) + sincos_posemb_2d(torch, gh, gw, dim,
                                                                    bottom.device)
      key_valid = None if masks[-1] is None else masks[-1].flatten(1) > 0
      for block in self.blocks:
        tokens = block(tokens, key_valid)
      tokens = self.norm(tokens)
      return zero_invalid(tokens.transpose(1, 2).reshape(b, dim, gh, gw), masks[-1]), skips

  # Decoder stage i outputs stride 2**(4 - i); strides in logit_strides above 1 get a coarse
  # 1x1 head whose logits are upsampled (nearest) and added to the full-resolution head's.
  stage_strides = [2**(curvenet.NUM_STAGES - 1 - i) for i in range(curvenet.NUM_STAGES)]
  coarse_stages = sorted(stage_strides.index(s) for s in set(logit_strides) if s > 1)

  class Decoder(nn.Module):
    def __init__(self):
      super().__init__()
      skip_channels = channels[:-1][::-1]
      self.stages = nn.ModuleList([
          DecoderStage(c_in, c_skip, c_skip, refine=i < curvenet.NUM_STAGES - 1)
          for i, (c_in, c_skip) in enumerate(zip(widths[::-1], skip_channels))])
      self.head = nn.Conv2d(skip_channels[-1], out_channels, 1)
      self.coarse_heads = nn.ModuleList([nn.Conv2d(skip_channels[i], out_channels, 1)
                                         for i in coarse_stages])

    def forward(self, x, skips, masks):
      coarse = []
      for i, (stage, skip, mask) in enumerate(zip(self.stages, skips[::-1], masks[-2::-1])):
        x = stage(x, skip, mask)
        if i in coarse_stages:
          coarse.append((x, stage_strides[i]))
      logits = self.head(x)
      for head, (features, stride) in zip(self.coarse_heads, coarse):
        logits = logits + F.interpolate(head(features), scale_factor=stride, mode="nearest")
      return zero_invalid(logits, masks[0])

  class CurveNet(nn.Module):
    def __init__(self):
      super().__init__()
      self.encoder, self.decoder = Encoder(), Decoder()

    def forward(self, x, valid=None):
      """x [B, C, H, W] float, valid optional bool [B, H, W] -> logits [B, K, H, W]."""
      masks = valid_pyramid(torch, valid)
      bottleneck, skips = self.encoder(x, masks)
      return self.decoder(bottleneck, skips, masks)

  return CurveNet()


def valid_pyramid(torch, valid):
  """bool [B, H, W] -> float masks [B, 1, h, w] at strides 1 .. 32 (any valid pixel counts)."""
  if valid is None:
    return [None] * (curvenet.NUM_STAGES + 1)
  masks = [valid[:, None].float()]
  for _ in range(curvenet.NUM_STAGES):
    masks.append(torch.nn.functional.max_pool2d(masks[-1], 2))
  return masks


def sincos_posemb_2d(torch, h, w, dim, device):
  """layers.sincos_posemb_2d in torch: [h * w, dim] as (sin x, cos x, sin y, cos y)."""
  y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=device),
                        torch.arange(w, dtype=torch.float32, device=device), indexing="ij")
  omega = 1.0 / (10000.0 ** (torch.arange(dim // 4, dtype=torch.float32, device=device)
                             / (dim // 4)))
  y, x = y.reshape(-1, 1) * omega, x.reshape(-1, 1) * omega
  return torch.cat([torch.sin(x), torch.cos(x), torch.sin(y), torch.cos(y)], dim=1)


def torch_batch(torch, batch, device):
  """The JAX host batch (image uint8 [B, H, W, 1], seg, valid_px, _valid) as torch tensors."""
  keys = ("image", "seg", "valid_px", "_valid")
  return {k: torch.from_numpy(np.ascontiguousarray(batch[k])).to(device) for k in keys}


def make_loss(torch, model, class_weights, device):
  """curve_segment's "ce" loss on a torch_batch (augmentation off, as in the jax row)."""
  F = torch.nn.functional
  cw = torch.tensor(np.asarray(class_weights, np.float32), device=device)

  def loss_fn(batch):
    x = 1.0 - batch["image"].permute(0, 3, 1, 2).float() / 255.0
    labels = batch["seg"].long()
    logits = model(x, batch["valid_px"])
    losses = F.cross_entropy(logits, labels, reduction="none")  # [B, H, W]
    weights = batch["valid_px"].float() * batch["_valid"].float()[:, None, None] * cw[labels]
    return (losses * weights).sum() / weights.sum().clamp_min(1e-6)

  return loss_fn


def make_optimizer(torch, model, optim_cfg):
  """The stage's optimizer: global-norm clipping, then AdamW on every parameter.

  The learning rate is the config's peak, constant: the JAX step's cosine schedule is a few
  scalar operations per step, nothing to time.
  """
  opt = torch.optim.AdamW(model.parameters(), lr=optim_cfg.lr, betas=(optim_cfg.b1, optim_cfg.b2),
                          eps=1e-8, weight_decay=optim_cfg.weight_decay)
  params = list(model.parameters())

  def step():
    if optim_cfg.clip_norm:
      torch.nn.utils.clip_grad_norm_(params, optim_cfg.clip_norm)
    opt.step()

  return opt, step
