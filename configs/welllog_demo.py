r"""The main job: CurveNet pretrained as a denoising autoencoder on unlabeled synthetic scans,
then fine-tuned warm (grafted encoder) and cold (random init) on a few labelled logs.

  python -m ssl_seg.main --config=configs/welllog_demo.py --workdir=runs/demo   (make demo)

About 6-8 minutes on a 2-core CPU. Prints the per-class F1 table of both fine-tunes and writes
scan / truth / prediction PNGs and an F1-per-epoch plot under WORKDIR/<stage>/.
Arguments: labels=N labelled logs (default 12, i.e. 24 annotated curves), scale=x multiplies
all data sizes and epochs (tests use a small value), variant=small|tiny|base.
"""

import dataclasses

import ml_collections

from configs import common
from ssl_seg.data import corrupt
from ssl_seg.models import curvenet


def curvenet_model(variant, dropout=0.0, dtype="float32"):
  size = curvenet.VARIANTS[variant]
  return ml_collections.ConfigDict(dict(
      name="curvenet", variant=variant, dropout=dropout, dtype=dtype, widths=size.widths,
      bottleneck_layers=size.bottleneck_layers, heads=size.heads, head_dim=size.head_dim,
      mlp_ratio=size.mlp_ratio))


def welllog_data(num_train, num_eval, *, seed, height=128, min_width=192, max_width=768):
  return ml_collections.ConfigDict(dict(
      name="welllog_synthetic", height=height, min_width=min_width, max_width=max_width,
      num_train=num_train, num_eval=num_eval, num_labels=-1, seed=seed, las_paths=(),
      las_curves=("GR", "RHOB"), num_buckets=2, max_batch_size=16))


def corruption():
  """Aggressive hiding (half the 16-px patches plus 15 % column spans), moderate noise.

  Weak corruption lets the autoencoder learn the identity (the seed's first lesson). But on
  1-2 px curves, sigma-1.5 blur plus noise 0.1 on top of the hiding also erased the visible
  curves: within the CPU demo's budget the net then only learned blank paper. Hence lighter
  noise, blur and ink dropout than `CorruptionConfig`'s defaults, and a strong ink weight.
  """
  fields = dataclasses.asdict(corrupt.CorruptionConfig())
  fields.update(noise_std=0.05, blur_sigma=1.0, ink_dropout=0.2)
  return ml_collections.ConfigDict(dict(**fields, hidden_weight=4.0, ink_weight=20.0,
                                        ink_level=0.5, loss="l1"))


def get_config(arg=None):
  arg = common.parse_arg(arg, labels=12, scale=1.0, variant="small")
  n = lambda x: max(4, int(round(x * arg.scale)))
  epochs = lambda x: max(1, int(round(x * arg.scale)))
  pretrain = common.stage(
      "denoise", model=curvenet_model(arg.variant), data=welllog_data(n(256), n(16), seed=1),
      optim=common.optim(5e-3, weight_decay=1e-4, schedule="cosine", warmup_epochs=0.5,
                         clip_norm=1.0),
      epochs=epochs(5), batch_size=2, corruption=corruption())

  def finetune(init):
    st = common.stage(
        "curve_segment", model=curvenet_model(arg.variant),
        data=welllog_data(arg.labels, n(24), seed=2),
        optim=common.optim(5e-3, weight_decay=1e-4, schedule="cosine", warmup_epochs=1,
                           clip_norm=1.0),
        epochs=epochs(40), batch_size=2, init_from=init,
        encoder_policy="lr_scale=0.5" if init else "train", frozen_epochs=2 if init else 0,
        class_names=common.WELLLOG_CLASSES, class_weights=(1.0, 10.0, 10.0), loss="ce",
        binary=False)
    st.augment.jitter = 0.2
    st.data.max_batch_size = 8  # Few labelled logs: small batches, more steps per epoch.
    st.eval.every_epochs = 4
    return st

  return common.experiment({"pretrain": pretrain, "finetune_warm": finetune("pretrain"),
                            "finetune_cold": finetune("")})
