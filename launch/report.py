r"""Aggregates runs into tables (mean ± std, 95 % CI over seeds) and plots.

  python -m launch.report RUNS_DIR [--metrics=f1/curve1,f1/curve2] [--out=DIR]

RUNS_DIR is a workdir or a folder of workdirs (any depth); every `metrics.jsonl` found is read
with the `config.json` beside it. A stage's result is its last eval row. Stages are grouped by
their config `tags` without `seed` (e.g. arm=warm, budget=12), else by stage name, and the
groups are averaged over seeds. Works on partial sweeps: what has finished is reported.
Writes RUNS_DIR/report.md, report.csv and, where the tags allow, f1_vs_budget.png and
convergence_b<budget>.png.
"""

import collections
import csv
import glob
import json
import os

import numpy as np
from absl import app, flags

from ssl_seg import metrics, plots

_METRICS = flags.DEFINE_list("metrics", ["f1/curve1", "f1/curve2", "f1/background", "miou"],
                             "Metrics to tabulate (those present are used).")
_OUT = flags.DEFINE_string("out", None, "Output folder (default: RUNS_DIR).")

# Two-sided 95 % Student-t quantiles by degrees of freedom (scipy is not a dependency).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def t95(df):
  """Conservative: the quantile of the nearest tabulated df at or below `df`."""
  return 1.96 if df > 30 else _T95[max(k for k in _T95 if k <= df)]


def load_runs(runs_dir):
  """[(stage tags dict, seed, final eval row, eval rows)] for every finished stage found."""
  found = []
  for path in sorted(glob.glob(os.path.join(runs_dir, "**", "metrics.jsonl"), recursive=True)):
    workdir = os.path.dirname(path)
    config_path = os.path.join(workdir, "config.json")
    stages_cfg = json.load(open(config_path))["stages"] if os.path.exists(config_path) else {}
    rows = metrics.read_jsonl(path)
    for stage in dict.fromkeys(r["stage"] for r in rows):
      evals = [r for r in rows if r["stage"] == stage and r["split"] == "eval"]
      if not evals:
        continue
      tags = dict(stages_cfg.get(stage, {}).get("tags") or {"stage": stage})
      found.append((tags, evals[-1]["seed"], evals[-1], evals))
  return found


def summarize(found, metric_names):
  """{group key: {metric: (mean, std, ci95, n)}} with groups = tags minus seed."""
  groups = collections.defaultdict(list)
  for tags, _, final, _ in found:
    groups[tuple(sorted((k, v) for k, v in tags.items() if k != "seed"))].append(final)
  out = {}
  for key, finals in groups.items():
    stats = {}
    for m in metric_names:
      vals = np.array([f[m] for f in finals if m in f], np.float64)
      if len(vals):
        std = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        ci = t95(len(vals) - 1) * std / np.sqrt(len(vals)) if len(vals) > 1 else float("nan")
        stats[m] = (float(vals.mean()), std, float(ci), len(vals))
    if stats:  # Stages that report none of the metrics (e.g. pretraining) are left out.
      out[key] = stats
  return out


def _key_str(key):
  return ", ".join(f"{k}={v}" for k, v in key)


def write_tables(summary, metric_names, out_dir):
  present = [m for m in metric_names if any(m in s for s in summary.values())]
  lines = ["| group | n | " + " | ".join(present) + " |",
           "|---|---|" + "---|" * len(present)]
  rows = []
  for key in sorted(summary, key=lambda k: [str(v) for _, v in k]):
    stats = summary[key]
    n = max((s[3] for s in stats.values()), default=0)
    cells = [f"{stats[m][0]:.3f} ± {stats[m][1]:.3f} (CI ±{stats[m][2]:.3f})" if m in stats
             else "-" for m in present]
    lines.append(f"| {_key_str(key)} | {n} | " + " | ".join(cells) + " |")
    row = {"group": _key_str(key), "n": n}
    for m in present:
      if m in stats:
        row.update({f"{m}_mean": stats[m][0], f"{m}_std": stats[m][1], f"{m}_ci95": stats[m][2]})
    rows.append(row)
  md = "\n".join(lines)
  with open(os.path.join(out_dir, "report.md"), "w") as f:
    f.write(md + "\n")
  with open(os.path.join(out_dir, "report.csv"), "w", newline="") as f:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
  return md


def write_plots(found, summary, metric_names, out_dir):
  """F1 vs label budget per arm, and mean convergence per budget (when tags have them)."""
  paths = []
  arms = sorted({dict(k).get("arm") for k in summary} - {None})
  budgets = sorted({dict(k).get("budget") for k in summary} - {None})
  if arms and budgets:
    series = {}
    for m in [m for m in metric_names if m.startswith("f1/")]:
      for arm in arms:
        pts = [(dict(k)["budget"], *s[m][:3]) for k, s in summary.items()
               if dict(k).get("arm") == arm and m in s]
        if pts:
          series[f"{arm} {m}"] = sorted(pts)
    paths.append(plots.metric_vs_x(series, "labelled logs (budget)", "final eval F1",
                                   os.path.join(out_dir, "f1_vs_budget.png")))
    for budget in budgets:
      curves = {}
      for arm in arms:
        runs = [evals for tags, _, _, evals in found
                if tags.get("arm") == arm and tags.get("budget") == budget]
        for m in ("f1/curve1", "f1/curve2"):
          per_epoch = collections.defaultdict(list)
          for evals in runs:
            for r in evals:
              if m in r:
                per_epoch[r["epoch"]].append(r[m])
          if per_epoch:
            curves[f"{arm} {m}"] = [(e, float(np.mean(v)), float(np.std(v)), 0.0)
                                    for e, v in sorted(per_epoch.items())]
      paths.append(plots.metric_vs_x(curves, "epoch", "eval F1 (mean ± std over seeds)",
                                     os.path.join(out_dir, f"convergence_b{budget}.png"),
                                     title=f"budget {budget} labelled logs"))
  return paths


def report(runs_dir, metric_names, out_dir=None):
  out_dir = out_dir or runs_dir
  found = load_runs(runs_dir)
  if not found:
    raise FileNotFoundError(f"no finished stage (metrics.jsonl with eval rows) under {runs_dir}")
  os.makedirs(out_dir, exist_ok=True)
  summary = summarize(found, metric_names)
  return write_tables(summary, metric_names, out_dir), write_plots(found, summary,
                                                                   metric_names, out_dir)


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("usage: python -m launch.report RUNS_DIR")
  md, paths = report(argv[1], _METRICS.value, _OUT.value)
  print(md)
  for p in paths:
    print(f"wrote {p}")


if __name__ == "__main__":
  app.run(main)
