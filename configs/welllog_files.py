r"""The demo's stages on a team's own scans: denoising pretraining on a folder of unlabeled
scans, then warm and cold fine-tuning on scans with mask PNGs (class ids 0 / 1 / 2).

  python -m ssl_seg.main --config=configs/welllog_files.py:unlabeled=scans/raw,\
images=scans/traced,masks=scans/traced_masks --workdir=runs/mine

Scans are PNG / JPEG / TIFF of any size, depth along either axis (`depth_axis=auto` guesses
from the aspect ratio, as predict does), optionally several tracks (`tracks=X0:X1;X2:X3`, the
spans across the value axis, as predict's --track). Each track becomes one log, scaled to
`height` rows (data/scan_folders.py). Masks are matched by stem (NAME_mask.png or NAME.png).

Folders that mix layouts (portrait and landscape, one and two tracks, multi-page TIFFs, as
`render_las --archive` writes): `manifest=arch/manifest.csv` (several: `manifest=A.csv;B.csv`,
covering every folder given), the CSV predict's --manifest reads (file,layout[,well,page]).
Each scan or TIFF page listed is cut into the tracks of its own layout file, with its
depth_axis, by predict's code (`scan_layout.make_layout`), and its mask the same way; a layout
without spans is one track. Scans not listed take the folder-wide `depth_axis` / `tracks`
(one line counts them). A manifest that cannot be read, names a missing scan or layout file,
or lists a scan twice is one `error:` line before any training (exit 2).

Evaluation: `eval_images` / `eval_masks` if given, else `num_eval` files of each folder held
out by a seeded draw (whole files, never a track on both sides). `labels=N` fine-tunes on N of
the labelled logs (-1: all).

Stages: pretrain (denoise, real unlabeled scans) -> synthetic (supervised on fresh renders;
labels are free there; `synthetic_steps=0` skips it) -> finetune_warm (from synthetic, or from
pretrain without it) / finetune_cold (random init), all fine-tunes evaluated on the same logs.
"""

import ml_collections

from configs import common, welllog_demo

EPOCHS = 10  # Per stage: evaluations and checkpoints at each tenth of its steps.


def files_data(images, masks, total_steps, *, arg):
  # A folder's log count is known only once read: an epoch is a fixed number of steps
  # (`epoch_steps`), windows cycling through the shuffled logs.
  return ml_collections.ConfigDict(dict(
      name="welllog_files", images=images, masks=masks, eval_images=arg.eval_images,
      eval_masks=arg.eval_masks, num_eval=arg.num_eval, num_labels=-1, seed=arg.data_seed,
      height=arg.height, depth_axis=arg.depth_axis,
      tracks=tuple(t for t in arg.tracks.split(";") if t),
      manifest=tuple(m for m in arg.manifest.split(";") if m), num_buckets=2, max_batch_size=16,
      crop_width=arg.crop, fresh=False, epoch_steps=max(1, total_steps // EPOCHS)))


def get_config(arg=None):
  arg = common.parse_arg(arg, unlabeled="", images="", masks="", eval_images="",
                         eval_masks="", num_eval=2, labels=-1, height=128, depth_axis="auto",
                         tracks="", manifest="", variant="small", crop=256, batch=8,
                         pretrain_steps=200, synthetic_steps=1600, finetune_steps=100,
                         data_seed=0, scale=1.0)
  # The synthetic renders and every stage's windows: the demo's recipe at this height.
  demo = welllog_demo.get_config(
      f"variant={arg.variant},crop={arg.crop},batch={arg.batch},scale={arg.scale},"
      f"pretrain_steps={arg.pretrain_steps},synthetic_steps={max(arg.synthetic_steps, 2)},"
      f"finetune_steps={arg.finetune_steps}")
  steps = lambda x: max(2, int(round(x * arg.scale)))

  pretrain = demo.stages.pretrain
  pretrain.data = files_data(arg.unlabeled or arg.images, "", steps(arg.pretrain_steps),
                             arg=arg)
  pretrain.epochs = EPOCHS
  stages = {"pretrain": pretrain}
  if arg.synthetic_steps > 0:
    synthetic = demo.stages.synthetic
    synthetic.data.height = arg.height
    stages["synthetic"] = synthetic

  for name, init in (("finetune_warm", "synthetic" if arg.synthetic_steps > 0 else "pretrain"),
                     ("finetune_cold", "")):
    st = demo.stages[name]
    st.data = files_data(arg.images, arg.masks, steps(arg.finetune_steps), arg=arg)
    st.data.num_labels = arg.labels
    st.epochs = EPOCHS
    st.eval.every_epochs = EPOCHS // 2
    st.init_from.stage = init
    if init == "pretrain":
      st.init_from.subtrees = ("encoder",)  # The decoder reconstructs; only the encoder fits.
    stages[name] = st
  return common.experiment(stages)
