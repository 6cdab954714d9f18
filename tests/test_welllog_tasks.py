"""Well-log stages: bucketed steps compile once per bucket, padding is ignored, the pretrained
CurveNet encoder grafts into the segmenter, and the identity baseline is logged."""

import jax
import numpy as np
import pytest
from flax import nnx

from configs import welllog_demo
from ssl_seg import (
  checkpoint,
  main,
  run_log,
  state as state_lib,
  step as step_lib,
  tasks,
  tree_paths,
)
from ssl_seg.data import corrupt, sources, welllog_render, welllog_style


def _config(num_buckets=3):
  cfg = welllog_demo.get_config("variant=tiny,scale=0.02,labels=6,crop=64,batch=4")
  for st in cfg.stages.values():
    st.data.height, st.data.min_width, st.data.max_width = 32, 64, 320
    st.data.num_buckets = num_buckets
    st.log_every_steps = 2
  return cfg


def _build(stage):
  built = state_lib.build(stage, 10, 100)
  return built.task, built.graphdef, built.tx, built.state()


@pytest.mark.parametrize("stage_name", ["pretrain", "finetune_cold"])
def test_train_step_compiles_at_most_once_per_bucket(stage_name):
  stage = _config(num_buckets=2).stages[stage_name]
  stage.data.crop_width, stage.data.fresh = 0, False  # Whole logs in buckets, not windows.
  stage.data.num_train = 16
  data = sources.stage_data(stage, tasks.batch_keys(stage.task))
  task = tasks.make_task(stage)
  traces = []

  def counting_loss(*args, **kw):
    traces.append(1)  # Runs once per trace (compilation), never per step.
    return task.loss_fn(*args, **kw)

  _, graphdef, tx, state = _build(stage)
  train_step = step_lib.make_train_step(graphdef, tx, counting_loss)
  shapes = set()
  for i in range(len(data.train)):
    batch = data.train[i]
    shapes.add(batch["image"].shape)
    state, _ = train_step(state, batch, jax.random.key(0))
  assert len(shapes) == 2  # Several widths, bucketed into the 2 bucket shapes...
  assert len(traces) == len(shapes)  # ...and exactly one compilation per shape.


def test_padding_changes_nothing_in_loss_or_metrics():
  stage = _config().stages.finetune_cold
  task, graphdef, _, state = _build(stage)
  batch = sources.stage_data(stage, tasks.batch_keys(stage.task)).eval[0]
  assert not batch["valid_px"].all()  # The batch really has padding.
  scribbled = dict(batch)
  rng = np.random.default_rng(0)
  noise = rng.integers(0, 256, batch["image"].shape, dtype=np.uint8)
  scribbled["image"] = np.where(batch["valid_px"][..., None], batch["image"], noise)
  scribbled["seg"] = np.where(batch["valid_px"], batch["seg"], 2).astype(np.uint8)
  model = nnx.merge(graphdef, state["params"], state["rest"])
  key = jax.random.key(0)
  a, b = task.eval_fn(model, batch, key), task.eval_fn(model, scribbled, key)
  np.testing.assert_array_equal(a["confusion"], b["confusion"])
  np.testing.assert_allclose(a["loss_sum"], b["loss_sum"], rtol=1e-5)
  la, _ = task.loss_fn(model, batch, key, train=False)
  lb, _ = task.loss_fn(model, scribbled, key, train=False)
  np.testing.assert_allclose(la, lb, rtol=1e-5)


def test_identity_baseline_is_logged_and_zero_without_corruption():
  stage = _config().stages.pretrain
  task, graphdef, _, state = _build(stage)
  batch = sources.stage_data(stage, tasks.batch_keys(stage.task)).train[0]
  model = nnx.merge(graphdef, state["params"], state["rest"])
  _, m = task.loss_fn(model, batch, jax.random.key(0), train=True)
  assert float(m["identity_loss"]) > 0.05  # Aggressive default corruption.
  for field in ("patch_ratio", "column_ratio", "noise_std", "blur_sigma", "ink_dropout"):
    stage.corruption[field] = getattr(corrupt.NO_CORRUPTION, field)
  task = tasks.make_task(stage)
  _, m = task.loss_fn(model, batch, jax.random.key(0), train=True)
  assert float(m["identity_loss"]) == 0.0


def test_denoising_encoder_grafts_into_the_segmenter_bit_for_bit(tmp_path):
  cfg = _config()
  _, _, _, pre = _build(cfg.stages.pretrain)
  mngr = checkpoint.manager(tmp_path / "pretrain")
  checkpoint.save(mngr, pre, {})
  mngr.close()
  _, _, _, fresh = _build(cfg.stages.finetune_warm)
  grafted = tree_paths.flatten(checkpoint.graft(fresh["params"], str(tmp_path / "pretrain"),
                                                allow_partial=True))
  saved = tree_paths.flatten(pre["params"])
  encoder_keys = [k for k in grafted if k.startswith("encoder/")]
  assert any("blocks" in k for k in encoder_keys)  # The bottleneck transformer comes along.
  for k in encoder_keys:
    np.testing.assert_array_equal(np.asarray(grafted[k]), np.asarray(saved[k]), err_msg=k)
  # The decoder is fresh: its head even has another shape (3 classes vs 1 channel).
  assert grafted["decoder/head/kernel"].shape[-1] == 3 != saved["decoder/head/kernel"].shape[-1]


def test_pretrain_then_warm_and_cold_finetune_end_to_end(tmp_path):
  cfg = _config(num_buckets=1)
  lines = []
  results = main.run(cfg, str(tmp_path), log=lines.append)
  assert set(results) == {"pretrain", "synthetic", "finetune_warm", "finetune_cold"}
  assert "identity_loss" in results["pretrain"]
  for name in ("finetune_warm", "finetune_cold"):
    assert {"f1/curve1", "f1/curve2", "f1/background", "miou"} <= set(results[name])
    assert (tmp_path / name / "example_0.png").exists()
  assert (tmp_path / "pretrain" / "example_0.png").exists()
  assert any("[synthetic] grafted ['encoder']" in line for line in lines)
  assert any("[finetune_warm] grafted ['encoder', 'decoder']" in line for line in lines)
  for name in ("synthetic", "finetune_warm", "finetune_cold"):
    assert {"f1_tol1/curve1", "rule/f1/curve1", "rule/f1_tol1/curve2"} <= set(results[name])
  assert "threshold rule" in lines[-2 if "convergence" in lines[-1] else -1]
  rows = run_log.read(tmp_path / "metrics.jsonl")
  assert {r["stage"] for r in rows} == {"pretrain", "synthetic", "finetune_warm",
                                        "finetune_cold"}
  assert (tmp_path / "convergence.png").exists()


def test_budget_study_draws_nested_label_sets_per_seed_from_a_pool():
  from configs import welllog_budget
  cfg = welllog_budget.get_config("budgets=2/4,seeds=2,pool=40,variant=tiny,scale=0.05")
  picked = {}
  for name in ("finetune_warm_b2_s0", "finetune_warm_b4_s0", "finetune_cold_b4_s0",
               "finetune_warm_b4_s1"):
    st = cfg.stages[name]
    st.data.height, st.data.min_width, st.data.max_width = 32, 64, 160
    assert (st.data.num_train, st.data.num_labels) == (40, st.tags.budget)
    logs = sources.build_source(st, "train", tasks.batch_keys(st.task))
    assert len(logs) == st.tags.budget
    picked[name] = {logs[i]["image"].tobytes() for i in range(len(logs))}
  assert picked["finetune_warm_b2_s0"] < picked["finetune_warm_b4_s0"]  # budgets nest
  assert picked["finetune_warm_b4_s0"] == picked["finetune_cold_b4_s0"]  # arms share labels
  assert picked["finetune_warm_b4_s0"] != picked["finetune_warm_b4_s1"]  # seeds differ


def test_a_tiny_curvenet_overfits_one_log_on_both_curves():
  # The segmenter can learn both curves, the dashed one included: one 64 x 128 log (4 windows
  # of it per batch), a few hundred steps. Scored on the same log with the task's own eval.
  stage = _config().stages.finetune_cold
  stage.data.height = 64
  stage.optim.lr, stage.optim.warmup_epochs = 1e-2, 0.0
  stage.augment.enabled = False
  stage.test_time_flip = False  # Never trained on a mirrored log, so it is not scored on one.
  style = welllog_style.RenderStyle(p_two_tracks=0.0, p_header=0.0)
  image, seg = welllog_render.render_log(3, height=64, width=128, style=style)
  batch = {"image": np.repeat(image[None, ..., None], 4, 0), "seg": np.repeat(seg[None], 4, 0),
           "valid_px": np.ones((4, 64, 128), bool), "_valid": np.ones(4, bool)}
  built = state_lib.build(stage, 400, 400)
  task, graphdef, tx, state = built.task, built.graphdef, built.tx, built.state()
  train_step = step_lib.make_train_step(graphdef, tx, task.loss_fn)
  for _ in range(400):
    state, _ = train_step(state, batch, jax.random.key(0))
  model = nnx.merge(graphdef, state["params"], state["rest"])
  scores = task.summarize(jax.device_get(task.eval_fn(model, batch, jax.random.key(1))))
  assert (seg == 2).sum() > 50  # The log really has a (dashed) curve2.
  assert scores["f1/curve1"] > 0.9 and scores["f1/curve2"] > 0.9, scores
