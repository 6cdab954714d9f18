"""Model constructors by name: configs pick an encoder and a size variant."""

import dataclasses

import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(model_cfg):
  if model_cfg.dtype not in DTYPES:
    raise ValueError(f"model.dtype must be one of {sorted(DTYPES)}, got {model_cfg.dtype!r}")
  return DTYPES[model_cfg.dtype]


def vit_size(model_cfg):
  """(ViTSize, overrides) of a ViT model config: `model.variant` decoded (`vit.decode_variant`),
  then every size field the config sets (not None) in its place; overrides is
  {field: (variant's value, config's value)} for those that differ."""
  from ssl_seg.models import vit
  return vit.resolve_size(model_cfg.variant,
                          {k: model_cfg.get(k) for k in vit.SIZE_FIELDS})


def describe_overrides(model_cfg):
  """One line naming the size fields a ViT config sets over its variant, or None."""
  if model_cfg.get("name") != "vit":
    return None
  _, changed = vit_size(model_cfg)
  if not changed:
    return None
  return (f"ViT variant {model_cfg.variant!r} with " + ", ".join(
      f"model.{k}={new} (variant: {old})" for k, (old, new) in changed.items()))


def build_vit_encoder(model_cfg, rngs):
  """ViT encoder of `model.variant`, with the size fields the config sets overriding it."""
  from ssl_seg.models import vit
  size, _ = vit_size(model_cfg)
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
