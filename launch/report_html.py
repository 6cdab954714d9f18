"""report.html: a sweep (or one workdir) as one self-contained page, opened without network.

The page holds its data in `<script type="application/json" id="report-data">` (the result
table there is report.csv's rows, number for number) and draws it as inline SVG with the
vanilla JS of launch/report_page.py: the well-log exhibit (eval F1 per epoch, warm vs cold,
mean ± std bands over seeds, a budget selector, a curve1 / curve2 switch, the epoch at which
warm reaches cold's final F1, the threshold rule as a line), the SimMIM figures (final mIoU vs
labelled examples per pretraining with 95 % CIs, and the intermediate stage's difference), the
convergence of every group, the result table, the run list with its problems flagged, and the
stages' example pictures as base64 PNGs.
"""

import base64
import collections
import glob
import html
import json
import math
import os
import re
import time

import numpy as np

from launch import report, report_page, results
from ssl_seg import paths

MAX_PICTURES = 40  # Per page; with PER_STAGE per group and stage.
MAX_PICTURE_BYTES = 12 * 2**20
PER_STAGE = 2
_TASK_ROWS = {"curve_segment": "scan / truth / prediction (curve1 red, curve2 blue)",
              "denoise": "clean scan / corrupted input / reconstruction"}


def _clean(x):
  """JSON-safe: nan and inf become null (JSON.parse rejects NaN), tuples lists."""
  if isinstance(x, dict):
    return {str(k): _clean(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_clean(v) for v in x]
  if isinstance(x, (float, np.floating)):
    return float(x) if math.isfinite(x) else None
  if isinstance(x, np.integer):
    return int(x)
  return x


def _round(x, digits=5):
  return None if x is None or not math.isfinite(x) else float(f"{x:.{digits}g}")


def _curve(runs, metric):
  """[[epoch, mean, std, n, step]] rounded for the page (the table keeps full precision)."""
  return [[e, _round(m), _round(s), n, step]
          for e, m, s, n, step in report.mean_curve(runs, metric)]


def _stat(values):
  vals = np.asarray(values, np.float64)
  n = len(vals)
  std = float(vals.std(ddof=1)) if n > 1 else None
  ci = report.t95(n - 1) * std / math.sqrt(n) if n > 1 else None
  return [float(vals.mean()), std, ci, n]


def _arm(result):
  arm = result.tags.get("arm")
  if arm in ("warm", "cold"):
    return arm
  m = re.fullmatch(r"finetune_(warm|cold)(_.*)?", result.info["stage"])
  return m.group(1) if m else None


def _match(arms, metric):
  """The first eval at which warm's mean F1 reaches cold's final mean F1 (None: never)."""
  warm, cold = arms.get("warm"), arms.get("cold")
  if not (warm and cold and metric in cold["final"] and warm["curves"].get(metric)):
    return None
  target, curve = cold["final"][metric][0], warm["curves"][metric]
  hit = next((p for p in curve if p[1] is not None and p[1] >= target), None)
  last_cold = cold["curves"][metric][-1]
  return {"target": target, "cold_epoch": last_cold[0], "cold_step": last_cold[4],
          "warm_epochs": curve[-1][0], "epoch": hit and hit[0], "step": hit and hit[4],
          "first_eval": hit is curve[0]}


def welllog(found):
  """Warm vs cold panels, one per budget (and other group settings), or None."""
  panels = collections.defaultdict(lambda: collections.defaultdict(list))
  for r in found:
    arm = _arm(r)
    if arm and any(k.startswith("f1/") for k in r.final):
      budget = r.tags.get("budget", report.label_count(r.info))
      rest = tuple((k, v) for k, v in results.group_key(r.tags)
                   if k not in ("arm", "budget", "stage"))
      panels[(budget, rest)][arm].append(r)
  if not panels:
    return None
  from ssl_seg import metrics as metrics_lib  # Only here: it imports jax.

  members = [r for arms in panels.values() for ms in arms.values() for r in ms]
  classes = list(dict.fromkeys(c for r in members
                               for c in r.info["stage_cfg"].get("class_names") or []
                               if c != "background"))
  classes = classes or sorted({k.split("/", 1)[1] for r in members for k in r.final
                               if k.startswith("f1/")} - {"background"})
  kinds = [k for k in ("f1", "f1_tol1") if any(f"{k}/{c}" in r.final for r in members
                                               for c in classes)]
  names = [f"{k}/{c}" for k in kinds for c in classes]
  out = []
  for (budget, rest) in sorted(panels, key=lambda p: (report.sort_key(p[1]), p[0] or 0)):
    arms = {}
    for arm, ms in sorted(panels[(budget, rest)].items(), key=lambda a: a[0] != "cold"):
      arms[arm] = {"n": len(ms), "seeds": sorted(r.seed for r in ms if r.seed is not None),
                   "curves": {m: _curve([r.evals for r in ms], m) for m in names},
                   "final": {m: _stat([r.final[m] for r in ms if m in r.final])
                             for m in names if any(m in r.final for r in ms)}}
    rule = {}
    for m in names:
      vals = [r.final[metrics_lib.RULE_PREFIX + m] for ms in panels[(budget, rest)].values()
              for r in ms if metrics_lib.RULE_PREFIX + m in r.final]
      if vals:
        rule[m] = float(np.mean(vals))
    label = f"budget {budget}" + (f" · {results.key_str(rest)}" if rest else "")
    out.append({"label": label, "budget": budget, "rest": results.key_str(rest), "arms": arms,
                "rule": rule, "match": {m: _match(arms, m) for m in names}})
  return {"classes": classes, "kinds": kinds, "panels": out}


def intermediate(found, metric="miou"):
  """Final `metric` via an intermediate (classify) stage minus without, paired by seed."""
  sides = collections.defaultdict(lambda: ([], []))
  for r in found:
    chain, labels = report.init_chain(r.info), report.label_count(r.info)
    if metric not in r.final or len(chain) < 2 or labels is None:
      continue
    stages = r.info["run_cfg"].get("stages", {})
    via = any(stages.get(s, {}).get("task") == "classify" for s in chain[1:])
    rest = tuple((k, v) for k, v in results.group_key(r.tags)
                 if k != "stage" and k.lstrip(":") != "intermediate"
                 and not report.LABEL_KEYS.search(k))
    sides[(rest, report.pretraining(r.info), labels, r.seed)][via].append(r.final[metric])
  diffs = collections.defaultdict(list)
  for (rest, root, labels, _), (without, via) in sides.items():
    if without and via:
      diffs[(rest, root)].append((labels, float(np.mean(via) - np.mean(without))))
  series = []
  for (rest, root), pts in sorted(diffs.items(), key=lambda d: (report.sort_key(d[0][0]),
                                                                d[0][1])):
    by_labels = collections.defaultdict(list)
    for labels, d in pts:
      by_labels[labels].append(d)
    label = ", ".join([results.key_str(rest)] * bool(rest) + [f"init: {root}"])
    series.append({"label": label,
                   "points": [[x, *_stat(v)] for x, v in sorted(by_labels.items())]})
  return series


def simmim(found, summary):
  """mIoU vs labelled examples (with CIs) and the intermediate stage's effect, or None."""
  seg = [r for r in found if report.task_of(r) not in ("curve_segment", "denoise")
         and "miou" in r.final]
  if not seg:
    return None
  keys = {results.group_key(r.tags) for r in seg}
  series = report.miou_series(seg, {k: v for k, v in summary.items() if k in keys})
  return {"metric": "miou",
          "series": [{"label": k, "points": v} for k, v in series.items()],
          "intermediate": intermediate(seg)}


def convergence(found, metric_names):
  groups = report.groups_of(found)
  out = []
  for key in sorted(groups, key=report.sort_key):
    evals = [r.evals for r in groups[key]]
    curves = {m: _curve(evals, m) for m in [*metric_names, "loss"]
              if any(m in row for e in evals for row in e)}
    if curves:
      out.append({"group": results.key_str(key), "curves": curves})
  return out


def _tasks(workdir, cache={}):  # noqa: B006 - a per-process cache of config.json reads.
  if workdir not in cache:
    cfg = results.read_json(os.path.join(workdir, "config.json"))
    cache[workdir] = {k: (v or {}).get("task") for k, v in (cfg.get("stages") or {}).items()}
  return cache[workdir]


def _natural(path):
  return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def pictures(runs, base):
  """[(caption, data URI)] of each group's first finished run's stage PNGs, and a note."""
  out, total, left, seen = [], 0, 0, set()
  for run in runs:
    if run.status != "complete" or run.group in seen:  # The group's first seed only.
      continue
    seen.add(run.group)
    stage_dir = paths.stage_dir(glob.escape(run.workdir), run.stage)
    pngs = sorted(glob.glob(os.path.join(stage_dir, "*.png")), key=_natural)
    for path in pngs[:PER_STAGE]:
      size = os.path.getsize(path)
      if len(out) >= MAX_PICTURES or total + size > MAX_PICTURE_BYTES:
        left += 1
        continue
      with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
      total += size
      rows = _TASK_ROWS.get(_tasks(run.workdir).get(run.stage), "")
      where = os.path.relpath(path, base)
      out.append((f"{run.group} · seed {run.seed} · {where}" + (f" — {rows}" if rows else ""),
                  f"data:image/png;base64,{data}"))
  note = f"{left} more pictures not embedded (size cap); see the stage folders." if left else ""
  return out, note


def _rel(path, base):
  rel = os.path.relpath(path, base)
  return "(this workdir)" if rel == "." else rel


def page_data(loaded, summary, metric_names, notes, title, base):
  present, rows = report.table_rows(summary, metric_names)
  runs = [{"workdir": _rel(r.workdir, base), "stage": r.stage, "group": r.group,
           "seed": r.seed, "status": r.status, "note": r.note} for r in loaded.runs]
  return _clean({
      "title": title, "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
      "table_metrics": present, "table": rows, "notes": list(notes),
      "warnings": loaded.warnings, "runs": runs,
      "welllog": welllog(loaded.found), "simmim": simmim(loaded.found, summary),
      "convergence": convergence(loaded.found, metric_names)})


def _e(x):
  return html.escape(str(x))


def _table_html(data, summary, metric_names):
  present = data["table_metrics"]
  head = "".join(f"<th>{_e(m)}</th>" for m in present)
  body = []
  for key in sorted(summary, key=report.sort_key):
    s = summary[key]
    cells = "".join(f"<td>{_e(report.format_stat(*s[m]))}</td>" if m in s else "<td>-</td>"
                    for m in present)
    n = max(v[3] for v in s.values())
    body.append(f"<tr><td>{_e(results.key_str(key))}</td><td>{n}</td>{cells}</tr>")
  return (f"<table class=results><tr><th>group</th><th>n</th>{head}</tr>"
          + "".join(body) + "</table>")


def _runs_html(runs):
  counts = collections.Counter(r["status"] for r in runs)
  summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(),
                                                     key=lambda c: c[0] != "complete"))
  rows = "".join(
      f"<tr class='st-{_e(r['status'])}'><td>{_e(r['status'])}</td><td>{_e(r['workdir'])}</td>"
      f"<td>{_e(r['stage'])}</td><td>{_e(r['group'])}</td><td>{_e(r['seed'])}</td>"
      f"<td>{_e(r['note'])}</td></tr>" for r in runs)
  return (f"<p>{len(runs)} stage(s) and run(s): {_e(summary)}. Only <b>complete</b> stages "
          "enter the tables and curves.</p><table class=runs><tr><th>status</th><th>workdir</th>"
          f"<th>stage</th><th>group</th><th>seed</th><th>note</th></tr>{rows}</table>")


def render(data, summary, metric_names, pictures_, picture_note):
  """The page's HTML text."""
  notes = [n for n in data["notes"] if not n.startswith("warning: ")]
  parts = [f"<h1>Report: {_e(data['title'])}</h1>",
           f"<p class=meta>Written {_e(data['generated'])} by <code>launch.report</code>; "
           "the numbers are in the <code>report-data</code> block of this file.</p>"]
  if data["warnings"]:
    parts.append("<div class=warn><b>Malformed lines were skipped:</b><ul>"
                 + "".join(f"<li>{_e(w)}</li>" for w in data["warnings"]) + "</ul></div>")
  if data["welllog"]:
    parts.append(report_page.WELLLOG_SECTION)
  if data["simmim"]:
    parts.append(report_page.SIMMIM_SECTION)
  if data["convergence"]:
    parts.append(report_page.CONVERGENCE_SECTION)
  parts.append("<h2 id=results>Results</h2><p>Final eval of every group, mean ± std over "
               "seeds and the 95 % Student-t CI of the mean (as report.md and report.csv)."
               "</p>" + _table_html(data, summary, metric_names))
  if notes:
    parts.append("<ul class=notes>" + "".join(f"<li>{_e(n.lstrip('- '))}</li>" for n in notes)
                 + "</ul>")
  parts.append("<h2 id=runs>Runs</h2>" + _runs_html(data["runs"]))
  if pictures_:
    figs = "".join(f"<figure><img src='{src}' alt='{_e(cap)}'><figcaption>{_e(cap)}"
                   "</figcaption></figure>" for cap, src in pictures_)
    parts.append("<h2 id=pictures>Pictures</h2><p>Examples from the eval set at the end of "
                 f"each stage.</p><div class=gallery>{figs}</div>")
    if picture_note:
      parts.append(f"<p class=meta>{_e(picture_note)}</p>")
  blob = json.dumps(data, allow_nan=False, separators=(",", ":"))
  # Inside <script>, "</script>" or "<!--" in a string would end the block; \u escapes can't.
  blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
  return report_page.PAGE.replace("%TITLE%", _e(data["title"])).replace(
      "%BODY%", "\n".join(parts)).replace("%DATA%", blob)


def write(path, loaded, summary, metric_names, notes=(), title="", base=None):
  """Writes the page to `path` (atomically) and returns `path`."""
  base = base or os.path.dirname(path)
  data = page_data(loaded, summary, metric_names, notes, title, base)
  pics, note = pictures(loaded.runs, base)
  text = render(data, summary, metric_names, pics, note)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(tmp, path)
  return path


def write_for_workdir(workdir, log=print):
  """WORKDIR/report.html of one run, its path logged (ssl_seg.main calls this at the end).

  Returns the path, or None when no stage has finished; a failure is logged, not raised: the
  run's checkpoints and metrics stand without the page.
  """
  try:
    loaded = results.collect(workdir)
    if not loaded.found:
      return None
    names = report.default_metrics(loaded.found)
    summary = report.summarize(loaded.found, names)
    notes = results.problem_notes(loaded, workdir) + loaded.warnings
    path = write(os.path.join(workdir, "report.html"), loaded, summary, names, notes,
                 title=workdir, base=workdir)
  except Exception as e:  # noqa: BLE001 - named in the log; training is done either way.
    log(f"warning: report.html not written ({type(e).__name__}: {e}); "
        f"python -m launch.report {workdir} retries it")
    return None
  log(f"report page: {path}")
  return path
