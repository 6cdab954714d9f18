r"""ssl_seg's ViT SimMIM and CurveNet train steps beside PyTorch twins (eager, torch.compile).

  python benchmarks/torch_reference.py [--models=vit,curvenet_small,curvenet_base]
      [--batch=32 --steps=10 --warmup=3 --dtype=float32] [--rows=...] [--out=FILE.json]

Needs the optional extra `torch` (`uv sync --extra torch`); without it the script says so and
exits 2. Every row carries `model` (`vit`, `curvenet_small`, `curvenet_base`, ...); per model:
  jax            ssl_seg's real jitted train step (`benchmarks/step_time.py`'s `benchmark`, the
                 stage's own loss and AdamW) with the stage's on-device augmentation off: the
                 PyTorch step below gets the same work;
  jax_augment    the same step with augmentation on, as `ssl_seg.main` trains (for reference);
  jax_xla_default  the jax step with XLA's default options: for CurveNet on CPU the training loop
                 compiles with `step.CPU_CONV_OPTIONS` (convolutions through oneDNN), and so
                 does the jax row; this row shows what that buys; not run unless asked for;
  torch_eager    the same model, loss and optimizer in PyTorch, eager;
  torch_compile  the same step with the model and loss under `torch.compile` (their backward
                 compiled by AOTAutograd), the optimizer step eager.
vit (`--size`, batch `--batch`): the `pretrain` stage of configs/vit_paper.py. Per step: uint8
images -> /255 -> ImageNet normalisation, a random mask of exactly half the patches drawn on the
device, the forward pass, L1 over the pixels of masked patches, backward, AdamW (lr 1e-4, betas
0.9 / 0.999, eps 1e-8, weight decay 0.05 on every parameter, as optax.adamw applies it). The
model (ssl_seg/models/vit.py, after the study's public code): patch LayerNorm-Linear-LayerNorm,
cls token, learned position embeddings, 12 pre-norm blocks with 8 heads of 64 and a 512 MLP over
a 128-wide stream, tanh GELU, LayerNorm eps 1e-6, mask token, linear decoder.
curvenet_<variant>: the `curve_segment` step of configs/welllog_demo.py's finetune_cold stage at
the demo's training shapes (from that config: batch 8 of 128 x 256 windows, one channel;
`--curvenet_batch`, `--log_height`, `--crop_width` override them) on logs rendered as
step_time.py renders them. The twin, loss and optimizer are in benchmarks/torch_curvenet.py:
weighted CE (1 / 10 / 20) over valid pixels, global-norm clipping 1.0, AdamW lr 6e-3, weight
decay 1e-4 (the JAX step's cosine schedule is left out: a few scalar operations).
Before timing, JAX's initial weights are copied into the twin and one forward pass of both is
compared (CurveNet: logits, bottleneck features and loss, on a batch whose last row is partly
padding), so the two are the same function, not just the same parameter count (both printed).
By default (--processes=per_framework) each model's JAX rows and torch rows run in child
processes of their own, alternated --repeats times: in one process torch's allocations split
the heap block XLA reuses every step (ssl_seg/host_memory.py), and the JAX steps ran 25-30 %
slower than in the training loop (benchmarks/RESULTS.md). Within a process, timing as
step_time.py: median of --steps timed steps after --warmup, each ended by a device sync;
`cpu_ms_per_step` is the process CPU time per step and `load_avg_1m` the machine's load
before / after, for reading rows from a shared machine. --dtype=bfloat16 (ViT only) runs JAX's
mixed precision and PyTorch under autocast(bfloat16). On a GPU, float32 matmuls use TF32 in
both (JAX's default there; torch is told `set_float32_matmul_precision("high")`).
Each row's GFLOP/s is XLA's FLOP count of its model's jax step (the same arithmetic in both) over
that row's step time; a last line per model sets what the issue's target over PyTorch eager
(1.5x for CurveNet, 1x for the ViT) needs against the device's peak (datasheet on a GPU, a large
matmul timed in the same run elsewhere; see step_time.py).
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from flax import nnx  # noqa: E402

from benchmarks import output, step_time, torch_curvenet  # noqa: E402
from configs import welllog_demo  # noqa: E402
from ssl_seg import tasks  # noqa: E402
from ssl_seg.data import augment, synthetic  # noqa: E402
from ssl_seg.models import curvenet, vit  # noqa: E402
from ssl_seg.tasks import curve_segment  # noqa: E402

ROWS = ("jax", "jax_augment", "jax_xla_default", "torch_eager", "torch_compile")
MODELS = ("vit",) + tuple(f"curvenet_{v}" for v in curvenet.VARIANTS)
# The CPU targets, jax items/s over torch_eager's.
EAGER_TARGET = {"vit": 1.0, "curvenet": 1.5}
INSTALL_HINT = ("torch is not installed; it is an optional extra of this project: run "
                "`uv sync --extra torch` (or `uv pip install torch`) and try again")


def define_flags():
  """Command-line flags; defined only when run as a script (tests import this module)."""
  flags.DEFINE_string("models", "vit,curvenet_small,curvenet_base",
                      f"Comma list of {list(MODELS)}, run in this order.")
  flags.DEFINE_integer("batch", 32, "ViT batch size (the issue's CPU target is at 32).")
  flags.DEFINE_integer("curvenet_batch", 0, "CurveNet batch size; 0 = the demo's (8).")
  flags.DEFINE_integer("log_height", 0, "CurveNet window height; 0 = the demo's (128).")
  flags.DEFINE_integer("crop_width", 0, "CurveNet window width; 0 = the demo's (256).")
  flags.DEFINE_integer("steps", 10, "Timed steps per row (the median is reported).")
  flags.DEFINE_integer("warmup", 3, "Untimed steps first (torch.compile compiles in them).")
  flags.DEFINE_enum("size", "paper", sorted(vit.VARIANTS), "ViT size (model vit).")
  flags.DEFINE_enum("dtype", "float32", list(step_time.DTYPES), "Compute dtype.")
  flags.DEFINE_string("rows", "jax,jax_augment,torch_eager,torch_compile",
                      f"Which of {list(ROWS)} to run, in order.")
  flags.DEFINE_integer("torch_threads", 0, "torch.set_num_threads (0: torch's default, one per "
                       "core); 1 with `taskset -c 0` compares the frameworks on one core.")
  flags.DEFINE_bool("interleave", True, "Time the rows round-robin, one step of each per round "
                    "(a shared machine's load then falls on all rows alike); false: row by row.")
  flags.DEFINE_enum("processes", "per_framework", ["per_framework", "one"],
                    "per_framework: each model's JAX rows and torch rows run in processes of "
                    "their own, alternated --repeats times (torch's allocations split the heap "
                    "block XLA reuses every step, slowing JAX 25-30 % in a shared process; "
                    "RESULTS.md); one: all rows in this process, interleaved.")
  flags.DEFINE_integer("repeats", 2, "per_framework: processes per framework and model; a row "
                       "reports the fastest process's median.")
  flags.DEFINE_string("out", None, "Write the JSON rows here.")
  step_time.define_host_memory_flag()


# Flags a per-framework child process inherits from its parent.
_PASSED_ON = ("batch", "curvenet_batch", "log_height", "crop_width", "steps", "warmup", "size",
              "dtype", "torch_threads", "interleave", "host_memory")


def run_per_framework(fv, models_wanted, rows_wanted):
  """Rows of every model from child processes (--processes=one), JAX's and torch's apart and
  alternated; each row is the child's row with the lowest median, all medians kept beside."""
  groups = [g for g in ([r for r in rows_wanted if r.startswith("jax")],
                        [r for r in rows_wanted if r.startswith("torch")]) if g]
  passed = [f"--{name}={fv[name].value}" for name in _PASSED_ON]
  rows = []
  for model_name in models_wanted:
    runs = {}
    for _ in range(fv.repeats):
      for group in groups:
        with tempfile.TemporaryDirectory() as tmp:
          out = os.path.join(tmp, "rows.json")
          subprocess.run([sys.executable, os.path.abspath(__file__), f"--models={model_name}",
                          f"--rows={','.join(group)}", "--processes=one", f"--out={out}",
                          *passed], check=True)
          with open(out) as f:
            for row in json.load(f):
              runs.setdefault(row["name"], []).append(row)
    for name in rows_wanted:
      best = min(runs[name], key=lambda r: r["ms_per_step"])
      rows.append({**best, "processes": "per_framework",
                   "process_medians_ms": [r["ms_per_step"] for r in runs[name]]})
  return rows


def torch_installed():
  """Whether torch can be imported, without importing it."""
  try:
    return importlib.util.find_spec("torch") is not None
  except ValueError:
    return False


def import_torch():
  try:
    import torch
  except ImportError:
    return None
  return torch


def build_torch_model(torch, size):
  """The PyTorch twin of heads.SimMIM(vit.ViTEncoder); attribute names follow ours."""
  nn = torch.nn
  ln = lambda d: nn.LayerNorm(d, eps=1e-6)  # Flax's default epsilon.

  class Attention(nn.Module):
    def __init__(self):
      super().__init__()
      inner = size.heads * size.head_dim
      self.norm, self.qkv = ln(size.dim), nn.Linear(size.dim, 3 * inner, bias=False)
      self.out = nn.Linear(inner, size.dim)

    def forward(self, x):
      b, n, _ = x.shape
      q, k, v = self.qkv(self.norm(x)).view(b, n, 3, size.heads, size.head_dim).permute(
          2, 0, 3, 1, 4)  # 3 x [B, heads, N, head_dim]
      weights = torch.softmax(q @ k.transpose(-1, -2) / size.head_dim**0.5, dim=-1)
      return self.out((weights @ v).transpose(1, 2).reshape(b, n, -1))

  class MLP(nn.Module):
    def __init__(self):
      super().__init__()
      self.norm = ln(size.dim)
      self.fc1, self.fc2 = nn.Linear(size.dim, size.mlp_dim), nn.Linear(size.mlp_dim, size.dim)

    def forward(self, x):
      return self.fc2(nn.functional.gelu(self.fc1(self.norm(x)), approximate="tanh"))

  class Block(nn.Module):
    def __init__(self):
      super().__init__()
      self.attn, self.mlp = Attention(), MLP()

    def forward(self, x):
      x = x + self.attn(x)
      return x + self.mlp(x)

  class Encoder(nn.Module):
    def __init__(self):
      super().__init__()
      patch_dim = size.patch_size**2 * size.channels
      grid = size.img_size // size.patch_size
      self.patch_norm, self.embed_norm = ln(patch_dim), ln(size.dim)
      self.patch_embed = nn.Linear(patch_dim, size.dim)
      self.cls_token = nn.Parameter(torch.randn(1, 1, size.dim) * 0.02)
      self.posemb = nn.Parameter(torch.randn(1, grid**2 + 1, size.dim) * 0.02)
      self.blocks = nn.ModuleList([Block() for _ in range(size.depth)])
      self.norm = ln(size.dim)

    def forward(self, patches, mask, mask_token):
      x = self.embed_norm(self.patch_embed(self.patch_norm(patches)))
      x = torch.where(mask[..., None], mask_token.to(x.dtype), x)
      x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
      x = x + self.posemb
      for block in self.blocks:
        x = block(x)
      return self.norm(x)[:, 1:]

  class SimMIM(nn.Module):
    def __init__(self):
      super().__init__()
      self.encoder = Encoder()
      self.mask_token = nn.Parameter(torch.zeros(size.dim))
      self.decoder = nn.Linear(size.dim, size.patch_size**2 * size.channels)

    def forward(self, patches, mask):
      return self.decoder(self.encoder(patches, mask, self.mask_token))

  return SimMIM()


def patchify(torch_images, p):
  """[B, H, W, C] -> [B, N, p*p*C] in the order of vit.patchify."""
  b, h, w, c = torch_images.shape
  x = torch_images.reshape(b, h // p, p, w // p, p, c).permute(0, 1, 3, 2, 4, 5)
  return x.reshape(b, (h // p) * (w // p), p * p * c)


def load_jax_params(torch, model, params):
  """Copies nnx params into a twin with the same attribute names: Linear kernels [in, out]
  transposed, conv kernels [kh, kw, in, out] to PyTorch's [out, in, kh, kw]."""
  flat = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(params)):
    keys = [str(getattr(k, "key", getattr(k, "idx", k))) for k in path]
    name = {"kernel": "weight", "scale": "weight"}.get(keys[-1], keys[-1])
    value = np.asarray(leaf)
    if keys[-1] == "kernel":
      value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
    flat[".".join(keys[:-1] + [name])] = value
  own = dict(model.named_parameters())
  if sorted(own) != sorted(flat):
    raise RuntimeError(f"parameter names differ: torch only {sorted(set(own) - set(flat))}, "
                       f"jax only {sorted(set(flat) - set(own))}")
  with torch.no_grad():
    for name, p in own.items():
      if tuple(p.shape) != flat[name].shape:
        raise RuntimeError(f"{name}: torch {tuple(p.shape)} vs jax {flat[name].shape}")
      p.copy_(torch.from_numpy(np.array(flat[name])))


def check_vit(torch, size, images_u8):
  """Builds our SimMIM, copies its weights into the twin, compares predictions; returns both
  parameter counts and the largest prediction difference."""
  stage = step_time.make_stage("simmim", size, "float32")
  model = tasks.make_task(stage).build_model(nnx.Rngs(params=0))
  params = nnx.state(model, nnx.Param)
  twin = build_torch_model(torch, vit.VARIANTS[size])
  load_jax_params(torch, twin, params)
  images = augment.normalize(jnp.asarray(images_u8))
  num = model.encoder.grid**2
  mask = np.random.default_rng(0).permutation(np.arange(images.shape[0] * num) % 2 == 0)
  mask = mask.reshape(images.shape[0], num)
  pred_jax, _ = model(images, jnp.asarray(mask))
  with torch.no_grad():
    pred_torch = twin(patchify(torch.from_numpy(np.array(images)), model.encoder.size.patch_size),
                      torch.from_numpy(mask))
  diff = float(np.abs(np.asarray(pred_jax) - pred_torch.numpy()).max())
  counts = (sum(x.size for x in jax.tree.leaves(params)), sum(p.numel() for p in twin.parameters()))
  return counts, diff


def curvenet_stage(variant):
  """configs/welllog_demo.py's cold fine-tune stage (the curve_segment step step_time.py times)."""
  return step_time.make_stage("curve_segment", variant, "float32")


def check_curvenet(torch, variant, batch):
  """Our CurveNet and its twin on one host batch with copied weights: (parameter counts,
  max |logit difference|, max |bottleneck difference|, (jax loss, torch loss)), over all pixels.

  The head starts near zero (initialised at 1 % scale), so logits alone would hide a wrong
  encoder: the bottleneck features (unit scale after the final LayerNorm) are compared too.
  """
  stage = curvenet_stage(variant)
  task = tasks.make_task(stage)
  model = task.build_model(nnx.Rngs(params=0))
  params = nnx.state(model, nnx.Param)
  twin = torch_curvenet.build_curvenet(torch, curvenet.VARIANTS[variant],
                                       out_channels=len(stage.class_names))
  load_jax_params(torch, twin, params)
  graphdef, state = nnx.split(model)

  @jax.jit
  def forward(state, batch):
    model = nnx.merge(graphdef, state)
    logits, aux = model(curve_segment.ink(batch["image"]), valid=batch["valid_px"])
    loss, _ = task.loss_fn(model, batch, jax.random.key(0), train=False)
    return logits, aux["bottleneck"], loss

  logits_jax, bottleneck_jax, loss_jax = forward(state, jax.device_put(batch))
  tb = torch_curvenet.torch_batch(torch, batch, torch.device("cpu"))
  loss_torch_fn = torch_curvenet.make_loss(torch, twin, stage.class_weights, torch.device("cpu"))
  with torch.no_grad():
    x = 1.0 - tb["image"].permute(0, 3, 1, 2).float() / 255.0
    logits_torch = twin(x, tb["valid_px"]).permute(0, 2, 3, 1).numpy()
    masks = torch_curvenet.valid_pyramid(torch, tb["valid_px"])
    bottleneck_torch = twin.encoder(x, masks)[0].permute(0, 2, 3, 1).numpy()
    loss_torch = float(loss_torch_fn(tb))
  max_diff = lambda a, b: float(np.abs(np.asarray(a) - b).max())
  counts = (sum(x.size for x in jax.tree.leaves(params)), sum(p.numel() for p in twin.parameters()))
  return (counts, max_diff(logits_jax, logits_torch), max_diff(bottleneck_jax, bottleneck_torch),
          (float(loss_jax), loss_torch))


def make_torch_step(torch, model, size, device, dtype):
  """The SimMIM train step on uint8 [B, H, W, C] images, mirroring tasks/simmim.py."""
  opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
                          weight_decay=0.05)
  mean = torch.tensor(np.asarray(augment.IMAGENET_MEAN), device=device)
  std = torch.tensor(np.asarray(augment.IMAGENET_STD), device=device)
  num = (size.img_size // size.patch_size) ** 2
  num_masked = int(round(0.5 * num))
  autocast = dtype == "bfloat16"

  def loss_fn(images_u8):
    images = (images_u8.float() / 255.0 - mean) / std
    target = patchify(images, size.patch_size)
    ranks = torch.rand(images.shape[0], num, device=device).argsort(1).argsort(1)
    mask = ranks < num_masked
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
      pred = model(target, mask)
    per_patch = (pred.float() - target).abs().mean(-1)
    return (per_patch * mask).sum() / mask.sum()

  def opt_step():
    opt.step()

  return loss_fn, opt_step, opt


class TorchRunner:
  """A PyTorch train step run one step at a time; `make()` -> (model, loss_fn(inputs),
  opt_step(), optimizer)."""

  def __init__(self, torch, name, make, inputs, batch, device, compile_):
    torch.manual_seed(0)
    self.torch, self.name, self.inputs, self.batch, self.device = (
        torch, name, inputs, batch, device)
    self.model, self.loss_fn, self.opt_step, self.opt = make()
    if compile_:
      # Forward and loss compiled (AOTAutograd compiles their backward); the optimizer step
      # stays eager: compiling it as well recompiled on every step here (9 s/step on the CPU).
      self.loss_fn = torch.compile(self.loss_fn)
    self.loss = None

  def step(self):
    """One train step, ended by a device sync."""
    self.opt.zero_grad(set_to_none=True)
    self.loss = self.loss_fn(self.inputs)
    self.loss.backward()
    self.opt_step()
    if self.device.type == "cuda":
      self.torch.cuda.synchronize()

  def row(self, times, cpu_times, load_avg, *, warmup, warmup_s, dtype):
    torch, device, sec = self.torch, self.device, float(np.median(times))
    return {"name": self.name, "items_per_s": self.batch / sec, "ms_per_step": 1e3 * sec,
            "ms_per_step_mean": 1e3 * float(np.mean(times)),
            "ms_per_step_min": 1e3 * float(np.min(times)), "warmup_s": warmup_s,
            "cpu_ms_per_step": 1e3 * float(np.median(cpu_times)), "load_avg_1m": list(load_avg),
            "loss": self.loss.item(), "params": sum(p.numel() for p in self.model.parameters()),
            "batch": self.batch, "dtype": dtype, "steps": len(times), "warmup": warmup,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "framework": f"torch {torch.__version__}", "threads": torch.get_num_threads()}


def vit_maker(torch, size, device, dtype):
  def make():
    model = build_torch_model(torch, size).to(device)
    loss_fn, opt_step, opt = make_torch_step(torch, model, size, device, dtype)
    return model, loss_fn, opt_step, opt
  return make


def curvenet_maker(torch, variant, device):
  stage = curvenet_stage(variant)

  def make():
    model = torch_curvenet.build_curvenet(torch, curvenet.VARIANTS[variant],
                                          out_channels=len(stage.class_names)).to(device)
    loss_fn = torch_curvenet.make_loss(torch, model, stage.class_weights, device)
    opt, opt_step = torch_curvenet.make_optimizer(torch, model, stage.optim)
    return model, loss_fn, opt_step, opt
  return make


def add_flop_rates(rows, base):
  """Adds each row's model GFLOP/s: XLA's FLOP count of the jax step (the same model, loss and
  optimizer, so the same arithmetic in both frameworks) over that row's step time."""
  flops = None if base is None else base.get("flops_per_step")
  for r in rows:
    r["model_gflops_per_s"] = None if flops is None else flops / r["ms_per_step"] / 1e6


def curvenet_shapes(fv):
  """(batch, height, width) of the demo's training windows unless the flags set them."""
  stage = welllog_demo.get_config().stages["synthetic"]
  return (fv.curvenet_batch or stage.batch_size, fv.log_height or stage.data.height,
          fv.crop_width or stage.data.crop_width)


def with_padding(host, rows):
  """The first `rows` rows of a CurveNet batch, the last one's right 40 % made padding (paper
  white, valid_px False, as buckets.pad_batch pads), so the check covers the masking too."""
  batch = {k: np.array(v[:rows]) for k, v in host.items()}
  cut = int(0.6 * batch["image"].shape[2])
  batch["image"][-1, :, cut:] = 255
  batch["valid_px"][-1, :, cut:] = False
  batch["seg"][-1, :, cut:] = 0
  return batch


def run_model(torch, model_name, fv, rows_wanted, jax_dev, device):
  """The check line and the rows of one model; returns its rows (each with `model`)."""
  dtype = fv.dtype
  # The twin (and its check against our model) only where torch rows are timed: a JAX-only
  # process stays free of torch's allocations, as the training loop is.
  twin = any(r.startswith("torch") for r in rows_wanted)
  if model_name == "vit":
    size, batch = vit.VARIANTS[fv.size], fv.batch
    images_u8, _, _ = synthetic.make_images(0, batch, size.img_size)
    if twin:
      (n_jax, n_torch), diff = check_vit(torch, fv.size, images_u8[:4])
      print(f"ViT-{fv.size} SimMIM parameters: jax {n_jax:,d}, torch {n_torch:,d}; "
            f"max |pred difference| with copied weights {diff:.2e}")
      inputs, make = (torch.from_numpy(images_u8).to(device),
                      vit_maker(torch, size, device, dtype))
    shape = f"batch {batch} of {size.img_size} x {size.img_size} x {size.channels}"
  else:
    if dtype != "float32":
      raise app.UsageError("the CurveNet twin runs in float32 only")
    variant = model_name.removeprefix("curvenet_")
    batch, height, width = curvenet_shapes(fv)
    host = step_time.make_batch("curve_segment", curvenet_stage(variant), batch, height, width)
    if twin:
      (n_jax, n_torch), diff, diff_bottleneck, (l_jax, l_torch) = check_curvenet(
          torch, variant, with_padding(host, 2))
      print(f"CurveNet-{variant} parameters: jax {n_jax:,d}, torch {n_torch:,d}; with copied "
            f"weights max |difference| of logits {diff:.2e}, of bottleneck features "
            f"{diff_bottleneck:.2e}; loss jax {l_jax:.6f}, torch {l_torch:.6f}")
      diff = max(diff, diff_bottleneck)
      inputs, make = (torch_curvenet.torch_batch(torch, host, device),
                      curvenet_maker(torch, variant, device))
    shape = f"batch {batch} of {height} x {width} x 1"
  if twin and (n_jax != n_torch or not diff < 1e-3):
    raise RuntimeError("the PyTorch twin is not the same model as ours (see the line above)")
  torch_note = (f"torch {torch.__version__} on {device.type} ({torch.get_num_threads()} "
                "threads)" if twin else "no torch in this process")
  print(f"{model_name}: {shape}, {dtype}, {fv.steps} timed steps after {fv.warmup} warm-up; "
        f"JAX on {jax_dev.device_kind}, {torch_note}", flush=True)
  # Build and warm up every row, then time them: round-robin (one step of each row per
  # round, --interleave, the default) so that on a shared machine every row sees the same
  # load, or row after row.
  runners = []
  for name in rows_wanted:
    t = time.perf_counter()
    if name.startswith("jax"):
      task, size = ("simmim", fv.size) if model_name == "vit" else ("curve_segment", variant)
      shapes = {} if model_name == "vit" else dict(log_height=height, log_width=width)
      runner = step_time.StepRunner(
          task, size, dtype, batch, augment=name == "jax_augment", **shapes,
          compiler_options={} if name == "jax_xla_default" else None)
    else:
      runner = TorchRunner(torch, name, make, inputs, batch, device, name == "torch_compile")
    for _ in range(fv.warmup):
      runner.step()
    runners.append((name, runner, time.perf_counter() - t))
  load_before = os.getloadavg()[0]
  if fv.interleave:
    timed = {i: ([], []) for i in range(len(runners))}
    for _ in range(fv.steps):
      for i, (_, runner, _) in enumerate(runners):
        wall, cpu = step_time.time_steps(runner.step, 1)
        timed[i][0].extend(wall)
        timed[i][1].extend(cpu)
    load = (load_before, os.getloadavg()[0])
  rows = []
  for i, (name, runner, warmup_s) in enumerate(runners):
    if not fv.interleave:
      load_before = os.getloadavg()[0]
      timed = {i: step_time.time_steps(runner.step, fv.steps)}
      load = (load_before, os.getloadavg()[0])
    wall, cpu = timed[i]
    if name.startswith("jax"):
      row = {**runner.row(wall, cpu, load, warmup=fv.warmup), "name": name,
             "framework": f"jax {jax.__version__}", "warmup_s": warmup_s}
    else:
      row = runner.row(wall, cpu, load, warmup=fv.warmup, warmup_s=warmup_s, dtype=dtype)
    row["model"], row["interleaved"] = model_name, fv.interleave
    if name == "jax":
      row["compiler_options"] = runner.compiler_options
    rows.append(row)
    print(f"  {model_name} {name}: {row['ms_per_step']:.1f} ms/step (min "
          f"{row['ms_per_step_min']:.1f}), {row['items_per_s']:.1f} items/s", flush=True)
  return rows


def print_table(rows):
  """Per model: median and fastest ms per step, items/s, GFLOP/s, the `jax` row's speed over
  each row's (from medians, then from the fastest steps), process CPU ms per step and the 1-min
  load average before / after the timed steps."""
  print(f"{'model':16s}{'row':15s}{'ms/step':>9s}{'min ms':>9s}{'items/s':>9s}{'GFLOP/s':>8s}"
        f"{'jax/row':>8s}{'(min)':>7s}{'cpu ms':>8s}{'load':>10s}  device")
  for model_name in dict.fromkeys(r["model"] for r in rows):
    group = [r for r in rows if r["model"] == model_name]
    base = {r["name"]: r for r in group}.get("jax")  # The last jax row of the model.
    add_flop_rates(group, base)
    for r in group:
      ratio = "" if base is None else f"{r['ms_per_step'] / base['ms_per_step']:.2f}x"
      ratio_min = ("" if base is None
                   else f"{r['ms_per_step_min'] / base['ms_per_step_min']:.2f}x")
      rate = "" if r.get("model_gflops_per_s") is None else f"{r['model_gflops_per_s']:.0f}"
      load = "{:.1f}-{:.1f}".format(*r["load_avg_1m"])
      print(f"{model_name:16s}{r['name']:15s}{r['ms_per_step']:9.1f}{r['ms_per_step_min']:9.1f}"
            f"{r['items_per_s']:9.1f}{rate:>8s}{ratio:>8s}{ratio_min:>7s}"
            f"{r['cpu_ms_per_step']:8.0f}{load:>10s}  {r['device']}")
  for model_name in dict.fromkeys(r["model"] for r in rows):
    by_name = {r["name"]: r for r in rows if r["model"] == model_name}
    base, eager = by_name.get("jax"), by_name.get("torch_eager")
    if base is not None and eager is not None and base.get("peak_flops"):
      target = EAGER_TARGET[model_name.split("_")[0]]
      need = target * eager["model_gflops_per_s"]
      print(f"{model_name}: {target:g}x torch_eager needs {need:.0f} GFLOP/s over the whole "
            f"step; the device peak ({base['peak_source']}) is {base['peak_flops'] / 1e9:.0f} "
            "GFLOP/s")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  if not torch_installed():
    print(f"error: {INSTALL_HINT}", file=sys.stderr)
    sys.exit(2)
  fv = flags.FLAGS
  memory = step_time.apply_host_memory(fv)  # Before torch and JAX start their threads.
  rows_wanted = step_time._parse_list("rows", fv.rows, allowed=ROWS)
  models_wanted = step_time._parse_list("models", fv.models, allowed=MODELS)
  jax_dev = jax.devices()[0]
  # A process timing JAX rows only never imports torch (its libraries, threads and heap).
  torch = device = None
  if fv.processes == "per_framework" or any(r.startswith("torch") for r in rows_wanted):
    torch = import_torch()
    device = torch.device("cuda" if jax_dev.platform == "gpu" and torch.cuda.is_available()
                          else "cpu")
    if device.type == "cuda":
      torch.set_float32_matmul_precision("high")  # TF32, as XLA's default for f32 on GPU.
    if fv.torch_threads:
      torch.set_num_threads(fv.torch_threads)
  threads = "no torch" if torch is None else f"torch {torch.get_num_threads()} threads"
  print(f"CPU affinity: {len(os.sched_getaffinity(0))} of {os.cpu_count()} cores; {threads}; "
        f"load average {os.getloadavg()[0]:.1f}; host memory {memory}")
  if fv.processes == "per_framework":
    rows = run_per_framework(fv, models_wanted, rows_wanted)
    print("rows from separate processes (JAX's and torch's apart); each the fastest of "
          f"{fv.repeats} processes' medians:")
  else:
    rows = []
    for model_name in models_wanted:
      rows += run_model(torch, model_name, fv, rows_wanted, jax_dev, device)
  print_table(rows)
  output.write_rows(fv.out, rows)


if __name__ == "__main__":
  define_flags()
  app.run(main)
