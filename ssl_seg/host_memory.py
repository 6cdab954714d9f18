"""Host memory policy for XLA's CPU executions: reuse freed memory instead of fresh pages.

XLA's CPU runtime allocates one temp buffer per execution of a compiled step (685 MB for the
paper-size ViT SimMIM train step at batch 32, about 160 MB for the CurveNet-small step at the demo's
8 x 128 x 256) with malloc and frees it when the step ends. glibc serves so large a block with
a fresh mmap and unmaps it on free, so every step touched every page anew: ~175,000 minor page
faults per ViT step (~40,000 per CurveNet step), each a trip into the kernel that zeroes a
page. On the project's 2-core CPU that was about a quarter of the ViT step and a fifth to a
third of the CurveNet step (benchmarks/RESULTS.md, "Page faults").

`reuse_freed_memory()` tells glibc (mallopt) to keep large blocks on its heap and not give
freed memory back to the system, with one arena for all threads (a worker thread's own arena
would fall back to mmap for a block this large): from the second step on the buffer is the
same memory, already mapped. The cost is that the process keeps its peak heap (it held that
much during every step anyway). Call it at process start, before JAX runs anything: threads
that already allocated keep their arenas. A no-op off glibc; SSL_SEG_HOST_MEMORY=system skips
it.
"""

import ctypes
import os
import sys

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_INT_MAX = 2**31 - 1
ENV = "SSL_SEG_HOST_MEMORY"

_applied = None


def reuse_freed_memory():
  """Sets glibc's malloc to keep and reuse freed memory; True where it did (once per process).

  Off Linux/glibc, or with SSL_SEG_HOST_MEMORY=system, returns False and changes nothing.
  """
  global _applied
  if _applied is not None:
    return _applied
  _applied = False
  if os.environ.get(ENV, "reuse") == "system" or not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL("libc.so.6")
  except OSError:  # Not glibc (musl, ...).
    return False
  mallopt = getattr(libc, "mallopt", None)
  if mallopt is None:
    return False
  mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
  _applied = all(mallopt(param, value) == 1 for param, value in (
      (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _INT_MAX)))
  return _applied
