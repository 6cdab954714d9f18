"""Smoke tests of the benchmark scripts: one real step of a tiny model, the JSON row contract of
INTERFACES.md, and torch_reference's message when the optional torch extra is missing."""

import importlib.util
import json
import math
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
  """benchmarks/NAME.py as a module (benchmarks/ is scripts, not a package)."""
  spec = importlib.util.spec_from_file_location(f"benchmarks.{name}",
                                                os.path.join(ROOT, "benchmarks", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def step_time():
  return _load("step_time")


def test_step_time_row_has_the_contract_keys(step_time, capsys):
  row = step_time.benchmark("simmim", "tiny", "bfloat16", 2, steps=2, warmup=1, peak="none")
  for key in ("task", "batch", "dtype", "ms_per_step", "items_per_s", "mfu", "compile_s",
              "device"):
    assert key in row, key
  assert (row["task"], row["batch"], row["dtype"]) == ("simmim", 2, "bfloat16")
  assert row["ms_per_step"] > 0 and row["compile_s"] > 0
  assert row["flops_per_step"] > 0 and math.isfinite(row["loss"])
  assert row["mfu"] is None and row["peak_source"] == "unknown"  # CPU, --peak=none.
  json.dumps(row)  # Flat and serialisable.
  step_time.print_table([row])
  assert "simmim" in capsys.readouterr().out


def test_step_time_rejects_a_size_the_model_lacks(step_time):
  with pytest.raises(ValueError, match="sizes"):
    step_time.benchmark("denoise", "paper", "float32", 1)


def test_loop_overhead_row_times_both_arms_of_a_tiny_stage(capsys):
  from configs import welllog_demo
  loop_overhead = _load("loop_overhead")
  config = welllog_demo.get_config("variant=tiny,scale=0.05,batch=2,crop=64")
  row = loop_overhead.measure(config, "synthetic", rounds=1, block=3, drop=1)
  assert (row["stage"], row["task"], row["batch"]) == ("synthetic", "curve_segment", 2)
  assert row["image_shape"] == [128, 64, 1] and row["timed_steps_per_arm"] == 2
  assert row["loop_over_bare"] == pytest.approx(row["bare_ms_per_step"] / row["loop_ms_per_step"])
  assert row["host_ms_per_batch"] > 0
  json.dumps(row)
  loop_overhead.print_table([row])
  assert "synthetic" in capsys.readouterr().out


def test_torch_reference_without_torch_says_how_to_install(monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError.
  monkeypatch.syspath_prepend(ROOT)
  torch_reference = _load("torch_reference")
  with pytest.raises(SystemExit) as exit_info:
    torch_reference.main([])
  assert exit_info.value.code == 2
  assert "uv sync --extra torch" in capsys.readouterr().err
