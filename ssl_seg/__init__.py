"""ssl_seg: label-efficient segmentation through self-supervised pretraining (JAX/Flax).

Python API (README, "Recipes"): `ssl_seg.load_encoder(path)` -> (ViT encoder, params) from an
exported .npz or a stage directory; `ssl_seg.export.export_encoder(checkpoint, out)`.
Imported lazily: `import ssl_seg.<module>` stays free of JAX where the module is.
"""


def __getattr__(name):
  if name == "load_encoder":
    from ssl_seg import export
    return export.load_encoder
  raise AttributeError(f"module 'ssl_seg' has no attribute {name!r}")
