"""Eval-only stages (issue 19): epochs=0 with init_from evaluates that checkpoint as it is."""

import os
import subprocess
import sys

import pytest

from configs import vit_tiny_synthetic
from ssl_seg import config_utils, main, run_log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config():
  cfg = vit_tiny_synthetic.get_config("intermediate=false")
  for st in cfg.stages.values():
    st.data.num_train, st.data.num_eval = 16, 8
    st.batch_size = st.eval_batch_size = 8
    st.epochs, st.log_every_steps = 1, 1
  cfg.stages.segment.init_from.stage = ""  # Trained from scratch: no pretrain stage needed.
  return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("trained"))
  final = main.run(_config(), workdir, only=["segment"], log=lambda m: None)["segment"]
  return workdir, final


def test_epochs_0_evaluates_the_checkpoint_and_writes_the_usual_rows(trained, tmp_path):
  source, want = trained
  cfg = _config()
  cfg.stages.segment_scratch.epochs = 0
  cfg.stages.segment_scratch.init_from.stage = os.path.join(source, "segment")
  lines = []
  got = main.run(cfg, str(tmp_path), only=["segment_scratch"], log=lines.append)
  got = got["segment_scratch"]
  # The same eval set and every param (the head too): the trained stage's final numbers.
  assert got == want
  assert any("grafted ['encoder', 'head']" in line for line in lines)
  records = run_log.read(tmp_path / "metrics.jsonl")
  assert [(r["split"], r["epoch"], r["step"]) for r in records] == [("eval", 0, 0)]
  for key in ("miou", "pixel_acc", "iou/pet", "f1/border", "loss", "seed", "task"):
    assert key in records[0]
  assert os.listdir(tmp_path / "segment_scratch" / "checkpoints")
  # A rerun skips the complete stage and writes nothing.
  lines.clear()
  main.run(cfg, str(tmp_path), only=["segment_scratch"], log=lines.append)
  assert any("already complete" in line for line in lines)
  assert run_log.read(tmp_path / "metrics.jsonl") == records


def test_epochs_0_without_init_from_is_one_error_line_exit_2(tmp_path):
  cfg = _config()
  cfg.stages.segment.epochs = 0
  with pytest.raises(config_utils.ConfigError, match="set --config.stages.segment.init_from"):
    config_utils.validate(cfg)
  proc = subprocess.run(
      [sys.executable, "-m", "ssl_seg.main", "--config=configs/vit_tiny_synthetic.py",
       f"--workdir={tmp_path}", "--config.stages.segment_scratch.epochs=0"],
      cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True,
      timeout=300)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      "error: config.stages.segment_scratch.epochs: 0 evaluates a checkpoint without training: "
      "set --config.stages.segment_scratch.init_from.stage to the stage name or stage directory "
      "to evaluate"]
