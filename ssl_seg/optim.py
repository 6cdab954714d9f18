"""Optimizer from config: AdamW, the study's schedules (optax), clipping, encoder policy.

The encoder policy is an optimizer param group (`optax.multi_transform` over the top-level
`encoder` subtree), never a stop_gradient in model code:
  "train"        encoder trains like the head;
  "frozen"       encoder updates are zero (no optimizer state kept for it);
  "lr_scale=x"   encoder learning rate is x times the head's.
`frozen_epochs=N` keeps the encoder frozen for N epochs, then applies the policy ("gently
unfrozen": lr_scale < 1 after the frozen phase).

`optim.layer_decay=d` (< 1; 1 = off) is MAE's and BEiT's layer-wise learning-rate decay: a ViT
of L blocks has layers 0 (patch embedding, cls token, posemb), 1..L (the blocks) and L + 1
(final norm and every head), and layer i's updates are scaled by d ** (L + 1 - i), on top of
the encoder policy (weight decay is scaled with them, as in MAE's param groups).
"""

import jax
import jax.numpy as jnp
import optax


def parse_policy(policy: str) -> float | None:
  """Encoder learning-rate multiplier for a policy string; None means frozen."""
  if policy == "train":
    return 1.0
  if policy == "frozen":
    return None
  if policy.startswith("lr_scale="):
    try:
      scale = float(policy.split("=", 1)[1])
    except ValueError:
      scale = -1.0
    if scale >= 0:
      return scale
  raise ValueError(f"encoder policy must be 'train', 'frozen' or 'lr_scale=<float >= 0>', "
                   f"got {policy!r}")


def make_schedule(optim, steps_per_epoch, total_steps):
  """Learning-rate schedule in steps from a config whose durations are in epochs."""
  lr = optim.lr
  if optim.schedule == "constant":
    return optax.constant_schedule(lr)
  if optim.schedule == "multistep":
    # The study: multiply by `decay_factor` after each epoch in `decay_epochs`.
    boundaries = {int(e * steps_per_epoch): optim.decay_factor for e in optim.decay_epochs}
    return optax.piecewise_constant_schedule(lr, boundaries)
  if optim.schedule == "cosine":
    warmup = int(optim.warmup_epochs * steps_per_epoch)
    return optax.warmup_cosine_decay_schedule(0.0, lr, max(warmup, 1), max(total_steps, warmup + 1),
                                              end_value=lr * optim.end_lr_factor)
  raise ValueError(f"optim.schedule must be constant, multistep or cosine, got "
                   f"{optim.schedule!r}")


def _adamw(schedule, optim):
  return optax.adamw(schedule, b1=optim.b1, b2=optim.b2, weight_decay=optim.weight_decay)


def param_groups(params):
  """'encoder' for leaves under the top-level `encoder` subtree, 'head' for the rest."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: "encoder" if path[0].key == "encoder" else "head", params)


def _name(k):
  return str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))))


def layer_ids(params):
  """(pytree of ints, L): each leaf's layer for layer decay (see the module docstring)."""
  paths = [tuple(_name(k) for k in p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  blocks = {p[2] for p in paths if p[:2] == ("encoder", "blocks") and len(p) > 2}
  if not blocks:
    raise ValueError("optim.layer_decay needs a ViT encoder (params encoder/blocks/<i>/...); "
                     "this model has none: set optim.layer_decay=1")
  depth = len(blocks)

  def layer(path, _):
    p = tuple(_name(k) for k in path)
    if p[0] != "encoder" or p[1] == "norm":
      return depth + 1
    return int(p[2]) + 1 if p[1] == "blocks" else 0
  return jax.tree_util.tree_map_with_path(layer, params), depth


def scale_by_layer_decay(params, decay):
  """Multiplies each leaf's update by decay ** (L + 1 - layer)."""
  ids, depth = layer_ids(params)
  scales = jax.tree.map(lambda i: decay ** (depth + 1 - i), ids)

  def update_fn(updates, state, params=None):
    del params
    return jax.tree.map(lambda u, s: u * jnp.asarray(s, u.dtype), updates, scales), state

  return optax.GradientTransformation(lambda _: optax.EmptyState(), update_fn)


def make_optimizer(optim, encoder, steps_per_epoch, total_steps, params):
  """optax transformation for `params` (a pytree with top-level keys `encoder` and heads)."""
  schedule = make_schedule(optim, steps_per_epoch, total_steps)
  scale = parse_policy(encoder.policy)
  frozen_steps = int(encoder.frozen_epochs * steps_per_epoch)
  if scale is None or frozen_steps >= total_steps:
    encoder_tx = optax.set_to_zero()
  else:
    encoder_schedule = lambda step: schedule(step) * scale
    if frozen_steps > 0:
      encoder_schedule = optax.join_schedules(
          [optax.constant_schedule(0.0), encoder_schedule], [frozen_steps])
    encoder_tx = _adamw(encoder_schedule, optim)
  tx = optax.multi_transform({"encoder": encoder_tx, "head": _adamw(schedule, optim)},
                             param_groups)
  decay = optim.get("layer_decay", 1.0)  # Configs saved before it existed: off.
  if decay != 1.0:
    tx = optax.chain(tx, scale_by_layer_decay(params, decay))
  if optim.clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(optim.clip_norm), tx)
  return tx, schedule
