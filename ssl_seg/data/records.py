"""Decode-once caches: examples resized to uint8 arrays, stored as array_record, read by grain.

A cache is a directory `<cache_dir>/<name>-<key>/` holding `data.array_record` (one record per
example: the raw bytes of its arrays, concatenated in a fixed key order) and `meta.json` (keys,
shapes, dtypes, count, what it was built from). `key` hashes everything the content depends on
(source paths with their sizes and mtimes, image size, subset), so a changed source, size or
subset builds a new cache instead of reading a stale one. `meta.json` is written last, after
the records are renamed into place: a directory without it is an interrupted build and is
rebuilt. Reading a record is `np.frombuffer`: epochs never decode an image file again.
"""

import concurrent.futures
import hashlib
import json
import os
import shutil

import grain
import numpy as np
from array_record.python import array_record_module
from tqdm import tqdm

DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "ssl_seg", "records")
# One record per chunk: random access reads exactly one example (no chunk decompression);
# uint8 pixels compress poorly, so compression would cost CPU on every read for little disk.
_WRITER_OPTIONS = "group_size:1,uncompressed"
_FORMAT = 1


def cache_key(description) -> str:
  """Stable 16-hex-digit key of a JSON-able description of the cache's content."""
  blob = json.dumps({"format": _FORMAT, **description}, sort_keys=True, default=str)
  return hashlib.sha1(blob.encode()).hexdigest()[:16]


def file_fingerprint(paths):
  """(path, size, mtime_ns) per file: a replaced or edited file changes the cache key."""
  out = []
  for p in paths:
    st = os.stat(p)
    out.append((os.path.abspath(p), st.st_size, st.st_mtime_ns))
  return out


class RecordSource:
  """Random-access source over a cache: item i is a dict of numpy arrays (views, no copies)."""

  def __init__(self, directory, indices=None, keys=None):
    self.directory, self.keys = directory, keys
    with open(os.path.join(directory, "meta.json")) as f:
      self.meta = json.load(f)
    self._spec = [(k, tuple(s), np.dtype(d)) for k, s, d in self.meta["spec"]]
    self._offsets = np.cumsum([0] + [int(np.prod(s)) * d.itemsize for _, s, d in self._spec])
    self._records = grain.sources.ArrayRecordDataSource(
        [os.path.join(directory, "data.array_record")])
    self.indices = (np.arange(self.meta["count"]) if indices is None
                    else np.asarray(indices, np.int64))

  def __len__(self):
    return len(self.indices)

  def _decode(self, raw):
    return {k: np.frombuffer(raw, d, int(np.prod(s)), int(self._offsets[j])).reshape(s)
            for j, (k, s, d) in enumerate(self._spec) if self.keys is None or k in self.keys}

  def __getitem__(self, i):
    return self._decode(self._records[int(self.indices[i])])

  def __getitems__(self, items):
    """Batch read (grain and pipeline.collate use it): one call into array_record."""
    return [self._decode(r) for r in self._records.__getitems__(
        [int(self.indices[i]) for i in items])]

  def subset(self, indices):
    """A view on some of the examples (positions into this source); no data is copied."""
    return RecordSource(self.directory, self.indices[np.asarray(indices, np.int64)], self.keys)

  def with_keys(self, keys):
    """A view whose items hold only `keys` (a task reads only what it needs)."""
    missing = [k for k in keys if k not in self.meta["keys"]]
    if missing:
      raise ValueError(f"cache {self.directory} has no {missing}; it holds {self.meta['keys']}")
    return RecordSource(self.directory, self.indices, tuple(keys))

  def column(self, key):
    """All values of a scalar per-example field (e.g. labels), read from meta, not records."""
    if key not in self.meta["columns"]:
      raise KeyError(f"cache {self.directory} has no scalar field {key!r}")
    return np.asarray(self.meta["columns"][key])[self.indices]


def build(cache_dir, name, description, items, load_fn, *, workers=0, desc=None):
  """The RecordSource of `items` decoded by `load_fn(item) -> dict of arrays`; cached.

  `description` (JSON-able) must determine the content: its hash names the directory.
  Decoding runs in threads (PIL releases the GIL while decoding and resizing); the first error
  a `load_fn` raises (naming its file) stops the build and leaves no partial cache behind.
  """
  cache_dir = os.path.expanduser(cache_dir or DEFAULT_CACHE_DIR)
  directory = os.path.join(cache_dir, f"{name}-{cache_key(description)}")
  if os.path.exists(os.path.join(directory, "meta.json")):
    return RecordSource(directory)
  if not items:
    raise ValueError(f"{name}: no examples to cache")
  os.makedirs(cache_dir, exist_ok=True)
  tmp = f"{directory}.tmp-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  workers = workers or min(32, os.cpu_count() or 1)
  spec, notes, columns = None, {}, {}
  writer = array_record_module.ArrayRecordWriter(os.path.join(tmp, "data.array_record"),
                                                 _WRITER_OPTIONS)
  try:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      # Bounded look-ahead keeps memory flat on 200k-image builds while threads stay busy.
      results = _ordered_map(pool, load_fn, items, window=4 * workers)
      for example in tqdm(results, total=len(items), desc=desc or f"caching {name}",
                          unit="img", dynamic_ncols=True):
        note = example.pop("_note", None)
        if note:
          notes[note] = notes.get(note, 0) + 1
        arrays = [(k, np.asarray(v)) for k, v in sorted(example.items())]
        this = [(k, list(v.shape), v.dtype.str) for k, v in arrays]
        if spec is None:
          spec = this
        elif this != spec:
          raise ValueError(f"{name}: examples differ in shape or dtype ({this} vs {spec})")
        for k, v in arrays:
          if v.ndim == 0:
            columns.setdefault(k, []).append(v.item())
        writer.write(b"".join(v.tobytes() for _, v in arrays))
    writer.close()
  except BaseException:
    writer.close()
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  meta = {"count": len(items), "keys": [k for k, _, _ in spec], "spec": spec,
          "columns": columns, "notes": notes, "description": description}
  with open(os.path.join(tmp, "meta.json"), "w") as f:
    json.dump(meta, f, default=str)
  if os.path.exists(directory):  # An interrupted build (no meta.json): replace it.
    shutil.rmtree(directory)
  os.replace(tmp, directory)
  if notes:
    print(f"{name}: " + "; ".join(f"{n} ({c} files)" for n, c in sorted(notes.items())))
  return RecordSource(directory)


def _ordered_map(pool, fn, items, window):
  """pool.map with at most `window` results in flight, in order."""
  futures = []
  it = iter(items)
  for item in it:
    futures.append(pool.submit(fn, item))
    if len(futures) >= window:
      break
  while futures:
    done = futures.pop(0)
    nxt = next(it, None)
    if nxt is not None:
      futures.append(pool.submit(fn, nxt))
    try:
      yield done.result()
    except BaseException:
      for f in futures:
        f.cancel()
      raise
