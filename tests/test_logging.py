"""Logging of issue 19: per-step TensorBoard scalars, pictures (PNG + TensorBoard), hparams,
and --profile_steps, on one tiny two-stage run."""

import glob
import os
import struct
import subprocess
import sys

import pytest
from PIL import Image
from tensorboardX.proto import event_pb2

from configs import vit_tiny_synthetic
from ssl_seg import main, run_log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_events(directory):
  """{tag: [(step, 'scalar' value or 'image' (height, width))]} of the event files directly in
  `directory` (TFRecord framing: length, crc, Event proto, crc)."""
  out = {}
  for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
      (n,) = struct.unpack("<Q", data[pos:pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
      pos += 12 + n + 4
      for v in event.summary.value:
        kind = v.WhichOneof("value")
        value = (v.image.height, v.image.width) if kind == "image" else v.simple_value
        out.setdefault(v.tag, []).append((event.step, value))
  return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  cfg = vit_tiny_synthetic.get_config("intermediate=false")
  for st in cfg.stages.values():
    st.data.num_train, st.data.num_eval = 24, 8
    st.batch_size = st.eval_batch_size = 8
    st.epochs, st.log_every_steps = 1, 2  # 3 steps: flushed after steps 2 and 3.
  path = tmp_path_factory.mktemp("run")
  lines = []
  main.run(cfg, str(path), only=["pretrain", "segment"], log=lines.append, profile_steps=(2, 3))
  return path, lines


def test_per_step_scalars_at_log_every_steps_and_epoch_records_unchanged(workdir):
  path, _ = workdir
  events = read_events(path / "tensorboard")
  for stage in ("pretrain", "segment"):
    assert [s for s, _ in events[f"{stage}/train_steps/loss"]] == [2, 3]
    assert [s for s, _ in events[f"{stage}/train_steps/grad_norm"]] == [2, 3]
    assert f"{stage}/eval/loss" in events  # The per-epoch scalars as before.
  assert "segment/train_steps/pixel_acc" in events
  # metrics.jsonl keeps one train and one eval record per stage and epoch.
  records = run_log.read(path / "metrics.jsonl")
  assert [(r["stage"], r["split"]) for r in records] == [
      ("pretrain", "train"), ("pretrain", "eval"), ("segment", "train"), ("segment", "eval")]


def test_reconstructions_and_overlays_as_png_and_tensorboard_images(workdir):
  path, _ = workdir
  events = read_events(path / "tensorboard")
  # 32-px images: SimMIM input, masked, reconstruction; segment image, truth, prediction;
  # rows stacked with 4-px separators.
  for stage in ("pretrain", "segment"):
    png = Image.open(path / stage / "example_0.png")
    assert png.size == (32, 3 * 32 + 2 * 4) and png.mode == "RGB"
    assert events[f"{stage}/pictures/example_0"] == [(3, (104, 32))]
    assert len(glob.glob(str(path / stage / "example_*.png"))) == 4


def test_hparams_run_per_stage(workdir):
  path, _ = workdir
  for stage in ("pretrain", "segment"):
    hp = path / "tensorboard" / "hparams" / stage
    tags = read_events(hp)
    assert "hparam/loss" in tags, sorted(tags)
  assert "hparam/miou" in read_events(path / "tensorboard" / "hparams" / "segment")


def test_profile_steps_write_a_trace(workdir):
  path, lines = workdir
  traces = glob.glob(str(path / "profile" / "plugins" / "profile" / "*" / "*.xplane.pb"))
  assert len(traces) == 1, os.listdir(path / "profile")
  assert any(line.startswith("profile of train steps 2-3: ") for line in lines)


def test_bad_profile_steps_is_one_error_line_exit_2(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "ssl_seg.main", "--config=configs/vit_tiny_synthetic.py",
       f"--workdir={tmp_path}", "--profile_steps=3,1"], cwd=ROOT,
      env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      "error: --profile_steps must be N,M with 1 <= N <= M (1-based train steps), got '3,1'"]
  assert not os.listdir(tmp_path)
