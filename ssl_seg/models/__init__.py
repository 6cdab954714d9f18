"""Model constructors by name: `model.name` picks the family, `model.variant` its sizes.

A model config names a family and a variant and sets only the size fields it means to change;
the fields it leaves None are the variant's (`resolve_size`), and a run logs the others.
"""

import dataclasses

import jax.numpy as jnp

from ssl_seg import config_utils

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
NAMES = {"vit": "ViT", "curvenet": "CurveNet"}  # model.name -> the family's name in messages.
# Size fields where 0 means "derive it" (CurveNet's stem) or "none" (bottleneck layers).
ZERO_OK = ("stem_width", "bottleneck_layers")


def compute_dtype(model_cfg):
  if model_cfg.dtype not in DTYPES:
    raise ValueError(f"model.dtype must be one of {sorted(DTYPES)}, got {model_cfg.dtype!r}")
  return DTYPES[model_cfg.dtype]


def _family(name):
  """The module of model family `name`: its size dataclass's SIZE_FIELDS, decode_variant, and
  LEGACY_DEFAULTS (values for fields missing from configs saved before they existed)."""
  if name not in NAMES:
    raise ValueError(f"unknown model.name {name!r}; choose one of {sorted(NAMES)}")
  from ssl_seg.models import curvenet, vit
  return {"vit": vit, "curvenet": curvenet}[name]


def resolve_size(model_cfg):
  """(size dataclass, overrides) of a model config: `model.variant` decoded, then every size
  field the config sets (not None) in its place; overrides is {field: (variant's value,
  config's value)} for those that differ (the caller logs them). A field missing from a config
  saved before it existed takes the value its checkpoints were made with."""
  family = _family(model_cfg.name)
  size = family.decode_variant(model_cfg.variant)
  legacy = getattr(family, "LEGACY_DEFAULTS", {})
  given = {k: model_cfg.get(k, legacy.get(k)) for k in family.SIZE_FIELDS}
  # Configs read back from JSON hold lists where the dataclasses hold tuples.
  given = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v is not None}
  changed = {k: (getattr(size, k), v) for k, v in given.items() if getattr(size, k) != v}
  return dataclasses.replace(size, **given), changed


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


def validate(model_cfg, f):
  """The resolved size of model config `f` ('stages.NAME.model'), or config_utils.ConfigError
  for a bad field: size fields that build no model, an unknown variant, a ViT's patch grid."""
  for k, v in model_cfg.items():
    sizes = v if isinstance(v, (tuple, list)) else (v,)
    if all(isinstance(x, int) and not isinstance(x, bool) for x in sizes):
      low = 0 if k in ZERO_OK else 1
      config_utils.need(all(x >= low for x in sizes), f"{f}.{k}", f"must be >= {low}, got {v}")
  try:
    size, _ = resolve_size(model_cfg)
  except ValueError as e:
    raise config_utils.ConfigError(f"config.{f}.variant: {e}") from None
  if model_cfg.name == "vit":
    config_utils.need(size.img_size % size.patch_size == 0, f"{f}.img_size",
                      f"{size.img_size} is not a multiple of the patch size {size.patch_size} "
                      f"(variant {model_cfg.variant!r})")
  return size
