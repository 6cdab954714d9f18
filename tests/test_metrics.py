"""Confusion-matrix metrics against hand-computed values."""

import jax.numpy as jnp
import numpy as np

from ssl_seg import metrics


def test_confusion_matrix_and_derived_metrics_match_hand_computation():
  labels = jnp.array([[0, 0, 1, 1], [2, 2, 1, 0]])
  preds = jnp.array([[0, 1, 1, 1], [2, 0, 1, 0]])
  weights = jnp.array([[1, 1, 1, 1], [1, 1, 1, 0]])  # The last pixel is padding.
  cm = np.asarray(metrics.confusion_matrix(labels, preds, weights, 3))
  # truth 0: pred 0 once, pred 1 once; truth 1: pred 1 three times; truth 2: 2 once, 0 once.
  np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 3, 0], [1, 0, 1]])
  m = metrics.from_confusion(cm, ("a", "b", "c"))
  np.testing.assert_allclose(m["iou/a"], 1 / 3)  # tp 1, fp 1, fn 1
  np.testing.assert_allclose(m["iou/b"], 3 / 4)
  np.testing.assert_allclose(m["iou/c"], 1 / 2)
  np.testing.assert_allclose(m["miou"], (1 / 3 + 3 / 4 + 1 / 2) / 3)
  np.testing.assert_allclose(m["pixel_acc"], 5 / 7)
  np.testing.assert_allclose(m["precision/b"], 3 / 4)
  np.testing.assert_allclose(m["recall/b"], 1.0)
  np.testing.assert_allclose(m["f1/b"], 2 * 0.75 / 1.75)
  np.testing.assert_allclose(m["f1/c"], 2 * 1 * 0.5 / 1.5)


def test_absent_class_scores_zero_not_nan():
  cm = np.array([[4, 0], [0, 0]])
  m = metrics.from_confusion(cm, ("bg", "fg"))
  assert m["iou/fg"] == 0.0 and m["f1/fg"] == 0.0 and m["iou/bg"] == 1.0


def test_per_image_miou_differs_from_dataset_miou():
  labels = jnp.array([[0, 0, 0, 1], [1, 1, 1, 1]])
  preds = jnp.array([[0, 0, 0, 0], [1, 1, 1, 1]])
  w = jnp.ones_like(labels)
  per_image = np.asarray(metrics.per_image_iou(labels, preds, w, 2))
  np.testing.assert_allclose(per_image, [(3 / 4 + 0) / 2, 1.0])
  m = metrics.from_confusion(metrics.confusion_matrix(labels, preds, w, 2), ("a", "b"))
  np.testing.assert_allclose(m["miou"], (3 / 4 + 4 / 5) / 2)


def test_tolerant_f1_forgives_one_pixel_offsets_but_not_two():
  truth = np.zeros((1, 12, 20), np.int32)
  truth[0, 5, 2:18] = 1
  truth[0, 8, 2:18] = 2
  names = ("bg", "c1", "c2")
  w = jnp.ones(truth.shape)
  for shift, tolerant, strict in ((0, 1.0, 1.0), (1, 1.0, 0.0), (2, 0.0, 0.0)):
    pred = np.roll(truth, shift, axis=1)
    tol = metrics.from_tolerant_counts(metrics.tolerant_counts(truth, pred, w, 3), names)
    cm = metrics.from_confusion(metrics.confusion_matrix(truth, pred, w, 3), names)
    assert tol["f1_tol1/c1"] == tol["f1_tol1/c2"] == tolerant, shift
    assert cm["f1/c1"] == strict
  # A right pixel of the wrong class is no hit; weight 0 removes pixels from both sides.
  swapped = np.where(truth == 1, 2, np.where(truth == 2, 1, 0))
  tol = metrics.from_tolerant_counts(metrics.tolerant_counts(truth, swapped, w, 3), names)
  assert tol["f1_tol1/c1"] == 0.0
  half = metrics.tolerant_counts(truth, np.zeros_like(truth), w.at[:, :, 10:].set(0), 3)
  assert int(half[2, 1]) == 8 and int(half[0, 1]) == 0  # 8 true c1 pixels left, none found.


def test_threshold_rule_marks_dark_pixels_as_curve1_relative_to_the_paper():
  ink = np.full((2, 8, 8), 0.2, np.float32)  # Yellowed paper ...
  ink[0, 3, :] = 0.9  # ... a curve ...
  ink[0, 5, :] = 0.45  # ... and a faint grid line, not dark enough.
  ink[1] = 0.0
  ink[1, 2, 2] = 0.5  # On white paper the same ink counts.
  pred = np.asarray(metrics.threshold_rule(jnp.asarray(ink), jnp.ones(ink.shape, bool)))
  assert pred[0, 3].all() and not pred[0, 5].any() and pred[0].sum() == 8
  assert pred[1, 2, 2] == 1 and pred[1].sum() == 1
