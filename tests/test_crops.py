"""Fixed-width training windows: fresh renders and random crops are pure functions of the step,
crops are true windows of their logs (image and mask together), and stages built on them train
on one shape while evaluating whole logs."""

import numpy as np

from configs import welllog_demo
from ssl_seg import tasks
from ssl_seg.data import crops, sources, welllog_curves, welllogs


def _logs(widths, height=32):
  return [dict(zip(("image", "seg"), welllogs.render_example(5, i, height=height, min_width=w,
                                                             max_width=w)))
          for i, w in enumerate(widths)]


def test_fresh_renders_are_new_every_row_and_step_and_repeat_exactly():
  load = crops.FreshRenders(seed=3, batch_size=4, height=32, crop_width=64, labeled=True)
  a, b = load(0), load(1)
  assert a["image"].shape == (4, 32, 64, 1) and a["seg"].shape == (4, 32, 64)
  assert a["valid_px"].all() and a["_valid"].all()
  images = np.concatenate([a["image"], b["image"]])
  assert len({img.tobytes() for img in images}) == 8  # No log twice.
  again = load(1)
  assert all(np.array_equal(b[k], again[k]) for k in b)


def test_fresh_renders_take_the_training_look_and_spikes_only_where_asked_for():
  plain = crops.FreshRenders(seed=3, batch_size=2, height=32, crop_width=64, labeled=True,
                             style=sources.train_style({"p_spikes": 0.0}))(1)
  default = crops.FreshRenders(seed=3, batch_size=2, height=32, crop_width=64, labeled=True)(1)
  assert all(np.array_equal(plain[k], default[k]) for k in plain)  # Same draws as before.
  spiky = crops.FreshRenders(seed=3, batch_size=2, height=32, crop_width=64, labeled=True,
                             style=sources.train_style({"p_spikes": 1.0}))(1)
  assert not np.array_equal(spiky["image"], plain["image"])
  flat, spiked = (welllog_curves.synthetic_curves(np.random.default_rng(0), 400, p_gap=0.0,
                                                  p_wrap=0.0, p_spikes=p) for p in (0.0, 1.0))
  moved = np.abs(spiked[0] - flat[0]) > 0  # Curve1's (curve2's later draws shift).
  assert 0 < moved.sum() <= 0.1 * 400  # A few isolated 1-3 sample excursions, the rest as is.


def test_fresh_renders_split_rows_over_processes():
  whole = crops.FreshRenders(seed=3, batch_size=4, height=32, crop_width=64, labeled=False)(2)
  parts = [crops.FreshRenders(seed=3, batch_size=4, height=32, crop_width=64, labeled=False,
                              shard_index=i, shard_count=2)(2) for i in range(2)]
  assert "seg" not in whole
  np.testing.assert_array_equal(np.concatenate([p["image"] for p in parts]), whole["image"])


def test_fresh_renders_are_windows_of_logs_as_wide_as_the_eval_logs():
  # Logs wider than the window (so a header block can be in it, as in whole eval logs) are
  # cropped; narrower ones are padded, as random crops pad them.
  load = crops.FreshRenders(seed=3, batch_size=4, height=32, crop_width=64, labeled=True,
                            min_width=40, max_width=300)
  batch = load(5)
  assert batch["image"].shape == (4, 32, 64, 1)
  for row in range(4):
    log, seg = welllogs.render_indexed(3, 5 * 4 + row, height=32, min_width=40, max_width=300)
    w = min(log.shape[1], 64)
    img = batch["image"][row, :, :w, 0]
    starts = [x0 for x0 in range(log.shape[1] - w + 1)
              if np.array_equal(log[:, x0:x0 + w], img)
              and np.array_equal(seg[:, x0:x0 + w], batch["seg"][row, :, :w])]
    assert starts, "each row must be a window of its own render, image and mask alike"
    assert batch["valid_px"][row, :, :w].all() and not batch["valid_px"][row, :, w:].any()
  widths = [welllogs.render_indexed(3, i, height=32, min_width=40, max_width=300)[0].shape[1]
            for i in range(20, 24)]
  assert max(widths) > 64 and len(set(widths)) > 1


def test_random_crops_are_windows_of_their_logs_and_cover_every_log_each_epoch():
  logs = _logs([96, 160, 64, 40])  # The last is narrower than the window: padded.
  load = crops.RandomCrops(logs, seed=0, batch_size=2, crop_width=64)
  assert load.steps_per_epoch == 2
  seen = []
  for step in range(2):
    batch = load(step)
    for row in range(2):
      w = int(batch["width"][row])
      img, seg = batch["image"][row, :, :w, 0], batch["seg"][row, :, :w]
      matches = [(i, x0) for i, log in enumerate(logs)
                 for x0 in range(log["image"].shape[1] - w + 1)
                 if np.array_equal(log["image"][:, x0:x0 + w], img)
                 and np.array_equal(log["seg"][:, x0:x0 + w], seg)]
      assert matches, "a crop must be a window of one log, image and mask alike"
      seen.append(matches[0][0])
      assert batch["valid_px"][row, :, :w].all() and not batch["valid_px"][row, :, w:].any()
      assert (batch["image"][row, :, w:] == 255).all()
  assert sorted(seen) == [0, 1, 2, 3]
  np.testing.assert_array_equal(load(3)["image"], load(3)["image"])


def test_cropped_stage_trains_on_one_shape_and_evaluates_whole_logs():
  cfg = welllog_demo.get_config("variant=tiny,scale=0.02,labels=6,crop=64,batch=2")
  for name in ("synthetic", "finetune_cold"):
    st = cfg.stages[name]
    st.data.height, st.data.min_width, st.data.max_width = 32, 64, 200
    data = sources.stage_data(st, tasks.batch_keys(st.task))
    shapes = {data.train[i]["image"].shape for i in range(data.steps_per_epoch)}
    assert shapes == {(2, 32, 64, 1)}
    widths = sorted(int(w) for b in data.eval for w, ok in zip(b["width"], b["_valid"]) if ok)
    assert len(widths) == st.data.num_eval and max(widths) > 64  # Whole logs, not windows.
