"""WORKDIR/metrics.jsonl, a run's results: the one module that writes, truncates and reads it.

One flat JSON object per line ({"stage", "task", "seed", "split", "epoch", "step", metrics...}),
appended whole, one write per record, so a kill can tear only the last line. A resumed stage
first drops its records past the checkpoint it resumes from: they are written again, equal.
Rewrites go through a temporary file and a rename, so a kill leaves the old or the new file.
"""

import json
import os

import jax
import numpy as np

from ssl_seg import paths

FILENAME = "metrics.jsonl"
_TEXT_KEYS = ("stage", "task", "split")  # The only non-numeric fields of a record.
_MAX_WARNINGS = 5  # Per file, in `read_rows`; the rest are counted.


def path(workdir):
  return os.path.join(workdir, FILENAME)


class Writer:
  """Appends records to WORKDIR/metrics.jsonl and mirrors scalars to TensorBoard.

  In a multi-host run every process computes the same records; only process 0 writes them.
  """

  def __init__(self, workdir):
    self.path = path(workdir)
    self._tb_dir = os.path.join(workdir, paths.TENSORBOARD)
    self._tb = None
    self.enabled = jax.process_index() == 0

  def _board(self):
    if self._tb is None:
      import tensorboardX  # Imported lazily: only the writer needs it.
      self._tb = tensorboardX.SummaryWriter(self._tb_dir)
    return self._tb

  def write(self, record):
    if not self.enabled:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    prefix = f"{record['stage']}/{record['split']}/"
    for k, v in record.items():
      if isinstance(v, float) and k not in ("epoch", "step", "seed"):
        self._board().add_scalar(prefix + k, v, record["step"])

  def scalars(self, prefix, values, step):
    """TensorBoard only (per-step curves; metrics.jsonl keeps one record per epoch)."""
    if self.enabled:
      for k, v in values.items():
        self._board().add_scalar(prefix + k, float(v), step)

  def image(self, tag, image, step):
    """A uint8 [H, W, 3] picture into TensorBoard's Images tab."""
    if self.enabled:
      self._board().add_image(tag, np.asarray(image), step, dataformats="HWC")

  def hparams(self, name, hparams, final):
    """A stage's settings and final metrics for TensorBoard's HParams tab (run `name`)."""
    if self.enabled:
      self._board().add_hparams(hparams, {f"hparam/{k}": v for k, v in final.items()},
                                name=name)

  def close(self):
    if self._tb is not None:
      self._tb.close()


def _lines(file):
  if not os.path.exists(file):
    return []
  with open(file) as f:
    return f.readlines()


def _records(file, lines):
  """(line, record) for every non-blank line; a line that is not a JSON object is an error
  that names the file and line."""
  out = []
  for i, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
      if not isinstance(record, dict):
        raise ValueError(f"a JSON {type(record).__name__}, not an object")
    except ValueError as e:
      raise ValueError(f"{file}, line {i}: not a JSON record ({e}); delete or fix that line "
                       "and run the same command again") from None
    out.append((line, record))
  return out


def read(file):
  """Every record of a file this run wrote; ValueError naming the line of a bad one."""
  with open(file) as f:
    lines = f.readlines()
  return [record for _, record in _records(file, lines)]


def _rewrite(file, lines):
  with open(file + ".tmp", "w") as f:
    f.writelines(lines)
  os.replace(file + ".tmp", file)


def drop_torn_record(file, log=print):
  """Drops a last line without its newline: a write a kill interrupted, which would otherwise
  block every resume, and which the next record would be appended to."""
  lines = _lines(file)
  if lines and not lines[-1].endswith("\n"):
    log(f"warning: {file}, line {len(lines)}: dropped a torn last record (a write cut short by "
        f"a kill; the resumed run writes it again): {lines[-1][:60]!r}")
    _rewrite(file, lines[:-1])


def drop_records_after(file, stage_name, step):
  """Rewrites the file without `stage_name`'s records past `step` (a resume redoes them)."""
  records = _records(file, _lines(file))
  keep = [line for line, r in records if not (r.get("stage") == stage_name
                                              and r.get("step", 0) > step)]
  if len(keep) != len(records):
    _rewrite(file, keep)


def _stage_of(line):
  try:
    return json.loads(line).get("stage")
  except (ValueError, AttributeError):
    return None  # A torn or foreign line stays; the run reports it.


def move_stages(file, dest, stages):
  """Copies the whole file to `dest`, then keeps in it only the records of other stages."""
  if not os.path.exists(file):
    return
  lines = _lines(file)
  with open(dest, "w") as f:
    f.writelines(lines)
  _rewrite(file, [line for line in lines if _stage_of(line) not in stages])


def _row_problem(row):
  if not isinstance(row, dict):
    return f"is a JSON {type(row).__name__}, not an object"
  for key in ("stage", "split"):
    if not isinstance(row.get(key), str):
      return f"has no text field {key!r}"
  if row["split"] == "eval" and (isinstance(row.get("epoch"), bool)
                                 or not isinstance(row.get("epoch"), int)):
    return f"has epoch {row.get('epoch')!r}, not an integer"
  return None


def read_rows(file, warnings=None):
  """Well-formed records of a file any run may still be writing (reports over many runs);
  `warnings` gets one line per bad line or value, which is skipped instead of raising."""
  rows, problems = [], []
  with open(file, encoding="utf-8", errors="replace") as f:
    lines = f.readlines()
  for i, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except ValueError as e:
      torn = i == len(lines) and not line.endswith("\n")
      problems.append((i, "is cut short (a run still writing, or killed mid-write); skipped"
                       if torn else f"is not JSON ({e}); skipped"))
      continue
    problem = _row_problem(row)
    if problem:
      problems.append((i, f"{problem}; skipped"))
      continue
    if row["split"] == "eval":
      for k, v in list(row.items()):
        if k not in _TEXT_KEYS and (isinstance(v, bool) or not isinstance(v, (int, float))):
          problems.append((i, f"{k!r} is {type(v).__name__} {json.dumps(v)[:40]}, not a "
                           "number; ignored"))
          del row[k]
    rows.append(row)
  if warnings is not None:
    warnings += [f"warning: {file}:{i}: line {i} {why}" for i, why in problems[:_MAX_WARNINGS]]
    if len(problems) > _MAX_WARNINGS:
      warnings.append(f"warning: {file}: {len(problems) - _MAX_WARNINGS} more bad lines")
  return rows
