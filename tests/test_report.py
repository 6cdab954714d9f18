"""launch.report on a generated partial sweep: groups, mean ± std, CI, files."""

import csv
import json
import os
import subprocess
import sys

import numpy as np

from launch import report, results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_run(workdir, stages):
  workdir.mkdir(parents=True)
  cfg = {"stages": {name: {"tags": tags, "epochs": len(f1s)}
                    for name, (tags, f1s) in stages.items()}}
  (workdir / "config.json").write_text(json.dumps(cfg))
  with open(workdir / "metrics.jsonl", "w") as f:
    for name, (tags, f1s) in stages.items():
      for epoch, f1 in enumerate(f1s, 1):
        row = {"stage": name, "split": "eval", "epoch": epoch, "step": epoch, "task": "t",
               "seed": tags["seed"], "loss": 0.1, "f1/curve1": f1, "f1/curve2": f1 / 2}
        f.write(json.dumps(row) + "\n")


def test_report_averages_over_seeds_and_writes_tables_and_plots(tmp_path):
  stages = {}
  for seed, (warm, cold) in enumerate([(0.5, 0.2), (0.6, 0.3), (0.7, 0.1)]):
    stages[f"w{seed}"] = ({"arm": "warm", "budget": 4, "seed": seed}, [0.1, warm])
    stages[f"c{seed}"] = ({"arm": "cold", "budget": 4, "seed": seed}, [0.1, cold])
  stages["w_b8"] = ({"arm": "warm", "budget": 8, "seed": 0}, [0.9])  # Partial: one seed.
  _write_run(tmp_path / "runs" / "a", stages)
  md, paths = report.report(str(tmp_path / "runs"), ["f1/curve1", "f1/curve2", "miou"])
  summary = report.summarize(report.load_runs(str(tmp_path / "runs")), ["f1/curve1"])
  mean, std, ci, n = summary[(("arm", "warm"), ("budget", 4))]["f1/curve1"]
  np.testing.assert_allclose([mean, std, n], [0.6, np.std([0.5, 0.6, 0.7], ddof=1), 3])
  np.testing.assert_allclose(ci, 4.302653 * std / np.sqrt(3), rtol=1e-6)  # scipy.stats.t
  assert "arm=cold, budget=4 | 3 | 0.200 ± 0.100" in md
  assert "arm=warm, budget=8 | 1 | 0.900 (n=1, no CI) |" in md and "miou" not in md
  for name in ("report.md", "report.csv", "f1_vs_budget.png", "convergence_b4.png",
               "report.html"):
    assert (tmp_path / "runs" / name).exists()
  assert len(paths) == 4


def _sweep_run(root, labels, seed, *, evals=True, done=True, truncated=False):
  """A launch.sweep run directory: sweep_run.json, config.json, metrics.jsonl, done marker."""
  name = f"labels={labels}/seed={seed}"
  workdir = root / name
  workdir.mkdir(parents=True)
  (workdir / "sweep_run.json").write_text(json.dumps({"settings": {":labels": labels},
                                                      "fingerprint": name}))
  stages = {"pretrain": {"data": {"num_train": 512, "subset": 200000, "num_labels": -1},
                         "init_from": {"stage": ""}, "epochs": 1},
            "segment": {"data": {"num_train": labels, "num_labels": -1},
                        "init_from": {"stage": "pretrain"}, "epochs": 2},
            "segment_scratch": {"data": {"num_train": labels, "num_labels": -1},
                                "init_from": {"stage": ""}, "epochs": 2}}
  (workdir / "config.json").write_text(json.dumps({"seed": seed, "stages": stages}))
  rows = [{"stage": "pretrain", "split": "eval", "epoch": 1, "step": 1, "seed": seed,
           "loss": 0.5}]
  for stage, base in (("segment", 0.5), ("segment_scratch", 0.3)):
    for epoch in (1, 2):
      rows.append({"stage": stage, "split": "train", "epoch": epoch, "step": epoch,
                   "seed": seed, "loss": 1.0})
      if evals:
        miou = base + labels / 1000 + seed / 100 - (2 - epoch) / 10
        rows.append({"stage": stage, "split": "eval", "epoch": epoch, "step": epoch,
                     "seed": seed, "loss": 1.0, "miou": miou, "pixel_acc": 0.9})
  text = "".join(json.dumps(r) + "\n" for r in rows)
  (workdir / "metrics.jsonl").write_text(text + ('{"stage": "segm' if truncated else ""))
  if done:
    (workdir / "sweep_done.json").write_text(json.dumps({"fingerprint": name}))
  return {"name": name, "fingerprint": name}


def test_report_groups_sweep_settings_over_seeds_on_a_partial_sweep(tmp_path, monkeypatch):
  root = tmp_path / "sweep"
  runs = [_sweep_run(root, 16, 0), _sweep_run(root, 16, 1, truncated=True),
          _sweep_run(root, 64, 0), _sweep_run(root, 64, 1, evals=False, done=False),
          {"name": "labels=64/seed=2", "fingerprint": "x"}]  # Never started.
  (root / "sweep.json").write_text(json.dumps({"runs": runs}))
  drawn = {}
  real = report.plots.metric_vs_x
  def spy(series, xlabel, ylabel, path, title=None):
    drawn[path.rsplit("/", 1)[-1]] = series
    return real(series, xlabel, ylabel, path, title)
  monkeypatch.setattr(report.plots, "metric_vs_x", spy)
  md, paths = report.report(str(root), ["miou", "pixel_acc", "f1/curve1"])
  assert "| stage=segment, :labels=16 | 2 | 0.521 ± 0.007 (CI ±0.064) | 0.900 ± 0.000" in md
  assert "| stage=segment, :labels=64 | 1 | 0.564 (n=1, no CI) |" in md
  assert "| stage=segment_scratch, :labels=16 | 2 | 0.321" in md
  assert "pretrain" not in md.split("\n\n")[0] and "f1/curve1" not in md
  assert "5 runs, 3 finished, 1 started but not finished, 1 without results" in md
  assert "- not finished: labels=64/seed=1" in md and "- no results: labels=64/seed=2" in md
  rows = list(csv.DictReader(open(root / "report.csv")))
  assert rows[0]["stage"] == "segment" and rows[0][":labels"] == "16"
  np.testing.assert_allclose(float(rows[0]["miou_mean"]), 0.521)
  # The main figure: x = labelled examples, a line per stage and its pretraining.
  lines = drawn["miou_vs_labels.png"]
  assert list(lines) == ["segment, init: pretrain 512", "segment_scratch, init: from scratch"]
  assert [p[0] for p in lines["segment, init: pretrain 512"]] == [16, 64]
  np.testing.assert_allclose([p[1] for p in lines["segment_scratch, init: from scratch"]],
                             [0.321, 0.364])
  # Convergence: mean eval mIoU per epoch for each group.
  curve = drawn["convergence.png"]["stage=segment, :labels=16"]
  np.testing.assert_allclose([(e, m) for e, m, *_ in curve], [(1, 0.421), (2, 0.521)])
  assert sorted(p.rsplit("/", 1)[-1] for p in paths) == ["convergence.png", "miou_vs_labels.png",
                                                         "report.html"]


def test_an_interrupted_stage_is_flagged_not_taken_as_final(tmp_path):
  stages = {f"w{s}": ({"arm": "warm", "budget": 4, "seed": s}, [0.1, 0.5 + s / 10])
            for s in range(3)}
  _write_run(tmp_path / "runs" / "a", stages)
  cfg = json.loads((tmp_path / "runs" / "a" / "config.json").read_text())
  cfg["stages"]["w2"]["epochs"] = 5  # Its last eval (epoch 2) is an intermediate one.
  (tmp_path / "runs" / "a" / "config.json").write_text(json.dumps(cfg))
  loaded = results.collect(str(tmp_path / "runs"))
  assert [r.seed for r in loaded.found] == [0, 1]
  assert [(r.stage, r.status) for r in loaded.runs if r.status != "complete"] == [
      ("w2", "incomplete")]
  md, _ = report.report(str(tmp_path / "runs"), ["f1/curve1"])
  assert "| arm=warm, budget=4 | 2 | 0.550 ± 0.071" in md
  assert "- incomplete: a/w2: last eval at epoch 2 of 5: interrupted or still running" in md


def test_unwritable_out_is_one_error_line_exit_2_before_any_work(tmp_path):
  _write_run(tmp_path / "runs" / "a", {"w0": ({"arm": "warm", "seed": 0}, [0.5])})
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  proc = subprocess.run([sys.executable, "-m", "launch.report", str(tmp_path / "runs"),
                         f"--out={blocker}/report"], capture_output=True, text=True, cwd=ROOT)
  assert proc.returncode == 2, proc.stderr
  assert proc.stderr.strip().splitlines() == [
      f"error: --out folder {blocker}/report is not writable (Not a directory); choose another "
      "--out"]
  assert "Traceback" not in proc.stdout + proc.stderr
  assert not (tmp_path / "runs" / "report.md").exists()
