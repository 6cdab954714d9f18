"""Every bad input that is not an image: one clear error, nothing good overwritten.

In-process through `ssl_seg.main.run` (what the CLI prints is `error: <message>`, exit code 2 for
config errors and 1 for the rest; test_cli_errors.py runs the commands themselves).
"""

import dataclasses
import errno
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
from absl import flags
from orbax.checkpoint._src.handlers import json_checkpoint_handler

from configs import common, vit_tiny_synthetic, welllog_demo
from ssl_seg import checkpoint, config_utils, main, run_log, state as state_lib, tasks
from ssl_seg.data import sources
from ssl_seg.digitizer import las

CONFIG = "configs/vit_tiny_synthetic.py:intermediate=false"


def _tiny(**fields):
  cfg = vit_tiny_synthetic.get_config("intermediate=false")
  for st in cfg.stages.values():
    st.data.num_train, st.data.num_eval, st.batch_size, st.eval_batch_size = 8, 4, 4, 4
    st.epochs, st.log_every_steps = 2, 1
    for k, v in fields.items():
      parent, _, leaf = k.rpartition(".")
      (st[parent] if parent else st)[leaf] = v
  return cfg


def _run_fails(cfg, workdir, error, match, only=None):
  """main.run raises `error` matching `match`, in one line, and writes no metrics."""
  with pytest.raises(error, match=match) as e:
    main.run(cfg, str(workdir), only=only, log=lambda _: None)
  assert not (workdir / "metrics.jsonl").exists()
  return str(e.value)


def _parse(*overrides):
  return config_utils.load_config(CONFIG, overrides)


def test_unknown_config_key_and_wrong_type_fail_while_parsing():
  assert _parse("--config.stages.segment.epochs=3").stages.segment.epochs == 3
  with pytest.raises(AttributeError, match='Did you mean "epochs"'):
    _parse("--config.stages.segment.epoch=3")
  with pytest.raises(flags.IllegalFlagValueError, match="epochs=many: invalid literal"):
    _parse("--config.stages.segment.epochs=many")


def test_booleans_are_strict_in_config_arguments_and_overrides():
  assert common.parse_arg("probe=No", probe=True).probe is False
  with pytest.raises(ValueError, match="config argument 'probe=ture': expected true or false"):
    common.parse_arg("probe=ture", probe=False)
  with pytest.raises(flags.IllegalFlagValueError, match="Non-boolean argument"):
    _parse("--config.stages.segment.augment.enabled=ture")


@pytest.mark.parametrize("field, value, message", [
    ("batch_size", 0, "config.stages.segment.batch_size: must be >= 1"),
    ("encoder.policy", "melt", "config.stages.segment.encoder.policy: encoder policy must be"),
    ("task", "dance", "config.stages.segment.task: unknown task 'dance'"),
    ("init_from.stage", "segment_scratch", "init_from.stage: 'segment_scratch' is not an earlier"),
    ("data.num_train", 0, "config.stages.segment.data.num_train: must be -1 .* got 0"),
    ("data.num_labels", 0, "config.stages.segment.data.num_labels: .* empty label subset"),
    ("model.dim", -4, r"config.stages.segment.model.dim: must be >= 1, got -4"),
    ("model.name", "nope", r"config.stages.segment.model.name: task 'segment' builds a 'vit' "
     r"model, got 'nope'; choose 'vit'"),
    ("optim.decay_epochs", ("(a,b)",), r"config.stages.segment.optim.decay_epochs: must be "
     r"numbers, got \('\(a,b\)',\); give a tuple as"),
    ("data.name", "mnist", r"config.stages.segment.data.name: unknown data set 'mnist'; known: "
     r"synthetic_shapes, welllog_synthetic"),
    ("model.variant", "huge", r"config.stages.segment.model.variant: unknown ViT variant"),
    ("class_weights", (1.0, 2.0), r"config.stages.segment.class_weights: has 2 entries for 3 "
     r"classes"),
])
def test_bad_config_values_fail_before_any_work(tmp_path, field, value, message):
  cfg = _tiny()
  parent, _, leaf = field.rpartition(".")
  st = cfg.stages.segment
  (st[parent] if parent else st)[leaf] = value
  msg = _run_fails(cfg, tmp_path, config_utils.ConfigError, message)
  assert "\n" not in msg and not (tmp_path / "config.json").exists()


def test_label_subset_smaller_than_a_batch_names_the_stage(tmp_path):
  cfg = _tiny(**{"data.num_labels": 2})
  _run_fails(cfg, tmp_path, ValueError,
             "stage 'pretrain': data set has 2 examples, fewer than the batch size 4")


def test_workdir_that_cannot_be_written(tmp_path, monkeypatch):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(PermissionError, match="cannot be created .* choose a writable --workdir"):
    main.run(_tiny(), str(blocker / "run"))
  # chmod does not stop root (the CI user here), so the permission answer is simulated.
  monkeypatch.setattr(os, "access", lambda *a: False)
  with pytest.raises(PermissionError, match="is not writable; fix its permissions"):
    main.run(_tiny(), str(tmp_path / "run"))
  assert not (tmp_path / "run" / "config.json").exists()


def test_missing_checkpoint_for_init_from(tmp_path):
  msg = _run_fails(_tiny(), tmp_path, FileNotFoundError, "no checkpoint to graft from",
                   only=["segment"])
  assert "pretrain/checkpoints" in msg and "run that stage first" in msg


def _state(stage):
  return state_lib.build(stage, 2, 4, seed=0).state()


def test_checkpoint_that_does_not_fit_lists_keys_and_shapes(tmp_path):
  other = _tiny()
  other.stages.pretrain.model.dim, other.stages.pretrain.model.depth = 48, 1
  mngr = checkpoint.manager(tmp_path / "pretrain")
  checkpoint.save(mngr, _state(other.stages.pretrain), {"stage": "pretrain"})
  mngr.close()
  assert config_utils.write_resolved(other, tmp_path)[1] is None  # The earlier run's config.
  assert config_utils.write_resolved(other, tmp_path)[1] is None  # Same config: nothing kept.
  before = sorted(os.listdir(tmp_path / "pretrain" / "checkpoints"))
  msg = _run_fails(_tiny(), tmp_path, checkpoint.CheckpointMismatchError,
                   "checkpoint does not fit the model", only=["pretrain"])
  assert "missing keys" in msg and "shape mismatches" in msg and "(1, 1, 48)" in msg
  assert sorted(os.listdir(tmp_path / "pretrain" / "checkpoints")) == before
  # The config the checkpoint was trained with is kept beside the new config.json.
  kept = [n for n in os.listdir(tmp_path) if n.startswith("config.prev-")]
  assert len(kept) == 1
  assert json.load(open(tmp_path / kept[0]))["stages"]["pretrain"]["model"]["dim"] == 48
  assert json.load(open(tmp_path / "config.json"))["stages"]["pretrain"]["model"]["dim"] != 48


def test_disk_full_during_save_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
  stage = _tiny().stages.pretrain
  state = _state(stage)
  mngr = checkpoint.manager(tmp_path)
  checkpoint.save(mngr, state, {"n": 1})

  async def disk_full(self, x, directory):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(json_checkpoint_handler.JsonCheckpointHandler, "_save_fn", disk_full)
  with pytest.raises(checkpoint.CheckpointSaveError) as e:
    checkpoint.save(mngr, dict(state, step=state["step"] + 1), {"n": 2})
  mngr.close()
  msg = str(e.value)
  assert "No space left on device" in msg and "last good checkpoint (step 0) is intact" in msg
  assert isinstance(e.value, OSError) and "\n" not in msg  # main prints it as one error line.
  monkeypatch.undo()
  mngr = checkpoint.manager(tmp_path)
  assert mngr.latest_step() == 0
  restored, meta = checkpoint.restore_state(mngr, state)
  mngr.close()
  assert meta == {"n": 1}


def _welllog(**data):
  cfg = welllog_demo.get_config("variant=tiny,scale=0.05")
  cfg.stages.pretrain.data.update({"height": 32, "min_width": 64, "max_width": 128, **data})
  return cfg


def test_welllogs_narrower_than_the_stride(tmp_path, monkeypatch):
  _run_fails(_welllog(min_width=16), tmp_path, config_utils.ConfigError,
             r"config.stages.pretrain.data.min_width: must be >= 32 px \(the network's stride\)")
  for width in (0, 10):
    logs = [{"image": np.zeros((32, w), np.uint8)} for w in (64, width, 96, 64)]
    monkeypatch.setattr(sources, "build_source", lambda stage, split, keys, logs=logs: logs)
    # Training windows of fixed logs and whole logs in buckets check alike.
    _run_fails(_welllog(fresh=False), tmp_path, ValueError, f"stage 'pretrain': train log 1 is "
               f"{width} px wide, narrower than the network's stride", only=["pretrain"])
    _run_fails(_welllog(crop_width=0, fresh=False), tmp_path, ValueError,
               f"stage 'pretrain': train log 1 is {width} px "
               "wide, narrower than the network's stride", only=["pretrain"])


def test_bad_las_files(tmp_path):
  depth = np.linspace(1000.0, 1100.0, 200)
  good = np.linspace(10.0, 150.0, 200)
  no_rhob, all_null = tmp_path / "no_rhob.las", tmp_path / "null.las"
  las.write(no_rhob, depth, {"GR": good})
  las.write(all_null, depth, {"GR": good, "RHOB": np.full(200, np.nan)})
  broken = tmp_path / "broken.las"
  broken.write_bytes(b"\x00\x01 not a LAS file\n~~~\n")
  for path, message in [
      (no_rhob, "curve\\(s\\) 'RHOB' not in LAS file .*no_rhob.las; available curves: GR"),
      (all_null, "curve 'RHOB' in LAS file .*null.las has no valid samples \\(all null\\)"),
      (broken, "could not read LAS file .*broken.las"),
      (tmp_path / "nowhere.las", "LAS file not found: .*nowhere.las")]:
    cfg = _welllog(las_paths=(str(path),))
    error = FileNotFoundError if "nowhere" in str(path) else ValueError
    _run_fails(cfg, tmp_path / "run", error, message, only=["pretrain"])


def test_las_curves_are_chosen_by_config(tmp_path):
  depth = np.linspace(1000.0, 1100.0, 200)
  path = tmp_path / "gr_dt.las"
  las.write(path, depth, {"GR": np.linspace(10.0, 150.0, 200),
                          "DT": np.linspace(60.0, 120.0, 200)})
  # The default curves (GR, RHOB) are not all there: one clear error.
  _run_fails(_welllog(las_paths=(str(path),)), tmp_path / "a", ValueError,
             "curve\\(s\\) 'RHOB' not in LAS file .*gr_dt.las; available curves: GR, DT",
             only=["pretrain"])
  stage = _welllog(las_paths=(str(path),), las_curves=("GR", "DT")).stages.pretrain
  logs = sources.build_source(stage, "train", tasks.batch_keys(stage.task))
  assert len(logs) == stage.data.num_train and logs[0]["image"].shape[0] == 32
  _run_fails(_welllog(las_curves=("GR",)), tmp_path / "b", config_utils.ConfigError,
             "data.las_curves: must name two LAS curves")


def test_an_unknown_render_style_field_is_named_before_training(tmp_path):
  _run_fails(_welllog(render_style={"p_spikes": 0.5, "p_spiky": 0.5}), tmp_path,
             config_utils.ConfigError, "data.render_style: unknown RenderStyle field.s. p_spiky")
  _run_fails(_welllog(fresh=False, render_style={"p_spikes": 0.5}), tmp_path / "b",
             config_utils.ConfigError, "data.render_style: only a stage on fresh renders")


def _poison_step(monkeypatch, index):
  """Batch `index` (None: every batch) of every train set is all zeros, and a zero batch has a
  NaN loss."""
  make_task, stage_data = tasks.make_task, sources.stage_data

  def poisoned_task(stage):
    task = make_task(stage)

    def loss_fn(model, batch, key, train):
      loss, m = task.loss_fn(model, batch, key, train=train)
      return loss + jnp.where(jnp.all(batch["image"] == 0), jnp.nan, 0.0), m
    return dataclasses.replace(task, loss_fn=loss_fn)

  def poisoned_data(stage, keys, **kw):
    data = stage_data(stage, keys, **kw)
    zero = lambda i, b: {**b, "image": np.zeros_like(b["image"])} if index in (i, None) else b
    return sources.StageData(data.train.map_with_index(zero), data.steps_per_epoch, data.eval)

  monkeypatch.setattr(tasks, "make_task", poisoned_task)
  monkeypatch.setattr(sources, "stage_data", poisoned_data)


@pytest.mark.parametrize("policy", ["stop", "skip"])
def test_nonfinite_loss_stops_naming_stage_and_step_or_is_skipped(tmp_path, monkeypatch, policy):
  _poison_step(monkeypatch, index=2)  # 2 steps per epoch: the first step of epoch 2.
  cfg = _tiny(on_nonfinite=policy)
  if policy == "stop":
    with pytest.raises(main.train.NonFiniteError,
                       match="stage 'pretrain': non-finite loss .* at step 3 .*last good "
                             "checkpoint: step 2"):
      main.run(cfg, str(tmp_path), only=["pretrain"], log=lambda _: None)
    assert checkpoint._complete_steps(tmp_path / "pretrain" / "checkpoints") == [2]
    return
  main.run(cfg, str(tmp_path), only=["pretrain"], log=lambda _: None)
  train = [r for r in run_log.read(tmp_path / "metrics.jsonl") if r["split"] == "train"]
  assert [r["skipped_steps"] for r in train] == [0, 1]
  assert np.isfinite(run_log.read(tmp_path / "metrics.jsonl")[-1]["loss"])


def test_every_step_nonfinite_with_skip_fails_the_stage(tmp_path, monkeypatch):
  _poison_step(monkeypatch, index=None)
  with pytest.raises(main.train.NonFiniteError,
                     match=r"stage 'pretrain': every step of epoch 1 \(steps 1-2\) had a "
                           r"non-finite .* stopped without saving; no checkpoint was written yet"):
    main.run(_tiny(on_nonfinite="skip"), str(tmp_path), only=["pretrain"], log=lambda _: None)
  assert checkpoint._complete_steps(tmp_path / "pretrain" / "checkpoints") == []
  assert not os.path.exists(tmp_path / "metrics.jsonl")  # No NaN record, no NaN "final".


def test_resume_skips_an_unreadable_newest_step_and_sets_it_aside(tmp_path):
  stage = _tiny().stages.pretrain
  state = _state(stage)
  mngr = checkpoint.manager(tmp_path)
  checkpoint.save(mngr, state, {"n": 1})
  checkpoint.save(mngr, dict(state, step=state["step"] + 1), {"n": 2})
  mngr.close()
  (tmp_path / "checkpoints" / "1" / "train_state" / "_METADATA").write_bytes(b"\xff" * 64)
  mngr, lines = checkpoint.manager(tmp_path), []
  restored, meta = checkpoint.restore_state(mngr, state, log=lines.append)
  assert meta == {"n": 1} and int(restored["step"]) == 0
  assert lines == [f"warning: step 1 cannot be read ({tmp_path}/checkpoints/1/train_state/"
                   f"_METADATA is not valid JSON); using step 0 of {tmp_path}/checkpoints, the "
                   "newest that can be read"]
  moved = checkpoint.set_aside_after(mngr, 0)
  assert mngr.all_steps() == [0] and len(moved) == 1 and os.path.isdir(moved[0])
  mngr.close()


def test_torn_last_metrics_line_is_dropped_and_a_bad_line_is_named(tmp_path):
  path = tmp_path / "metrics.jsonl"
  good = json.dumps({"stage": "pretrain", "split": "train", "step": 2}) + "\n"
  path.write_text(good + '{"stage": "pretrain", "spl')
  lines = []
  run_log.drop_torn_record(str(path), lines.append)
  assert path.read_text() == good and len(lines) == 1
  assert lines[0].startswith(f"warning: {path}, line 2: dropped a torn last record")
  path.write_text(good + "{garbage\n" + good)
  with pytest.raises(ValueError, match=rf"{path}, line 2: not a JSON record .*; delete or fix "
                                       "that line"):
    run_log.drop_records_after(str(path), "pretrain", 1)


def test_a_failing_tensorboard_close_does_not_hide_the_error(tmp_path, monkeypatch):
  def full(self):
    raise OSError(errno.ENOSPC, "No space left on device")
  monkeypatch.setattr(run_log.Writer, "close", full)
  with pytest.raises(FileNotFoundError, match="no checkpoint to graft from"):
    main.run(_tiny(), str(tmp_path), only=["segment"], log=lambda _: None)


def test_force_moves_changed_stages_and_their_dependants_aside(tmp_path):
  cfg = _tiny()
  for name in ("pretrain", "segment", "segment_scratch", "tensorboard"):
    (tmp_path / name).mkdir()
  rows = [{"stage": s, "step": 1} for s in ("pretrain", "segment", "segment_scratch")]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  aside = main._move_aside(cfg, str(tmp_path), {"pretrain": ["stages.pretrain.seed: 0 -> 1"]})
  # segment grafts from pretrain: stale too; segment_scratch does not.
  assert sorted(os.listdir(aside)) == ["metrics.jsonl", "pretrain", "segment", "tensorboard"]
  assert sorted(os.listdir(tmp_path)) == sorted(["metrics.jsonl", "segment_scratch",
                                                 os.path.basename(aside)])
  assert run_log.read(tmp_path / "metrics.jsonl") == rows[2:]
  assert run_log.read(os.path.join(aside, "metrics.jsonl")) == rows
