"""ViT encoder of the SimMIM small-data study (Table 1: img 128, patch 16, dim 128, depth 12).

Layout follows the study's public PyTorch model so parameter counts and speeds compare like
for like: patch embedding LayerNorm(p*p*c) -> Linear -> LayerNorm(dim), a cls token, learned
position embeddings, pre-norm blocks whose attention is 8 heads of 64 (inner width 512), and a
final LayerNorm. That is 4,842,880 encoder parameters (4,843,654 with the 6-class head: the
"4M" of the paper).
"""

import dataclasses

import jax.numpy as jnp
from einops import rearrange
from flax import nnx

from ssl_seg.models import layers


@dataclasses.dataclass(frozen=True)
class ViTSize:
  img_size: int = 128
  patch_size: int = 16
  channels: int = 3
  dim: int = 128
  depth: int = 12
  heads: int = 8
  head_dim: int = 64
  mlp_dim: int = 512


# Architecture fields a config may set one by one over its variant (`model.<field>`).
SIZE_FIELDS = tuple(f.name for f in dataclasses.fields(ViTSize))
# big_vision's (width, depth, mlp_dim, heads) by letter (`models/vit.py:decode_variant`); the
# head width is width // heads. Their image size is timm's and big_vision's 224; a config's
# `model.img_size` (which must equal its data's) replaces it.
_BIG_VISION = {"Ti": (192, 12, 768, 3), "S": (384, 12, 1536, 6), "M": (512, 12, 2048, 8),
               "B": (768, 12, 3072, 12), "L": (1024, 24, 4096, 16)}
VARIANTS = {
    "paper": ViTSize(),  # Table 1 of the study: the default.
    "tiny": ViTSize(img_size=32, patch_size=8, dim=32, depth=2, heads=2, head_dim=16, mlp_dim=64),
    **{f"{name}/16": ViTSize(img_size=224, patch_size=16, dim=d, depth=n, heads=h,
                             head_dim=d // h, mlp_dim=m)
       for name, (d, n, m, h) in _BIG_VISION.items()},
}


def decode_variant(variant: str) -> ViTSize:
  """'S/16' -> ViTSize (big_vision naming: a size letter and the patch size; any patch).

  Also the study's names, 'paper' (Table 1) and 'tiny' (tests), optionally with a patch,
  'paper/8'. Raises ValueError naming the choices.
  """
  name, slash, patch = str(variant).partition("/")
  base = VARIANTS.get(name) or VARIANTS.get(f"{name}/16")
  if base is None or (slash and not (patch.isdigit() and int(patch) >= 1)):
    raise ValueError(f"unknown ViT variant {variant!r}; choose paper, tiny or a big_vision name "
                     f"SIZE/PATCH with SIZE one of {', '.join(_BIG_VISION)} (e.g. S/16, B/8), "
                     "optionally paper/PATCH or tiny/PATCH")
  return dataclasses.replace(base, patch_size=int(patch)) if slash else base


def patchify(images, patch_size):
  """[B, H, W, C] -> [B, N, p*p*C], patches in row-major grid order."""
  return rearrange(images, "b (h p) (w q) c -> b (h w) (p q c)", p=patch_size, q=patch_size)


def unpatchify(tokens, patch_size, grid_h):
  """[B, N, p*p*C] -> [B, H, W, C]; the inverse of `patchify`."""
  return rearrange(tokens, "b (h w) (p q c) -> b (h p) (w q) c", h=grid_h, p=patch_size,
                   q=patch_size)


class ViTEncoder(nnx.Module):
  """Patch embedding + cls token + learned posemb + pre-norm transformer."""

  def __init__(self, size: ViTSize, *, dropout_rate=0.0, dtype=jnp.float32, rngs: nnx.Rngs):
    if size.img_size % size.patch_size:
      raise ValueError(f"img_size {size.img_size} is not a multiple of patch_size "
                       f"{size.patch_size}")
    self.size, self.dropout_rate = size, dropout_rate
    # Compute dtype (params stay float32); heads built on this encoder follow it.
    self.dtype = dtype
    self.grid = size.img_size // size.patch_size
    patch_dim = size.patch_size**2 * size.channels
    self.patch_norm = nnx.LayerNorm(patch_dim, dtype=dtype, rngs=rngs)
    self.patch_embed = nnx.Linear(patch_dim, size.dim, dtype=dtype, rngs=rngs)
    self.embed_norm = nnx.LayerNorm(size.dim, dtype=dtype, rngs=rngs)
    init = nnx.initializers.normal(0.02)
    self.cls_token = nnx.Param(init(rngs.params(), (1, 1, size.dim)))
    self.posemb = nnx.Param(init(rngs.params(), (1, self.grid**2 + 1, size.dim)))
    self.blocks = nnx.List([
        layers.TransformerBlock(size.dim, size.heads, size.head_dim, size.mlp_dim, dropout_rate,
                                dtype=dtype, rngs=rngs) for _ in range(size.depth)])
    self.norm = nnx.LayerNorm(size.dim, dtype=dtype, rngs=rngs)

  def __call__(self, images, *, train=False, key=None, mask=None, mask_token=None):
    """Encodes [B, H, W, C] float images.

    Args:
      mask: optional bool [B, N]; True patches are replaced by `mask_token` [D] (SimMIM).
    Returns:
      (patch tokens [B, N, D] after the final norm, aux with "cls" [B, D]).
    """
    expected = (self.size.img_size, self.size.img_size, self.size.channels)
    if images.shape[1:] != expected:
      raise ValueError(f"ViT expects images of shape [B, {', '.join(map(str, expected))}], "
                       f"got {list(images.shape)}")
    x = self.embed_norm(self.patch_embed(self.patch_norm(patchify(images, self.size.patch_size))))
    if mask is not None:
      x = jnp.where(mask[..., None], mask_token.astype(x.dtype), x)
    cls = jnp.broadcast_to(self.cls_token[...], (x.shape[0], 1, x.shape[2])).astype(x.dtype)
    x = jnp.concatenate([cls, x], axis=1) + self.posemb[...].astype(x.dtype)
    keys = layers.split_key(key, len(self.blocks) + 1)
    x = layers.dropout(x, self.dropout_rate, keys[0], train=train)
    for block, k in zip(self.blocks, keys[1:]):
      x = block(x, train=train, key=k)
    x = self.norm(x)
    return x[:, 1:], {"cls": x[:, 0], "grid": self.grid}
