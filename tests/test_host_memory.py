"""The host-memory policy (ssl_seg/host_memory.py), in child processes: it is process-wide."""

import os
import subprocess
import sys

import pytest

_CHILD = ("from ssl_seg import host_memory as h; "
          "print(h.reuse_freed_memory(), h.reuse_freed_memory())")


def _run(env_value):
  env = dict(os.environ)
  env.pop("SSL_SEG_HOST_MEMORY", None)
  if env_value is not None:
    env["SSL_SEG_HOST_MEMORY"] = env_value
  out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,
                       check=True)
  return out.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_reuse_is_set_once_on_glibc_and_off_with_system():
  assert _run(None) == ["True", "True"]  # Applied, and a second call reports the same.
  assert _run("system") == ["False", "False"]


def test_importing_the_entry_points_starts_no_xla_client():
  # The policy must be set before XLA's CPU client starts its threads (they keep their own
  # malloc arenas): `ssl_seg.main` and the benchmarks set it after their imports, so no module
  # may run a jnp op at import (a jnp constant in ssl_seg.data.augment did: the ViT step then
  # ran 1.3x slower in benchmarks/torch_reference.py).
  child = ("import sys; sys.path.insert(0, '.'); import ssl_seg.main, ssl_seg.predict, "
           "ssl_seg.evaluate; from benchmarks import step_time, torch_reference, loop_overhead; "
           "from jax._src import xla_bridge; print(xla_bridge.backends_are_initialized())")
  out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert out.stdout.split() == ["False"]
