r"""Trained encoders out of a workdir and into fresh models: a flat `.npz` and `load_encoder`.

  python -m ssl_seg.export --checkpoint=WORKDIR/STAGE --out=enc.npz [--subtree=encoder]

`--checkpoint` is a stage directory (its newest readable step) or its checkpoints/ directory.
The file holds one float32 array per parameter of the subtree, named by its module path as in
the checkpoints (`tree_paths.flatten`; nnx attribute names, list indices as path parts):

  encoder/patch_norm/{scale,bias}        [p*p*C]      LayerNorm of the flattened patches
  encoder/patch_embed/{kernel,bias}      [p*p*C, D]   patch pixels (p, q, c order) -> width
  encoder/embed_norm/{scale,bias}        [D]
  encoder/cls_token                      [1, 1, D]
  encoder/posemb                         [1, 1+N, D]  cls first, then the grid in row order
  encoder/blocks/I/attn/norm/{scale,bias}  [D]        pre-norm of block I (0-based)
  encoder/blocks/I/attn/qkv/kernel       [D, 3*H*Dh]  no bias; columns (q|k|v, head, Dh)
  encoder/blocks/I/attn/out/{kernel,bias}  [H*Dh, D]
  encoder/blocks/I/mlp/norm/{scale,bias} [D]
  encoder/blocks/I/mlp/fc1/{kernel,bias} [D, M]       tanh-GELU between fc1 and fc2
  encoder/blocks/I/mlp/fc2/{kernel,bias} [M, D]
  encoder/norm/{scale,bias}              [D]          final LayerNorm
  __config__                             JSON string: {"model": the stage's model config,
                                         "size": the resolved ViTSize, "stage", "task", "step"}

Kernels are [in, out] (Flax), not PyTorch's [out, in]. `load_encoder(path)` reads such a file
or a checkpoint directly and returns (encoder module with the weights, its nnx.State of params).
"""

import dataclasses
import json
import os
import sys

import jax
import ml_collections
import numpy as np
from absl import app, flags, logging
from flax import nnx

from ssl_seg import checkpoint, config_utils, models, state as state_lib, tree_paths
from ssl_seg.models import vit

CONFIG_KEY = "__config__"


def restore_model(path, step=None, *, log=None):
  """(stage config, task model with the checkpoint's params, step) from a stage directory."""
  got = state_lib.restore(path, step, log=log)
  rest = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), got.rest)
  return got.stage, nnx.merge(got.graphdef, got.params, rest), got.step


def encoder_arrays(model, subtree="encoder"):
  """{'encoder/...': float32 array} of one top-level subtree of a task model."""
  params = tree_paths.flatten(nnx.state(model, nnx.Param))
  prefix = subtree + "/"
  out = {k: np.asarray(v) for k, v in params.items() if k.startswith(prefix)}
  if not out:
    raise ValueError(f"the model has no subtree {subtree!r}; top-level keys: "
                     f"{sorted({k.split('/')[0] for k in params})}")
  return out


def export_encoder(path, out, *, subtree="encoder", step=None, log=None):
  """Writes the subtree of a checkpoint's params to `out` (.npz); returns {name: shape}."""
  if not str(out).endswith(".npz"):
    raise ValueError(f"--out must end in .npz, got {out}")
  stage, model, step = restore_model(path, step, log=log)
  arrays = encoder_arrays(model, subtree)
  meta = {"model": stage.model.to_dict(), "stage": os.path.basename(checkpoint.stage_dir_of(path)),
          "task": stage.task, "step": int(step), "subtree": subtree}
  if stage.model.get("name") == "vit":
    meta["size"] = dataclasses.asdict(models.resolve_size(stage.model)[0])
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  tmp = f"{out}.tmp"
  with open(tmp, "wb") as f:  # A file object: np.savez would append .npz to the tmp name.
    np.savez(f, **arrays, **{CONFIG_KEY: np.asarray(json.dumps(meta))})
  os.replace(tmp, out)
  return {k: tuple(v.shape) for k, v in arrays.items()}


def read_npz(path):
  """({'encoder/...': array}, meta dict) of a file `export_encoder` wrote."""
  with np.load(path, allow_pickle=False) as z:
    if CONFIG_KEY not in z.files:
      raise ValueError(f"{path} has no {CONFIG_KEY} entry: not a file ssl_seg.export wrote")
    meta = json.loads(str(z[CONFIG_KEY]))
    return {k: z[k] for k in z.files if k != CONFIG_KEY}, meta


def load_encoder(path, *, step=None):
  """(ViT encoder module holding the weights, its nnx.State of params) from an exported .npz
  or a stage directory. Use it in a fresh model: `model.encoder = encoder`, or
  `heads.LinearSegmenter(encoder, K, rngs=...)`."""
  if os.path.isfile(path):
    arrays, meta = read_npz(path)
    if "size" not in meta:
      raise ValueError(f"{path} holds a {meta['model'].get('name')!r} subtree; load_encoder "
                       "builds ViT encoders only")
    model_cfg = ml_collections.ConfigDict(meta["model"])
    size, subtree = vit.ViTSize(**meta["size"]), meta.get("subtree", "encoder")
  else:
    stage, model, _ = restore_model(path, step)
    if stage.model.get("name") != "vit":
      raise ValueError(f"{path} is a {stage.model.get('name')!r} stage; load_encoder builds ViT "
                       "encoders only")
    model_cfg, subtree = stage.model, "encoder"
    size, _ = models.resolve_size(model_cfg)
    arrays = encoder_arrays(model, subtree)
  abstract = nnx.eval_shape(lambda: vit.ViTEncoder(
      size, dropout_rate=model_cfg.dropout, dtype=models.compute_dtype(model_cfg),
      rngs=nnx.Rngs(0)))
  graphdef, params, rest = state_lib.split_model(abstract)
  prefix = subtree + "/"
  flat = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
  params = checkpoint.fill(params, flat, what=f"encoder from {path}")
  params = jax.device_put(params)
  encoder = nnx.merge(graphdef, params, rest)
  return encoder, nnx.state(encoder, nnx.Param)


def define_flags():
  flags.DEFINE_string("checkpoint", None, "Stage directory (WORKDIR/STAGE) or its checkpoints/.")
  flags.DEFINE_string("out", None, "Output .npz file.")
  flags.DEFINE_string("subtree", "encoder", "Top-level params subtree to export.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest readable one).")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  f = flags.FLAGS
  try:
    for name in ("checkpoint", "out"):
      if not f[name].value:
        raise ValueError(f"--{name} is required")
    shapes = export_encoder(f.checkpoint, f.out, subtree=f.subtree, step=f.step,
                            log=lambda m: print(m, file=sys.stderr))
  except (ValueError, OSError) as e:  # Incl. checkpoint errors (ValueErrors).
    print(f"error: {e}", file=sys.stderr)
    sys.exit(config_utils.USAGE_EXIT_CODE)
  total = sum(int(np.prod(s)) for s in shapes.values())
  print(f"wrote {f.out}: {len(shapes)} arrays, {total:,} parameters")


def cli():
  define_flags()
  app.run(main, flags_parser=config_utils.parse_flags)


if __name__ == "__main__":
  cli()
