"""Shared fixtures: CPU only, tiny models taken from the real configs."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# XLA's CPU compile time dominates these tiny-model tests (tens of seconds per CurveNet step at
# the default level); numerics stay deterministic. Subprocesses inherit it.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import pytest  # noqa: E402

from configs import vit_tiny_synthetic  # noqa: E402


@pytest.fixture
def tiny_config():
  """The tiny synthetic ViT experiment, shrunk to a handful of steps per stage."""
  cfg = vit_tiny_synthetic.get_config()
  for st in cfg.stages.values():
    st.data.num_train, st.data.num_eval = 16, 8
    st.batch_size = st.eval_batch_size = 8
    st.epochs = 1
    st.log_every_steps = 1
  return cfg
