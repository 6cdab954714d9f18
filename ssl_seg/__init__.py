"""ssl_seg: label-efficient segmentation through self-supervised pretraining (JAX/Flax)."""
