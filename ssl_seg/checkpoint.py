"""Orbax checkpoints per stage, exact resume, and encoder grafting with a key-and-shape report.

On disk a state is a nested dict with string keys (one level per pytree path entry), so the
format does not depend on optax/nnx container types: params, rest, opt and a small JSON meta are
separate Orbax items, and grafting reads only `params`. Restoring matches leaves by path and
raises one error listing missing keys, unexpected keys and shape mismatches.
"""

import os

import jax
import numpy as np
import orbax.checkpoint as ocp

# `params` alone is what grafting reads; everything else a resume needs is `train_state`.
ITEMS = ("params", "train_state", "meta")
TRAIN_STATE_KEYS = ("rest", "opt", "step", "bad_step", "skipped")


class CheckpointMismatchError(ValueError):
  """A checkpoint's tree does not fit the model (keys and shapes listed in the message)."""


class CheckpointSaveError(OSError):
  """Writing a checkpoint failed (disk full, ...); earlier checkpoints are left intact."""


def _key_name(k):
  for attr in ("key", "name", "idx"):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def flatten(tree):
  """{'a/b/c': leaf} for every leaf of any pytree (nnx State, optax states, dicts).

  nnx Variables flatten to a trailing `.value` attribute; it is dropped so names read like
  the module attributes ('encoder/blocks/0/attn/qkv/kernel').
  """
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {"/".join(_key_name(k) for k in path
                   if getattr(k, "name", None) != "value"): leaf for path, leaf in leaves}


def _nest(flat):
  out = {}
  for name, leaf in flat.items():
    node = out
    *parents, last = name.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[last] = leaf
  return out


def _describe(names, limit=20):
  names = sorted(names)
  more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
  return ", ".join(names[:limit]) + more


def fill(target, flat, *, what, keep_init=()):
  """Leaves of `flat` (by path) placed into the structure of `target`; strict about fit.

  Args:
    target: pytree whose structure and shapes the result takes (arrays or ShapeDtypeStructs).
    flat: {'path': array} as written by `save`.
    keep_init: path prefixes of `target` that may be absent from `flat` and keep their value.
  """
  target_flat = flatten(target)
  missing = [k for k in target_flat if k not in flat and not k.startswith(tuple(keep_init))]
  unexpected = [k for k in flat if k not in target_flat]
  mismatched = [f"{k}: checkpoint {tuple(np.shape(flat[k]))} vs model "
                f"{tuple(target_flat[k].shape)}"
                for k in target_flat if k in flat and np.shape(flat[k]) != target_flat[k].shape]
  if missing or unexpected or mismatched:
    parts = [f"checkpoint does not fit the model ({what}):"]
    if missing:
      parts.append(f"  missing keys ({len(missing)}): {_describe(missing)}")
    if unexpected:
      parts.append(f"  unexpected keys ({len(unexpected)}): {_describe(unexpected)}")
    if mismatched:
      parts.append(f"  shape mismatches ({len(mismatched)}): {_describe(mismatched)}")
    raise CheckpointMismatchError("\n".join(parts))
  leaves, treedef = jax.tree.flatten(target)
  names = list(target_flat)
  new = [np.asarray(flat[n]).astype(leaf.dtype) if n in flat else leaf
         for n, leaf in zip(names, leaves)]
  return jax.tree.unflatten(treedef, new)


def manager(stage_dir, keep=3):
  """Orbax manager for WORKDIR/<stage>/checkpoints (atomic writes, keeps the last `keep`)."""
  # Handlers named up front (not just item names) so a fresh manager can read item metadata.
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(stage_dir, "checkpoints")),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
      item_handlers={"params": ocp.StandardCheckpointHandler(),
                     "train_state": ocp.StandardCheckpointHandler(),
                     "meta": ocp.JsonCheckpointHandler()})


def save(mngr, state, meta):
  """Saves the state at its step; `meta` is a JSON-able dict (epoch, stage, config...).

  Orbax writes into a temporary directory and renames it when complete, and prunes old steps
  only after that, so a failed write never replaces or removes the last good checkpoint.
  """
  step = int(state["step"])
  train_state = _nest(flatten({k: state[k] for k in TRAIN_STATE_KEYS}))
  try:
    mngr.save(step, force=True, args=ocp.args.Composite(
        params=ocp.args.StandardSave(_nest(flatten(state["params"]))),
        train_state=ocp.args.StandardSave(train_state),
        meta=ocp.args.JsonSave(meta)))
    mngr.wait_until_finished()
  except OSError as e:
    good = _complete_steps(mngr.directory)
    kept = (f"the last good checkpoint (step {good[-1]}) is intact" if good
            else "no earlier checkpoint exists")
    raise CheckpointSaveError(
        e.errno, f"could not write checkpoint step {step} to {mngr.directory} "
        f"({e.strerror or e}); {kept}; free disk space (or fix permissions) and run the same "
        "command again to resume") from e


def _complete_steps(directory):
  """Steps with a finished (renamed) checkpoint directory; temporary ones are not counted."""
  try:
    names = os.listdir(directory)
  except OSError:
    return []
  return sorted(int(n) for n in names if n.isdigit())


def _restore_items(mngr, step, names):
  """Items restored onto this process's first device, whatever topology saved them (1 or N
  devices, replicated or FSDP); the caller re-shards them for the current mesh."""
  metadata = mngr.item_metadata(step)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  args = {}
  for n in names:
    if n == "meta":
      args[n] = ocp.args.JsonRestore()
    else:
      target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                            dict(metadata[n]))
      args[n] = ocp.args.StandardRestore(target)
  return mngr.restore(step, args=ocp.args.Composite(**args))


def restore_state(mngr, target_state, step=None):
  """(state, meta) from the latest (or given) step, shaped like `target_state`."""
  step = mngr.latest_step() if step is None else step
  got = _restore_items(mngr, step, ITEMS)
  state = {"params": fill(target_state["params"], flatten(got["params"]), what="params")}
  rest = {k: target_state[k] for k in TRAIN_STATE_KEYS}
  state.update(fill(rest, flatten(got["train_state"]), what="train state"))
  return state, dict(got["meta"])


def read_meta(mngr, step=None):
  step = mngr.latest_step() if step is None else step
  return dict(_restore_items(mngr, step, ("meta",))["meta"])


def restore_params(mngr, target_params, step=None):
  """Only the `params` item of the latest (or given) step, shaped like `target_params`.

  Inference needs neither the optimizer state nor its shapes; `target_params` may hold
  ShapeDtypeStructs (e.g. from `nnx.eval_shape`).
  """
  step = mngr.latest_step() if step is None else step
  saved = _restore_items(mngr, step, ("params",))["params"]
  return fill(target_params, flatten(saved), what=f"params of step {step}")


def graft(params, source_stage_dir, subtrees=("encoder",)):
  """Fresh `params` with the named subtrees replaced by those of a finished stage, bit for bit.

  Every leaf under `subtrees` must be present in the source with the same shape; leaves
  outside them (the new heads) keep their fresh initialisation.
  """
  ckpt_dir = os.path.join(source_stage_dir, "checkpoints")
  hint = ("run that stage first (same workdir) or point init_from.stage at a stage directory "
          "that holds checkpoints/")
  if not os.path.isdir(ckpt_dir):
    raise FileNotFoundError(f"no checkpoint to graft from in {ckpt_dir}: the directory does not "
                            f"exist; {hint}")
  src = manager(source_stage_dir)
  if src.latest_step() is None:
    raise FileNotFoundError(f"no checkpoint to graft from in {ckpt_dir}; {hint}")
  saved = flatten(_restore_items(src, src.latest_step(), ("params",))["params"])
  prefixes = tuple(s + "/" for s in subtrees)
  chosen = {k: v for k, v in saved.items() if k.startswith(prefixes)}
  if not chosen:
    raise CheckpointMismatchError(f"checkpoint in {source_stage_dir} has no subtree "
                                  f"{list(subtrees)}; top-level keys: "
                                  f"{sorted({k.split('/')[0] for k in saved})}")
  own = flatten(params)
  keep = [k for k in own if not k.startswith(prefixes)]
  return fill(params, chosen, what=f"graft {list(subtrees)} from {source_stage_dir}",
              keep_init=keep)
