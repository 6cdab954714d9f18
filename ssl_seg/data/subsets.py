"""Seeded subsets of a data set's examples: the first `count` of a seeded permutation, sorted.

One function for every data set's label budget. Budgets nest (250 within 500 ...) for one
seed and differ between seeds; which seed a source passes is its policy: rendered logs, scan
folders and synthetic shapes use the stage's seed (replicates of a budget study draw different
labels; sources.py), the natural data sets `data.seed` (replicates share the paper's splits;
natural.py).
"""

import numpy as np

LABEL_SALT = 0x1abe1  # The label-subset stream of a seed (other salts draw other subsets).


def nested_subset(n, count, seed, salt=LABEL_SALT):
  """Sorted positions of the first `count` of a seeded permutation of range(n)."""
  return np.sort(np.random.default_rng([seed, salt]).permutation(n)[:count])


def label_indices(n, num_labels, seed):
  """`nested_subset` of `num_labels` label positions; ValueError if more than `n`."""
  if num_labels > n:
    raise ValueError(f"label subset of {num_labels} requested from {n} examples")
  return nested_subset(n, num_labels, seed)
