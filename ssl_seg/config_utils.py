"""Config checks and the resolved-config dump: bad values fail before any work starts."""

import json
import os
import time

from absl import flags
from ml_collections import config_flags

from ssl_seg import optim, tasks

NONFINITE_POLICIES = ("stop", "skip")
MIN_LOG_WIDTH = 32  # CurveNet's stride: narrower logs have no bottleneck column.


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


def _need(cond, field, msg):
  if not cond:
    raise ConfigError(f"config.{field}: {msg}")


def validate(config):
  """Raises ConfigError naming the first bad field."""
  _need(len(config.stage_order) > 0, "stage_order", "at least one stage is needed")
  seen = []
  for name in config.stage_order:
    _need(name in config.stages, "stage_order", f"stage {name!r} is not defined in "
          f"config.stages (defined: {sorted(config.stages)})")
    st, f = config.stages[name], f"stages.{name}"
    _need(st.task in tasks.TASKS, f"{f}.task", f"unknown task {st.task!r}; choose one of "
          f"{sorted(tasks.TASKS)}")
    _need(st.epochs >= 1, f"{f}.epochs", f"must be >= 1, got {st.epochs}")
    _need(st.batch_size >= 1, f"{f}.batch_size", f"must be >= 1, got {st.batch_size}")
    _need(st.eval_batch_size >= 1, f"{f}.eval_batch_size", f"must be >= 1, got "
          f"{st.eval_batch_size}")
    _need(st.optim.lr > 0, f"{f}.optim.lr", f"must be > 0, got {st.optim.lr}")
    _need(st.optim.schedule in ("constant", "multistep", "cosine"), f"{f}.optim.schedule",
          f"must be constant, multistep or cosine, got {st.optim.schedule!r}")
    _need(st.on_nonfinite in NONFINITE_POLICIES, f"{f}.on_nonfinite",
          f"must be one of {NONFINITE_POLICIES}, got {st.on_nonfinite!r}")
    _need(st.log_every_steps >= 1, f"{f}.log_every_steps", "must be >= 1")
    _need(st.checkpoint.every_epochs >= 1, f"{f}.checkpoint.every_epochs", "must be >= 1")
    _need(st.checkpoint.keep >= 1, f"{f}.checkpoint.keep", "must be >= 1")
    _need(st.eval.every_epochs >= 1, f"{f}.eval.every_epochs", "must be >= 1")
    _need(st.encoder.frozen_epochs >= 0, f"{f}.encoder.frozen_epochs", "must be >= 0")
    _validate_data(st.data, f"{f}.data")
    if "weight_correction" in st:
      _need(0.0 <= st.weight_correction <= 1.0, f"{f}.weight_correction",
            f"must be in [0, 1] (share of the class weights' bias removed), got "
            f"{st.weight_correction}")
    try:
      optim.parse_policy(st.encoder.policy)
    except ValueError as e:
      raise ConfigError(f"config.{f}.encoder.policy: {e}") from None
    init = st.init_from.stage
    if init and os.sep not in init:
      _need(init in seen, f"{f}.init_from.stage", f"{init!r} is not an earlier stage "
            f"(earlier: {seen}); give a stage name that runs before {name!r} or a path")
    seen.append(name)


def _validate_data(data, f):
  """Empty splits and label subsets, and well logs narrower than CurveNet's stride."""
  for split in ("num_train", "num_eval"):
    if split in data:
      _need(data[split] != 0, f"{f}.{split}", "must be -1 (all) or >= 1, got 0 (an empty "
            "data set cannot train or evaluate)")
  if "num_labels" in data:
    _need(data.num_labels == -1 or data.num_labels >= 1, f"{f}.num_labels",
          f"must be -1 (all examples) or >= 1, got {data.num_labels} (an empty label subset)")
  if "las_curves" in data:
    _need(len(data.las_curves) == 2 and all(isinstance(c, str) and c for c in data.las_curves),
          f"{f}.las_curves", f"must name two LAS curves (curve1, curve2), e.g. GR,RHOB; got "
          f"{tuple(data.las_curves)}")
  if data.get("crop_width", 0):
    _need(data.crop_width % MIN_LOG_WIDTH == 0 and data.crop_width > 0, f"{f}.crop_width",
          f"must be 0 (whole logs) or a positive multiple of {MIN_LOG_WIDTH} px (the "
          f"network's stride), got {data.crop_width}")
  if "las_fraction" in data:
    _need(0.0 <= data.las_fraction <= 1.0, f"{f}.las_fraction",
          f"must be a share in [0, 1], got {data.las_fraction}")
  if "min_width" in data:
    _need(data.min_width >= MIN_LOG_WIDTH, f"{f}.min_width", f"must be >= {MIN_LOG_WIDTH} px "
          f"(the network's stride), got {data.min_width}")


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
