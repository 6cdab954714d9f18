"""Shared config pieces: argument parsing and stage builders. Configs hold data only."""

import ml_collections
from ml_collections import config_dict

from ssl_seg.models import curvenet, vit

PET_CLASSES = ("pet", "background", "border")
WELLLOG_CLASSES = ("background", "curve1", "curve2")


def parse_arg(arg, **defaults):
  """'variant=tiny,runlocal' -> ConfigDict(variant='tiny', runlocal=True) over `defaults`."""
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, _, value = item.partition("=")
    if key not in defaults:
      raise ValueError(f"unknown config argument {key!r}; known: {sorted(defaults)}")
    if not _:
      value = True
    else:
      kind = type(defaults[key])
      try:
        if kind is bool and value.lower() not in ("1", "true", "yes", "0", "false", "no"):
          raise ValueError(value)
        value = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
      except ValueError:
        what = {int: "an integer", float: "a number", bool: "true or false"}.get(kind, kind)
        raise ValueError(f"config argument {item!r}: expected {what}, like "
                         f"{key}={defaults[key]}") from None
    out[key] = value
  return out


def vit_model(variant="paper", dropout=0.0, dtype="float32", img_size=None, **sizes):
  """A ViT model config: `variant` names the architecture (`vit.decode_variant`: paper, tiny,
  Ti/16, S/16, B/16, ...); the other size fields stay None (= the variant's) unless given here
  or as --config....model.FIELD=N, which then overrides the variant (and the run logs it).
  `img_size` is always set (the variant's by default): the data's `size` must equal it."""
  size = vit.decode_variant(variant)
  fields = {k: config_dict.placeholder(int) for k in vit.SIZE_FIELDS}
  fields.update(sizes)
  fields["img_size"] = size.img_size if img_size is None else img_size
  return ml_collections.ConfigDict(dict(name="vit", variant=variant, dropout=dropout,
                                        dtype=dtype, **fields))


def curvenet_model(variant="small", dropout=0.0, dtype="float32", **sizes):
  """A CurveNet model config: `variant` names the architecture (`curvenet.VARIANTS`: tiny,
  small, base); the size fields stay None (= the variant's) unless given here or as
  --config....model.FIELD=V, which then overrides the variant (and the run logs it)."""
  curvenet.decode_variant(variant)
  defaults = curvenet.CurveNetSize()
  fields = {k: config_dict.placeholder(type(getattr(defaults, k))) for k in curvenet.SIZE_FIELDS}
  fields.update(sizes)
  return ml_collections.ConfigDict(dict(name="curvenet", variant=variant, dropout=dropout,
                                        dtype=dtype, **fields))


def optim(lr, *, weight_decay, schedule="multistep", decay_epochs=(), decay_factor=0.1,
          warmup_epochs=0.0, clip_norm=0.0, layer_decay=1.0):
  # layer_decay < 1: MAE-style layer-wise lr decay of ViT encoders (ssl_seg/optim.py); 1 = off.
  return ml_collections.ConfigDict(dict(
      lr=lr, weight_decay=weight_decay, b1=0.9, b2=0.999, schedule=schedule,
      decay_epochs=tuple(decay_epochs), decay_factor=decay_factor,
      warmup_epochs=float(warmup_epochs), end_lr_factor=0.0, clip_norm=float(clip_norm),
      layer_decay=float(layer_decay)))


def stage(task, *, model, data, optim, epochs, batch_size, init_from="", encoder_policy="train",
          frozen_epochs=0, **extra):
  """One training stage; every field is overridable as --config.stages.NAME.field=value."""
  cfg = ml_collections.ConfigDict(dict(
      task=task, model=model, data=data, optim=optim, epochs=epochs, batch_size=batch_size,
      eval_batch_size=batch_size, seed=0,
      # An earlier stage of this workdir (its name) or a stage directory path; "" = fresh.
      # allow_partial: graft from a stage that has not finished (refused by default).
      init_from=ml_collections.ConfigDict(dict(stage=init_from, subtrees=("encoder",),
                                               allow_partial=False)),
      encoder=ml_collections.ConfigDict(dict(policy=encoder_policy,
                                             frozen_epochs=frozen_epochs)),
      augment=ml_collections.ConfigDict(dict(enabled=True, jitter=0.4, scale=(0.67, 1.0),
                                             mixup_alpha=0.0)),
      eval=ml_collections.ConfigDict(dict(every_epochs=1, per_image_miou=False)),
      log_every_steps=50,
      # every_steps > 0 also saves inside epochs (long epochs, preemptible machines).
      checkpoint=ml_collections.ConfigDict(dict(every_epochs=1, every_steps=0, keep=2)),
      # Params and optimizer state are replicated over the devices; fsdp=True splits every
      # leaf of at least fsdp_min_size elements along its largest axis divisible by the count.
      sharding=ml_collections.ConfigDict(dict(fsdp=False, fsdp_min_size=2**14)),
      # What a non-finite loss or gradient does: "stop" (keep the last good checkpoint and
      # exit non-zero) or "skip" (leave the params unchanged, count the step, go on).
      on_nonfinite="stop",
  ))
  for k, v in extra.items():
    cfg[k] = v
  return cfg


def experiment(stages: dict, seed=0, seed_offsets=None):
  """Top-level config: stages run in the given order.

  Stage seeds follow the global seed (`--config.seed=3` moves them all), plus an optional
  per-stage offset (e.g. the replicate index of a multi-seed study).
  """
  cfg = ml_collections.ConfigDict(dict(seed=seed, stage_order=tuple(stages), stages={}))
  for name, st in stages.items():
    cfg.stages[name] = st
    cfg.stages[name].seed = cfg.get_ref("seed") + (seed_offsets or {}).get(name, 0)
  return cfg
