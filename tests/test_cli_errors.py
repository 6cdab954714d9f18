"""Bad input through the real command lines: one `error:` line, the documented exit code, no
traceback, nothing good overwritten (issue 20).

Every command runs as a subprocess (absl flag parsing included) on checkpoints written here
from shapes alone (no training), and the runs go out together in one module fixture, so the
file costs about as many seconds as the processes' start-up does on two cores.
"""

import concurrent.futures
import os
import re
import struct
import subprocess
import sys
import zlib

import jax
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from configs import welllog_demo
from ssl_seg import checkpoint, config_utils, state as state_lib, tasks
from ssl_seg.digitizer import digitize, las, options, segmenter, shortcuts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "configs/vit_tiny_synthetic.py:intermediate=false"
TINY = [f"--config.stages.{s}.{k}={v}" for s in ("pretrain", "segment")
        for k, v in (("data.num_train", 4), ("data.num_eval", 4), ("batch_size", 4),
                     ("eval_batch_size", 4), ("epochs", 1))]
PREDICT = ["-m", "ssl_seg.predict", "--window=64", "--overlap=16"]


def _save(stage_dir, stage, step, meta, rng):
  """A checkpoint of `stage` at `step` as training writes it, params random (no init compile)."""
  task = tasks.make_task(stage)
  _, params, rest = state_lib.split_model(
      nnx.eval_shape(lambda: task.build_model(nnx.Rngs(params=0))))
  params = jax.tree.map(lambda s: rng.normal(0, 0.5, s.shape).astype(s.dtype), params)
  rest = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), rest)
  state = {"params": params, "rest": rest, "opt": {}, "step": np.int32(step),
           "bad_step": np.int32(-1), "skipped": np.int32(0)}
  mngr = checkpoint.manager(stage_dir)
  checkpoint.save(mngr, state, {"stage": os.path.basename(stage_dir), "config": stage.to_dict(),
                                **meta})
  mngr.close()
  return os.path.join(stage_dir, "checkpoints", str(step))


def _bomb_png(path):
  """476 bytes in the issue, 74 here: an IHDR claiming 100000 x 100000 px, one small IDAT."""
  def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
  header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
  with open(path, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  """Workdirs, checkpoints, scans and LAS files for every case below."""
  root = tmp_path_factory.mktemp("cli")
  rng = np.random.default_rng(0)
  vit = config_utils.load_config(CONFIG, TINY)
  done = {"epoch": 1, "step": 1, "final_eval": {"loss": 1.0}}
  # A finished pretrain stage; and one that stopped early, whose newest step is garbage.
  _save(str(root / "finished" / "pretrain"), vit.stages.pretrain, 1, done, rng)
  _save(str(root / "partial" / "pretrain"), vit.stages.pretrain, 1, {"epoch": 0}, rng)
  bad = _save(str(root / "partial" / "pretrain"), vit.stages.pretrain, 2, done, rng)
  (root / bad / "params" / "_METADATA").write_bytes(bytes(range(256)))
  # A curve segmenter whose newest step lost its data files' tails (a copy cut short).
  curve = welllog_demo.get_config("variant=tiny,scale=0.05").stages.finetune_cold
  curve.data.height = 32
  _save(str(root / "seg" / "finetune"), curve, 1, {}, rng)
  cut = _save(str(root / "seg" / "finetune"), curve, 2, {}, rng)
  for d, _, files in os.walk(os.path.join(cut, "params")):
    for f in files:
      if os.path.basename(d) == "d":
        os.truncate(os.path.join(d, f), 10)
  no_meta = _save(str(root / "nometa" / "finetune"), curve, 1, {}, rng)
  os.rename(os.path.join(no_meta, "meta"), os.path.join(no_meta, "meta.gone"))
  scans = root / "scans"
  scans.mkdir()
  page = (rng.random((32, 96)) * 255).astype(np.uint8)
  for name in ("a.png", "a.tif", "old_mask.png"):
    Image.fromarray(page).save(scans / name)
  Image.fromarray(np.tile(page, (1, 2))).save(scans / "a_png.png")  # Wider: its own outputs.
  _bomb_png(scans / "bomb.png")
  (root / "masks").mkdir()
  Image.fromarray(np.zeros((32, 192), np.uint8)).save(root / "masks" / "a_png_mask.png")
  (root / "broken.py").write_text("def get_config(:\n")
  (root / "a_file").write_text("not a folder")
  depth = np.linspace(1000.0, 1100.0, 200)
  depth[50] = depth[49]
  las.write(root / "repeat.las", depth, {"GR": np.linspace(10, 150, 200),
                                         "RHOB": np.linspace(2.0, 3.0, 200)})
  return root


def _cases(root):
  """name: (argv after the interpreter, exit code, pattern of the one error line or None)."""
  main = ["-m", "ssl_seg.main", f"--config={CONFIG}", *TINY]
  wd = lambda name: f"--workdir={root / name}"  # noqa: E731
  seg = [*PREDICT, f"--checkpoint={root / 'seg' / 'finetune'}"]
  evaluate = ["-m", "ssl_seg.evaluate", "--window=64", "--overlap=16",
              f"--checkpoint={root / 'seg' / 'finetune'}",
              f"--images={root / 'scans' / 'a_png.png'}",
              f"--masks={root / 'masks'}"]
  las_file = ["-m", "ssl_seg.render_las", "--las=ssl_seg/data/las_samples/totem9_gr_dtmn.las",
              "--curves=GR,DTMN", "--n=1", f"--out={root / 'rendered'}"]
  return {
      "unknown_field": ([*main, wd("x"), "--config.stages.segment.epoch=3"], 2,
                        r"^error: --config.stages.segment.epoch=3: config.stages.segment has no "
                        r"field 'epoch' \(did you mean 'epochs'\?\)$"),
      "config_syntax": (["-m", "ssl_seg.main", f"--config={root / 'broken.py'}", wd("x")], 2,
                        r"config file .*broken.py, line 1: invalid syntax; fix the file$"),
      "config_arg_typo": (["-m", "ssl_seg.main", "--config=configs/vit_tiny_synthetic.py:"
                           "labelz=3", wd("x")], 2, r"unknown config argument 'labelz'; known: "),
      "config_arg_value": (["-m", "ssl_seg.main", "--config=configs/vit_tiny_synthetic.py:"
                            "labels=abc", wd("x")], 2,
                           r"config argument 'labels=abc': expected an integer, like labels=128"),
      "stages_typo": ([*main, wd("x"), "--stages=pretrain,segmnet"], 2,
                      r"^error: --stages: unknown stage\(s\) 'segmnet'; choose from pretrain, "
                      r"segment, segment_scratch$"),
      # A task's own field in a later stage: refused before the first stage trains.
      "later_stage_task_field": ([*main, wd("weights"), "--config.stages.segment.class_weights="
                                  "(1.0, 2.0)"], 2,
                                 r"^error: config.stages.segment.class_weights: has 2 entries "
                                 r"for 3 classes \('pet', 'background', 'border'\)"),
      "rerun_other_config": ([*main, wd("finished"), "--config.seed=1"], 2,
                             r"'pretrain' in .*finished were trained with another config "
                             r"\(stages.pretrain.seed: 0 -> 1\); .*--force"),
      # Its newest step is garbage; the one before it never finished.
      "graft_unfinished": ([*main, wd("partial"), "--stages=segment"], 1,
                           r"checkpoint \(step 1, epoch 0 of 1\) is from a stage that did not "
                           r"finish; .*--config.stages.segment.init_from.allow_partial=True"),
      "predict_batch": ([*seg, f"--input={root / 'scans'}", f"--output={root / 'out'}"], 1, None),
      "predict_output_unwritable": ([*seg, f"--input={root / 'scans' / 'a.png'}",
                                     f"--output={root / 'a_file' / 'out'}"], 2,
                                    r"--output .*a_file/out: cannot write there \(Not a "
                                    r"directory\)"),
      "evaluate_out_missing_folder": ([*evaluate, f"--out={root / 'nowhere' / 'm.json'}"], 2,
                                      r"--out .*m.json: folder .*nowhere does not exist"),
      "render_min_width_0": ([*las_file, "--min-width=0"], 2,
                             r"--min-width=0 --max-width=2400: need 32 <= --min-width"),
      "render_widths_swapped": ([*las_file, "--min-width=500", "--max-width=100"], 2,
                                r"--min-width=500 --max-width=100: need 32 <= --min-width <= "
                                r"--max-width"),
      "las_repeated_depth": (["-m", "ssl_seg.render_las", f"--las={root / 'repeat.las'}",
                              "--n=1", f"--out={root / 'rendered'}"], 1,
                             r"LAS file .*repeat.las has 1 repeated depth\(s\), the first "
                             r"1024.62; remove the repeated rows"),
  }


@pytest.fixture(scope="module")
def results(root):
  """{case: CompletedProcess}: all cases at once, a few processes at a time."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  cases = _cases(root)

  def run(argv):
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)

  with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    procs = dict(zip(cases, pool.map(run, [argv for argv, _, _ in cases.values()])))
  return {name: (procs[name], code, pattern) for name, (_, code, pattern) in cases.items()}


def _lines(text):
  return [line for line in re.split(r"[\r\n]", text) if line.strip()]


def _errors(proc):
  assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
  return [line for line in _lines(proc.stderr) if line.startswith("error:")]


@pytest.mark.parametrize("name", [
    "unknown_field", "config_syntax", "config_arg_typo", "config_arg_value", "stages_typo",
    "later_stage_task_field", "rerun_other_config", "graft_unfinished", "predict_output_unwritable",
    "evaluate_out_missing_folder", "render_min_width_0", "render_widths_swapped",
    "las_repeated_depth"])
def test_one_error_line_and_exit_code(results, name):
  proc, code, pattern = results[name]
  errors = _errors(proc)
  assert len(errors) == 1, proc.stderr[-3000:]
  assert re.search(pattern, errors[0]), errors[0]
  assert proc.returncode == code, errors[0]


def test_refusals_write_nothing(root, results):
  assert not (root / "weights").exists()  # Not a step of pretraining before the bad stage.
  # A refused rerun leaves the finished stage and writes no config.json or metrics.
  assert sorted(os.listdir(root / "finished")) == ["pretrain"]
  assert sorted(os.listdir(root / "finished" / "pretrain" / "checkpoints")) == ["1"]
  assert not (root / "partial" / "segment" / "checkpoints" / "1").exists()


def test_graft_falls_back_to_the_newest_readable_step_and_names_it(root, results):
  proc, _, _ = results["graft_unfinished"]
  src = root / "partial" / "pretrain"
  assert re.search(rf"\[segment\] warning: step 2 cannot be read \({src}/checkpoints/2/params/"
                   r"_METADATA is not valid JSON\); using step 1", proc.stdout), proc.stdout
  assert sorted(os.listdir(src / "checkpoints")) == ["1", "2"]  # Read, never changed.


def test_predict_batch_skips_bad_files_and_overwrites_nothing(root, results):
  proc, code, _ = results["predict_batch"]
  errors = _errors(proc)
  assert proc.returncode == code, proc.stderr[-3000:]
  # One line per failed file, each naming it; the others are digitized.
  assert len(errors) == 2, errors
  assert re.search(r"bomb.png: image .*bomb.png claims 100000 x 100000 px \(10000 M pixels\), "
                   r"more than --max-pixels=200000000", errors[1] + errors[0])
  assert any(re.search(r"a.png: its outputs would be named a_png_\*, as those of a_png.png; "
                       r"rename one of the two files", e) for e in errors)
  stderr = _lines(proc.stderr)
  assert any(re.match(r"warning: step 2 cannot be read \(.*: Requested byte range .* is not "
                      r"valid for value of size 10\); using step 1", s) for s in stderr), stderr
  assert any(s.startswith("note: 1 file(s) in") and s.endswith(": old_mask.png")
             for s in stderr), stderr
  assert "2 file(s) digitized" in proc.stdout and "2 failed: a.png, bomb.png" in proc.stdout
  out = sorted(os.listdir(root / "out"))
  assert out == sorted([f"a_{e}_{k}" for e in ("png", "tif")
                        for k in ("mask.png", "overlay.png", "replot.png", "curves.csv")]
                       + ["summary.csv"])
  # a_png_* are a_png.png's: one writer per name.
  assert Image.open(root / "out" / "a_png_mask.png").size == (192, 32)



# The same checks in-process, where a process would add nothing but its start-up time.


def test_predict_checkpoint_without_meta_is_one_clear_error(root):
  with pytest.raises(checkpoint.CheckpointReadError,
                     match=r"no readable checkpoint in .*: step 1 cannot be read \(its 'meta' "
                           r"item is missing\); delete the broken step"):
    segmenter.load(str(root / "nometa" / "finetune"), window=64, overlap=16)


def test_output_paths_are_checked_before_the_work(root):
  with pytest.raises(ValueError, match=r"--output .*a_file is a file, not a folder"):
    options.writable_dir(str(root / "a_file"), "--output")
  with pytest.raises(ValueError, match=r"--out .* is a folder; give a file name"):
    options.writable_file(str(root), "--out")
  assert options.writable_dir(str(root / "new" / "out"), "--output") == str(root / "new" /
                                                                            "out")


def test_las_mnemonics_that_lasio_would_not_read_back_are_refused():
  for bad, fixed in (("GR.1", "GR_1"), ("RHOB/CM3", "RHOB_CM3"), ("A:B", "A_B"), ("G R", "G_R")):
    with pytest.raises(ValueError, match=rf"LAS mnemonic '{re.escape(bad)}': .* e\.g\. {fixed}$"):
      las.check_mnemonic(bad)
  assert shortcuts.curve_names(("background", "curve1", "curve2"), 1, ["gr_1", "rhob-2"]) == [
      "GR_1", "RHOB-2"]


def test_output_names_never_share_a_name():
  names, refused = digitize.output_names(["d/a.png", "d/a.tif", "d/a_png.png", "d/b.png"])
  assert names == {"d/a.tif": "a_tif", "d/a_png.png": "a_png", "d/b.png": "b"}
  assert list(refused) == ["d/a.png"] and "as those of a_png.png" in refused["d/a.png"]
