r"""Aggregates runs into tables (mean ± std, 95 % CI over seeds), plots and a page.

  python -m launch.report RUNS_DIR [--metrics=miou,f1/curve1] [--out=DIR]

RUNS_DIR is a workdir or a folder of workdirs (any depth, e.g. a launch.sweep root); every
`metrics.jsonl` found is read with the `config.json`, `sweep_run.json` and `sweep_done.json`
beside it. Only finished stages count (launch/results.py says which): a stage is finished when
its last eval row is at its config's `epochs` (every stage evaluates at its last epoch), or,
without epochs in its config, when its sweep run wrote `sweep_done.json`. Stages are grouped by
their config `tags` without `seed` (e.g. arm=warm, budget=12), else by stage name, plus the
run's sweep grid settings (e.g. :labels=16), and the groups are averaged over seeds. Unfinished
stages, duplicates (a second stage of the same group and seed: the first by path is used),
missing seeds, sweep runs without results and malformed metrics.jsonl lines (a warning naming
file and line) are listed, never averaged. Default metrics: what the stages' tasks report (per-class
F1 for curve segmenters, mIoU, pixel accuracy, accuracy). Exit 2 with one `error:` line
for a RUNS_DIR that is not a folder or an --out that cannot be written (checked first), 1 when
nothing finished.
Writes to RUNS_DIR (or --out): report.md, report.csv, report.html (launch/report_html.py:
the same table, interactive curves, the run list and the stages' pictures, in one file), and
the plots that the runs allow:
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
import math
import os
import re
import sys
import tempfile

import numpy as np
from absl import app, flags
from scipy import stats

from launch import results
from ssl_seg import plots

# Group keys that count labelled examples: the x axis of the main figure, not a line.
LABEL_KEYS = re.compile(r"(^:?labels$|^budget$|num_labels$|num_train$)")



def t95(df):
  """Two-sided 95 % Student-t quantile."""
  return float(stats.t.ppf(0.975, df))


def load_runs(runs_dir):
  """[Result(tags, seed, final eval row, eval rows, info)] of every finished, unique stage."""
  return results.collect(runs_dir).found


def groups_of(found):
  groups = collections.defaultdict(list)
  for r in found:
    groups[results.group_key(r.tags)].append(r)
  return groups


def task_of(result):
  return result.info["stage_cfg"].get("task") or result.final.get("task")


def default_metrics(found):
  """What the stages' tasks report: per-class F1 for curve segmenters, mIoU, accuracy."""
  names = []
  for r in found:
    classes = r.info["stage_cfg"].get("class_names") or []
    if task_of(r) == "curve_segment":
      names += [f"f1/{c}" for c in classes if c != "background"] + ["f1/background"]
  return list(dict.fromkeys(names + ["miou", "pixel_acc", "acc"]))


def summarize(found, metric_names):
  """{group key: {metric: (mean, std, ci95, n)}} with groups = tags minus seed.

  std and ci95 are nan for n = 1.
  """
  out = {}
  for key, members in groups_of(found).items():
    metrics = {}
    for m in metric_names:
      vals = np.array([r.final[m] for r in members if m in r.final], np.float64)
      if len(vals):
        n = len(vals)
        std = float(vals.std(ddof=1)) if n > 1 else float("nan")
        ci = t95(n - 1) * std / np.sqrt(n) if n > 1 else float("nan")
        metrics[m] = (float(vals.mean()), std, float(ci), n)
    if metrics:  # Stages that report none of the metrics (e.g. pretraining) are left out.
      out[key] = metrics
  return out


def sort_key(key):
  """Numbers in numeric order (16 before 128), strings alphabetically."""
  return [(k, 0, v, "") if isinstance(v, (int, float)) else (k, 1, 0, str(v)) for k, v in key]


def _num(x):
  return None if x is None or not math.isfinite(x) else x


def _scalar(v):
  return v if isinstance(v, (str, int, float)) else str(v)


def table_rows(summary, metric_names):
  """(metrics present, rows of report.csv as dicts; None where a value is undefined)."""
  present = [m for m in metric_names if any(m in s for s in summary.values())]
  rows = []
  for key in sorted(summary, key=sort_key):
    s = summary[key]
    row = {"group": results.key_str(key), **{k: _scalar(v) for k, v in key},
           "n": max(v[3] for v in s.values())}
    for m in present:
      if m in s:
        row.update({f"{m}_mean": s[m][0], f"{m}_std": _num(s[m][1]),
                    f"{m}_ci95": _num(s[m][2])})
    rows.append(row)
  return present, rows


def format_stat(mean, std, ci, n):
  if n < 2:
    return f"{mean:.3f} (n=1, no CI)"
  return f"{mean:.3f} ± {std:.3f} (CI ±{ci:.3f})"


def write_tables(summary, metric_names, out_dir, notes=()):
  present, rows = table_rows(summary, metric_names)
  lines = ["| group | n | " + " | ".join(present) + " |",
           "|---|---|" + "---|" * len(present)]
  for key in sorted(summary, key=sort_key):
    s = summary[key]
    n = max(v[3] for v in s.values())
    cells = [format_stat(*s[m]) if m in s else "-" for m in present]
    lines.append(f"| {results.key_str(key)} | {n} | " + " | ".join(cells) + " |")
  md = "\n".join(lines)
  if notes:
    md += "\n\n" + "\n".join(notes)
  with open(os.path.join(out_dir, "report.md"), "w") as f:
    f.write(md + "\n")
  with open(os.path.join(out_dir, "report.csv"), "w", newline="") as f:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
  return md


def _dataset_size(data):
  """Examples a stage's data uses: the smallest positive of num_labels, num_train, subset."""
  sizes = [data.get(k, -1) for k in ("num_labels", "num_train", "subset")]
  sizes = [s for s in sizes if isinstance(s, int) and s > 0]
  return min(sizes) if sizes else None


def init_chain(info):
  """Stage names from this stage back along init_from; a path outside the workdir ends it."""
  stages, chain = info["run_cfg"].get("stages", {}), [info["stage"]]
  while True:
    init = (stages.get(chain[-1], {}).get("init_from") or {}).get("stage", "")
    if not init:
      return chain
    if init not in stages or init in chain:
      return [*chain, "/" + os.path.basename(os.path.normpath(init))]
    chain.append(init)


def pretraining(info):
  """'pretrain 2048' (the first stage of the init_from chain and its size) or 'from scratch'."""
  chain, stages = init_chain(info), info["run_cfg"].get("stages", {})
  if len(chain) == 1:
    return "from scratch"
  if chain[-1].startswith("/"):
    return f"from {chain[-1][1:]}"
  size = _dataset_size(stages[chain[-1]].get("data", {}))
  return f"{chain[-1]} {size}" if size else chain[-1]


def label_count(info):
  return _dataset_size(info["stage_cfg"].get("data", {}))


def mean_curve(runs, metric):
  """[(epoch, mean, std, n, step)] over runs' eval rows (std 0 for one run)."""
  per_epoch, steps = collections.defaultdict(list), {}
  for evals in runs:
    for r in evals:
      if metric in r:
        per_epoch[r["epoch"]].append(r[metric])
        steps[r["epoch"]] = r.get("step")
  return [(e, float(np.mean(v)), float(np.std(v)), len(v), steps[e])
          for e, v in sorted(per_epoch.items())]


def miou_series(found, summary, metric="miou"):
  """{line label: [(labels, mean, std, ci95, n)]}: one line per stage and its pretraining."""
  series = collections.defaultdict(list)
  for key, members in groups_of(found).items():
    labels = label_count(members[0].info)
    if metric not in summary.get(key, {}) or labels is None:
      continue
    line = [f"{k}={v}" if k != "stage" else str(v) for k, v in key if not LABEL_KEYS.search(k)]
    label = ", ".join(line + [f"init: {pretraining(members[0].info)}"])
    series[label].append((labels, *summary[key][metric]))
  return {k: sorted(v) for k, v in sorted(series.items())}


def _plot_series(series):
  return {k: [(p[0], p[1], 0.0 if math.isnan(p[2]) else p[2]) for p in v]
          for k, v in series.items()}


def plot_miou_vs_labels(found, summary, out_dir, metric="miou"):
  """The study's main figure: final mIoU vs labelled examples, a line per stage/pretraining."""
  series = miou_series(found, summary, metric)
  if not series:
    return None
  return plots.metric_vs_x(_plot_series(series), "labelled training examples",
                           f"final eval {metric}",
                           os.path.join(out_dir, f"{metric}_vs_labels.png"),
                           title=f"{metric} vs labels (mean ± std over seeds)")


def plot_convergence(found, metric_names, out_dir):
  """Mean eval curve per group of the first metric present (mIoU for segmentation)."""
  groups = groups_of(found)
  metric = next((m for m in ["miou", *metric_names]
                 if any(m in r for g in groups.values() for x in g for r in x.evals)), None)
  if metric is None:
    return None
  curves = {}
  for key in sorted(groups, key=sort_key):
    curve = mean_curve([r.evals for r in groups[key]], metric)
    if curve:
      curves[results.key_str(key)] = curve
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
  paths.append(plots.metric_vs_x(_plot_series(series), "labelled logs (budget)",
                                 "final eval F1", os.path.join(out_dir, "f1_vs_budget.png")))
  for budget in budgets:
    curves = {}
    for arm in arms:
      runs = [r.evals for r in found
              if r.tags.get("arm") == arm and r.tags.get("budget") == budget]
      for m in ("f1/curve1", "f1/curve2"):
        curve = mean_curve(runs, m)
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


def seed_notes(found, summary):
  """Groups that lack seeds other groups of their kind (the same group keys) have.

  Kinds keep a shared stage (one `synthetic` stage under many tagged fine-tunes) from being
  flagged for the seeds of the fine-tunes.
  """
  groups = groups_of(found)
  seeds = {k: {r.seed for r in groups[k]} - {None} for k in summary}
  kinds = collections.defaultdict(set)
  for key, s in seeds.items():
    kinds[tuple(k for k, _ in key)] |= s
  notes = []
  for key in sorted(summary, key=sort_key):
    every = kinds[tuple(k for k, _ in key)]
    if len(every) > 1 and seeds[key] != every:
      have, lack = sorted(seeds[key]), sorted(every - seeds[key])
      notes.append(f"- missing seeds: {results.key_str(key)} has seeds {have}, lacks {lack}")
  return notes


def report(runs_dir, metric_names=None, out_dir=None):
  """Writes report.md / .csv / .html and plots; returns (markdown, paths written)."""
  from launch import report_html  # It imports this module.

  out_dir = out_dir or runs_dir
  loaded = results.collect(runs_dir)
  if not loaded.found:
    why = "".join(f"\n  {line}" for line in results.problem_notes(loaded, runs_dir))
    raise FileNotFoundError(f"no finished stage (metrics.jsonl with eval rows) under "
                            f"{runs_dir}{why}")
  metric_names = metric_names or default_metrics(loaded.found)
  os.makedirs(out_dir, exist_ok=True)
  summary = summarize(loaded.found, metric_names)
  sweep_notes, missing = results.sweep_status(runs_dir)
  notes = (sweep_notes + results.problem_notes(loaded, runs_dir)
           + seed_notes(loaded.found, summary) + loaded.warnings)
  loaded = loaded._replace(runs=loaded.runs + missing)  # The page lists them too.
  md = write_tables(summary, metric_names, out_dir, notes)
  paths = write_plots(loaded.found, summary, metric_names, out_dir)
  html = report_html.write(os.path.join(out_dir, "report.html"), loaded, summary, metric_names,
                           notes, title=runs_dir, base=runs_dir)
  return md, paths + [html]


def check_writable(folder):
  """Raises OSError naming `folder` unless a file can be created in it (made if missing)."""
  try:
    os.makedirs(folder, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".report-check-"):
      pass
  except OSError as e:
    raise OSError(f"--out folder {folder} is not writable ({e.strerror or e}); choose "
                  "another --out") from None


def define_flags():
  """The command's flags; defined only when run, so the module imports anywhere."""
  flags.DEFINE_list("metrics", None, "Metrics to tabulate (default: what the stages' tasks "
                    "report: per-class F1 for curve segmenters, miou, pixel_acc, acc).")
  flags.DEFINE_string("out", None, "Output folder (default: RUNS_DIR).")


def main(argv):
  if len(argv) != 2:
    print("error: usage: python -m launch.report RUNS_DIR [--out=DIR] [--metrics=...]",
          file=sys.stderr)
    sys.exit(2)
  runs_dir, out = argv[1], flags.FLAGS.out
  try:
    if not os.path.isdir(runs_dir):
      raise FileNotFoundError(f"RUNS_DIR {runs_dir} is not a folder")
    check_writable(out or runs_dir)  # Before any work: a result is never computed and lost.
  except OSError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  try:
    md, paths = report(runs_dir, flags.FLAGS.metrics, out)
  except OSError as e:  # No finished stage, or the disk filled up while writing.
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  lines = md.split("\n")
  for line in lines:
    if line.startswith("warning: "):
      print(line, file=sys.stderr)
  print("\n".join(line for line in lines if not line.startswith("warning: ")))
  for p in paths:
    print(f"wrote {p}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
