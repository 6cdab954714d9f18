"""Training objectives. A new objective is one module here with `make_task(stage)` plus a config.

A Task bundles what the generic loop needs:
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
  name: str
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


def make_task(stage) -> Task:
  if stage.task not in TASKS:
    raise ValueError(f"unknown task {stage.task!r}; choose one of {sorted(TASKS)}")
  return importlib.import_module(TASKS[stage.task]).make_task(stage)
