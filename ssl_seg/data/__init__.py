"""Data sources, grain pipelines, on-device augmentation and the well-log renderer."""
