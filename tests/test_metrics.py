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
