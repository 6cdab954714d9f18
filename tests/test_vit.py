"""ViT variants (issue 19): big_vision names, the study's default, explicit size overrides."""

import os

import pytest
from flax import nnx

from configs import common, vit_paper, vit_tiny_synthetic
from ssl_seg import config_utils, models, tasks
from ssl_seg.models import heads, vit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "vit_tiny_synthetic.py")


def _encoder_params(size):
  enc = nnx.eval_shape(lambda: vit.ViTEncoder(size, rngs=nnx.Rngs(0)))
  return heads.param_count(enc)


@pytest.mark.parametrize("name, dim, depth, heads_, mlp", [
    ("Ti/16", 192, 12, 3, 768), ("S/16", 384, 12, 6, 1536), ("B/16", 768, 12, 12, 3072)])
def test_big_vision_names_decode_to_their_widths(name, dim, depth, heads_, mlp):
  size = vit.decode_variant(name)
  assert (size.dim, size.depth, size.heads, size.mlp_dim, size.patch_size) == (
      dim, depth, heads_, mlp, 16)
  assert size.head_dim * size.heads == dim


def test_patch_after_the_slash_and_the_studys_names():
  assert vit.decode_variant("B/8").patch_size == 8
  assert vit.decode_variant("B/8").dim == 768
  assert vit.decode_variant("paper") == vit.VARIANTS["paper"]
  assert vit.decode_variant("tiny/4").patch_size == 4
  assert vit.decode_variant("tiny/4").dim == 32
  # The study's ViT stays the default of every ViT model config.
  assert common.vit_model().variant == "paper"
  assert vit_paper.get_config().stages.segment.model.variant == "paper"


def test_s16_parameter_count_is_big_visions_up_to_the_studys_layout():
  # big_vision's ViT-S/16 encoder at 224 px: 21,665,664 params. The study's layout adds two
  # patch-embedding LayerNorms (2 x 768 + 2 x 384) and has no qkv bias (12 x 1152).
  assert _encoder_params(vit.decode_variant("S/16")) == 21_665_664 + 2_304 - 13_824


@pytest.mark.parametrize("bad", ["X/16", "S/", "S/abc", "huge", "S/0"])
def test_unknown_variant_names_the_choices(bad):
  with pytest.raises(ValueError, match="unknown ViT variant.*S/16"):
    vit.decode_variant(bad)


def _built_size(overrides, stage="segment"):
  cfg = config_utils.load_config(TINY, overrides)
  config_utils.validate(cfg)
  st = cfg.stages[stage]
  model = nnx.eval_shape(lambda: tasks.make_task(st).build_model(nnx.Rngs(params=0)))
  return model.encoder.size, models.describe_overrides(st.model)


def test_variant_override_on_the_tiny_config_is_not_ignored():
  size, note = _built_size([])
  assert (size.dim, size.depth, size.patch_size) == (32, 2, 8) and note is None
  size, note = _built_size(["--config.stages.segment.model.variant=paper"])
  assert (size.dim, size.depth, size.heads, size.patch_size) == (128, 12, 8, 16)
  assert size.img_size == 32  # The config's image size (its data's) stays.
  assert note == "ViT variant 'paper' with model.img_size=32 (variant: 128)"


def test_explicit_size_field_overrides_the_variant_and_is_named():
  size, note = _built_size(["--config.stages.segment.model.variant=S/16",
                            "--config.stages.segment.model.depth=1"])
  assert (size.dim, size.depth, size.heads) == (384, 1, 6)
  assert "model.depth=1 (variant: 12)" in note


def test_bad_variant_and_image_size_mismatch_are_config_errors():
  cfg = vit_tiny_synthetic.get_config()
  cfg.stages.segment.model.variant = "Q/16"
  with pytest.raises(config_utils.ConfigError, match=r"stages.segment.model.variant: unknown"):
    config_utils.validate(cfg)
  cfg = vit_tiny_synthetic.get_config()
  cfg.stages.segment.model.img_size = 64
  with pytest.raises(config_utils.ConfigError, match=r"stages.segment.data.size: 32 px images "
                     r"for a ViT of model.img_size 64"):
    config_utils.validate(cfg)


def test_a_stage_saved_with_copied_sizes_is_the_same_config():
  # Checkpoints written before issue 19 carry the tiny sizes copied into the config.
  st = vit_tiny_synthetic.get_config().stages.segment.to_dict()
  saved = {**st, "model": {**st["model"], **vars(vit.VARIANTS["tiny"])}}
  assert config_utils.config_changes(saved, st) == []
  saved["model"]["dim"] = 48
  assert config_utils.config_changes(saved, st) == ["model.dim: 48 -> 32"]


def test_smoke_argument_is_the_test_sized_run():
  cfg = vit_tiny_synthetic.get_config("smoke")
  for st in cfg.stages.values():
    assert (st.data.num_train, st.data.num_eval, st.batch_size, st.epochs) == (16, 8, 8, 1)
  assert vit_tiny_synthetic.get_config().stages.pretrain.data.num_train == 2048
