"""Model constructors by name: configs pick an encoder and a size variant."""

import dataclasses

import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(model_cfg):
  if model_cfg.dtype not in DTYPES:
    raise ValueError(f"model.dtype must be one of {sorted(DTYPES)}, got {model_cfg.dtype!r}")
  return DTYPES[model_cfg.dtype]


def build_vit_encoder(model_cfg, rngs):
  """ViT encoder from `model.variant`, with any ViTSize field overridden by the config."""
  from ssl_seg.models import vit
  if model_cfg.variant not in vit.VARIANTS:
    raise ValueError(f"unknown ViT variant {model_cfg.variant!r}; choose one of "
                     f"{sorted(vit.VARIANTS)}")
  size = vit.VARIANTS[model_cfg.variant]
  overrides = {f.name: model_cfg[f.name] for f in dataclasses.fields(size)
               if model_cfg.get(f.name) is not None}
  size = dataclasses.replace(size, **overrides)
  return vit.ViTEncoder(size, dropout_rate=model_cfg.dropout, dtype=compute_dtype(model_cfg),
                        rngs=rngs)


def build_curvenet(model_cfg, out_channels, rngs):
  """CurveNet (encoder incl. bottleneck transformer + decoder) from the config's size fields."""
  from ssl_seg.models import curvenet as cn
  if model_cfg.variant not in cn.VARIANTS:
    raise ValueError(f"unknown CurveNet variant {model_cfg.variant!r}; choose one of "
                     f"{sorted(cn.VARIANTS)}")
  # A config saved before a field existed gets the value its checkpoints were made with.
  size = {f.name: model_cfg.get(f.name, cn.LEGACY_DEFAULTS.get(f.name, f.default))
          for f in dataclasses.fields(cn.CurveNetSize)}
  size["widths"] = tuple(size["widths"])
  size["logit_strides"] = tuple(size["logit_strides"])
  return cn.CurveNetModel(in_channels=1, out_channels=out_channels, dropout_rate=model_cfg.dropout,
                          dtype=compute_dtype(model_cfg), rngs=rngs, **size)
