"""SIGTERM / SIGINT as a request to stop at the next step boundary, with a checkpoint.

A scheduler preempts with SIGTERM; a person presses Ctrl-C. Either sets a flag that the train
loop reads between steps, so it can save the current step and exit (train.Preempted, exit 75)
instead of losing the steps since the last checkpoint. A second Ctrl-C interrupts at once.
"""

import contextlib
import signal
import threading

# The exit status of a run stopped this way: sysexits' EX_TEMPFAIL, "try again later"; a
# scheduler can requeue on it, and launch/sweep.py reruns it to resume.
EXIT_CODE = 75


@contextlib.contextmanager
def stop_on_signals():
  """Yields {"signal": None}; SIGTERM or a first SIGINT sets "signal" to the signal's name.

  Handlers exist only in the main thread (elsewhere no flag is ever set); the previous
  handlers come back on exit.
  """
  stop = {"signal": None}
  if threading.current_thread() is not threading.main_thread():
    yield stop
    return

  def handler(signum, frame):
    del frame
    stop["signal"] = signal.Signals(signum).name
    if signum == signal.SIGINT:
      signal.signal(signal.SIGINT, signal.default_int_handler)

  previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    yield stop
  finally:
    for s, h in previous.items():
      signal.signal(s, h)
