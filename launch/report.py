r"""Aggregates runs into tables (mean ± std, 95 % CI over seeds) and plots.

  python -m launch.report RUNS_DIR [--metrics=miou,f1/curve1] [--out=DIR]

RUNS_DIR is a workdir or a folder of workdirs (any depth, e.g. a launch.sweep root); every
`metrics.jsonl` found is read with the `config.json` and `sweep_run.json` beside it. A stage's
result is its last eval row. Stages are grouped by their config `tags` without `seed` (e.g.
arm=warm, budget=12), else by stage name, plus the run's sweep grid settings (e.g. :labels=16),
and the groups are averaged over seeds. Works on partial sweeps: what has an eval row is
reported, and runs listed in a sweep.json without results are named.
Writes to RUNS_DIR (or --out): report.md, report.csv, and the plots that the runs allow:
  miou_vs_labels.png  final mIoU vs labelled training examples, one line per stage (or arm)
                      and pretraining size: the study's main figure.
  f1_vs_budget.png    final F1 vs label budget, warm vs cold (stages tagged arm / budget).
  convergence.png     eval mIoU (else the first metric) per epoch, one line per group.
  convergence_b<budget>.png  eval F1 per epoch, warm vs cold, at one budget (instead of
                      convergence.png for the budget study).
Lines and error bars are mean ± std over seeds.
"""

import collections
import csv
import glob
import json
import os
import re

import numpy as np
from absl import app, flags

from ssl_seg import plots

_METRICS = flags.DEFINE_list(
    "metrics", ["f1/curve1", "f1/curve2", "f1/background", "miou", "pixel_acc", "acc"],
    "Metrics to tabulate (those present are used).")
_OUT = flags.DEFINE_string("out", None, "Output folder (default: RUNS_DIR).")

# Two-sided 95 % Student-t quantiles by degrees of freedom (scipy is not a dependency).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}

# Group keys that count labelled examples: the x axis of the main figure, not a line.
_LABEL_KEYS = re.compile(r"(^:?labels$|^budget$|num_labels$|num_train$)")

Result = collections.namedtuple("Result", "tags seed final evals info")


def t95(df):
  """Conservative: the quantile of the nearest tabulated df at or below `df`."""
  return 1.96 if df > 30 else _T95[max(k for k in _T95 if k <= df)]


def _read_json(path):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def read_rows(path):
  """metrics.jsonl rows; a line cut short by a run that is still writing is skipped."""
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except ValueError:
        continue
  return rows


def _hashable(v):
  return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


def load_runs(runs_dir):
  """[Result(tags, seed, final eval row, eval rows, info)] for every stage with an eval row.

  `tags` is the group: the stage's config tags (or {"stage": name}) plus the run's sweep
  settings; `info` holds the stage config, the run's config and the workdir.
  """
  found = []
  for path in sorted(glob.glob(os.path.join(runs_dir, "**", "metrics.jsonl"), recursive=True)):
    workdir = os.path.dirname(path)
    run_cfg = _read_json(os.path.join(workdir, "config.json"))
    settings = _read_json(os.path.join(workdir, "sweep_run.json")).get("settings", {})
    rows = read_rows(path)
    for stage in dict.fromkeys(r.get("stage") for r in rows):
      evals = [r for r in rows if r.get("stage") == stage and r.get("split") == "eval"]
      if not evals:
        continue
      stage_cfg = run_cfg.get("stages", {}).get(stage, {})
      tags = dict(stage_cfg.get("tags") or {"stage": stage})
      tags.update({k: _hashable(v) for k, v in settings.items()})
      info = dict(stage=stage, stage_cfg=stage_cfg, run_cfg=run_cfg, workdir=workdir)
      found.append(Result(tags, evals[-1].get("seed"), evals[-1], evals, info))
  return found


def group_key(tags):
  """Tags without seed: config tags / stage first (sorted), then sweep settings (sorted)."""
  own = sorted((k, v) for k, v in tags.items() if k != "seed" and not _is_setting(k))
  return tuple(own) + tuple(sorted((k, v) for k, v in tags.items() if _is_setting(k)))


def _is_setting(key):
  return key.startswith(":") or "." in key


def _groups(found):
  groups = collections.defaultdict(list)
  for r in found:
    groups[group_key(r.tags)].append(r)
  return groups


def summarize(found, metric_names):
  """{group key: {metric: (mean, std, ci95, n)}} with groups = tags minus seed."""
  out = {}
  for key, members in _groups(found).items():
    stats = {}
    for m in metric_names:
      vals = np.array([r.final[m] for r in members if m in r.final], np.float64)
      if len(vals):
        std = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        ci = t95(len(vals) - 1) * std / np.sqrt(len(vals)) if len(vals) > 1 else float("nan")
        stats[m] = (float(vals.mean()), std, float(ci), len(vals))
    if stats:  # Stages that report none of the metrics (e.g. pretraining) are left out.
      out[key] = stats
  return out


def _key_str(key):
  return ", ".join(f"{k}={v}" for k, v in key)


def _sort_key(key):
  """Numbers in numeric order (16 before 128), strings alphabetically."""
  return [(k, 0, v, "") if isinstance(v, (int, float)) else (k, 1, 0, str(v)) for k, v in key]


def write_tables(summary, metric_names, out_dir, notes=()):
  present = [m for m in metric_names if any(m in s for s in summary.values())]
  lines = ["| group | n | " + " | ".join(present) + " |",
           "|---|---|" + "---|" * len(present)]
  rows = []
  for key in sorted(summary, key=_sort_key):
    stats = summary[key]
    n = max((s[3] for s in stats.values()), default=0)
    cells = [f"{stats[m][0]:.3f} ± {stats[m][1]:.3f} (CI ±{stats[m][2]:.3f})" if m in stats
             else "-" for m in present]
    lines.append(f"| {_key_str(key)} | {n} | " + " | ".join(cells) + " |")
    row = {"group": _key_str(key), **{k: v for k, v in key}, "n": n}
    for m in present:
      if m in stats:
        row.update({f"{m}_mean": stats[m][0], f"{m}_std": stats[m][1], f"{m}_ci95": stats[m][2]})
    rows.append(row)
  md = "\n".join(lines)
  if notes:
    md += "\n\n" + "\n".join(notes)
  with open(os.path.join(out_dir, "report.md"), "w") as f:
    f.write(md + "\n")
  with open(os.path.join(out_dir, "report.csv"), "w", newline="") as f:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
  return md


def _dataset_size(data):
  """Examples a stage's data uses: the smallest positive of num_labels, num_train, subset."""
  sizes = [data.get(k, -1) for k in ("num_labels", "num_train", "subset")]
  sizes = [s for s in sizes if isinstance(s, int) and s > 0]
  return min(sizes) if sizes else None


def pretraining(info):
  """'pretrain 2048' (the first stage of the init_from chain and its size) or 'from scratch'."""
  stages, name, seen = info["run_cfg"].get("stages", {}), info["stage"], set()
  while True:
    init = (stages.get(name, {}).get("init_from") or {}).get("stage", "")
    if not init:
      break
    if init not in stages or init in seen:  # A path outside this workdir.
      return f"from {os.path.basename(os.path.normpath(init))}"
    seen.add(name)
    name = init
  if name == info["stage"]:
    return "from scratch"
  size = _dataset_size(stages[name].get("data", {}))
  return f"{name} {size}" if size else name


def _label_count(info):
  return _dataset_size(info["stage_cfg"].get("data", {}))


def _mean_curve(runs, metric):
  per_epoch = collections.defaultdict(list)
  for evals in runs:
    for r in evals:
      if metric in r:
        per_epoch[r["epoch"]].append(r[metric])
  return [(e, float(np.mean(v)), float(np.std(v)), 0.0) for e, v in sorted(per_epoch.items())]


def plot_miou_vs_labels(found, summary, out_dir, metric="miou"):
  """The study's main figure: final mIoU vs labelled examples, a line per stage/pretraining."""
  series = collections.defaultdict(list)
  for key, members in _groups(found).items():
    labels = _label_count(members[0].info)
    if metric not in summary.get(key, {}) or labels is None:
      continue
    line = [f"{k}={v}" if k != "stage" else str(v) for k, v in key if not _LABEL_KEYS.search(k)]
    label = ", ".join(line + [f"init: {pretraining(members[0].info)}"])
    series[label].append((labels, *summary[key][metric][:3]))
  if not series:
    return None
  series = {k: sorted(v) for k, v in sorted(series.items())}
  path = plots.metric_vs_x(series, "labelled training examples", f"final eval {metric}",
                           os.path.join(out_dir, f"{metric}_vs_labels.png"),
                           title=f"{metric} vs labels (mean ± std over seeds)")
  return path


def plot_convergence(found, metric_names, out_dir):
  """Mean eval curve per group of the first metric present (mIoU for segmentation)."""
  groups = _groups(found)
  metric = next((m for m in ["miou", *metric_names]
                 if any(m in r for g in groups.values() for x in g for r in x.evals)), None)
  if metric is None:
    return None
  curves = {}
  for key in sorted(groups, key=_sort_key):
    curve = _mean_curve([r.evals for r in groups[key]], metric)
    if curve:
      curves[_key_str(key)] = curve
  return plots.metric_vs_x(curves, "epoch", f"eval {metric} (mean ± std over seeds)",
                           os.path.join(out_dir, "convergence.png"))


def plot_budget(found, summary, metric_names, out_dir):
  """F1 vs label budget per arm, and mean convergence per budget (when tags have them)."""
  paths = []
  arms = sorted({dict(k).get("arm") for k in summary} - {None})
  budgets = sorted({dict(k).get("budget") for k in summary} - {None})
  if not (arms and budgets):
    return paths
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
      runs = [r.evals for r in found
              if r.tags.get("arm") == arm and r.tags.get("budget") == budget]
      for m in ("f1/curve1", "f1/curve2"):
        curve = _mean_curve(runs, m)
        if curve:
          curves[f"{arm} {m}"] = curve
    paths.append(plots.metric_vs_x(curves, "epoch", "eval F1 (mean ± std over seeds)",
                                   os.path.join(out_dir, f"convergence_b{budget}.png"),
                                   title=f"budget {budget} labelled logs"))
  return paths


def write_plots(found, summary, metric_names, out_dir):
  paths = plot_budget(found, summary, metric_names, out_dir)
  # The budget study has its per-budget convergence plots; one of all groups would repeat them.
  makers = [plot_miou_vs_labels(found, summary, out_dir)]
  if not paths:
    makers.append(plot_convergence(found, metric_names, out_dir))
  return paths + [p for p in makers if p]


def sweep_status(runs_dir):
  """Lines naming what sweep.json manifests under runs_dir list but has no result yet."""
  notes = []
  for manifest in sorted(glob.glob(os.path.join(runs_dir, "**", "sweep.json"), recursive=True)):
    runs = _read_json(manifest).get("runs", [])
    root = os.path.dirname(manifest)
    done, partial, missing = [], [], []
    for run in runs:
      # Relative to the manifest, so a moved or copied sweep folder still resolves.
      workdir = os.path.join(root, run["name"])
      marker = _read_json(os.path.join(workdir, "sweep_done.json"))
      if marker.get("fingerprint") == run.get("fingerprint"):
        done.append(run["name"])
      elif os.path.exists(os.path.join(workdir, "metrics.jsonl")):
        partial.append(run["name"])
      else:
        missing.append(run["name"])
    notes.append(f"Sweep {os.path.relpath(manifest, runs_dir)}: {len(runs)} runs, "
                 f"{len(done)} finished, {len(partial)} started but not finished, "
                 f"{len(missing)} without results.")
    notes += [f"- not finished: {n}" for n in partial] + [f"- no results: {n}" for n in missing]
  return notes


def report(runs_dir, metric_names, out_dir=None):
  out_dir = out_dir or runs_dir
  found = load_runs(runs_dir)
  if not found:
    raise FileNotFoundError(f"no finished stage (metrics.jsonl with eval rows) under {runs_dir}")
  os.makedirs(out_dir, exist_ok=True)
  summary = summarize(found, metric_names)
  md = write_tables(summary, metric_names, out_dir, sweep_status(runs_dir))
  return md, write_plots(found, summary, metric_names, out_dir)


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("usage: python -m launch.report RUNS_DIR")
  try:
    md, paths = report(argv[1], _METRICS.value, _OUT.value)
  except FileNotFoundError as e:
    raise SystemExit(f"error: {e}") from None
  print(md)
  for p in paths:
    print(f"wrote {p}")


if __name__ == "__main__":
  app.run(main)
