"""Golden numbers: three train steps of every task on one fixed batch, pinned (nanodo's
`test_train_step`). A change that shifts numerics (init, masking, dropout, loss, optimizer)
fails here even when every relation-style test still passes; if the shift is intended, rerun
and update the numbers in the same commit, saying why.

The tasks' heads start at zero, so the first loss alone is often log(K) whatever the encoder
does; the first step's gradient norm pins the init and the forward pass, and the third step's
loss (same batch, same key) pins the updates: the optimizer, its schedule and learning rate.
Checked to fail on init seed 0 -> 1 and on lr x 1.01, every task. The numbers are CPU's (the
suite runs there); with XLA's optimizations on or off (conftest) they agree to ~1e-7."""

import jax
import numpy as np
import pytest

from configs import welllog_demo
from ssl_seg import state as state_lib, step as step_lib, tasks
from ssl_seg.data import sources

# task: (config, stage, {metric of step 1: value, "loss_3": the loss of step 3}), from CPU.
GOLDEN = {
    "mim": ("vit", "pretrain", {
        "loss": 1.0891400575637817, "grad_norm": 2.3139452934265137,
        "loss_3": 0.9660455584526062}),
    "classify": ("vit", "classify", {
        "loss": 1.7917594909667969, "acc": 0.25, "grad_norm": 1.5945723056793213,
        "loss_3": 1.7721929550170898}),
    "segment": ("vit", "segment", {
        "loss": 1.0986123085021973, "pixel_acc": 0.1031494140625,
        "grad_norm": 0.21599404513835907, "loss_3": 1.0519535541534424}),
    "denoise": ("welllog", "pretrain", {
        "loss": 0.44988128542900085, "identity_loss": 0.23446613550186157,
        "grad_norm": 1.3749021291732788, "loss_3": 0.44169867038726807}),
    "curve_segment": ("welllog", "finetune_cold", {
        "loss": 1.098809838294983, "grad_norm": 0.12966394424438477,
        "loss_3": 1.098182201385498}),
}


def _stage(tiny_config, which, name):
  if which == "vit":
    return tiny_config.stages[name]
  cfg = welllog_demo.get_config("variant=tiny,scale=0.02,labels=6,crop=64,batch=4")
  stage = cfg.stages[name]
  stage.data.height, stage.data.min_width, stage.data.max_width = 32, 64, 320
  return stage


@pytest.mark.parametrize("task_name", sorted(GOLDEN))
def test_three_train_steps_give_the_pinned_numbers(tiny_config, task_name):
  which, name, want = GOLDEN[task_name]
  stage = _stage(tiny_config, which, name)
  assert stage.task == task_name
  built = state_lib.build(stage, 10, 100, seed=0)
  task, graphdef, tx, state = built.task, built.graphdef, built.tx, built.state()
  batch = sources.stage_data(stage, tasks.batch_keys(stage.task)).train[0]
  train_step = step_lib.make_train_step(graphdef, tx, task.loss_fn)
  state, first = train_step(state, batch, jax.random.key(0))
  for _ in range(2):  # Warmup starts at lr 0: the second update is the first that moves.
    state, later = train_step(state, batch, jax.random.key(0))
  got = {k: float(v) for k, v in jax.device_get(first).items()}
  got["loss_3"] = float(later["loss"])
  print(task_name, {k: repr(got[k]) for k in want})  # The values to pin, shown on failure.
  for k, v in want.items():
    np.testing.assert_allclose(got[k], v, rtol=1e-6, err_msg=f"{task_name}: {k}")
