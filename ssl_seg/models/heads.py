"""Task models around one encoder: each keeps it under the attribute `encoder` (the key grafted
from stage to stage) and adds a freshly initialised head."""

import jax
import jax.numpy as jnp
from flax import nnx

from ssl_seg.models import layers, vit

zeros = nnx.initializers.zeros_init()


class SimMIM(nnx.Module):
  """Masked-patch reconstruction: learnable mask token, linear decoder to patch pixels."""

  def __init__(self, encoder: vit.ViTEncoder, *, rngs: nnx.Rngs):
    size = encoder.size
    self.encoder = encoder
    self.mask_token = nnx.Param(jnp.zeros((size.dim,)))
    self.decoder = nnx.Linear(size.dim, size.patch_size**2 * size.channels,
                              dtype=encoder.dtype, rngs=rngs)

  def __call__(self, images, mask, *, train=False, key=None):
    """Returns predicted patch pixels [B, N, p*p*C] for images [B, H, W, C], mask [B, N]."""
    tokens, aux = self.encoder(images, train=train, key=key, mask=mask,
                               mask_token=self.mask_token[...])
    return self.decoder(tokens), aux


class Classifier(nnx.Module):
  """Mean-pooled patch tokens -> dropout -> linear logits."""

  def __init__(self, encoder, num_classes, *, dropout_rate=0.0, rngs: nnx.Rngs):
    self.encoder, self.dropout_rate = encoder, dropout_rate
    self.head = nnx.Linear(encoder.size.dim, num_classes, kernel_init=zeros,
                           dtype=encoder.dtype, rngs=rngs)

  def __call__(self, images, *, train=False, key=None):
    k_enc, k_head = layers.split_key(key, 2)
    tokens, aux = self.encoder(images, train=train, key=k_enc)
    pooled = layers.dropout(tokens.mean(axis=1), self.dropout_rate, k_head, train=train)
    return self.head(pooled), aux


class LinearSegmenter(nnx.Module):
  """The study's segmentation head: per token, linear to p x p x K logits, unpatchified."""

  def __init__(self, encoder, num_classes, *, rngs: nnx.Rngs):
    size = encoder.size
    self.encoder, self.num_classes = encoder, num_classes
    self.head = nnx.Linear(size.dim, size.patch_size**2 * num_classes, kernel_init=zeros,
                           dtype=encoder.dtype, rngs=rngs)

  def __call__(self, images, *, train=False, key=None):
    """Returns per-pixel logits [B, H, W, K]."""
    tokens, aux = self.encoder(images, train=train, key=key)
    return vit.unpatchify(self.head(tokens), self.encoder.size.patch_size, aux["grid"]), aux


def param_count(module) -> int:
  return sum(x.size for x in jax.tree.leaves(nnx.state(module, nnx.Param)))
