"""--profile_steps=N,M: a `jax.profiler` trace of train steps N..M into WORKDIR/profile.

Steps are 1-based stage steps (the `step` of metrics.jsonl) of the first stage that runs step
N; later stages are not traced. Open the trace with TensorBoard's profile plugin
(`tensorboard --logdir WORKDIR/profile`) or Perfetto (the *.trace.json.gz beside it).
"""

import jax


def parse(text):
  """'N,M' -> (N, M) with 1 <= N <= M; '' -> None; ValueError naming the flag otherwise."""
  if not text:
    return None
  parts = text.split(",")
  try:
    first, last = (int(p) for p in parts) if len(parts) == 2 else (int(parts[0]),) * 2
  except ValueError:
    first = last = 0
  if not 1 <= first <= last:
    raise ValueError(f"--profile_steps must be N,M with 1 <= N <= M (1-based train steps), got "
                     f"{text!r}")
  return first, last


class Trace:
  """Starts the trace before step `first` and stops it after step `last` (or the stage's end)."""

  def __init__(self, steps, logdir, log=print):
    self.steps, self.logdir, self.log, self.active = steps, logdir, log, False

  def before(self, step):
    """`step`: the 1-based number of the train step about to run."""
    if self.steps and not self.active and step == self.steps[0]:
      jax.profiler.start_trace(self.logdir)
      self.active = True

  def after(self, step, state, end=False):
    """After a step (or with end=True, after a stage's last): stops at `last`."""
    if self.active and (end or step >= self.steps[1]):
      jax.block_until_ready(state)  # The trace holds the steps' device work, not only dispatch.
      jax.profiler.stop_trace()
      self.log(f"profile of train steps {self.steps[0]}-{step}: {self.logdir}")
      self.active, self.steps = False, None
