r"""Multi-seed grid sweeps: expand grid x seeds into runs, one workdir each, and run them.

  python -m launch.sweep --config=configs/X.py[:args] --seeds=0,1,2 \
      --grid="stages.segment.epochs=5,10;:labels=16,64" --root=RUNS_DIR \
      [--parallel=N] [--dry-run] [--slurm=FILE.sbatch] [-- --config.a.b=v ...]

Grid keys are config paths (`stages.segment.data.num_labels`) or, with a leading colon, the
config file's arguments (`:labels` -> `--config=configs/X.py:labels=16`). Every run's config
is built and validated exactly as `ssl_seg.main` builds it before anything starts, so a bad key
or value is one error line naming it; values take the type of the config field.
Run directories are readable: RUNS_DIR/<key>=<value>/.../seed=<s> (an argument key drops its
colon). Arguments after `--` go to every run unchanged.

Each run is `python -m ssl_seg.main --config=... --workdir=RUN --config.seed=S <settings>
<extra>` (`--command` swaps the program, e.g. for tests). Its stdout and stderr go to
RUN/run.log; RUN/sweep_run.json records its settings (launch.report groups by them).
Finished = RUN/sweep_done.json exists with the fingerprint of the same command (written when
the command exits 0): such runs are skipped; a changed command (another override) reruns.
Anything else is (re)started in its workdir, where `ssl_seg.main` resumes each stage from
its latest checkpoint and skips finished stages. RUNS_DIR/sweep.json lists all runs.
`--slurm=FILE` writes an array-job script (see launch/slurm.py) instead of running.
Exit code: 0 when every run finished, 1 when some failed (listed), 2 for bad arguments.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

from ssl_seg import preemption  # Signal handling only: no JAX in the launcher.

DONE_FILE = "sweep_done.json"
RUN_FILE = "sweep_run.json"
LOG_FILE = "run.log"
MANIFEST = "sweep.json"


class SweepError(ValueError):
  """Bad sweep arguments; the message names the key or value and what to do."""


@dataclasses.dataclass
class Run:
  index: int
  name: str  # Workdir relative to the sweep root, e.g. "labels=16/seed=0".
  workdir: str
  seed: int
  settings: dict  # Grid key -> typed value.
  command: list

  @property
  def fingerprint(self):
    return hashlib.sha1(json.dumps(self.command).encode()).hexdigest()[:16]


def split_values(text):
  """'1,2,(3,4)' -> ['1', '2', '(3,4)']: commas inside brackets or quotes do not split."""
  out, depth, quote, cur = [], 0, None, ""
  for ch in text:
    if quote:
      quote = None if ch == quote else quote
    elif ch in "'\"":
      quote = ch
    elif ch in "([{":
      depth += 1
    elif ch in ")]}":
      depth -= 1
    elif ch == "," and depth == 0:
      out.append(cur.strip())
      cur = ""
      continue
    cur += ch
  out.append(cur.strip())
  return out


def parse_grid(text):
  """'a.b=1,2;c=x,y' -> {'a.b': ['1', '2'], 'c': ['x', 'y']} (raw strings, in order)."""
  grid = {}
  for item in filter(None, (s.strip() for s in (text or "").split(";"))):
    key, eq, values = item.partition("=")
    key = key.strip()
    vals = [v for v in split_values(values) if v] if eq else []
    if not key or not vals:
      raise SweepError(f"--grid item {item!r}: expected key=value1,value2,... "
                       "(items separated by ';')")
    if key in grid:
      raise SweepError(f"--grid key {key!r} appears twice; list all its values once")
    if key in ("seed", ":seed"):
      raise SweepError("--grid key 'seed': give seeds with --seeds=0,1,2 instead")
    grid[key] = vals
  return grid


def parse_seeds(text):
  """'0,1,2' or '0-4' -> [0, 1, 2, ...]."""
  seeds = []
  try:
    for part in filter(None, text.split(",")):
      lo, dash, hi = part.partition("-")
      seeds += list(range(int(lo), int(hi) + 1)) if dash and lo else [int(part)]
  except ValueError:
    raise SweepError(f"--seeds={text!r}: expected integers like 0,1,2 or a range 0-4") from None
  if not seeds or len(set(seeds)) != len(seeds):
    raise SweepError(f"--seeds={text!r}: give at least one seed, each once")
  return seeds


def _reason(e):
  """The last meaningful line of an exception (ml_collections wraps config errors)."""
  lines = [s.strip() for s in str(e).strip().splitlines() if s.strip()]
  return re.sub(r"^\w+Error: ", "", lines[-1]) if lines else type(e).__name__


def lookup(config, key):
  """The value at a dotted config path; SweepError naming the first missing part."""
  node, done = config, "config"
  for part in key.split("."):
    fields = list(node.keys()) if hasattr(node, "keys") else []
    if part not in fields:
      known = ", ".join(map(str, fields)) or f"none: {done} is a {type(node).__name__}"
      raise SweepError(f"grid key {key!r}: {done} has no field {part!r} (fields: {known})")
    node, done = node[part], f"{done}.{part}"
  if hasattr(node, "keys"):
    raise SweepError(f"grid key {key!r} is a group of fields ({', '.join(node.keys())}); "
                     "give the path of one field")
  return node


def _with_args(config_arg, args):
  """'configs/x.py:a=1' + {'b': '2'} -> 'configs/x.py:a=1,b=2' (later keys win)."""
  path, _, base = config_arg.partition(":")
  merged = dict(item.partition("=")[::2] for item in filter(None, base.split(",")))
  merged.update(args)
  return path + (":" + ",".join(f"{k}={v}" if v else k for k, v in merged.items())
                 if merged else "")


def _slug(value):
  if isinstance(value, (list, tuple)):
    text = ",".join(map(str, value))
  else:
    text = value if isinstance(value, str) else json.dumps(value)
  return re.sub(r"[^A-Za-z0-9._=+,()-]", "_", text.replace(" ", "")) or "_"


def _json_value(value):
  return list(value) if isinstance(value, tuple) else value


def _arg_value(text):
  """A config argument's value for the manifest: a number where it reads as one."""
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return text


def expand(config_arg, grid, seeds, root, extra=(), command=None, validate=True):
  """Grid x seeds -> [Run], each config built and validated as ssl_seg.main would."""
  from ssl_seg import config_utils  # Imports the model code; only needed here.

  command = command or [sys.executable, "-m", "ssl_seg.main"]
  # Extra arguments reach the command unchanged; those that edit the config are checked here.
  overrides = [a for a in extra if a.startswith(("--config.", "-config."))]
  try:
    base = config_utils.load_config(config_arg, overrides)
  except Exception as e:  # noqa: BLE001 - any failure to build the config is the user's input.
    raise SweepError(f"--config={config_arg} {' '.join(extra)}: {_reason(e)}") from None
  if "seed" not in base:
    raise SweepError(f"{config_arg}: the config has no top-level 'seed' field to vary")
  for key in grid:
    if not key.startswith(":"):
      lookup(base, key)
  points = [{}]
  for key, values in grid.items():
    points = [{**p, key: v} for p in points for v in values]
  runs, root = [], os.path.abspath(root)
  for point in points:
    args = {k[1:]: v for k, v in point.items() if k.startswith(":")}
    arg = _with_args(config_arg, args)
    fields = [f"--config.{k}={v}" for k, v in point.items() if not k.startswith(":")]
    try:
      cfg = config_utils.load_config(arg, [*fields, *overrides])
    except Exception as e:  # noqa: BLE001
      shown = ", ".join(f"{k}={v}" for k, v in point.items())
      raise SweepError(f"grid point {shown}: {_reason(e)}") from None
    if validate:
      try:
        config_utils.validate(cfg)
      except config_utils.ConfigError as e:
        shown = ", ".join(f"{k}={v}" for k, v in point.items())
        raise SweepError(f"grid point {shown}: {e}") from None
    settings = {k: (_arg_value(v) if k.startswith(":") else _json_value(lookup(cfg, k)))
                for k, v in point.items()}
    parts = [f"{k.lstrip(':')}={_slug(v)}" for k, v in settings.items()]
    for seed in seeds:
      name = os.path.join(*parts, f"seed={seed}")
      workdir = os.path.join(root, name)
      argv = [*command, f"--config={arg}", f"--workdir={workdir}", f"--config.seed={seed}",
              *fields, *extra]
      runs.append(Run(len(runs), name, workdir, seed, settings, argv))
  names = [r.name for r in runs]
  if len(set(names)) != len(names):
    raise SweepError("two grid points map to the same run directory; make values distinct")
  return runs


def is_done(run):
  path = os.path.join(run.workdir, DONE_FILE)
  if not os.path.exists(path):
    return False
  try:
    return json.load(open(path)).get("fingerprint") == run.fingerprint
  except (OSError, ValueError):
    return False


def write_files(runs, root, meta):
  """RUNS_DIR/sweep.json and each run's sweep_run.json (what launch.report groups by)."""
  os.makedirs(root, exist_ok=True)
  for run in runs:
    os.makedirs(run.workdir, exist_ok=True)
    with open(os.path.join(run.workdir, RUN_FILE), "w") as f:
      json.dump({**dataclasses.asdict(run), "fingerprint": run.fingerprint}, f, indent=1)
  path = os.path.join(root, MANIFEST)
  with open(path, "w") as f:
    json.dump({**meta, "runs": [{**dataclasses.asdict(r), "fingerprint": r.fingerprint}
                                for r in runs]}, f, indent=1)
  return path


def _clock(seconds):
  m, s = divmod(int(seconds), 60)
  return f"{m // 60}h{m % 60:02d}m{s:02d}s" if m >= 60 else f"{m}m{s:02d}s"


def _tail(path, n=5):
  try:
    with open(path, errors="replace") as f:
      return [line.rstrip() for line in f.readlines()[-n:]]
  except OSError:
    return []


def run_local(runs, parallel=1, cwd=None, out=print):
  """Runs what is not finished, `parallel` at a time; returns [(run, exit code)] of failures."""
  t0, total = time.time(), len(runs)
  pending, running, failed, finished = [], {}, [], 0
  for run in runs:
    if is_done(run):
      finished += 1
      out(f"[{finished}/{total}] skip {run.name} (finished earlier)")
    else:
      pending.append(run)
  env = dict(os.environ, PYTHONUNBUFFERED="1")

  def status():
    return f"{finished}/{total} done, {len(running)} running, {len(failed)} failed, " \
           f"{_clock(time.time() - t0)}"

  try:
    while pending or running:
      while pending and len(running) < parallel:
        run = pending.pop(0)
        os.makedirs(run.workdir, exist_ok=True)
        log = open(os.path.join(run.workdir, LOG_FILE), "a")
        log.write(f"=== sweep {time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(run.command)}\n")
        log.flush()
        proc = subprocess.Popen(run.command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                env=env)
        running[proc] = (run, time.time(), log)
        out(f"[{status()}] start {run.name}")
      time.sleep(0.2)
      for proc in [p for p in running if p.poll() is not None]:
        run, started, log = running.pop(proc)
        log.close()
        secs = time.time() - started
        if proc.returncode == 0:
          finished += 1
          with open(os.path.join(run.workdir, DONE_FILE), "w") as f:
            json.dump({"fingerprint": run.fingerprint, "command": run.command,
                       "seconds": round(secs, 1)}, f)
          out(f"[{status()}] done  {run.name} in {_clock(secs)}")
        else:
          failed.append((run, proc.returncode))
          log_path = os.path.join(run.workdir, LOG_FILE)
          # 75: ssl_seg.main was stopped by SIGTERM / SIGINT after saving a checkpoint.
          why = " preempted, checkpoint saved" if proc.returncode == preemption.EXIT_CODE else ""
          out(f"[{status()}] FAILED {run.name} (exit {proc.returncode}{why}) after "
              f"{_clock(secs)}; log {log_path}:")
          for line in _tail(log_path):
            out(f"    {line}")
  except KeyboardInterrupt:
    for proc in running:  # Only the processes this sweep started.
      proc.send_signal(signal.SIGTERM)
    for proc, (_, _, log) in running.items():
      proc.wait()
      log.close()
    out("interrupted: rerun the same command to resume (finished runs are skipped)")
    raise
  return failed


def build_parser():
  p = argparse.ArgumentParser(
      prog="python -m launch.sweep", description=__doc__.split("\n")[0],
      epilog="Arguments after -- are passed to every run (e.g. --config.stages.x.epochs=2).")
  p.add_argument("--config", required=True, help="configs/X.py[:args], as for ssl_seg.main")
  p.add_argument("--seeds", default="0", help="e.g. 0,1,2 or 0-4 (sets --config.seed)")
  p.add_argument("--grid", default="", help="'a.b=1,2;:arg=x,y' (config paths or :args)")
  p.add_argument("--root", required=True, help="folder of the run directories")
  p.add_argument("--parallel", type=int, default=1,
                 help="runs at once (locally), or the array's %%limit under --slurm")
  p.add_argument("--dry-run", action="store_true", help="list the runs and commands; no writes")
  p.add_argument("--command", default="",
                 help="program to run instead of '<this python> -m ssl_seg.main'")
  p.add_argument("--slurm", default="", help="write a SLURM array-job script here; run nothing")
  p.add_argument("--slurm-opts", default="", help="extra #SBATCH options, e.g. '--time=2:00:00'")
  p.add_argument("--nodes", type=int, default=1, help="SLURM nodes per run (multi-host)")
  p.add_argument("--ntasks-per-node", type=int, default=1,
                 help="SLURM processes per node (one per GPU for multi-host runs)")
  return p


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  extra = []
  if "--" in argv:
    i = argv.index("--")
    argv, extra = argv[:i], argv[i + 1:]
  args = build_parser().parse_args(argv)
  try:
    if args.parallel < 1 or args.nodes < 1 or args.ntasks_per_node < 1:
      raise SweepError("--parallel, --nodes and --ntasks-per-node must be >= 1")
    grid, seeds = parse_grid(args.grid), parse_seeds(args.seeds)
    runs = expand(args.config, grid, seeds, args.root, extra,
                  shlex.split(args.command) if args.command else None)
  except SweepError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  root = os.path.abspath(args.root)
  print(f"{len(runs)} runs ({len(runs) // len(seeds)} grid points x {len(seeds)} seeds) "
        f"under {root}")
  if args.dry_run:
    for run in runs:
      state = "finished, skip" if is_done(run) else "to run"
      print(f"  [{run.index}] {run.name} ({state})\n      {shlex.join(run.command)}")
    return 0
  meta = dict(config=args.config, seeds=seeds, grid=grid, extra=extra, cwd=os.getcwd())
  manifest = write_files(runs, root, meta)
  print(f"manifest: {manifest}")
  if args.slurm:
    from launch import slurm
    path = slurm.write_script(args.slurm, runs, cwd=os.getcwd(), root=root,
                              opts=shlex.split(args.slurm_opts), nodes=args.nodes,
                              ntasks_per_node=args.ntasks_per_node, parallel=args.parallel)
    print(f"wrote {path}: {len(runs)} array tasks; submit with: sbatch {path}")
    return 0
  try:
    failed = run_local(runs, args.parallel)
  except KeyboardInterrupt:
    return 130
  if failed:
    print(f"{len(failed)} of {len(runs)} runs failed (rerun the same command to retry them):")
    for run, code in failed:
      print(f"  {run.name} (exit {code}): {os.path.join(run.workdir, LOG_FILE)}")
    return 1
  print(f"all {len(runs)} runs finished; next: python -m launch.report {root}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
