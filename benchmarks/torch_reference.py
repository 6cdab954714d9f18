r"""The ViT SimMIM train step in PyTorch (eager and torch.compile) beside ssl_seg's, same run.

  python benchmarks/torch_reference.py [--batch=32 --steps=10 --dtype=float32] [--out=FILE.json]

Needs the optional extra `torch` (`uv sync --extra torch`); without it the script says so and
exits 2. Rows:
  jax            ssl_seg's real jitted SimMIM step (`benchmarks/step_time.py`'s `benchmark`:
                 the `pretrain` stage of configs/vit_paper.py, AdamW from that config) with the
                 stage's on-device augmentation off: the PyTorch step below gets the same work;
  jax_augment    the same step with augmentation on, as `ssl_seg.main` trains (for reference);
  torch_eager    the same model in PyTorch, eager;
  torch_compile  the same step with the model and loss under `torch.compile` (their backward
                 compiled by AOTAutograd), the AdamW step eager.
Both frameworks, per step: uint8 images -> /255 -> ImageNet normalisation, a random mask of
exactly half the patches drawn on the device, the forward pass, L1 over the pixels of masked
patches, backward, AdamW (lr 1e-4, betas 0.9 / 0.999, eps 1e-8, weight decay 0.05 on every
parameter, as optax.adamw applies it). The model is ours (ssl_seg/models/vit.py, which follows
the study's public code): patch LayerNorm-Linear-LayerNorm, cls token, learned position
embeddings, 12 pre-norm blocks with 8 heads of 64 and a 512 MLP over a 128-wide stream, tanh
GELU, LayerNorm eps 1e-6, mask token, linear decoder. Before timing, JAX's initial weights are
copied into the PyTorch model and both predictions on one masked batch are compared, so the two
are the same function, not just the same parameter count (both counts are printed).
Timing as step_time.py: median of --steps timed steps after --warmup, each ended by a device
sync. --dtype=bfloat16 runs JAX's mixed precision and PyTorch under autocast(bfloat16). On a
GPU, float32 matmuls use TF32 in both (JAX's default there; torch is told
`set_float32_matmul_precision("high")`).
Each row's GFLOP/s is XLA's FLOP count of the jax step (the same arithmetic in both) over that
row's step time; the last line sets what 2x PyTorch eager would need against the device's peak
(datasheet on a GPU, a large matmul timed in the same run elsewhere; see step_time.py).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from flax import nnx  # noqa: E402

from benchmarks import output, step_time  # noqa: E402
from ssl_seg import tasks  # noqa: E402
from ssl_seg.data import augment, synthetic  # noqa: E402
from ssl_seg.models import vit  # noqa: E402

ROWS = ("jax", "jax_augment", "torch_eager", "torch_compile")
INSTALL_HINT = ("torch is not installed; it is an optional extra of this project: run "
                "`uv sync --extra torch` (or `uv pip install torch`) and try again")


def define_flags():
  """Command-line flags; defined only when run as a script (tests import this module)."""
  flags.DEFINE_integer("batch", 32, "Batch size (the issue's CPU target is at 32).")
  flags.DEFINE_integer("steps", 10, "Timed steps per row (the median is reported).")
  flags.DEFINE_integer("warmup", 3, "Untimed steps first (torch.compile compiles in them).")
  flags.DEFINE_enum("size", "paper", sorted(vit.VARIANTS), "ViT size.")
  flags.DEFINE_enum("dtype", "float32", list(step_time.DTYPES), "Compute dtype.")
  flags.DEFINE_string("rows", ",".join(ROWS), "Which rows to run, in order.")
  flags.DEFINE_string("out", None, "Write the JSON rows here.")


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
  """Copies an nnx SimMIM's params into the twin (Linear kernels transposed)."""
  flat = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(params)):
    keys = [str(getattr(k, "key", getattr(k, "idx", k))) for k in path]
    name = {"kernel": "weight", "scale": "weight"}.get(keys[-1], keys[-1])
    value = np.asarray(leaf)
    flat[".".join(keys[:-1] + [name])] = value.T if keys[-1] == "kernel" else value
  own = dict(model.named_parameters())
  if sorted(own) != sorted(flat):
    raise RuntimeError(f"parameter names differ: torch only {sorted(set(own) - set(flat))}, "
                       f"jax only {sorted(set(flat) - set(own))}")
  with torch.no_grad():
    for name, p in own.items():
      if tuple(p.shape) != flat[name].shape:
        raise RuntimeError(f"{name}: torch {tuple(p.shape)} vs jax {flat[name].shape}")
      p.copy_(torch.from_numpy(np.ascontiguousarray(flat[name])))


def check_same_function(torch, size, images_u8):
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
    pred_torch = twin(patchify(torch.from_numpy(np.asarray(images)), model.encoder.size.patch_size),
                      torch.from_numpy(mask))
  diff = float(np.abs(np.asarray(pred_jax) - pred_torch.numpy()).max())
  counts = (sum(x.size for x in jax.tree.leaves(params)), sum(p.numel() for p in twin.parameters()))
  return counts, diff


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


def time_torch(torch, name, size, device, dtype, images_u8, steps, warmup, compile_):
  """Times the PyTorch step; returns (seconds per step list, compile-inclusive first steps)."""
  torch.manual_seed(0)
  model = build_torch_model(torch, size).to(device)
  loss_fn, opt_step, opt = make_torch_step(torch, model, size, device, dtype)
  if compile_:
    # Forward and loss compiled (AOTAutograd compiles their backward); the optimizer step stays
    # eager: compiling it as well recompiled on every step here (9 s/step on the CPU).
    loss_fn = torch.compile(loss_fn)
  sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
  images = torch.from_numpy(images_u8).to(device)

  def step():
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(images)
    loss.backward()
    opt_step()
    return loss

  t = time.perf_counter()
  for _ in range(warmup):
    loss = step()
  sync()
  warmup_s = time.perf_counter() - t
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    loss = step()
    sync()
    times.append(time.perf_counter() - t)
  sec = float(np.median(times))
  batch = images_u8.shape[0]
  return {"name": name, "items_per_s": batch / sec, "ms_per_step": 1e3 * sec,
          "ms_per_step_mean": 1e3 * float(np.mean(times)), "warmup_s": warmup_s,
          "loss": loss.item(), "params": sum(p.numel() for p in model.parameters()),
          "batch": batch, "dtype": dtype, "steps": steps, "warmup": warmup,
          "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
          "framework": f"torch {torch.__version__}", "threads": torch.get_num_threads()}


def jax_row(name, size, dtype, batch, steps, warmup, augment_on):
  row = step_time.benchmark("simmim", size, dtype, batch, steps=steps, warmup=warmup,
                            augment=augment_on)
  return {**row, "name": name, "framework": f"jax {jax.__version__}"}


def add_flop_rates(rows, base):
  """Adds each row's model GFLOP/s: XLA's FLOP count of the jax step (the same model, loss and
  optimizer, so the same arithmetic in both frameworks) over that row's step time."""
  flops = None if base is None else base.get("flops_per_step")
  for r in rows:
    r["model_gflops_per_s"] = None if flops is None else flops / r["ms_per_step"] / 1e6


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  torch = import_torch()
  if torch is None:
    print(f"error: {INSTALL_HINT}", file=sys.stderr)
    sys.exit(2)
  fv = flags.FLAGS
  rows_wanted = step_time._parse_list("rows", fv.rows, allowed=ROWS)
  size, dtype, batch = vit.VARIANTS[fv.size], fv.dtype, fv.batch
  jax_dev = jax.devices()[0]
  device = torch.device("cuda" if jax_dev.platform == "gpu" and torch.cuda.is_available()
                        else "cpu")
  if device.type == "cuda":
    torch.set_float32_matmul_precision("high")  # TF32, as XLA's default for f32 on GPU.
  images_u8, _, _ = synthetic.make_images(0, batch, size.img_size)

  (n_jax, n_torch), diff = check_same_function(torch, fv.size, images_u8[:4])
  print(f"ViT-{fv.size} SimMIM parameters: jax {n_jax:,d}, torch {n_torch:,d}; "
        f"max |pred difference| with copied weights {diff:.2e}")
  if n_jax != n_torch or not diff < 1e-3:
    raise RuntimeError("the PyTorch twin is not the same model as ours (see the line above)")
  print(f"batch {batch}, {dtype}, {fv.steps} timed steps after {fv.warmup} warm-up; "
        f"JAX on {jax_dev.device_kind}, torch {torch.__version__} on {device.type} "
        f"({torch.get_num_threads()} threads)")

  rows = []
  for name in rows_wanted:
    if name.startswith("jax"):
      row = jax_row(name, fv.size, dtype, batch, fv.steps, fv.warmup,
                    name == "jax_augment")
    else:
      row = time_torch(torch, name, size, device, dtype, images_u8, fv.steps, fv.warmup,
                       name == "torch_compile")
    rows.append(row)
    print(f"  {name}: {row['ms_per_step']:.1f} ms/step, {row['items_per_s']:.1f} img/s",
          flush=True)

  by_name = {r["name"]: r for r in rows}
  base = by_name.get("jax")
  add_flop_rates(rows, base)
  print(f"{'row':15s}{'ms/step':>10s}{'img/s':>10s}{'GFLOP/s':>9s}{'jax/row':>8s}  device")
  for r in rows:
    ratio = "" if base is None else f"{base['items_per_s'] / r['items_per_s']:.2f}x"
    rate = "" if r.get("model_gflops_per_s") is None else f"{r['model_gflops_per_s']:.0f}"
    print(f"{r['name']:15s}{r['ms_per_step']:10.1f}{r['items_per_s']:10.1f}{rate:>9s}"
          f"{ratio:>8s}  {r['device']}")
  eager = by_name.get("torch_eager")
  if base is not None and eager is not None and base.get("peak_flops"):
    need = 2 * eager["model_gflops_per_s"]
    print(f"2x torch_eager needs {need:.0f} GFLOP/s over the whole step; the device peak "
          f"({base['peak_source']}) is {base['peak_flops'] / 1e9:.0f} GFLOP/s")
  output.write_rows(fv.out, rows)


if __name__ == "__main__":
  define_flags()
  app.run(main)
