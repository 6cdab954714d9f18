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
