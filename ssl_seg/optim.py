"""Optimizer from config: AdamW, the study's schedules (optax), clipping, encoder policy.

The encoder policy is an optimizer param group (`optax.multi_transform` over the top-level
`encoder` subtree), never a stop_gradient in model code:
  "train"        encoder trains like the head;
  "frozen"       encoder updates are zero (no optimizer state kept for it);
  "lr_scale=x"   encoder learning rate is x times the head's.
`frozen_epochs=N` keeps the encoder frozen for N epochs, then applies the policy ("gently
unfrozen": lr_scale < 1 after the frozen phase).
"""

import jax
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
  if optim.clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(optim.clip_norm), tx)
  return tx, schedule
