"""tensorflow-datasets is an optional extra (issue 19): ssl_seg imports and trains without it,
and the one route that needs it (a prepared TFDS Pet directory) says what to install."""

import os
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK_TFDS = "import sys; sys.modules['tensorflow_datasets'] = None; "


def _python(code, *args):
  return subprocess.run([sys.executable, "-c", BLOCK_TFDS + code, *args], cwd=ROOT,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True,
                        text=True, timeout=300)


def test_tfds_is_an_extra_not_a_core_dependency():
  project = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))["project"]
  assert not [d for d in project["dependencies"] if d.startswith("tensorflow-datasets")]
  assert project["optional-dependencies"]["tfds"] == ["tensorflow-datasets>=4.9.9"]


def test_console_scripts_name_real_functions():
  import importlib
  scripts = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))["project"]["scripts"]
  assert set(scripts) == {"ssl-seg-train", "ssl-seg-export", "ssl-seg-predict",
                          "ssl-seg-evaluate"}
  for target in scripts.values():
    module, _, name = target.partition(":")
    assert callable(getattr(importlib.import_module(module), name)), target


def test_ssl_seg_imports_without_tfds_and_never_imports_it():
  proc = _python(
      "import ssl_seg, ssl_seg.main, ssl_seg.train, ssl_seg.export, ssl_seg.data.sources, "
      "ssl_seg.data.natural, configs.vit_paper, configs.vit_tiny_files; "
      "assert ssl_seg.load_encoder; "
      "assert sys.modules['tensorflow_datasets'] is None; print('ok')")
  assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_prepared_tfds_pet_without_tfds_is_one_line_naming_the_extra(tmp_path):
  pet = tmp_path / "pet"
  (pet / "oxford_iiit_pet").mkdir(parents=True)  # What a `tfds build` data dir looks like.
  argv = ["ssl_seg.main", f"--workdir={tmp_path / 'run'}", "--stages=segment_via_classify",
          f"--config=configs/vit_tiny_files.py:pet={pet}"]
  proc = _python(f"import runpy; sys.argv = {argv!r}; "
                 "runpy.run_module('ssl_seg.main', run_name='__main__')")
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert len(lines) == 1 and "Traceback" not in proc.stderr, lines
  assert lines[0].startswith(f"error: stage 'segment_via_classify': {pet} is a prepared TFDS "
                             "directory, which needs tensorflow-datasets")
  assert "install ssl_seg[tfds]" in lines[0]


def test_other_import_errors_inside_tfds_are_not_hidden(monkeypatch):
  # Only a missing tensorflow_datasets becomes the install hint; a broken module stays itself.
  from ml_collections import ConfigDict

  import ssl_seg.data
  from ssl_seg.data import natural
  monkeypatch.setitem(sys.modules, "ssl_seg.data.tfds_sources", None)
  # An earlier test may have imported it: `from ssl_seg.data import tfds_sources` would then
  # take the package attribute without looking at sys.modules.
  monkeypatch.delattr(ssl_seg.data, "tfds_sources", raising=False)
  root = os.path.join(ROOT, "tests")  # Any directory; the route is chosen by its layout.
  monkeypatch.setattr(natural.os.path, "isdir",
                      lambda p: p.endswith("oxford_iiit_pet") or p == root)
  with pytest.raises(ModuleNotFoundError):
    natural._pet_pool(ConfigDict(dict(dir=root, size=32)))
