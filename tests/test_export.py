"""Encoder export (issue 19): the real CLI writes a flat .npz; load_encoder puts it in a fresh
model whose outputs equal the checkpoint's model's, bit for bit."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

import ssl_seg
from configs import vit_tiny_synthetic
from ssl_seg import checkpoint, export, state as state_lib, tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def stage_dir(tmp_path_factory):
  """A tiny segment checkpoint with random params (the fresh head is zeros: useless to compare)."""
  stage = vit_tiny_synthetic.get_config().stages.segment
  task = tasks.make_task(stage)
  _, params, rest = state_lib.split_model(task.build_model(nnx.Rngs(params=0)))
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda x: rng.normal(0, 0.2, x.shape).astype(x.dtype), params)
  state = {"params": params, "rest": rest, "opt": {}, "step": np.int32(3),
           "bad_step": np.int32(-1), "skipped": np.int32(0)}
  path = tmp_path_factory.mktemp("work") / "segment"
  mngr = checkpoint.manager(str(path))
  checkpoint.save(mngr, state, {"stage": "segment", "config": stage.to_dict()})
  mngr.close()
  return str(path)


def _cli(*args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  return subprocess.run([sys.executable, "-m", "ssl_seg.export", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def exported(stage_dir, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("export") / "enc.npz")
  proc = _cli(f"--checkpoint={stage_dir}", f"--out={out}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "wrote" in proc.stdout
  return out


def test_export_writes_the_documented_names_and_the_config(exported):
  arrays, meta = export.read_npz(exported)
  assert arrays["encoder/blocks/0/attn/qkv/kernel"].shape == (32, 96)
  assert arrays["encoder/patch_embed/kernel"].shape == (8 * 8 * 3, 32)
  assert arrays["encoder/posemb"].shape == (1, 17, 32)
  assert "encoder/blocks/1/mlp/fc2/kernel" in arrays
  assert not [k for k in arrays if not k.startswith("encoder/")]  # No head.
  assert all(a.dtype == np.float32 for a in arrays.values())
  assert meta["size"]["dim"] == 32 and meta["model"]["variant"] == "tiny"
  assert (meta["stage"], meta["task"], meta["step"]) == ("segment", "segment", 3)


def _restored_and_fresh(stage_dir, encoder):
  stage, model, _ = export.restore_model(stage_dir)
  fresh = tasks.make_task(stage).build_model(nnx.Rngs(params=7))  # Another init.
  fresh.encoder = encoder
  fresh.head = model.head
  return model, fresh


@pytest.mark.parametrize("source", ["npz", "checkpoint"])
def test_round_trip_into_a_fresh_model_gives_identical_outputs(stage_dir, exported, source):
  encoder, params = ssl_seg.load_encoder(exported if source == "npz" else stage_dir)
  assert isinstance(params, nnx.State)
  model, fresh = _restored_and_fresh(stage_dir, encoder)
  images = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
  want, _ = model(images)
  got, _ = fresh(images)
  assert float(np.abs(want).max()) > 0  # Not the zero head: the comparison means something.
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  # A fresh encoder differs: the test could fail.
  other, _ = tasks.make_task(vit_tiny_synthetic.get_config().stages.segment).build_model(
      nnx.Rngs(params=7)).encoder(images)
  assert not np.array_equal(np.asarray(encoder(images)[0]), np.asarray(other))


def test_export_errors_are_one_line_and_exit_2(tmp_path):
  proc = _cli(f"--checkpoint={tmp_path}", f"--out={tmp_path / 'x.npz'}")
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert len(lines) == 1 and lines[0].startswith("error: no checkpoint in "), lines
  assert "Traceback" not in proc.stderr


def test_out_must_be_npz_and_load_refuses_other_files(stage_dir, tmp_path):
  with pytest.raises(ValueError, match="--out must end in .npz"):
    export.export_encoder(stage_dir, str(tmp_path / "enc.bin"))
  other = tmp_path / "other.npz"
  np.savez(other, x=np.zeros(3))
  with pytest.raises(ValueError, match="not a file ssl_seg.export wrote"):
    ssl_seg.load_encoder(str(other))
