"""Command-line pieces shared by `ssl_seg.predict` and `ssl_seg.evaluate`, which run the same
windowed segmenter and curve extraction over a set of scans."""

import os
import sys
import tempfile

from absl import flags

from ssl_seg.digitizer import resolution as resolution_lib, scans, segmenter

# --test-time-flip: stage = what the checkpoint's stage evaluated with (`test_time_flip`).
TEST_TIME_FLIP = {"stage": None, "on": True, "off": False}


def flag(name):
  return flags.FLAGS[name].value


def define_flags():
  """How the segmenter runs over scans; defined only when a command runs (see its main)."""
  flags.DEFINE_enum("depth-axis", "auto", ["auto", "vertical", "horizontal"],
                    "Where depth runs; auto: vertical when the image is taller than wide.")
  flags.DEFINE_integer("max-gap", 8, "Bridge gaps up to this many px (0: never).")
  flags.DEFINE_integer("window", 1024, "Window width in model pixels (multiple of 32).")
  flags.DEFINE_integer("overlap", 128, "Overlap of neighbouring windows, px (across the value "
                       "axis at most a quarter of the training height).")
  # Default height: every number in the README and every test was made so (`resolution`).
  flags.DEFINE_enum("resolution", "height", list(resolution_lib.MODES), "Scale of each track "
                    "for the model. height: across the value axis to the training height (e.g. "
                    "128 px); stroke: so the curves' strokes are as wide as in training "
                    f"({resolution_lib.TRAIN_STROKE_PX:g} px), from --px-per-stroke or estimated "
                    "per scan; a track taller than the training height is tiled.")
  define_aliased(flags.DEFINE_float, "px-per-stroke", None, "With --resolution=stroke: the "
                 "curves' stroke width in the scan, px (default: estimated from each scan, and a "
                 "line says what was found).")
  define_aliased(flags.DEFINE_integer, "target-height", None, "Scale every track to this many "
                 "px across the value axis (overrides --resolution).")
  flags.register_multi_flags_validator(["resolution", "px-per-stroke", "target-height"],
                                       _check_resolution)
  flags.DEFINE_integer("batch-size", 4, "Windows per device batch.")
  define_aliased(flags.DEFINE_enum, "test-time-flip", "stage", list(TEST_TIME_FLIP),
                 "Average the logits with those of each window reversed along depth (two "
                 "forward passes). stage: as the checkpoint's stage evaluated (its "
                 "test_time_flip); on / off.")
  flags.DEFINE_multi_string("track", [], "X0:X1 span of one track across the value axis "
                            "in original pixels (repeatable; default: the whole image, or "
                            "see --track-detect).")
  # Off by default: on logs rendered from LAS files it split or dropped tracks in 3 of 16 scans
  # and cut the curves there (README, "Digitize").
  define_aliased(flags.DEFINE_bool, "track-detect", False, "Where no --track (or layout span) "
                 "gives the tracks, find them from each scan's long border lines and print what "
                 "was found (default off: one track over the whole image).")
  define_aliased(flags.DEFINE_integer, "max-pixels", scans.DEFAULT_MAX_PIXELS, "Refuse scans "
                 "whose header claims more pixels than this (0: no cap), before decoding them.",
                 lower_bound=0)


def define_aliased(define, name, *args, **kwargs):
  """`define(name, ...)` and the underscore spelling of `name`: absl treats the two as different
  names, and users type either."""
  define(name, *args, **kwargs)
  flags.DEFINE_alias(name.replace("-", "_"), name)


def _check_resolution(values):
  """absl validator: the resolution flags make a `Resolution` (one `error:` line if not)."""
  try:
    _resolution(values)
  except ValueError as e:
    raise flags.ValidationError(str(e)) from None
  return True


def _resolution(values):
  return resolution_lib.Resolution(values["resolution"], values["px-per-stroke"],
                                   values["target-height"])


def require_flags(*names):
  for name in names:
    if not flag(name):
      raise ValueError(f"--{name} is required")


def writable_dir(path, flag_name):
  """`path`, a folder made if missing and written to once: checked before any scan is read,
  so a bad output path fails in a second, not after the work (ValueError naming the flag)."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise ValueError(f"{flag_name} {path} is a file, not a folder; choose a folder")
  why = _cannot_write(path, make=True)
  if why:
    raise ValueError(f"{flag_name} {path}: cannot write there ({why}); choose a writable "
                     "folder")
  return path


def writable_file(path, flag_name):
  """`path`, a file whose folder exists and can be written (see `writable_dir`)."""
  folder = os.path.dirname(os.path.abspath(path))
  if os.path.isdir(path):
    raise ValueError(f"{flag_name} {path} is a folder; give a file name, e.g. {path}/"
                     "metrics.json")
  if not os.path.isdir(folder):
    raise ValueError(f"{flag_name} {path}: folder {folder} does not exist; create it or "
                     "choose another path")
  why = _cannot_write(folder)
  if why:
    raise ValueError(f"{flag_name} {path}: cannot write in {folder} ({why}); choose a "
                     "writable path")
  return path


def _cannot_write(folder, make=False):
  """Why a file cannot be made in `folder` (made first where `make`), or None where it can."""
  try:
    if make:
      os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
      pass
  except OSError as e:
    return e.strerror or e
  return None


def load_from_flags(checkpoint_dir):
  """`load` with the window, overlap, batch size and resolution of the command line."""
  names = ("resolution", "px-per-stroke", "target-height")
  return segmenter.load(checkpoint_dir, window=flag("window"), overlap=flag("overlap"),
                        batch_size=flag("batch-size"), log=lambda msg: print(msg, file=sys.stderr),
                        resolution=_resolution({n: flag(n) for n in names}),
                        test_time_flip=TEST_TIME_FLIP[flag("test-time-flip")])
