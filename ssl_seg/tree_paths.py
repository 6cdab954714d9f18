"""Pytrees as flat {'a/b/c': leaf} dicts: the names checkpoints and exported .npz files use.

Any pytree (nnx State, optax states, dicts) flattens by its path; nnx Variables flatten to a
trailing `.value` attribute, which is dropped so names read like the module attributes
('encoder/blocks/0/attn/qkv/kernel'); list indices are path parts. Matching by name, not by
position, is what lets a checkpoint report which keys and shapes do not fit.
"""

import jax
import numpy as np


def _key_name(k):
  for attr in ("key", "name", "idx"):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def flatten(tree):
  """{'a/b/c': leaf} for every leaf of `tree`."""
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {"/".join(_key_name(k) for k in path
                   if getattr(k, "name", None) != "value"): leaf for path, leaf in leaves}


def nest(flat):
  """Nested dicts with string keys from {'a/b/c': leaf}: a container-free form for disk."""
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


def mismatches(target, flat, keep_init=()):
  """Lines naming the keys of `target` missing from `flat` (unless under a `keep_init` prefix),
  the keys of `flat` that `target` lacks, and shape mismatches; [] when `flat` fits."""
  target_flat = flatten(target)
  missing = [k for k in target_flat if k not in flat and not k.startswith(tuple(keep_init))]
  unexpected = [k for k in flat if k not in target_flat]
  mismatched = [f"{k}: checkpoint {tuple(np.shape(flat[k]))} vs model "
                f"{tuple(target_flat[k].shape)}"
                for k in target_flat if k in flat and np.shape(flat[k]) != target_flat[k].shape]
  lines = []
  if missing:
    lines.append(f"  missing keys ({len(missing)}): {_describe(missing)}")
  if unexpected:
    lines.append(f"  unexpected keys ({len(unexpected)}): {_describe(unexpected)}")
  if mismatched:
    lines.append(f"  shape mismatches ({len(mismatched)}): {_describe(mismatched)}")
  return lines


def place(target, flat):
  """`target`'s structure with the leaves of `flat` by name, cast to `target`'s dtypes; leaves
  `flat` lacks keep their value. Check `mismatches` first."""
  leaves, treedef = jax.tree.flatten(target)
  names = list(flatten(target))
  new = [np.asarray(flat[n]).astype(leaf.dtype) if n in flat else leaf
         for n, leaf in zip(names, leaves)]
  return jax.tree.unflatten(treedef, new)
