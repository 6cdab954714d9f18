"""The benchmarks' JSON file (INTERFACES.md): a list of flat rows, each named by "name"."""

import json


def write_rows(path, rows):
  """Writes `rows` to `path` (the scripts' --out); does nothing when no path was given."""
  if path:
    with open(path, "w") as f:
      json.dump(rows, f, indent=2)
