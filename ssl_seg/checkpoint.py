"""Orbax checkpoints per stage, exact resume, and encoder grafting with a key-and-shape report.

On disk a state is a nested dict with string keys (one level per pytree path entry), so the
format does not depend on optax/nnx container types: params, rest, opt and a small JSON meta are
separate Orbax items, and grafting reads only `params`. Restoring matches leaves by path and
raises one error listing missing keys, unexpected keys and shape mismatches.
"""

import contextlib
import errno
import json
import logging
import os
import re
import sys
import tempfile
import time

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from ssl_seg import paths, tree_paths

# A failed tensorstore read leaves futures whose errors asyncio logs, with tracebacks, when they
# are collected, and reads that finish after Orbax closed its event loop report "Event loop is
# closed" as unraisable exceptions, with tracebacks; `read_newest` reports the failure once, in
# one line. Only those two are silenced.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def _unraisable(args, default=sys.unraisablehook):
  if not (isinstance(args.exc_value, RuntimeError)
          and str(args.exc_value) == "Event loop is closed"):
    default(args)


sys.unraisablehook = _unraisable

# `params` alone is what grafting reads; everything else a resume needs is `train_state`.
ITEMS = ("params", "train_state", "meta")
TRAIN_STATE_KEYS = ("rest", "opt", "step", "bad_step", "skipped")


class CheckpointMismatchError(ValueError):
  """A checkpoint's tree does not fit the model (keys and shapes listed in the message)."""


class CheckpointSaveError(OSError):
  """Writing a checkpoint failed (disk full, ...); earlier checkpoints are left intact."""

  def __str__(self):  # The message alone, not OSError's "[Errno 28] ..." prefix.
    return self.strerror


class UnfinishedSourceError(ValueError):
  """The stage to graft from has not finished (no final eval in its newest checkpoint)."""


class CheckpointReadError(ValueError):
  """No step of a checkpoint directory can be read (truncated, corrupted, an item missing)."""


def fill(target, flat, *, what, keep_init=()):
  """Leaves of `flat` (by path) placed into the structure of `target`; strict about fit.

  Args:
    target: pytree whose structure and shapes the result takes (arrays or ShapeDtypeStructs).
    flat: {'path': array} as written by `save`.
    keep_init: path prefixes of `target` that may be absent from `flat` and keep their value.
  """
  problems = tree_paths.mismatches(target, flat, keep_init)
  if problems:
    raise CheckpointMismatchError("\n".join(
        [f"checkpoint does not fit the model ({what}):", *problems]))
  return tree_paths.place(target, flat)


def manager(stage_dir, keep=3):
  """Orbax manager for WORKDIR/<stage>/checkpoints (atomic writes, keeps the last `keep`)."""
  # Handlers named up front (not just item names) so a fresh manager can read item metadata.
  return ocp.CheckpointManager(
      os.path.abspath(paths.checkpoints_dir(stage_dir)),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
      item_handlers={"params": ocp.StandardCheckpointHandler(),
                     "train_state": ocp.StandardCheckpointHandler(),
                     "meta": ocp.JsonCheckpointHandler()})


def _jsonable(x):
  """`x` with numpy scalars as Python numbers and dict keys as strings: what JSON takes."""
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, np.generic):
    return x.item()
  return x


def save(mngr, state, meta):
  """Saves the state at its step; `meta`: a dict (epoch, stage, config...) made JSON-able.

  Orbax writes into a temporary directory and renames it when complete, and prunes old steps
  only after that, so a failed write never replaces or removes the last good checkpoint.
  """
  step = int(state["step"])
  train_state = tree_paths.nest(tree_paths.flatten({k: state[k] for k in TRAIN_STATE_KEYS}))
  with _stderr_kept_unless_failed() as failed:
    try:
      mngr.save(step, force=True, args=ocp.args.Composite(
          params=ocp.args.StandardSave(tree_paths.nest(tree_paths.flatten(state["params"]))),
          train_state=ocp.args.StandardSave(train_state),
          meta=ocp.args.JsonSave(_jsonable(meta))))
      mngr.wait_until_finished()
    except (OSError, ValueError) as e:  # Tensorstore reports a full disk as a ValueError.
      failed.append(e)
      try:
        mngr.close()  # Lets Orbax's other writer threads fail now, while stderr is held.
      except Exception:  # noqa: BLE001 - they fail for the reason reported below.
        pass
  if failed:
    e = failed[0]
    errno_ = getattr(e, "errno", None) or (errno.ENOSPC if "No space left" in str(e) else None)
    reason = e.strerror if getattr(e, "strerror", None) else (
        os.strerror(errno_) if errno_ else str(e).split(" [")[0][:200])
    good = _complete_steps(mngr.directory)
    kept = (f"the last good checkpoint (step {good[-1]}) is intact" if good
            else "no earlier checkpoint exists")
    raise CheckpointSaveError(
        errno_, f"could not write checkpoint step {step} to {mngr.directory} ({reason}); "
        f"{kept}; free disk space (or fix permissions) and run the same command again to "
        "resume") from e


@contextlib.contextmanager
def _stderr_kept_unless_failed():
  """Holds file descriptor 2 (where Orbax, tensorstore and absl write) in a temporary file
  during a save, and passes it on unless the save failed: a failed save makes Orbax's threads
  print hundreds of lines of tracebacks that would bury the one-line error raised instead.
  Yields a list; the caller appends the exception when the save failed."""
  failed = []
  if os.environ.get("SSL_SEG_DEBUG"):
    yield failed
    return
  sys.stderr.flush()
  held, saved = tempfile.TemporaryFile(), os.dup(2)
  os.dup2(held.fileno(), 2)
  try:
    yield failed
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    if not failed:
      held.seek(0)
      sys.stderr.write(held.read().decode(errors="replace"))
      sys.stderr.flush()
    held.close()


def _complete_steps(directory):
  """Steps with a finished (renamed) checkpoint directory; temporary ones are not counted."""
  try:
    names = os.listdir(directory)
  except OSError:
    return []
  return sorted(int(n) for n in names if n.isdigit())


def _restore_items(mngr, step, names):
  """Items restored onto this process's first device, whatever topology saved them (1 or N
  devices, replicated or FSDP); the caller re-shards them for the current mesh."""
  metadata = mngr.item_metadata(step)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  args = {}
  for n in names:
    if n == "meta":
      args[n] = ocp.args.JsonRestore()
    else:
      target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                            dict(metadata[n]))
      args[n] = ocp.args.StandardRestore(target)
  return mngr.restore(step, args=ocp.args.Composite(**args))


def _why(e, step_dir):
  """Why a step cannot be read, in one line: a missing item, a metadata file that is not
  JSON (Orbax's own error names neither), else the first line of the error."""
  missing = [n for n in ITEMS if not os.path.isdir(os.path.join(step_dir, n))]
  if missing:
    return f"its {', '.join(map(repr, missing))} item is missing"
  for root, _, files in sorted(os.walk(step_dir)):
    for name in sorted(set(files) & {"_METADATA", "_CHECKPOINT_METADATA", "metadata"}):
      try:
        with open(os.path.join(root, name), "rb") as f:
          json.loads(f.read())
      except (OSError, ValueError):
        return f"{os.path.join(root, name)} is not valid JSON"
  # Tensorstore appends its whole spec; the part before it names the file and the fault.
  first = (str(e).split(" [tensorstore_spec")[0].strip().splitlines() or [""])[0]
  files = re.findall(r'local file "([^"]+)"', first)
  if files:  # "...: Error reading ... of local file "F": <the fault>": the file and the fault.
    return f"{files[-1]}: {first.rsplit(': ', 1)[-1]}"
  return f"{type(e).__name__}: {first[:300]}"


def read_newest(mngr, read, *, log=None):
  """(step, read(step)) for the newest step `read` succeeds on; (None, None) if no steps.

  A step that cannot be read (truncated or corrupted files, a missing item) gives way to the
  one before it, with a warning through `log`; if none can be read, CheckpointReadError.
  CheckpointMismatchError (the model does not fit) is raised at once: older steps of the same
  stage would not fit either.
  """
  broken = []
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      return_value = read(step)
    except CheckpointMismatchError:
      raise
    except Exception as e:  # Orbax and tensorstore raise ValueError, KeyError, OSError...
      why = _why(e, os.path.join(str(mngr.directory), str(step)))
      broken.append(f"step {step} cannot be read ({why})")
      continue
    if broken and log:
      log(f"warning: {'; '.join(broken)}; using step {step} of {mngr.directory}, the newest "
          "that can be read")
    return step, return_value
  if broken:
    raise CheckpointReadError(f"no readable checkpoint in {mngr.directory}: {'; '.join(broken)}"
                              "; delete the broken step directories and run the stage that "
                              "wrote them again")
  return None, None


def set_aside_after(mngr, step):
  """Moves steps newer than `step` (unreadable ones a resume skipped) out of the manager's
  directory into <stage>/broken_checkpoints/, kept for a person, so that the resumed run can write
  those steps again; returns the paths."""
  moved = []
  for s in mngr.all_steps():
    if s > step:
      dest = os.path.join(paths.broken_checkpoints_dir(os.path.dirname(str(mngr.directory))),
                          f"{s}-{time.strftime('%Y%m%d-%H%M%S')}")
      os.makedirs(os.path.dirname(dest), exist_ok=True)
      os.replace(os.path.join(str(mngr.directory), str(s)), dest)
      moved.append(dest)
  mngr.reload()
  return moved


def restore_state(mngr, target_state, step=None, *, log=None):
  """(state, meta) from the newest readable (or the given) step, shaped like `target_state`."""
  if step is None:
    step, got = read_newest(mngr, lambda s: _restore_items(mngr, s, ITEMS), log=log)
  else:
    got = _restore_items(mngr, step, ITEMS)
  state = {"params": fill(target_state["params"], tree_paths.flatten(got["params"]), what="params")}
  rest = {k: target_state[k] for k in TRAIN_STATE_KEYS}
  state.update(fill(rest, tree_paths.flatten(got["train_state"]), what="train state"))
  return state, dict(got["meta"])


def read_meta(mngr, step=None, *, log=None):
  """The JSON meta of the newest readable (or the given) step."""
  if step is None:
    step, got = read_newest(mngr, lambda s: _restore_items(mngr, s, ("meta",)), log=log)
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {mngr.directory}")
    return dict(got["meta"])
  return dict(_restore_items(mngr, step, ("meta",))["meta"])


def stage_config(mngr, step):
  """The stage config (a ConfigDict) saved in `step`'s meta item; ValueError without one."""
  meta = read_meta(mngr, step)
  if "config" not in meta:
    raise ValueError(f"checkpoint in {os.path.dirname(os.fspath(mngr.directory))} has no stage "
                     "config in its meta item")
  return ml_collections.ConfigDict(meta["config"])


def saved_config(stage_dir):
  """The stage config the newest readable checkpoint of `stage_dir` was trained with, or None
  (no checkpoint, none readable, or one saved without its config)."""
  if not _complete_steps(paths.checkpoints_dir(stage_dir)):
    return None
  mngr = manager(stage_dir)
  try:
    return read_meta(mngr).get("config")
  except CheckpointReadError:
    return None  # The stage's own run reports it.
  finally:
    mngr.close()


def restore_params(mngr, target_params, step=None):
  """Only the `params` item of the latest (or given) step, shaped like `target_params`.

  Inference needs neither the optimizer state nor its shapes; `target_params` may hold
  ShapeDtypeStructs (e.g. from `nnx.eval_shape`).
  """
  step = mngr.latest_step() if step is None else step
  saved = _restore_items(mngr, step, ("params",))["params"]
  return fill(target_params, tree_paths.flatten(saved), what=f"params of step {step}")


def graft(params, source_stage_dir, subtrees=("encoder",), *, allow_partial=False, log=None,
          partial_flag="init_from.allow_partial"):
  """Fresh `params` with the named subtrees replaced by those of a finished stage, bit for bit.

  Every leaf under `subtrees` must be present in the source with the same shape; leaves
  outside them (the new heads) keep their fresh initialisation. The source's newest readable
  step is used and named through `log`; a stage that did not finish (no final eval in its
  meta) is refused unless `allow_partial` (the error names the setting as `partial_flag`).
  """
  ckpt_dir = paths.checkpoints_dir(source_stage_dir)
  hint = ("run that stage first (same workdir) or point init_from.stage at a stage directory "
          "that holds checkpoints/")
  if not os.path.isdir(ckpt_dir):
    raise FileNotFoundError(f"no checkpoint to graft from in {ckpt_dir}: the directory does not "
                            f"exist; {hint}")
  src = manager(source_stage_dir)
  try:
    if src.latest_step() is None:
      raise FileNotFoundError(f"no checkpoint to graft from in {ckpt_dir}; {hint}")
    step, got = read_newest(src, lambda s: _restore_items(src, s, ("meta", "params")), log=log)
  finally:
    src.close()
  meta, saved = dict(got["meta"]), tree_paths.flatten(got["params"])
  finished = "final_eval" in meta
  if not finished and not allow_partial:
    epochs = (meta.get("config") or {}).get("epochs", "?")
    raise UnfinishedSourceError(
        f"cannot graft from {source_stage_dir}: its newest readable checkpoint (step {step}, epoch "
        f"{meta.get('epoch', '?')} of {epochs}) is from a stage that did not finish; run that "
        f"stage to the end first, or set {partial_flag}=True to graft it anyway")
  prefixes = tuple(s + "/" for s in subtrees)
  chosen = {k: v for k, v in saved.items() if k.startswith(prefixes)}
  if not chosen:
    raise CheckpointMismatchError(f"checkpoint in {source_stage_dir} has no subtree "
                                  f"{list(subtrees)}; top-level keys: "
                                  f"{sorted({k.split('/')[0] for k in saved})}")
  own = tree_paths.flatten(params)
  keep = [k for k in own if not k.startswith(prefixes)]
  grafted = fill(params, chosen, what=f"graft {list(subtrees)} from {source_stage_dir}",
                 keep_init=keep)
  if log:
    log(f"grafted {list(subtrees)} from {source_stage_dir} (step {step}, "
        f"{'finished' if finished else 'unfinished: init_from.allow_partial=True'})")
  return grafted


def stage_dir_of(path):
  """A stage directory from itself or its checkpoints/ directory; a clear error otherwise."""
  path = os.path.abspath(os.fspath(path))
  if os.path.basename(path) == paths.CHECKPOINTS and os.path.isdir(path):
    path = os.path.dirname(path)
  ckpt = paths.checkpoints_dir(path)
  if not os.path.isdir(ckpt) or not any(n.isdigit() for n in os.listdir(ckpt)):
    raise FileNotFoundError(f"no checkpoint in {path}: expected a stage directory of a workdir "
                            "(e.g. runs/demo/finetune_warm) or its checkpoints/ directory")
  return path
