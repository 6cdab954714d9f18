"""End to end through the CLI, in fresh processes: overrides, an error, determinism, files."""

import json
import os
import subprocess
import sys

from ssl_seg import run_log, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "configs/vit_tiny_synthetic.py:intermediate=false"
SMALL = [f"--config.stages.{s}.{k}={v}" for s in ("pretrain", "segment")
         for k, v in (("data.num_train", 16), ("data.num_eval", 8), ("batch_size", 8),
                      ("eval_batch_size", 8), ("epochs", 2))]


def _main(workdir, *args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "ssl_seg.main", f"--config={CONFIG}",
                         f"--workdir={workdir}", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)


def test_two_processes_same_seed_identical_metrics_other_seed_differs(tmp_path):
  runs = {}
  for name, seed in (("a", 0), ("b", 0), ("c", 1)):
    proc = _main(tmp_path / name, "--stages=pretrain,segment", f"--config.seed={seed}", *SMALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs[name] = train.without_timing(run_log.read(tmp_path / name / "metrics.jsonl"))
  assert runs["a"] == runs["b"]  # Bit-identical, wall-clock keys (items_per_s...) aside.
  strip = lambda rs: [{k: v for k, v in r.items() if k != "seed"} for r in rs]
  assert strip(runs["a"]) != strip(runs["c"])
  # Every stage wrote its checkpoint and its eval rows carry the INTERFACES.md keys.
  for stage in ("pretrain", "segment"):
    assert os.listdir(tmp_path / "a" / stage / "checkpoints")
  seg_eval = [r for r in runs["a"] if r["stage"] == "segment" and r["split"] == "eval"][-1]
  for key in ("miou", "pixel_acc", "iou/pet", "f1/border", "precision/background", "loss",
              "epoch", "step", "seed", "task"):
    assert key in seg_eval
  config = json.load(open(tmp_path / "a" / "config.json"))
  assert config["stages"]["segment"]["epochs"] == 2


def test_rerun_of_a_finished_workdir_resumes_and_skips(tmp_path):
  args = ("--stages=pretrain", *SMALL)
  assert _main(tmp_path, *args).returncode == 0
  before = run_log.read(tmp_path / "metrics.jsonl")
  proc = _main(tmp_path, *args)
  assert proc.returncode == 0 and "already complete" in proc.stdout
  assert run_log.read(tmp_path / "metrics.jsonl") == before


def test_bad_config_value_prints_one_error_line_and_exits_2(tmp_path):
  # The other bad inputs are checked in-process in test_bad_inputs.py.
  proc = _main(tmp_path, "--config.stages.segment.batch_size=0")
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1] == (
      "error: config.stages.segment.batch_size: must be >= 1, got 0")
  assert not (tmp_path / "metrics.jsonl").exists()
