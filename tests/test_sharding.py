"""Data parallelism on 8 fake CPU devices: the same steps as on 1 device, within tolerance.

The device count is fixed when jax starts, so the checks run once in a subprocess started with
XLA_FLAGS=--xla_force_host_platform_device_count=8 (this file run as a script), which prints
its measurements as JSON; the tests below assert on them. The whole-stage run it leaves behind
(FSDP on 8 devices) is then resumed here, on 1 device.

Tolerance: losses agree to rtol 1e-4 and params to atol 1e-5 after 2-4 steps (measured: 8e-6
and 7e-7 at most). Splitting the batch only reorders float32 sums (per-device partial sums,
then an all-reduce), so the differences are rounding-sized.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("eight_devices"))
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  proc = subprocess.run([sys.executable, os.path.abspath(__file__), workdir], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-5000:]
  return dict(json.loads(proc.stdout.strip().splitlines()[-1]), workdir=workdir)


def test_eight_devices_are_used(measured):
  assert measured["devices"] == 8


@pytest.mark.parametrize("name", ["vit_fsdp", "curvenet"])
def test_eight_device_steps_match_one_device(measured, name):
  got = measured[name]
  np.testing.assert_allclose(got["losses_8"], got["losses_1"], rtol=RTOL)
  assert got["max_param_diff"] <= ATOL
  assert got["batch_split"] == 8  # Each device really held a slice of the batch.


def test_fsdp_splits_large_leaves_and_replication_is_the_default(measured):
  assert measured["vit_fsdp"]["sharded_leaves"] > 0
  assert measured["curvenet"]["sharded_leaves"] == 0


def test_buckets_compile_once_per_bucket_on_eight_devices(measured):
  got = measured["buckets"]
  assert all(b % 8 == 0 for b in got["batch_sizes"])
  assert got["shapes"] == 2 and got["steps"] > 2  # Two bucket shapes in the data...
  assert got["traces"] == got["shapes"] == got["cache_size"]  # ...and one program each.


def test_whole_stage_runs_on_eight_devices(measured):
  rec = measured["loop"]
  assert rec["step"] == 2 and np.isfinite(rec["loss"]) and rec["items_per_s"] > 0
  assert "does not divide over 8 devices" in measured["bad_batch"]


def test_a_checkpoint_of_eight_fsdp_devices_resumes_on_one(measured):
  from ssl_seg import main, run_log
  lines = []
  main.run(_loop_config(epochs=2), measured["workdir"], only=["pretrain"], log=lines.append)
  assert any("resuming from step 3" in line for line in lines)
  rows = run_log.read(os.path.join(measured["workdir"], "metrics.jsonl"))
  assert [(r["split"], r["step"]) for r in rows] == [("train", 2), ("eval", 2), ("train", 4),
                                                     ("eval", 4)]
  assert all(np.isfinite(r["loss"]) for r in rows)


# ----- the subprocess -------------------------------------------------------------------------


def _setup(stage):
  from ssl_seg import state as state_lib
  built = state_lib.build(stage, 10, 100, seed=0)
  return built.task, built.graphdef, built.tx, built.state()


def _train(stage, batches, mesh, *, fsdp=False, traces=None, snapshot_at=None):
  import jax

  from ssl_seg import sharding, step as step_lib
  task, graphdef, tx, state = _setup(stage)

  def loss_fn(*args, **kw):
    if traces is not None:
      traces.append(1)  # Runs once per trace (compilation), never per step.
    return task.loss_fn(*args, **kw)

  shardings = sharding.state_shardings(state, mesh, fsdp=fsdp, min_size=256)
  state = sharding.place(state, shardings)
  train_step = step_lib.make_train_step(graphdef, tx, loss_fn, state_sharding=shardings,
                                        batch_sharding=sharding.batch_sharding(mesh))
  losses, split, params = [], None, None
  for i, batch in enumerate(batches):
    batch = sharding.put_batch(batch, mesh)
    split = len(batch["image"].addressable_shards)
    state, m = train_step(state, batch, jax.random.key(0))
    losses.append(float(m["loss"]))
    if i + 1 == snapshot_at:
      params = jax.device_get(state["params"])
  sharded = sum(not s.is_fully_replicated for s in jax.tree.leaves(shardings["params"]))
  return dict(losses=losses[:snapshot_at], split=split, sharded_leaves=sharded,
              params=params or jax.device_get(state["params"]),
              cache_size=train_step._cache_size())


def _compare(stage, batches, *, fsdp=False, compare_steps=None, traces=None):
  """Trains on 1 device and on 8 from the same init and batches (8 devices: maybe more steps,
  compared after the first `compare_steps`)."""
  import jax

  from ssl_seg import sharding
  n = compare_steps or len(batches)
  one = _train(stage, batches[:n], sharding.make_mesh(jax.devices()[:1]))
  eight = _train(stage, batches, sharding.make_mesh(), fsdp=fsdp, traces=traces, snapshot_at=n)
  diff = max(float(np.max(np.abs(a - b))) for a, b in
             zip(jax.tree.leaves(one["params"]), jax.tree.leaves(eight["params"])))
  return dict(losses_1=one["losses"], losses_8=eight["losses"], max_param_diff=diff,
                   batch_split=eight["split"], sharded_leaves=eight["sharded_leaves"],
                   cache_size=eight["cache_size"])


def _loop_config(epochs):
  """The tiny ViT pretraining stage, FSDP on: 2 steps per epoch at batch 8."""
  from configs import vit_tiny_synthetic
  cfg = vit_tiny_synthetic.get_config("intermediate=false")
  pre = cfg.stages.pretrain
  pre.data.num_train, pre.data.num_eval, pre.batch_size, pre.eval_batch_size = 16, 8, 8, 8
  pre.epochs, pre.sharding.fsdp, pre.sharding.fsdp_min_size = epochs, True, 256
  return cfg


def _device_checks(workdir):
  import time

  import jax

  from configs import vit_tiny_synthetic, welllog_demo
  from ssl_seg import main, run_log, tasks
  from ssl_seg.data import sources
  t0 = time.time()
  tick = lambda what: print(f"{time.time() - t0:6.1f} s {what}", file=sys.stderr, flush=True)
  out = {"devices": jax.device_count()}
  cfg = vit_tiny_synthetic.get_config("intermediate=false")
  st = cfg.stages.segment
  st.data.num_train, st.data.num_eval, st.batch_size, st.eval_batch_size = 24, 8, 8, 8
  st.optim.lr = 1e-3
  batches = [sources.stage_data(st, tasks.batch_keys(st.task)).train[i] for i in range(3)]
  tick("vit data")
  out["vit_fsdp"] = _compare(st, batches, fsdp=True)
  tick("vit fsdp")

  wcfg = welllog_demo.get_config("variant=tiny,scale=0.05,labels=12")
  ws = wcfg.stages.finetune_cold
  ws.data.height, ws.data.min_width, ws.data.max_width = 32, 64, 320
  ws.batch_size = ws.eval_batch_size = 8
  ws.data.crop_width = 0  # Train on whole logs in width buckets (the demo trains on windows).
  ws.epochs = 2  # Each bucket shape more than once.
  data = sources.stage_data(ws, tasks.batch_keys(ws.task), devices_per_process=8)
  train = [data.train[i] for i in range(len(data.train))]
  # The 1-device run sees one bucket shape (one compile); the 8-device run goes on through
  # every train batch of the stage, both shapes several times each, counting compilations.
  first = [b for b in train if b["image"].shape == train[0]["image"].shape]
  train = first + [b for b in train if b["image"].shape != train[0]["image"].shape]
  tick("curvenet data")
  traces = []
  out["curvenet"] = _compare(ws, train, compare_steps=len(first), traces=traces)
  out["buckets"] = dict(batch_sizes=sorted({len(b["_valid"]) for b in train}),
                        shapes=len({b["image"].shape for b in train}), traces=len(traces),
                        cache_size=out["curvenet"]["cache_size"], steps=len(train))
  tick("buckets")

  # Two epochs of 2 steps, preempted (SIGTERM) after step 3: the parent resumes this very
  # config on one device (a finished stage re-run with more epochs would be refused as
  # another config).
  import signal

  from ssl_seg import step as step_lib, train
  make_train_step = step_lib.make_train_step

  def preempting(*args, **kw):
    step = make_train_step(*args, **kw)

    def train_step(state, batch, key):
      state, res = step(state, batch, key)  # The loop passes the state's leaves.
      if int(jax.tree_util.tree_unflatten(kw["leaves_of"], state)["step"]) == 3:
        signal.raise_signal(signal.SIGTERM)
      return state, res
    return train_step

  step_lib.make_train_step = preempting
  cfg = _loop_config(epochs=2)
  try:
    main.run(cfg, workdir, only=["pretrain"], log=lambda _: None)
  except train.Preempted:
    pass
  step_lib.make_train_step = make_train_step
  out["loop"] = run_log.read(os.path.join(workdir, "metrics.jsonl"))[0]
  cfg.stages.pretrain.batch_size = 4
  try:
    main.run(cfg, workdir + "_bad", only=["pretrain"], log=lambda _: None)
    out["bad_batch"] = ""
  except ValueError as e:
    out["bad_batch"] = str(e)
  tick("loop")
  print(json.dumps(out))


if __name__ == "__main__":
  sys.path.insert(0, ROOT)
  _device_checks(sys.argv[1])
