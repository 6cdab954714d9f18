"""Data parallelism over a 1-D `data` mesh: batches split, state replicated (or FSDP-sharded).

One code path for 1 ... N devices and for several hosts: the mesh spans `jax.devices()` (every
process's devices once `jax.distributed` is initialised), each process loads its own slice of
the global batch, and the jitted steps take explicit in/out shardings, so XLA inserts the
gradient all-reduce itself and the state keeps its layout from step to step (no recompiles,
donation works).
"""

import collections
import itertools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "data"


def make_mesh(devices=None):
  """A 1-D mesh named `data` over all devices (of all processes)."""
  return Mesh(np.asarray(jax.devices() if devices is None else devices), (AXIS,))


def batch_sharding(mesh):
  """Leading (batch) axis split over `data`; every batch leaf has the batch axis first."""
  return NamedSharding(mesh, P(AXIS))


def replicated(mesh):
  """Every device holds the whole array (scalars, keys, metrics)."""
  return NamedSharding(mesh, P())


def local_batch_size(global_batch_size, mesh, what="batch_size"):
  """This process's share of a global batch; an error unless it splits evenly over devices."""
  n = mesh.devices.size
  if global_batch_size % n:
    fits = [b for b in (global_batch_size // n * n, -(-global_batch_size // n) * n) if b > 0]
    raise ValueError(f"{what}={global_batch_size} does not divide over {n} devices; use a "
                     f"multiple of {n} (e.g. {fits[-1]}) or run on fewer devices")
  return global_batch_size // jax.process_count()


def _fsdp_spec(shape, n, min_size):
  """Shard the largest axis divisible by the device count; small leaves stay replicated."""
  if n == 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
    return P()
  axes = sorted((size, -i) for i, size in enumerate(shape) if size % n == 0)
  if not axes:
    return P()
  axis = -axes[-1][1]
  return P(*[AXIS if i == axis else None for i in range(len(shape))])


def state_shardings(state, mesh, *, fsdp=False, min_size=2**14):
  """A NamedSharding per state leaf: replicated, or with `fsdp` the large leaves split.

  Optimizer moments have their parameter's shape, so they get the same split as it does.
  """
  n = mesh.devices.size
  return jax.tree.map(
      lambda x: NamedSharding(mesh, _fsdp_spec(np.shape(x), n, min_size) if fsdp else P()),
      state)


def place(tree, shardings):
  """Host or device arrays -> global arrays with the given shardings (identical on all hosts)."""
  if jax.process_count() == 1:
    return jax.device_put(tree, shardings)
  return jax.tree.map(
      lambda x, s: jax.make_array_from_callback(np.shape(x), s, lambda idx: np.asarray(x)[idx]),
      tree, shardings)


def put_batch(batch, mesh):
  """This process's slice of a batch (dict of numpy arrays) -> global arrays split over `data`."""
  sharding = batch_sharding(mesh)
  if jax.process_count() == 1:
    return jax.device_put(batch, sharding)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)


def prefetch_to_device(batches, mesh, depth=2):
  """Yields batches already placed on the devices, keeping `depth` transfers in flight.

  device_put is asynchronous, so while step k runs the host loads and ships batch k+1.
  """
  queue = collections.deque()
  batches = iter(batches)
  for batch in itertools.islice(batches, depth):
    queue.append(put_batch(batch, mesh))
  while queue:
    yield queue.popleft()
    for batch in itertools.islice(batches, 1):
      queue.append(put_batch(batch, mesh))
