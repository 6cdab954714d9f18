"""The one LAS writer: fields, units, NULL, ~Other, atomic write; depth resampling."""

import glob
import os

import lasio
import numpy as np
import pytest

from ssl_seg.digitizer import las


def test_write_reads_back_with_units_descriptions_params_and_other(tmp_path):
  depth = np.array([1000.0, 1000.5, 1001.0])
  las.write(tmp_path / "a.las", depth, {"GR": [10.0, np.nan, 30.0], "GR_CONF": [1, 0.5, 1]},
            depth_unit="FT", well="W 1", units={"GR": "GAPI"},
            descriptions={"GR": "Gamma ray"}, params={"C1TOP": 3}, other="made\nby a test")
  got = lasio.read(tmp_path / "a.las")
  assert got.well["WELL"].value == "W 1" and got.well["NULL"].value == las.LAS_MISSING
  assert (got.well["STRT"].value, got.well["STOP"].value, got.well["STEP"].value) == (
      1000.0, 1001.0, 0.5)
  assert got.well["STRT"].unit == "FT" and got.curves["GR"].unit == "GAPI"
  assert got.curves["GR"].descr == "Gamma ray" and got.params["C1TOP"].value == 3
  assert got.other == "made\nby a test"
  np.testing.assert_array_equal(got["GR"], [10.0, np.nan, 30.0])
  assert not os.path.exists(tmp_path / "a.las.tmp")


def test_one_null_value_and_one_writer_in_the_package():
  """NULL is written down once (las.LAS_MISSING) and a LAS file is made only by las.write."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(las.__file__)))
  sources = {p: open(p).read() for p in glob.glob(os.path.join(root, "**", "*.py"),
                                                  recursive=True)}
  assert [p for p, s in sources.items() if "999.25" in s] == [las.__file__]
  assert [p for p, s in sources.items() if "lasio.LASFile(" in s] == [las.__file__]


def test_bad_names_and_units_are_refused_before_writing(tmp_path):
  with pytest.raises(ValueError, match="LAS mnemonic 'GR.1'"):
    las.write(tmp_path / "b.las", [1.0, 2.0], {"GR.1": [1.0, 2.0]})
  with pytest.raises(ValueError, match="LAS unit 'G CM3'"):
    las.write(tmp_path / "b.las", [1.0, 2.0], {"RHOB": [1.0, 2.0]}, units={"RHOB": "G CM3"})
  assert not os.listdir(tmp_path)


def test_regular_depth_and_resample():
  np.testing.assert_allclose(las.regular_depth(10.0, 11.0, 0.25), [10, 10.25, 10.5, 10.75, 11])
  np.testing.assert_allclose(las.regular_depth(11.0, 10.0, 0.4), [11, 10.6, 10.2])
  with pytest.raises(ValueError, match="--step must be > 0"):
    las.regular_depth(0.0, 1.0, 0)
  depth = np.array([0.0, 1.0, 2.0, 3.0])
  values = np.array([0.0, 10.0, np.nan, 30.0])
  np.testing.assert_allclose(las.resample(depth, values, [0.5, 1.0, 1.5, 3.0, 3.5]),
                             [5.0, 10.0, np.nan, 30.0, np.nan])
  # Decreasing depth gives the same values.
  np.testing.assert_allclose(las.resample(depth[::-1], values[::-1], [0.5, 1.0]), [5.0, 10.0])


def test_header_reads_units_of_the_shipped_samples():
  root = os.path.join(os.path.dirname(__file__), "..", "ssl_seg", "data", "las_samples")
  unit, curves = las.header(os.path.join(root, "totem9_gr_dtmn.las"))
  assert unit == "ft" and curves == [("GR", "gAPI"), ("DTMN", "usec/f")]
  assert las.header(os.path.join(root, "scorpio_e1_6038187.las"))[0] == "M"
