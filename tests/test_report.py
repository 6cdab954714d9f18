"""launch.report on a generated partial sweep: groups, mean ± std, CI, files."""

import json

import numpy as np

from launch import report


def _write_run(workdir, stages):
  workdir.mkdir(parents=True)
  cfg = {"stages": {name: {"tags": tags} for name, (tags, _) in stages.items()}}
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
  np.testing.assert_allclose(ci, 4.303 * std / np.sqrt(3))
  assert "arm=cold, budget=4 | 3 | 0.200 ± 0.100" in md
  assert "arm=warm, budget=8 | 1 |" in md and "miou" not in md
  for name in ("report.md", "report.csv", "f1_vs_budget.png", "convergence_b4.png"):
    assert (tmp_path / "runs" / name).exists()
  assert len(paths) == 3
