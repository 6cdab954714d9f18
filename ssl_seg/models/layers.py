"""Building blocks shared by the ViT and CurveNet's bottleneck.

Randomness is explicit: modules take a `key` in `__call__` (None at eval), never hold
`nnx.Rngs`, so a train step is a pure function of (state, batch, key).
"""

import jax
import jax.numpy as jnp
from flax import nnx


def dropout(x, rate, key, *, train):
  """Inverted dropout; identity at eval, when rate is 0 or when no key is given.

  Each 32-bit random word decides two elements (16 bits each): drawing the masks is half of
  `jax.random.bernoulli`'s cost, which spends a word per element and took ~0.5 s of a 1.8 s
  paper-size classify step on the CPU (37 dropout layers). The drop rate is `rate` rounded to
  a multiple of 2^-16 and kept elements are scaled by the exact keep probability, so the
  expectation is unchanged.
  """
  if not train or rate == 0.0 or key is None:
    return x
  drop_below = round(rate * 65536)
  words = jax.random.bits(key, ((x.size + 1) // 2,), jnp.uint32)
  draws = jnp.stack([words & 0xFFFF, words >> 16], axis=-1).reshape(-1)[:x.size]
  keep = draws.reshape(x.shape) >= drop_below
  return jnp.where(keep, x / (1.0 - drop_below / 65536), 0.0).astype(x.dtype)


def split_key(key, n):
  """`n` keys from `key`, or `n` Nones when there is no key (eval)."""
  if key is None:
    return [None] * n
  return list(jax.random.split(key, n))


class Attention(nnx.Module):
  """Pre-norm multi-head self-attention.

  Head width is independent of the model width (`heads * head_dim` may exceed `dim`),
  as in the study's PyTorch ViT (8 heads of 64 over a 128-wide stream).

  Parameters are one fused `qkv` Linear [dim, 3 * heads * head_dim] and an `out` Linear, as in
  the study's model, but the projections are computed as big_vision's DenseGeneral does: the
  kernel is viewed as [dim, 3, heads, head_dim] and contracted straight into head-major
  [B, heads, N, head_dim] q, k, v, and the output projection contracts (heads, head_dim) back.
  Same function, same parameters; on XLA's CPU backend it avoids splitting a [B, N, 3 * inner]
  tensor (a concatenate in the backward pass) and most head transposes, and measured ~15-20 %
  off the paper-size SimMIM step (benchmarks/RESULTS.md).
  """

  def __init__(self, dim, heads, head_dim, dropout_rate, *, dtype, rngs):
    self.heads, self.head_dim, self.dropout_rate, self.dtype = heads, head_dim, dropout_rate, dtype
    inner = heads * head_dim
    self.norm = nnx.LayerNorm(dim, dtype=dtype, rngs=rngs)
    self.qkv = nnx.Linear(dim, 3 * inner, use_bias=False, dtype=dtype, rngs=rngs)
    self.out = nnx.Linear(inner, dim, dtype=dtype, rngs=rngs)

  def __call__(self, x, *, mask=None, train=False, key=None):
    """x [B, N, D]; mask optional bool [B, N]: False tokens are ignored as keys (padding)."""
    h = self.norm(x).astype(self.dtype)
    w_qkv = self.qkv.kernel[...].astype(self.dtype).reshape(-1, 3, self.heads, self.head_dim)
    q, k, v = (jnp.einsum("bnc,chd->bhnd", h, w_qkv[:, i]) for i in range(3))
    q = q * jnp.asarray(self.head_dim**-0.5, q.dtype)
    logits = jnp.einsum("bhqd,bhkd->bhqk", q, k).astype(jnp.float32)
    if mask is not None:
      # A finite floor rather than -inf keeps all-padding rows (uniform weights) free of NaN.
      logits = jnp.where(mask[:, None, None, :], logits, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    y = jnp.einsum("bhqk,bhkd->bhqd", weights, v)
    w_out = self.out.kernel[...].astype(self.dtype).reshape(self.heads, self.head_dim, -1)
    y = jnp.einsum("bhnd,hdc->bnc", y, w_out) + self.out.bias[...].astype(self.dtype)
    return dropout(y, self.dropout_rate, key, train=train)


class MLP(nnx.Module):
  """Pre-norm two-layer GELU MLP."""

  def __init__(self, dim, hidden, dropout_rate, *, dtype, rngs):
    self.dropout_rate = dropout_rate
    self.norm = nnx.LayerNorm(dim, dtype=dtype, rngs=rngs)
    self.fc1 = nnx.Linear(dim, hidden, dtype=dtype, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, dim, dtype=dtype, rngs=rngs)

  def __call__(self, x, *, train=False, key=None):
    k1, k2 = split_key(key, 2)
    h = dropout(jax.nn.gelu(self.fc1(self.norm(x))), self.dropout_rate, k1, train=train)
    return dropout(self.fc2(h), self.dropout_rate, k2, train=train)


class TransformerBlock(nnx.Module):
  """Pre-norm residual block: x + attn(x), then x + mlp(x)."""

  def __init__(self, dim, heads, head_dim, mlp_dim, dropout_rate=0.0, *, dtype=jnp.float32,
               rngs):
    self.attn = Attention(dim, heads, head_dim, dropout_rate, dtype=dtype, rngs=rngs)
    self.mlp = MLP(dim, mlp_dim, dropout_rate, dtype=dtype, rngs=rngs)

  def __call__(self, x, *, mask=None, train=False, key=None):
    k1, k2 = split_key(key, 2)
    x = x + self.attn(x, mask=mask, train=train, key=k1)
    return x + self.mlp(x, train=train, key=k2)


def sincos_posemb_2d(h, w, dim, dtype=jnp.float32):
  """Fixed 2-D sine-cosine position embedding [h*w, dim], computable for any grid size."""
  if dim % 4:
    raise ValueError(f"sincos position embedding needs dim divisible by 4, got {dim}")
  y, x = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                      indexing="ij")
  omega = 1.0 / (10000.0 ** (jnp.arange(dim // 4, dtype=jnp.float32) / (dim // 4)))
  y = y.reshape(-1, 1) * omega
  x = x.reshape(-1, 1) * omega
  return jnp.concatenate([jnp.sin(x), jnp.cos(x), jnp.sin(y), jnp.cos(y)], axis=1).astype(dtype)
