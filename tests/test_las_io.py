"""The one LAS module: reading (nulls, clipping, errors, track scales), the writer (fields,
units, NULL, ~Other, atomic write), depth resampling."""

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
  assert [p for p, s in sources.items() if str(las.LAS_MISSING) in s] == [las.__file__]
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


def write_curves(tmp_path, name="a.las", n=300, null=las.LAS_MISSING, **curves):
  """A LAS file of `curves` on a 0.5 step from depth 1000: (path, depth)."""
  depth = 1000.0 + 0.5 * np.arange(n)
  path = tmp_path / name
  las.write(path, depth, curves, null=null)
  return path, depth


def test_las_null_values_become_nan(tmp_path):
  gr = np.linspace(10.0, 100.0, 20)
  gr[[3, 7, 11]] = [-9999.0, las.LAS_MISSING, np.nan]
  path, depth = write_curves(tmp_path, n=20, null=-9999.0, GR=gr, RHOB=np.full(20, 2.3))
  d, values = las.read_las_curves(path, ("GR", "RHOB"), clip_percentiles=None)
  np.testing.assert_allclose(d, depth)
  assert values.shape == (2, 20)
  assert np.isnan(values[0, [3, 7, 11]]).all()
  ok = np.isfinite(values[0])
  assert ok.sum() == 17
  np.testing.assert_allclose(values[0, ok], gr[ok], rtol=1e-5)


def test_las_spikes_are_clipped(tmp_path):
  gr = np.random.default_rng(0).uniform(20.0, 120.0, 300)
  gr[50], gr[200] = 5000.0, -3000.0
  path, _ = write_curves(tmp_path, GR=gr)
  _, (clipped,) = las.read_las_curves(path, ("GR",))
  assert 100 < clipped.max() <= 120 and 20 <= clipped.min() < 40
  assert clipped[50] == clipped.max() and clipped[200] == clipped.min()
  _, (raw,) = las.read_las_curves(path, ("GR",), clip_percentiles=None)
  assert raw[50] == 5000.0


def test_las_missing_curve_names_it_and_lists_available(tmp_path):
  path, _ = write_curves(tmp_path, n=10, GR=np.ones(10), DT=np.ones(10))
  with pytest.raises(ValueError, match="RHOB") as e:
    las.read_las_curves(path, ("GR", "RHOB"))
  assert "GR" in str(e.value) and "DT" in str(e.value)


def test_las_all_null_curve_is_an_error(tmp_path):
  path, _ = write_curves(tmp_path, n=10, GR=np.ones(10), RHOB=np.full(10, np.nan))
  with pytest.raises(ValueError, match="RHOB.*all null"):
    las.read_las_curves(path, ("GR", "RHOB"))


def test_unreadable_las_names_the_path(tmp_path):
  bad = tmp_path / "corrupt.las"
  bad.write_bytes(b"\x00\x01 not a LAS file\n~~~\n")
  with pytest.raises(ValueError, match="corrupt.las"):
    las.read_las_curves(bad, ("GR",))
  with pytest.raises(FileNotFoundError, match="nowhere.las"):
    las.read_las_curves(tmp_path / "nowhere.las", ("GR",))


def test_las_to_track_scales():
  np.testing.assert_allclose(las.las_to_track([0, 75, 150, 300], left=0, right=150),
                             [0, 0.5, 1, 2])
  np.testing.assert_allclose(las.las_to_track([0.45, -0.15], left=0.45, right=-0.15), [0, 1])
  logv = las.las_to_track([0.2, 2.0, 2000.0, 0.0], left=0.2, right=2000.0, log=True)
  np.testing.assert_allclose(logv[:3], [0, 0.25, 1])
  assert np.isnan(logv[3])
  with pytest.raises(ValueError):
    las.las_to_track([1.0], left=0.0, right=10.0, log=True)
