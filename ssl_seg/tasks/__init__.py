"""Training objectives. A new objective is one module here plus a config.

Each task module is the single owner of its contract:
  BATCH_KEYS                         the arrays it reads from an example (the data side is told)
  MODEL                              the model family it builds (`model.name` must say the same)
  validate(stage, f)                 raises config_utils.ConfigError for a bad field of stage `f`
                                     ("stages.NAME"); run for every stage before anything trains
  make_task(stage) -> Task           what the generic loop needs:
    build_model(rngs)                  -> nnx module with an `encoder` attribute (the graft key)
    loss_fn(model, batch, key, train)  -> (scalar loss, dict of scalar metrics)   [traced]
    eval_fn(model, batch, key)         -> dict of arrays summed over the data set  [traced]
    summarize(totals)                  -> dict of floats for metrics.jsonl         [host]
    pictures(model, batch, key)        -> uint8 images for PNGs, optional          [traced]
"""

import dataclasses
import importlib
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Task:
  build_model: Callable
  loss_fn: Callable
  eval_fn: Callable
  summarize: Callable
  class_names: tuple = ()
  pictures: Callable | None = None


TASKS = {
    "mim": "ssl_seg.tasks.simmim",
    "classify": "ssl_seg.tasks.classify",
    "segment": "ssl_seg.tasks.segment",
    "denoise": "ssl_seg.tasks.denoise",
    "curve_segment": "ssl_seg.tasks.curve_segment",
}


def module(task):
  """The module of task name `task`; ValueError naming the known tasks."""
  if task not in TASKS:
    raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
  return importlib.import_module(TASKS[task])


def make_task(stage) -> Task:
  return module(stage.task).make_task(stage)


def batch_keys(task):
  """The arrays task `task` reads from each example, e.g. ("image", "seg")."""
  return module(task).BATCH_KEYS
