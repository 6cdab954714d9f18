"""render_las on the shipped samples: its docstring's file, default curves, truth units."""

import os

import lasio
import numpy as np

from ssl_seg import render_las
from ssl_seg.digitizer import render

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "ssl_seg", "data", "las_samples")


def test_docstring_example_names_a_shipped_file():
  example = render_las.__doc__.split("--las=")[1].split()[0]
  assert os.path.isfile(os.path.join(ROOT, example)), example


def test_default_curves_render_both_samples_and_truth_keeps_the_source_units(tmp_path):
  paths = [os.path.join(SAMPLES, n) for n in ("totem9_gr_dtmn.las", "scorpio_e1_6038187.las")]
  assert [render.default_curves(p) for p in paths] == [["GR", "DTMN"], ["GAMN", "DNEAR"]]
  names = render.render_set(paths, None, 2, str(tmp_path), height=48, min_width=64,
                            max_width=96)
  totem, scorpio = (lasio.read(tmp_path / "las" / f"{n}.las") for n in names)
  # Totem 9's depth is in feet: the sidecar says so, not the writer's default metres.
  assert totem.curves["DEPT"].unit == "ft" and totem.well["STRT"].unit == "ft"
  assert totem.curves["CURVE1"].unit == "gAPI" and "GR of totem9" in totem.curves["CURVE1"].descr
  assert scorpio.curves["DEPT"].unit == "M" and scorpio.curves["CURVE2"].unit == "G/CM3"
  for name in names:
    truth = render.read_truth(tmp_path / "las" / f"{name}.las")
    assert set(truth.values) == {1, 2} and np.isfinite(truth.values[1]).any()
