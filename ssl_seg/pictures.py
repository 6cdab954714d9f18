"""A stage's pictures after training: its task's panels for the first eval examples, as PNGs in
the stage directory (paths.example_png) and in TensorBoard's Images tab."""

import jax
import numpy as np
from flax import nnx

from ssl_seg import paths, plots


def save(task, graphdef, state, batch, key, *, stage_dir, writer, name, max_examples=4):
  """PNGs of `batch`'s first valid examples (at most `max_examples`); returns their paths."""
  panels = jax.device_get(jax.jit(
      lambda p, r, b: task.pictures(nnx.merge(graphdef, p, r), b, key))(
          state["params"], state["rest"], batch))
  out = []
  for i in range(min(max_examples, int(np.sum(batch["_valid"])))):
    width = int(batch["width"][i]) if "width" in batch else None
    panel = {k: v[i][:, :width] for k, v in panels.items()}
    out.append(paths.example_png(stage_dir, i))
    if writer.enabled:  # Every process computes the panels (global arrays); one writes.
      picture = plots.save_panel(out[-1], panel)
      writer.image(f"{name}/pictures/example_{i}", picture, int(state["step"]))
  return out
