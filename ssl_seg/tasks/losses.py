"""Loss pieces shared by tasks: the per-element L1 / L2 error (SimMIM's and denoise's choice)."""

import jax.numpy as jnp

ERROR_KINDS = ("l1", "l2")


def pixel_error(pred, target, kind):
  """|pred - target| ("l1") or (pred - target)**2 ("l2"), elementwise."""
  diff = pred - target
  return jnp.abs(diff) if kind == "l1" else jnp.square(diff)
