"""Config checks and the resolved-config dump: bad values fail before any work starts."""

import difflib
import importlib.util
import json
import os
import sys
import time

import ml_collections
from absl import flags
from ml_collections import config_flags

NONFINITE_POLICIES = ("stop", "skip")
USAGE_EXIT_CODE = 2  # A bad flag or config value (README "When things go wrong").
# Tuple fields of numbers: an override that absl could not read as a tuple arrives as a string.
NUMERIC_TUPLES = ("optim.decay_epochs", "model.widths", "model.logit_strides", "augment.scale")
# Stage fields a resumed or repeated run may change: they change nothing it learns.
RERUN_SAFE = ("data.workers", "checkpoint.keep", "checkpoint.every_steps", "log_every_steps")


class ConfigError(ValueError):
  """A config value is invalid; the message names the field and what is allowed."""


def load_config(config_arg, overrides=()):
  """The locked ConfigDict `ssl_seg.main` builds from --config=config_arg and --config.x=v
  overrides, parsed by the same absl flag (unknown fields and wrong types fail here)."""
  argv = ["main", f"--config={config_arg}", *overrides]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                  flag_values=values, lock_config=True, sys_argv=argv)
  values(argv)
  return values.config


def parse_flags(argv):
  """`app.run`'s flags_parser for the commands: a bad flag, config file or override prints one
  `error:` line and exits 2. absl's own parser prints a traceback for what config_flags does
  not wrap (an unknown field, a config file that does not compile) and exits 1."""
  try:
    for a in argv[1:]:
      if a.startswith("--config="):
        path = a.split("=", 1)[1].split(":", 1)[0]
        if not os.path.isfile(path):  # config_flags would defer this to the first read.
          raise ConfigError(f"--config: config file {path} not found")
    return flags.FLAGS(argv)
  except Exception as e:  # A config file can raise anything while it loads.
    if os.environ.get("SSL_SEG_DEBUG"):
      raise
    print(f"error: {flag_error(e, argv)}", file=sys.stderr)
    sys.exit(USAGE_EXIT_CODE)


def _last_line(e):
  text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)  # No repr quotes.
  lines = [s.strip() for s in text.strip().splitlines() if s.strip()]
  return lines[-1] if lines else type(e).__name__


def flag_error(e, argv):
  """One line for an exception raised while parsing `argv`, naming the flag or field."""
  if isinstance(e, ConfigError):
    return str(e)
  if isinstance(e, SyntaxError):
    return f"config file {e.filename}, line {e.lineno}: {e.msg}; fix the file"
  if isinstance(e, (AttributeError, KeyError)):  # An override of a field that does not exist.
    try:
      return _unknown_field(argv) or _last_line(e)
    except Exception:  # noqa: BLE001 - the config file itself fails: its own error says more.
      return _last_line(e)
  inner = e  # config_flags wraps get_config's error twice; the first one says what is wrong.
  while inner.__cause__ or (inner.__context__ and not inner.__suppress_context__):
    inner = inner.__cause__ or inner.__context__
  reason = _last_line(inner)
  if isinstance(e, flags.IllegalFlagValueError) and str(e).startswith("flags "):
    # A multi-flag validator's own message names the flags; absl prefixes every value.
    return reason.split(": ", 1)[-1]
  if isinstance(e, flags.Error) and not str(e).startswith("flag --"):
    return reason  # absl's own, e.g. "Unknown command line flag 'x'".
  if not isinstance(inner, ValueError):
    reason = f"{type(inner).__name__}: {reason}"
  if str(e).startswith("flag --"):
    return f"{str(e).split(': ', 1)[0]}: {reason}"
  config_arg = next((a for a in argv if a.startswith("--config=")), "the config file")
  return f"{config_arg}: {reason}"


def _unknown_field(argv):
  """'--config.a.b=1: config.a has no field 'b' ...' for the first override naming no field."""
  config_arg = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if config_arg is None:
    return None
  path, _, arg = config_arg.partition(":")
  spec = importlib.util.spec_from_file_location("_config_for_error", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  node = module.get_config(arg) if arg else module.get_config()
  for a in argv:
    if not a.startswith("--config."):
      continue
    key, done, n = a[len("--config."):].split("=", 1)[0], "config", node
    for part in key.split("."):
      fields = list(n.keys()) if hasattr(n, "keys") else []
      if part not in fields:
        close = difflib.get_close_matches(part, fields, n=1)
        if close:
          hint = f"did you mean {close[0]!r}?"
        else:
          hint = f"fields: {', '.join(fields)}" if fields else f"it is a {type(n).__name__}"
        return f"{a}: {done} has no field {part!r} ({hint})"
      n, done = n[part], f"{done}.{part}"
  return None


def check_stages(config, only):
  """--stages names stages of the config (a typo would silently run nothing, or less)."""
  unknown = [s for s in only or () if s not in config.stage_order]
  if unknown:
    raise ConfigError(f"--stages: unknown stage(s) {', '.join(map(repr, unknown))}; choose "
                      f"from {', '.join(config.stage_order)}")


def need(cond, field, msg):
  """Raises ConfigError 'config.FIELD: MSG' unless cond (task modules check their fields so)."""
  if not cond:
    raise ConfigError(f"config.{field}: {msg}")


def validate(config):
  """Raises ConfigError naming the first bad field, checking every stage before any runs."""
  need(len(config.stage_order) > 0, "stage_order", "at least one stage is needed")
  for i, name in enumerate(config.stage_order):
    need(name in config.stages, "stage_order", f"stage {name!r} is not defined in "
         f"config.stages (defined: {sorted(config.stages)})")
    _validate_stage(config.stages[name], f"stages.{name}")
    init = config.stages[name].init_from.stage
    if init and os.sep not in init:
      seen = list(config.stage_order[:i])
      need(init in seen, f"stages.{name}.init_from.stage", f"{init!r} is not an earlier stage "
           f"(earlier: {seen}); give a stage name that runs before {name!r} or a path")


def _validate_stage(st, f):
  """The fields of stage `f` ('stages.NAME'): the loop's, then its data's, model's and task's
  (each checked by the module that owns them)."""
  from ssl_seg import models, optim, tasks  # JAX: render_las, which needs none, imports us.
  from ssl_seg.data import sources
  need(st.task in tasks.TASKS, f"{f}.task", f"unknown task {st.task!r}; choose one of "
       f"{sorted(tasks.TASKS)}")
  need(st.epochs >= 0, f"{f}.epochs", f"must be >= 0 (0: evaluate init_from only), got "
       f"{st.epochs}")
  need(st.epochs or st.init_from.stage, f"{f}.epochs", "0 evaluates a checkpoint without "
       f"training: set --config.{f}.init_from.stage to the stage name or stage directory to "
       "evaluate")
  need(st.batch_size >= 1, f"{f}.batch_size", f"must be >= 1, got {st.batch_size}")
  need(st.eval_batch_size >= 1, f"{f}.eval_batch_size", f"must be >= 1, got "
       f"{st.eval_batch_size}")
  need(st.optim.lr > 0, f"{f}.optim.lr", f"must be > 0, got {st.optim.lr}")
  need(st.optim.schedule in ("constant", "multistep", "cosine"), f"{f}.optim.schedule",
       f"must be constant, multistep or cosine, got {st.optim.schedule!r}")
  need(st.on_nonfinite in NONFINITE_POLICIES, f"{f}.on_nonfinite",
       f"must be one of {NONFINITE_POLICIES}, got {st.on_nonfinite!r}")
  need(st.log_every_steps >= 1, f"{f}.log_every_steps", "must be >= 1")
  need(st.checkpoint.every_epochs >= 1, f"{f}.checkpoint.every_epochs", "must be >= 1")
  need(st.checkpoint.keep >= 1, f"{f}.checkpoint.keep", "must be >= 1")
  need(st.eval.every_epochs >= 1, f"{f}.eval.every_epochs", "must be >= 1")
  need(st.encoder.frozen_epochs >= 0, f"{f}.encoder.frozen_epochs", "must be >= 0")
  decay = st.optim.get("layer_decay", 1.0)
  need(0 < decay <= 1, f"{f}.optim.layer_decay", f"must be in (0, 1] (1 = off), got {decay}")
  need(decay == 1 or st.model.get("name") == "vit", f"{f}.optim.layer_decay", "layer decay "
       f"is for ViT encoders; this stage's model is {st.model.get('name')!r}: set it to 1")
  sources.validate(st.data, f"{f}.data")
  task = tasks.module(st.task)
  need(st.model.get("name") == task.MODEL, f"{f}.model.name", f"task {st.task!r} builds a "
       f"{task.MODEL!r} model, got {st.model.get('name')!r}; choose {task.MODEL!r}")
  size = models.validate(st.model, f"{f}.model")
  if task.MODEL == "vit" and "size" in st.data:
    need(st.data.size == size.img_size, f"{f}.data.size", f"{st.data.size} px images for a "
         f"ViT of model.img_size {size.img_size}; set both to the same size")
  for path in NUMERIC_TUPLES:
    parent, _, leaf = path.rpartition(".")
    if parent in st and st[parent].get(leaf) is not None:  # None: the variant's sizes.
      v = tuple(st[parent][leaf])
      need(all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v),
           f"{f}.{path}", f"must be numbers, got {v}; give a tuple as "
           f"--config.{f}.{path}='(30, 60)' or repeat the flag once per number")
  try:
    optim.parse_policy(st.encoder.policy)
  except ValueError as e:
    raise ConfigError(f"config.{f}.encoder.policy: {e}") from None
  task.validate(st, f)


def flat(d, prefix=""):
  """{'a.b': leaf} of a nested dict."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flat(v, f"{prefix}{k}."))
    else:
      out[prefix + k] = v
  return out


def config_changes(saved, current):
  """['optim.lr: 0.001 -> 0.002', ...] from a stage config a checkpoint was trained with to
  `current`. Only fields both have count (one added or removed by a code change since is not
  a change of the run), and not those that change nothing learned (RERUN_SAFE)."""
  a, b = (flat(_sizes_filled(json.loads(json.dumps(c)))) for c in (saved, current))
  return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in sorted(a.keys() & b.keys())
          if a[k] != b[k] and k not in RERUN_SAFE]


def _sizes_filled(stage):
  """A stage dict (tuples as lists) whose model size fields left None are the variant's: a
  config that names `tiny` and one that copied tiny's sizes (ViT before issue 19, CurveNet
  before issue 18) are the same."""
  model = stage.get("model") or {}
  if not any(v is None for v in model.values()):
    return stage
  from ssl_seg import models
  try:
    size, _ = models.resolve_size(ml_collections.ConfigDict(model))
  except (ValueError, AttributeError):
    return stage  # validate() reports it.
  filled = {k: v if v is not None or not hasattr(size, k) else json.loads(json.dumps(
      getattr(size, k))) for k, v in model.items()}
  return {**stage, "model": filled}


def write_resolved(config, workdir):
  """WORKDIR/config.json: the config after CLI overrides, as the run used it.

  A re-run with a different config keeps the earlier file as config.prev-TIME.json (TIME its
  modification time) rather than overwriting it: if the new config then fails to fit the
  checkpoints, the config they were trained with is still there. Returns (path, kept path or
  None).
  """
  path = os.path.join(workdir, "config.json")
  text = json.dumps(json.loads(config.to_json_best_effort()), indent=2, sort_keys=True)
  kept = None
  if os.path.exists(path):
    with open(path) as f:
      if f.read() == text:
        return path, None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(os.path.getmtime(path)))
    kept = os.path.join(workdir, f"config.prev-{stamp}.json")
    os.replace(path, kept)
  with open(path, "w") as f:
    f.write(text)
  return path, kept
