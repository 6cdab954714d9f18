"""Fine-tuning options of issue 19: layer-wise lr decay, the linear probe, SimMIM mask patches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import vit_paper, vit_tiny_synthetic
from ssl_seg import config_utils, optim, state as state_lib, step as step_lib, tasks, tree_paths
from ssl_seg.data import sources
from ssl_seg.tasks import simmim


def _model_params(stage):
  return state_lib.build(stage, 10, 100, seed=0)[:4]


def test_layer_decay_scales_each_layers_first_update_by_decay_to_its_depth():
  stage = vit_tiny_synthetic.get_config().stages.segment  # depth 2: layers 0 .. 3
  stage.optim.update(schedule="constant", lr=1e-2, weight_decay=0.0, layer_decay=0.5)
  _, _, params, _ = _model_params(stage)
  tx, _ = optim.make_optimizer(stage.optim, stage.encoder, 10, 100, params)
  grads = jax.tree.map(jnp.ones_like, params)
  # Adam's first step is lr * g / |g| = lr per element: what is left is the layer's scale.
  updates, _ = tx.update(grads, tx.init(params), params)
  step = {k: float(np.abs(np.asarray(v)).mean()) for k, v in tree_paths.flatten(updates).items()}
  expect = {"encoder/patch_embed/kernel": 0.5**3, "encoder/posemb": 0.5**3,
            "encoder/cls_token": 0.5**3, "encoder/blocks/0/attn/qkv/kernel": 0.5**2,
            "encoder/blocks/1/mlp/fc2/kernel": 0.5, "encoder/norm/scale": 1.0,
            "head/kernel": 1.0}
  for name, scale in expect.items():
    assert step[name] == pytest.approx(1e-2 * scale, rel=1e-4), name
  ids, depth = optim.layer_ids(params)
  assert depth == 2 and sorted(set(jax.tree.leaves(ids))) == [0, 1, 2, 3]
  # Off by default: every update is lr.
  stage.optim.layer_decay = 1.0
  tx, _ = optim.make_optimizer(stage.optim, stage.encoder, 10, 100, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  assert np.abs(np.asarray(updates["encoder"]["patch_embed"]["kernel"])).mean() == \
      pytest.approx(1e-2, rel=1e-4)


def test_layer_decay_is_validated():
  cfg = vit_tiny_synthetic.get_config()
  cfg.stages.segment.optim.layer_decay = 1.5
  with pytest.raises(config_utils.ConfigError, match="segment.optim.layer_decay: must be in"):
    config_utils.validate(cfg)


def test_probe_freezes_every_segmentation_encoder_and_trains_the_linear_head():
  cfg = vit_tiny_synthetic.get_config("probe")
  segs = [n for n in cfg.stage_order if cfg.stages[n].task == "segment"]
  assert segs == ["segment", "segment_via_classify", "segment_scratch"]
  assert all(cfg.stages[n].encoder.policy == "frozen" for n in segs)
  assert all(cfg.stages[n].model.dropout == 0.0 for n in segs)
  assert cfg.stages.pretrain.encoder.policy == "train"
  assert vit_paper.get_config().stages.segment.encoder.policy == "train"  # Off by default.
  stage = cfg.stages.segment
  stage.data.num_train, stage.batch_size = 8, 8
  built = state_lib.build(stage, 10, 100, seed=0)
  task, graphdef, tx, state = built.task, built.graphdef, built.tx, built.state()
  before = jax.tree.map(np.asarray, state["params"])
  train_step = step_lib.make_train_step(graphdef, tx, task.loss_fn)
  batch = sources.stage_data(stage, tasks.batch_keys(stage.task)).train[0]
  for _ in range(2):
    state, _ = train_step(state, batch, jax.random.key(0))
  after = jax.tree.map(np.asarray, state["params"])
  for a, b in zip(jax.tree.leaves(before["encoder"]), jax.tree.leaves(after["encoder"])):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(before["head"]["kernel"], after["head"]["kernel"])


def test_mask_patch_size_masks_whole_blocks_of_tokens_with_an_exact_count():
  # 32-px image, 8-px tokens (grid 4), 16-px mask patches: 2 x 2 tokens per mask cell.
  mask = np.asarray(simmim.block_patch_mask(jax.random.key(0), 16, 4, 0.5, 2))
  grid = mask.reshape(16, 4, 4)
  cells = grid.reshape(16, 2, 2, 2, 2).transpose(0, 1, 3, 2, 4).reshape(16, 4, 4)
  assert (cells.min(-1) == cells.max(-1)).all()  # Each cell's four tokens agree.
  assert (mask.sum(1) == 8).all()  # 2 of 4 cells, 4 tokens each.
  assert len({tuple(m) for m in mask}) > 1  # Random per image.
  # Block 1 is the plain per-token mask, bit for bit (the study's numbers do not move).
  np.testing.assert_array_equal(
      np.asarray(simmim.block_patch_mask(jax.random.key(3), 2, 4, 0.5, 1)),
      np.asarray(simmim.random_patch_mask(jax.random.key(3), 2, 16, 0.5)))


def test_mask_patch_size_trains_and_is_validated():
  cfg = vit_tiny_synthetic.get_config()
  stage = cfg.stages.pretrain
  stage.mim.mask_patch_size = 16
  config_utils.validate(cfg)
  stage.data.num_train, stage.batch_size = 8, 8
  task, graphdef, params, rest = _model_params(stage)
  batch = sources.stage_data(stage, tasks.batch_keys(stage.task)).train[0]
  loss, _ = task.loss_fn(nnx.merge(graphdef, params, rest), batch, jax.random.key(0), train=True)
  assert np.isfinite(float(loss))
  stage.mim.mask_patch_size = 12
  with pytest.raises(config_utils.ConfigError, match="pretrain.mim.mask_patch_size 12 must be a "
                     "multiple of the ViT patch size 8"):
    config_utils.validate(cfg)
