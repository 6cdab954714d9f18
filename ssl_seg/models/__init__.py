"""Model constructors by name: `model.name` picks the family, `model.variant` its sizes.

A model config names a family and a variant and sets only the size fields it means to change;
the fields it leaves None are the variant's (`resolve_size`), and a run logs the others.
"""

import dataclasses

import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(model_cfg):
  if model_cfg.dtype not in DTYPES:
    raise ValueError(f"model.dtype must be one of {sorted(DTYPES)}, got {model_cfg.dtype!r}")
  return DTYPES[model_cfg.dtype]


NAMES = {"vit": "ViT", "curvenet": "CurveNet"}  # model.name -> the family's name in messages.


def _family(name):
  """The module of model family `name` (its SIZE_FIELDS, resolve_size, LEGACY_DEFAULTS)."""
  if name not in NAMES:
    raise ValueError(f"unknown model.name {name!r}; choose one of {sorted(NAMES)}")
  from ssl_seg.models import curvenet, vit
  return {"vit": vit, "curvenet": curvenet}[name]


def resolve_size(model_cfg):
  """(size dataclass, overrides) of a model config: `model.variant` decoded, then every size
  field the config sets (not None) in its place; overrides is {field: (variant's value,
  config's value)} for those that differ. A field missing from a config saved before it
  existed takes the value its checkpoints were made with (the family's LEGACY_DEFAULTS)."""
  family = _family(model_cfg.name)
  legacy = getattr(family, "LEGACY_DEFAULTS", {})
  return family.resolve_size(model_cfg.variant, {k: model_cfg.get(k, legacy.get(k))
                                                 for k in family.SIZE_FIELDS})


def describe_overrides(model_cfg):
  """One line naming the size fields a config sets over its variant, or None."""
  _, changed = resolve_size(model_cfg)
  if not changed:
    return None
  return (f"{NAMES[model_cfg.name]} variant {model_cfg.variant!r} with " + ", ".join(
      f"model.{k}={new} (variant: {old})" for k, (old, new) in changed.items()))


def build_vit_encoder(model_cfg, rngs):
  """ViT encoder of `model.variant`, with the size fields the config sets overriding it."""
  from ssl_seg.models import vit
  size, _ = resolve_size(model_cfg)
  return vit.ViTEncoder(size, dropout_rate=model_cfg.dropout, dtype=compute_dtype(model_cfg),
                        rngs=rngs)


def build_curvenet(model_cfg, rngs, *, out_channels):
  """CurveNet (encoder incl. bottleneck transformer + decoder) of `model.variant`, with the
  size fields the config sets overriding it; one input channel (ink density)."""
  from ssl_seg.models import curvenet as cn
  size, _ = resolve_size(model_cfg)
  return cn.CurveNetModel(in_channels=1, out_channels=out_channels, dropout_rate=model_cfg.dropout,
                          dtype=compute_dtype(model_cfg), rngs=rngs, **dataclasses.asdict(size))


def build(model_cfg, rngs, **kw):
  """The model `model.name` names: a ViT encoder, or a CurveNet given `out_channels`."""
  _family(model_cfg.name)  # Unknown names: one error listing the known ones.
  return {"vit": build_vit_encoder, "curvenet": build_curvenet}[model_cfg.name](
      model_cfg, rngs, **kw)
