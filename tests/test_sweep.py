"""launch.sweep, launch.slurm and ssl_seg.distributed: grids, skip / retry, scripts, env."""

import json
import os
import stat
import subprocess
import sys

import pytest

from launch import report, slurm, sweep
from ssl_seg import distributed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = "configs/vit_tiny_synthetic.py:intermediate=false"

# A stand-in for ssl_seg.main: writes config.json and two eval rows, counts its calls, and
# fails for seed 1 while the file named by $FAKE_FAIL exists.
FAKE_MAIN = r"""
import json, os, sys
args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
wd, seed = args["--workdir"], int(args["--config.seed"])
conf_args = dict(kv.split("=") for kv in args["--config"].partition(":")[2].split(",") if "=" in kv)
labels = int(conf_args.get("labels", 8))
os.makedirs(wd, exist_ok=True)
with open(os.path.join(wd, "calls"), "a") as f:
  f.write(" ".join(sys.argv[1:]) + "\n")
with open(os.path.join(wd, "env.json"), "w") as f:
  json.dump({k: v for k, v in os.environ.items() if k.startswith("JAX_")}, f)
if seed == 1 and os.path.exists(os.environ.get("FAKE_FAIL", "/nonexistent")):
  print("fake failure"); sys.exit(3)
cfg = {"stages": {"pretrain": {"data": {"num_train": 64}, "init_from": {"stage": ""}},
                  "segment": {"data": {"num_train": labels}, "init_from": {"stage": "pretrain"}}}}
json.dump(cfg, open(os.path.join(wd, "config.json"), "w"))
with open(os.path.join(wd, "metrics.jsonl"), "a") as f:
  for epoch in (1, 2):
    f.write(json.dumps({"stage": "segment", "split": "eval", "epoch": epoch, "step": epoch,
                        "seed": seed, "task": "segment", "loss": 1.0,
                        "miou": labels / 100 + seed / 1000 * epoch}) + "\n")
print("fake run ok")
"""


@pytest.fixture
def fake(tmp_path):
  path = tmp_path / "fake_main.py"
  path.write_text(FAKE_MAIN)
  return f"{sys.executable} {path}"


def _calls(workdir):
  return len((workdir / "calls").read_text().splitlines())


def test_parse_grid_values_seeds_and_errors():
  grid = sweep.parse_grid("a.b=1,2; :labels=16 ;c.d=(1,2),(3, 4)")
  assert grid == {"a.b": ["1", "2"], ":labels": ["16"], "c.d": ["(1,2)", "(3, 4)"]}
  assert sweep.parse_seeds("0,1,2") == [0, 1, 2] and sweep.parse_seeds("3-5") == [3, 4, 5]
  for bad, message in (("a.b", "expected key=value1"), ("a=1;a=2", "appears twice"),
                       ("seed=1,2", "--seeds")):
    with pytest.raises(sweep.SweepError, match=message):
      sweep.parse_grid(bad)
  with pytest.raises(sweep.SweepError, match="integers"):
    sweep.parse_seeds("a,b")


def test_expand_types_values_names_runs_and_rejects_bad_keys(tmp_path):
  grid = {"stages.segment.optim.lr": ["1e-3"], ":labels": ["16", "64"],
          "stages.segment.optim.decay_epochs": ["(2,4)"]}
  runs = sweep.expand(TINY, grid, [0, 1], tmp_path, ["--config.stages.segment.epochs=3"])
  assert len(runs) == 4 and [r.index for r in runs] == [0, 1, 2, 3]
  run = runs[3]
  assert run.name == "stages.segment.optim.lr=0.001/labels=64/" \
                     "stages.segment.optim.decay_epochs=2,4/seed=1"
  assert run.settings == {"stages.segment.optim.lr": 0.001, ":labels": 64,
                          "stages.segment.optim.decay_epochs": [2, 4]}
  assert f"--config={TINY},labels=64" in run.command
  assert "--config.seed=1" in run.command and run.command[-1] == "--config.stages.segment.epochs=3"
  assert run.workdir == os.path.join(tmp_path, run.name)
  for bad_grid, message in (
      ({"stages.segmnt.epochs": ["1"]}, "'stages.segmnt.epochs': config.stages has no field "
                                        "'segmnt'"),
      ({"stages.segment.data": ["1"]}, "is a group of fields"),
      ({"stages.segment.epochs": ["many"]}, "stages.segment.epochs=many"),
      ({"stages.segment.epochs": ["-1"]}, "must be >= 0"),
      ({":labls": ["1"]}, "unknown config argument 'labls'")):
    with pytest.raises(sweep.SweepError, match=message):
      sweep.expand(TINY, bad_grid, [0], tmp_path)
  assert not os.listdir(tmp_path)  # Nothing written before the grid is valid.


def test_local_sweep_skips_finished_retries_failed_and_reports_partial(tmp_path, fake,
                                                                       monkeypatch, capsys):
  root, flag = tmp_path / "runs", tmp_path / "fail"
  flag.touch()
  monkeypatch.setenv("FAKE_FAIL", str(flag))
  argv = [f"--config={TINY}", "--seeds=0,1", "--grid=:labels=16,64", f"--root={root}",
          "--parallel=2", f"--command={fake}"]
  assert sweep.main(argv) == 1
  out = capsys.readouterr().out
  assert "FAILED labels=16/seed=1 (exit 3)" in out and "fake failure" in out
  assert "2 of 4 runs failed" in out
  manifest = json.load(open(root / "sweep.json"))
  assert [r["name"] for r in manifest["runs"]] == [
      "labels=16/seed=0", "labels=16/seed=1", "labels=64/seed=0", "labels=64/seed=1"]
  assert (root / "labels=16/seed=0/sweep_done.json").exists()
  assert not (root / "labels=16/seed=1/sweep_done.json").exists()
  assert "fake run ok" in (root / "labels=16/seed=0/run.log").read_text()
  # A report of the partial sweep: seed 0 only, and the failed runs named.
  md, paths = report.report(str(root), ["miou"])
  assert "| stage=segment, :labels=16 | 1 | 0.160 (n=1, no CI)" in md
  assert "4 runs, 2 finished, 0 started but not finished, 2 without results" in md
  assert "- no results: labels=64/seed=1" in md
  assert {os.path.basename(p) for p in paths} == {"miou_vs_labels.png", "convergence.png",
                                                  "report.html"}

  flag.unlink()  # Rerun: finished runs are skipped, failed ones run again.
  assert sweep.main(argv) == 0
  out = capsys.readouterr().out
  assert out.count("(finished earlier)") == 2 and "all 4 runs finished" in out
  assert _calls(root / "labels=16/seed=0") == 1 and _calls(root / "labels=16/seed=1") == 2
  # Another override changes the command, so finished runs are not taken as done.
  assert sweep.main([*argv[:-2], f"--command={fake}", "--", "--config.stages.segment.epochs=2"]) \
      == 0
  assert _calls(root / "labels=16/seed=0") == 2
  md, _ = report.report(str(root), ["miou"])
  assert "| stage=segment, :labels=64 | 2 | 0.641 ± 0.001" in md


def test_dry_run_writes_nothing_and_bad_arguments_exit_2(tmp_path, fake, capsys):
  root = tmp_path / "runs"
  assert sweep.main([f"--config={TINY}", "--grid=:labels=16,64", f"--root={root}",
                     "--dry-run", f"--command={fake}"]) == 0
  out = capsys.readouterr().out
  assert "2 runs (2 grid points x 1 seeds)" in out and "labels=64/seed=0 (to run)" in out
  assert not root.exists()
  assert sweep.main([f"--config={TINY}", "--grid=stages.nope=1", f"--root={root}"]) == 2
  assert "error: grid key 'stages.nope'" in capsys.readouterr().err


def _exe(path, text):
  path.write_text(text)
  path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_slurm_script_lists_every_run_and_runs_one_task(tmp_path, fake, capsys):
  root, script = tmp_path / "runs", tmp_path / "sweep.sbatch"
  argv = [f"--config={TINY}", "--seeds=0,1", "--grid=:labels=16,64", f"--root={root}",
          f"--command={fake}", f"--slurm={script}", "--parallel=2",
          "--slurm-opts=--time=1:00:00 --gres=gpu:1", "--", "--config.stages.segment.epochs=2"]
  assert sweep.main(argv) == 0
  assert f"submit with: sbatch {script}" in capsys.readouterr().out
  text = script.read_text()
  for line in ("#SBATCH --array=0-3%2", "#SBATCH --time=1:00:00", "#SBATCH --gres=gpu:1",
               "#SBATCH --nodes=1", f"cd {os.getcwd()}"):
    assert line in text
  runs = json.load(open(root / "sweep.json"))["runs"]
  for run in runs:
    assert f"--workdir={run['workdir']}" in text and run["fingerprint"] in text
  assert text.count("--config.stages.segment.epochs=2") == 4 and "JAX_COORDINATOR" not in text
  # Task 2 under a stand-in srun: runs its command once, then counts as finished.
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  _exe(bin_dir / "srun", '#!/bin/bash\nexec "$@"\n')
  env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SLURM_ARRAY_TASK_ID="2",
             SLURM_JOB_ID="77")
  for _ in range(2):
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
  assert "finished earlier" in proc.stdout
  workdir = root / runs[2]["name"]
  assert runs[2]["name"] == "labels=64/seed=0" and _calls(workdir) == 1
  assert json.load(open(workdir / "sweep_done.json"))["fingerprint"] == runs[2]["fingerprint"]
  assert sweep.is_done(sweep.Run(**{k: v for k, v in runs[2].items() if k != "fingerprint"}))


def test_slurm_multi_node_sets_jax_distributed_env(tmp_path, fake):
  runs = sweep.expand(TINY, {}, [0], tmp_path / "runs", command=fake.split())
  script = slurm.write_script(str(tmp_path / "multi.sbatch"), runs, cwd=ROOT,
                              root=str(tmp_path / "runs"), nodes=2, ntasks_per_node=4)
  text = open(script).read()
  assert "#SBATCH --nodes=2" in text and "#SBATCH --ntasks-per-node=4" in text
  assert "#SBATCH --array=0-0\n" in text
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  # srun stand-in: runs the command as process 5 (local 1) of the step.
  _exe(bin_dir / "srun", '#!/bin/bash\nshift\nSLURM_PROCID=5 SLURM_LOCALID=1 exec "$@"\n')
  _exe(bin_dir / "scontrol", '#!/bin/bash\nprintf "gpu7\\ngpu8\\n"\n')
  env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SLURM_ARRAY_TASK_ID="0",
             SLURM_JOB_ID="5000", SLURM_NTASKS="8", SLURM_JOB_NODELIST="gpu[7-8]")
  proc = subprocess.run(["bash", script], env=env, capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr
  seen = json.load(open(os.path.join(runs[0].workdir, "env.json")))
  expected = {"JAX_COORDINATOR_ADDRESS": f"gpu7:{5000 % 4096 + 61440}",
              "JAX_NUM_PROCESSES": "8", "JAX_PROCESS_ID": "5", "JAX_LOCAL_DEVICE_IDS": "1"}
  assert {k: seen.get(k) for k in expected} == expected


SLURM_STEP = dict(SLURM_JOB_ID="1", SLURM_STEP_NODELIST="n[1-2]", SLURM_NTASKS="2",
                  SLURM_PROCID="1", SLURM_LOCALID="0", SLURM_STEP_NUM_NODES="2")


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"SLURM_JOB_ID": "1", "SLURM_NTASKS": "4"}, None),  # A batch script, not a srun step.
    ({**SLURM_STEP, "SLURM_NTASKS": "1"}, None),
    (SLURM_STEP, {}),  # jax reads SLURM's variables itself.
    ({**SLURM_STEP, "SSL_SEG_DISTRIBUTED": "0"}, None),
    ({"SSL_SEG_DISTRIBUTED": "1"}, {}),
    ({"JAX_COORDINATOR_ADDRESS": "h:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "2"},
     {"coordinator_address": "h:1234", "num_processes": 4, "process_id": 2}),
    ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "1", "JAX_PROCESS_ID": "0"}, None),
    ({**SLURM_STEP, "JAX_COORDINATOR_ADDRESS": "h:1"}, {"coordinator_address": "h:1"}),
])
def test_distributed_plan_reads_the_environment(env, expected):
  assert distributed.plan(env) == expected


def test_distributed_initializes_once_and_rejects_half_configured_env(monkeypatch):
  calls = []
  monkeypatch.setattr(distributed.jax.distributed, "initialize", lambda **kw: calls.append(kw))
  env = {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"}
  assert distributed.maybe_initialize(env, log=lambda s: None)
  assert calls == [{"coordinator_address": "h:1", "num_processes": 2, "process_id": 0}]
  assert not distributed.maybe_initialize({}) and len(calls) == 1
  with pytest.raises(ValueError, match="JAX_NUM_PROCESSES and JAX_PROCESS_ID"):
    distributed.plan({"JAX_COORDINATOR_ADDRESS": "h:1"})
  with pytest.raises(ValueError, match="JAX_PROCESS_ID='x' must be an integer"):
    distributed.plan({**env, "JAX_PROCESS_ID": "x"})


def test_real_tiny_run_through_ssl_seg_main_then_skipped(tmp_path, capsys):
  root = tmp_path / "runs"
  small = [f"--config.stages.segment_scratch.{k}={v}"
           for k, v in (("data.num_train", 8), ("data.num_eval", 8), ("batch_size", 4),
                        ("eval_batch_size", 8), ("epochs", 1))]
  argv = [f"--config={TINY}", "--seeds=0", "--grid=stages.segment_scratch.optim.lr=2e-3",
          f"--root={root}", "--", "--stages=segment_scratch", *small]
  workdir = root / "stages.segment_scratch.optim.lr=0.002" / "seed=0"
  assert sweep.main(argv) == 0, (workdir / "run.log").read_text()[-3000:]
  config = json.load(open(workdir / "config.json"))
  assert config["seed"] == 0 and config["stages"]["segment_scratch"]["optim"]["lr"] == 0.002
  rows = [json.loads(x) for x in open(workdir / "metrics.jsonl")]
  assert any(r["split"] == "eval" and "miou" in r for r in rows)
  capsys.readouterr()
  assert sweep.main(argv) == 0 and "(finished earlier)" in capsys.readouterr().out
  md, _ = report.report(str(root), ["miou"])
  assert "| stage=segment_scratch, stages.segment_scratch.optim.lr=0.002 | 1 |" in md
