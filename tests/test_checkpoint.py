"""Orbax save/restore and encoder grafting, with real writes to tmp_path."""

import jax
import numpy as np
import pytest

from ssl_seg import checkpoint, state as state_lib, tree_paths


def _state(stage, seed=0):
  built = state_lib.build(stage, 10, 100, seed=seed)
  return built.params, built.rest, built.tx


def _save(stage, stage_dir, seed=0):
  params, rest, tx = _state(stage, seed)
  mngr = checkpoint.manager(stage_dir)
  state = state_lib.create_state(params, rest, tx)
  checkpoint.save(mngr, state, {"stage": "x"})
  mngr.close()
  return state


def test_save_and_restore_roundtrip(tiny_config, tmp_path):
  stage = tiny_config.stages.classify
  saved = _save(stage, tmp_path)
  params, rest, tx = _state(stage, seed=5)
  mngr = checkpoint.manager(tmp_path)
  restored, meta = checkpoint.restore_state(mngr, state_lib.abstract_state(params, rest, tx))
  assert meta == {"stage": "x"}
  a, b = jax.tree.leaves(saved), jax.tree.leaves(restored)
  assert len(a) == len(b) > 0
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_graft_copies_encoder_bit_for_bit_and_keeps_fresh_head(tiny_config, tmp_path):
  saved = _save(tiny_config.stages.pretrain, tmp_path / "pretrain", seed=1)
  fresh, _, _ = _state(tiny_config.stages.segment, seed=2)
  # The saved stage has no final eval: grafting it is allowed only when asked.
  with pytest.raises(checkpoint.UnfinishedSourceError, match=r"\(step 0, epoch \? of \?\)"):
    checkpoint.graft(fresh, str(tmp_path / "pretrain"))
  lines = []
  grafted = checkpoint.graft(fresh, str(tmp_path / "pretrain"), allow_partial=True,
                             log=lines.append)
  assert lines == [f"grafted ['encoder'] from {tmp_path / 'pretrain'} (step 0, unfinished: "
                   "init_from.allow_partial=True)"]
  saved_enc = tree_paths.flatten(saved["params"]["encoder"])
  got_enc = tree_paths.flatten(grafted["encoder"])
  assert saved_enc.keys() == got_enc.keys()
  for k in saved_enc:
    np.testing.assert_array_equal(np.asarray(saved_enc[k]), np.asarray(got_enc[k]), err_msg=k)
  fresh_enc = tree_paths.flatten(fresh["encoder"])
  assert any(not np.array_equal(fresh_enc[k], got_enc[k]) for k in got_enc)
  for k, v in tree_paths.flatten(fresh["head"]).items():
    np.testing.assert_array_equal(np.asarray(v), np.asarray(tree_paths.flatten(grafted["head"])[k]))


def test_graft_mismatch_names_keys_and_shapes(tiny_config, tmp_path):
  pre = tiny_config.stages.pretrain
  pre.model.dim = 48  # Encoder of another width.
  pre.model.depth = 1
  _save(pre, tmp_path / "pretrain")
  fresh, _, _ = _state(tiny_config.stages.segment)
  with pytest.raises(checkpoint.CheckpointMismatchError) as e:
    checkpoint.graft(fresh, str(tmp_path / "pretrain"), allow_partial=True)
  msg = str(e.value)
  assert "missing keys" in msg and "encoder/blocks/1/attn/qkv/kernel" in msg
  assert "shape mismatches" in msg and "encoder/cls_token" in msg and "(1, 1, 48)" in msg


def test_graft_from_empty_dir_is_a_clear_error(tiny_config, tmp_path):
  fresh, _, _ = _state(tiny_config.stages.segment)
  with pytest.raises(FileNotFoundError, match="no checkpoint to graft from"):
    checkpoint.graft(fresh, str(tmp_path / "nothing"))
