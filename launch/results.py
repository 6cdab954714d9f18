"""Which runs count: metrics.jsonl rows (ssl_seg.run_log), stages judged finished, duplicates.

A stage is finished when its last eval row is at its config's `epochs` (every stage evaluates
at its last epoch, so an interrupted stage's last row is an intermediate eval), or, where
config.json gives no epochs, when its sweep run wrote `sweep_done.json` for the same command.
A second finished stage of the same group and seed is a duplicate: the first by path is used.
Malformed lines are skipped, each with a warning naming file and line.
"""

import collections
import glob
import json
import os

from ssl_seg import config_utils, paths, run_log

Result = collections.namedtuple("Result", "tags seed final evals info")
# One line of the run list: status is complete, incomplete, duplicate, unknown or missing.
Run = collections.namedtuple("Run", "workdir stage group seed status note")
Loaded = collections.namedtuple("Loaded", "found runs warnings")


def key_str(key):
  return ", ".join(f"{k}={v}" for k, v in key)


def read_json(path):
  try:
    with open(path) as f:
      value = json.load(f)
  except (OSError, ValueError):
    return {}
  return value if isinstance(value, dict) else {}


def _hashable(v):
  return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


def _finished(stage_cfg, evals, run_done):
  """(True / False / None for unknown, why) for a stage with eval rows."""
  epochs, last = stage_cfg.get("epochs"), evals[-1]["epoch"]
  if isinstance(epochs, int) and epochs > 0:
    if last >= epochs:
      return True, ""
    return False, f"last eval at epoch {last} of {epochs}: interrupted or still running"
  if run_done:
    return True, "finished per sweep_done.json"
  return None, "config.json gives no epochs and no sweep_done.json: cannot tell if it finished"


def _config_diff(a, b):
  ignore = ("seed", "tags.", "init_from.stage", "data.seed")
  fa, fb = config_utils.flat(a), config_utils.flat(b)
  keys = [k for k in sorted(set(fa) | set(fb))
          if fa.get(k) != fb.get(k) and not k.startswith(ignore)]
  if not keys:
    return "configs identical"
  return "configs differ in " + ", ".join(keys[:4]) + (" ..." if len(keys) > 4 else "")


def collect(runs_dir):
  """Loaded(found: finished, unique [Result], runs: [Run] for every stage, warnings).

  `tags` is the group: the stage's config tags (or {"stage": name}) plus the run's sweep
  settings; `info` holds the stage config, the run's config and the workdir.
  """
  found, runs, warnings, first = [], [], [], {}
  for path in sorted(glob.glob(run_log.path(os.path.join(runs_dir, "**")), recursive=True)):
    workdir = os.path.dirname(path)
    run_cfg = read_json(os.path.join(workdir, "config.json"))
    sweep_run = read_json(os.path.join(workdir, "sweep_run.json"))
    done = read_json(os.path.join(workdir, "sweep_done.json"))
    run_done = bool(done) and done.get("fingerprint") == sweep_run.get("fingerprint")
    settings = sweep_run.get("settings") if isinstance(sweep_run.get("settings"), dict) else {}
    rows = run_log.read_rows(path, warnings)
    for stage in dict.fromkeys(r["stage"] for r in rows):
      evals = [r for r in rows if r["stage"] == stage and r["split"] == "eval"]
      stage_cfg = (run_cfg.get("stages") or {}).get(stage) or {}
      tags = {k: _hashable(v) for k, v in (stage_cfg.get("tags") or {"stage": stage}).items()}
      tags.update({k: _hashable(v) for k, v in settings.items()})
      key = group_key(tags)
      if not evals:
        # Pretraining without eval data is normal; an unfinished stage is still listed.
        last = max((r["epoch"] for r in rows if r["stage"] == stage
                    and isinstance(r.get("epoch"), int)), default=0)
        ok = last == stage_cfg.get("epochs")
        runs.append(Run(workdir, stage, key_str(key), tags.get("seed"),
                        "complete" if ok else "incomplete",
                        "no eval rows" + ("" if ok else f"; last epoch {last}")))
        continue
      seed = evals[-1].get("seed", tags.get("seed"))
      ok, why = _finished(stage_cfg, evals, run_done)
      status = {True: "complete", False: "incomplete", None: "unknown"}[ok]
      if ok and (key, seed) in first:
        other = first[(key, seed)]
        where = os.path.relpath(other.info["workdir"], runs_dir)
        status, why = "duplicate", (f"same group and seed as {where} [{other.info['stage']}], "
                                    "which is used; "
                                    + _config_diff(stage_cfg, other.info["stage_cfg"]))
      runs.append(Run(workdir, stage, key_str(key), seed, status, why))
      if status == "complete":
        info = dict(stage=stage, stage_cfg=stage_cfg, run_cfg=run_cfg, workdir=workdir)
        first[(key, seed)] = Result(tags, seed, evals[-1], evals, info)
        found.append(first[(key, seed)])
  return Loaded(found, runs, warnings)


def group_key(tags):
  """Tags without seed: config tags / stage first (sorted), then sweep settings (sorted)."""
  own = sorted((k, v) for k, v in tags.items() if k != "seed" and not _is_setting(k))
  return tuple(own) + tuple(sorted((k, v) for k, v in tags.items() if _is_setting(k)))


def _is_setting(key):
  return key.startswith(":") or "." in key


def sweep_status(runs_dir):
  """(note lines, [Run] missing) for what sweep.json manifests list but has no result yet."""
  notes, missing_runs = [], []
  for manifest in sorted(glob.glob(os.path.join(runs_dir, "**", "sweep.json"), recursive=True)):
    runs = [r for r in read_json(manifest).get("runs", []) if isinstance(r, dict)]
    root = os.path.dirname(manifest)
    done, partial, missing = [], [], []
    for run in runs:
      # Relative to the manifest, so a moved or copied sweep folder still resolves.
      workdir = os.path.join(root, str(run.get("name")))
      marker = read_json(os.path.join(workdir, "sweep_done.json"))
      if marker and marker.get("fingerprint") == run.get("fingerprint"):
        done.append(run["name"])
      elif os.path.exists(run_log.path(workdir)):
        partial.append(run["name"])
      else:
        missing.append(run["name"])
        missing_runs.append(Run(workdir, "", "", run.get("seed"), "missing",
                                "listed in sweep.json; no metrics.jsonl (failed before its "
                                "first record, or not started)"))
    notes.append(f"Sweep {os.path.relpath(manifest, runs_dir)}: {len(runs)} runs, "
                 f"{len(done)} finished, {len(partial)} started but not finished, "
                 f"{len(missing)} without results.")
    notes += [f"- not finished: {n}" for n in partial] + [f"- no results: {n}" for n in missing]
  return notes, missing_runs


def problem_notes(loaded, runs_dir):
  """Run-list lines for report.md: every stage that is not used, and why."""
  lines = []
  for r in loaded.runs:
    if r.status not in ("complete",):
      where = os.path.relpath(paths.stage_dir(r.workdir, r.stage), runs_dir)
      lines.append(f"- {r.status}: {where}: {r.note}")
  return lines
