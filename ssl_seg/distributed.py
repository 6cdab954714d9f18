"""Multi-host start-up: one run over several processes (nodes) through jax.distributed.

`maybe_initialize()` runs before any device is touched. It starts jax.distributed when the
environment says this process is one of several:
- JAX_COORDINATOR_ADDRESS (host:port of process 0) with JAX_NUM_PROCESSES and JAX_PROCESS_ID
  (JAX_LOCAL_DEVICE_IDS optional, read by jax itself), as launch/slurm.py exports them; or
- a SLURM task of a multi-task step (`srun` with SLURM_NTASKS > 1): jax reads the rank, the
  task count and the first node from SLURM's variables itself.
SSL_SEG_DISTRIBUTED=0 turns this off (one process whatever the environment says), =1 forces a
call with jax's own cluster auto-detection (SLURM, Open MPI, ...). Otherwise nothing happens.
"""

import os

import jax

# What jax's SLURM detection reads (jax/_src/clusters/slurm_cluster.py).
_SLURM_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID",
               "SLURM_LOCALID", "SLURM_STEP_NUM_NODES")


def _int_env(env, name):
  try:
    return int(env[name])
  except ValueError:
    raise ValueError(f"environment variable {name}={env[name]!r} must be an integer") from None


def plan(env=None):
  """The jax.distributed.initialize kwargs this environment asks for, or None (one process)."""
  env = os.environ if env is None else env
  switch = env.get("SSL_SEG_DISTRIBUTED", "").strip().lower()
  if switch in ("0", "false", "no", "off"):
    return None
  if env.get("JAX_COORDINATOR_ADDRESS"):
    missing = [v for v in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID") if not env.get(v)]
    if missing and not all(v in env for v in _SLURM_VARS):
      raise ValueError(f"JAX_COORDINATOR_ADDRESS is set but {' and '.join(missing)} not: set "
                       "JAX_NUM_PROCESSES and JAX_PROCESS_ID for every process, or unset "
                       "JAX_COORDINATOR_ADDRESS for a single-process run")
    if not missing and _int_env(env, "JAX_NUM_PROCESSES") <= 1:
      return None
    kwargs = {"coordinator_address": env["JAX_COORDINATOR_ADDRESS"]}
    if not missing:
      kwargs.update(num_processes=_int_env(env, "JAX_NUM_PROCESSES"),
                    process_id=_int_env(env, "JAX_PROCESS_ID"))
    return kwargs
  if all(v in env for v in _SLURM_VARS) and _int_env(env, "SLURM_NTASKS") > 1:
    return {}
  if switch in ("1", "true", "yes", "on"):
    return {}
  return None


def maybe_initialize(env=None, log=print):
  """Calls jax.distributed.initialize when `plan` says so; returns whether it did."""
  kwargs = plan(env)
  if kwargs is None or jax.distributed.is_initialized():
    return False
  jax.distributed.initialize(**kwargs)
  log(f"jax.distributed: process {jax.process_index()} of {jax.process_count()}, "
      f"{jax.local_device_count()} local of {jax.device_count()} devices")
  return True
