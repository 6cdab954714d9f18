"""Exact resume: a run killed (SIGKILL), preempted (SIGTERM, from the CLI and inside an epoch)
and resumed each time ends with metrics bit-identical to an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import jax
import pytest

from configs import vit_tiny_synthetic
from ssl_seg import checkpoint, main, preemption, run_log, step as step_lib, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS_PER_EPOCH, EPOCHS = 4, 5
FIELDS = {"data.num_train": 4 * STEPS_PER_EPOCH, "data.num_eval": 4, "batch_size": 4,
          "eval_batch_size": 4, "epochs": EPOCHS, "log_every_steps": 1}


def _config():
  cfg = vit_tiny_synthetic.get_config("intermediate=false")
  st = cfg.stages.pretrain
  for field, value in FIELDS.items():
    parent, _, leaf = field.rpartition(".")
    (st[parent] if parent else st)[leaf] = value
  return cfg


def _records(workdir):
  return train.without_timing(run_log.read(os.path.join(workdir, "metrics.jsonl")))


def _steps(workdir):
  return checkpoint._complete_steps(os.path.join(workdir, "pretrain", "checkpoints"))


def _start(workdir):
  args = [f"--config.stages.pretrain.{k}={v}" for k, v in FIELDS.items()]
  return subprocess.Popen(
      [sys.executable, "-m", "ssl_seg.main", "--config=configs/vit_tiny_synthetic.py:"
       "intermediate=false", f"--workdir={workdir}", "--stages=pretrain", *args],
      cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS="cpu"), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)


def _signal_after_checkpoint(proc, workdir, newer_than, sig, hang_guard_s=600):
  """Sends `sig` as soon as a checkpoint past step `newer_than` exists; returns (rc, stderr).

  The run is finite: it either writes that checkpoint or exits (and the test fails). Only
  `communicate` has a timeout, so a process hung after the signal fails instead of blocking CI.
  """
  while not any(s > newer_than for s in _steps(workdir)):
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    time.sleep(0.01)
  proc.send_signal(sig)
  _, err = proc.communicate(timeout=hang_guard_s)
  return proc.returncode, err


def test_killed_and_preempted_runs_resume_bit_identical(tmp_path, monkeypatch):
  ref = tmp_path / "ref"
  main.run(_config(), str(ref), only=["pretrain"], log=lambda _: None)
  want = _records(ref)
  assert len(want) == 2 * EPOCHS

  run = tmp_path / "run"
  # 1. SIGKILL just after the first checkpoint: the next run resumes from it.
  rc, err = _signal_after_checkpoint(_start(run), run, 0, signal.SIGKILL)
  assert rc == -signal.SIGKILL
  killed_at = max(_steps(run))
  # 2. SIGTERM: a checkpoint at the current step, a message and exit code 75.
  rc, err = _signal_after_checkpoint(_start(run), run, killed_at, signal.SIGTERM)
  assert rc == preemption.EXIT_CODE, err[-3000:]
  assert "preempted: stage 'pretrain' stopped by SIGTERM at step" in err
  term_at = max(_steps(run))
  assert killed_at < term_at < STEPS_PER_EPOCH * EPOCHS
  # 3. SIGTERM inside an epoch, in-process: the checkpoint carries the epoch's step metrics.
  target = next(s for s in range(term_at + 1, 100) if s % STEPS_PER_EPOCH)
  assert target < STEPS_PER_EPOCH * EPOCHS
  make_train_step = step_lib.make_train_step

  def preempting(*args, **kw):
    step = make_train_step(*args, **kw)

    def train_step(state, batch, key):
      state, out = step(state, batch, key)  # The loop passes the state's leaves.
      if int(jax.tree_util.tree_unflatten(kw["leaves_of"], state)["step"]) == target:
        signal.raise_signal(signal.SIGTERM)
      return state, out
    return train_step

  monkeypatch.setattr(step_lib, "make_train_step", preempting)
  lines = []
  with pytest.raises(train.Preempted, match=f"at step {target};"):
    main.run(_config(), str(run), only=["pretrain"], log=lines.append)
  assert any(f"resuming from step {term_at}" in line for line in lines)
  mngr = checkpoint.manager(run / "pretrain")
  meta = checkpoint.read_meta(mngr)
  mngr.close()
  assert meta["step"] == target and len(meta["partial_epoch"]) == target % STEPS_PER_EPOCH
  monkeypatch.setattr(step_lib, "make_train_step", make_train_step)
  # 4. The last resume finishes the stage.
  main.run(_config(), str(run), only=["pretrain"], log=lines.append)
  assert _records(run) == want
  assert set(run_log.read(run / "metrics.jsonl")[0]) >= set(train.TIMING_KEYS)
  assert len(_steps(run)) <= _config().stages.pretrain.checkpoint.keep
