r"""Train-step time of every task, model size, compute dtype and batch size.

  python benchmarks/step_time.py [--tasks=simmim,segment] [--sizes=tiny,paper] [--batches=8,32]
      [--dtypes=float32,bfloat16] [--steps=10] [--out=FILE.json]
  python benchmarks/step_time.py --quick          # every task, tiny models: < 1 min on a CPU

Each row times the real jitted train step (`ssl_seg.step.make_train_step` with the task's own
loss, augmentation, masks and the stage's AdamW from its config) on a device-resident batch made
by the project's own generators (synthetic images; rendered logs padded to --log_height x
--log_width). Tasks: simmim, classify, segment (the study's ViT, sizes tiny / paper) and denoise,
curve_segment (CurveNet, sizes tiny / small / base). Dtype bfloat16 is mixed precision: float32
params and optimizer (master weights), bf16 activations and matmuls, losses, norm statistics and
softmax in float32.

Figures per row:
  ms_per_step       median of --steps timed steps after --warmup, each ended by
                    block_until_ready (so per-step dispatch is included, not overlapped);
  items_per_s       images (ViT) or logs (CurveNet) per second; megapixels_per_s beside it;
  compile_s         trace + lower + XLA compile of the step (`jitted.lower(...).compile()`);
  flops_per_step    XLA's cost analysis of that compiled step (forward, backward, optimizer);
  mfu               achieved FLOP/s / the device's peak for the dtype. GPUs: dense datasheet
                    peaks (PEAK_FLOPS; float32 against TF32, which XLA uses for f32 matmuls on
                    these GPUs by default). Other devices (CPU): with --peak=measure (default) a
                    large matmul of that dtype is timed in the same run and its FLOP/s is the
                    peak (`peak_source` says which); --peak=none leaves mfu null;
  cpu_ms_per_step   process CPU time per step, all threads (median); load_avg_1m is the 1-min
                    load average before and after the timed steps (a shared machine's noise);
                    ms_per_step_min the fastest step (the least disturbed by other jobs);
  peak_mem_bytes    device.memory_stats() peak so far in this process (null where the backend
                    has none, e.g. CPU); step_mem_bytes: XLA's memory analysis of the step
                    (arguments + outputs + temporaries - donated aliases).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from benchmarks import output  # noqa: E402
from configs import common, vit_paper, welllog_demo  # noqa: E402
from ssl_seg import host_memory, state as state_lib, step as step_lib  # noqa: E402
from ssl_seg.data import buckets, synthetic, welllogs  # noqa: E402

# benchmark task -> (model family, stage of the config it comes from).
TASKS = {
    "simmim": ("vit", "pretrain"),
    "classify": ("vit", "classify"),
    "segment": ("vit", "segment"),
    "denoise": ("curvenet", "pretrain"),
    "curve_segment": ("curvenet", "finetune_cold"),
}
SIZES = {"vit": ("tiny", "paper"), "curvenet": ("tiny", "small", "base")}
DTYPES = ("float32", "bfloat16")

# Dense peak FLOP/s (NVIDIA datasheets), first matching substring of device_kind wins.
PEAK_FLOPS = (
    ("H200", {"bfloat16": 989e12, "float32": 495e12}),
    ("H100 PCIe", {"bfloat16": 756e12, "float32": 378e12}),
    ("H100 NVL", {"bfloat16": 835e12, "float32": 418e12}),
    ("H100", {"bfloat16": 989e12, "float32": 495e12}),  # SXM.
    ("A100", {"bfloat16": 312e12, "float32": 156e12}),
)

# --quick: one ViT task in both dtypes and one CurveNet task, tiny. On the shared 2-core CPU
# compilation dominates (a tiny CurveNet step compiles in ~15-20 s, a tiny ViT one in ~7 s),
# so the preset is three configurations: well under a minute on a quiet machine.
QUICK_CONFIGS = (("simmim", "tiny", "float32", 4), ("simmim", "tiny", "bfloat16", 4),
                 ("curve_segment", "tiny", "float32", 2))
QUICK = dict(steps=3, warmup=1, log_height=64, log_width=256)


def define_flags():
  """Command-line flags; defined only when run as a script, so importers (torch_reference.py,
  tests) keep their own."""
  flags.DEFINE_string("tasks", ",".join(TASKS), f"Comma list of {list(TASKS)}.")
  flags.DEFINE_string("sizes", "tiny,paper,small,base",
                      f"Comma list; each task runs the sizes its model has ({SIZES}).")
  flags.DEFINE_string("batches", "8,32", "Comma list of batch sizes.")
  flags.DEFINE_string("dtypes", ",".join(DTYPES), f"Comma list of {DTYPES}.")
  flags.DEFINE_integer("steps", 10, "Timed steps per row (the median is reported).")
  flags.DEFINE_integer("warmup", 2, "Untimed steps after compilation.")
  flags.DEFINE_integer("log_height", 128, "CurveNet log height (a multiple of 32).")
  flags.DEFINE_integer("log_width", 512, "CurveNet log width (a multiple of 32).")
  flags.DEFINE_enum("peak", "measure", ["measure", "none"],
                    "MFU denominator on devices without a datasheet peak.")
  flags.DEFINE_bool("quick", False, f"Run only {QUICK_CONFIGS} with {QUICK} (< 1 min on a "
                    "CPU); the list flags are ignored.")
  flags.DEFINE_string("out", None, "Write the JSON rows here.")
  define_host_memory_flag()


def define_host_memory_flag():
  flags.DEFINE_enum("host_memory", "reuse", ["reuse", "system"],
                    "reuse: glibc keeps the memory XLA frees for the next step, as ssl_seg.main "
                    "sets it (ssl_seg/host_memory.py); system: glibc's defaults, under which "
                    "every CPU step maps its temp buffer anew (page faults). Process-wide.")


def apply_host_memory(fv):
  """The --host_memory policy; call before JAX (or torch) starts any thread. Returns a word."""
  if fv.host_memory == "reuse":
    return "reuse" if host_memory.reuse_freed_memory() else "system (reuse unavailable)"
  return "system"


def make_stage(task, size, dtype):
  """The task's stage from the real configs, with the model at `size` computing in `dtype`."""
  family, name = TASKS[task]
  if family == "vit":
    stage = vit_paper.get_config("data=synthetic").stages[name]
    stage.model = common.vit_model(size, dropout=stage.model.dropout, dtype=dtype)
    stage.data.size = stage.model.img_size
  else:
    stage = welllog_demo.get_config(f"variant={size}").stages[name]
    stage.model.dtype = dtype
  return stage


def make_batch(task, stage, batch_size, log_height, log_width, seed=0):
  """A host batch with the keys and dtypes the stage's pipeline yields."""
  if TASKS[task][0] == "vit":
    images, seg, label = synthetic.make_images(seed, batch_size, stage.model.img_size)
    return {"image": images, "seg": seg, "label": label,
            "_valid": np.ones(batch_size, bool)}
  # A few rendered logs at exactly the width, repeated: content does not change the cost.
  logs = [dict(zip(("image", "seg"), welllogs.render_example(
      seed, i, height=log_height, min_width=log_width, max_width=log_width)))
      for i in range(min(batch_size, 4))]
  return buckets.pad_batch(logs, np.arange(batch_size) % len(logs), log_width)


def device_peak(device, dtype, mode, cache):
  """(peak FLOP/s or None, source) for `dtype` on `device`."""
  for kind, peaks in PEAK_FLOPS:
    if kind in device.device_kind:
      return peaks[dtype], f"datasheet {kind}"
  if mode == "none":
    return None, "unknown"
  if dtype not in cache:
    cache[dtype] = measure_matmul_peak(DTYPES_JNP[dtype])
  return cache[dtype], "measured matmul"


DTYPES_JNP = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def measure_matmul_peak(dtype, n=1024, repeats=5):
  """Best FLOP/s of an n x n x n matmul of `dtype` on the default device (same run)."""
  a = jnp.ones((n, n), dtype)
  matmul = jax.jit(lambda x, y: x @ y)
  matmul(a, a).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    matmul(a, a).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * n**3 / best


def _first(x):
  # cost_analysis() is a dict in recent JAX, a one-element list in older releases.
  return x[0] if isinstance(x, (list, tuple)) else x


class StepRunner:
  """One configuration's compiled real train step, run one step at a time (`step()`), so that
  callers can interleave configurations on a shared machine; `row(...)` makes the JSON row."""

  def __init__(self, task, size, dtype, batch_size, *, log_height=128, log_width=512,
               augment=True, compiler_options=None, state_as_leaves=True):
    if task not in TASKS:
      raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")
    family = TASKS[task][0]
    if size not in SIZES[family]:
      raise ValueError(f"{task} has sizes {SIZES[family]}, got {size!r}")
    self.task, self.size, self.dtype, self.batch_size, self.augment = (
        task, size, dtype, batch_size, augment)
    stage = make_stage(task, size, dtype)
    stage.batch_size = batch_size
    stage.augment.enabled = augment
    built = state_lib.build(stage, 100, 100 * stage.epochs, seed=0)
    self.num_params = sum(x.size for x in jax.tree.leaves(built.params))
    self.state = built.state()
    # As `ssl_seg.train` runs it: the state passed as its leaves (`state_as_leaves=False`: as
    # the pytree of nnx Variables, rebuilt on the host at every call).
    leaves_of = jax.tree.structure(self.state) if state_as_leaves else None
    if state_as_leaves:
      self.state = jax.tree.leaves(self.state)
    train_step = step_lib.make_train_step(built.graphdef, built.tx, built.task.loss_fn,
                                          leaves_of=leaves_of)
    self.host = make_batch(task, stage, batch_size, log_height, log_width)
    self.batch = jax.device_put(self.host)
    self.key = jax.random.key(0)
    # None: the options ssl_seg.main compiles this model with; {}: XLA's defaults.
    self.compiler_options = (step_lib.compiler_options(stage.model.name)
                             if compiler_options is None else compiler_options) or {}
    t = time.perf_counter()
    self.compiled = train_step.lower(self.state, self.batch, self.key).compile(
        compiler_options=self.compiler_options or None)
    self.compile_s = time.perf_counter() - t
    self.flops = _first(self.compiled.cost_analysis() or {}).get("flops")
    mem = self.compiled.memory_analysis()
    self.step_mem = (None if mem is None else mem.argument_size_in_bytes
                     + mem.output_size_in_bytes + mem.temp_size_in_bytes
                     - mem.alias_size_in_bytes)
    self.metrics = None

  def step(self):
    """One train step, ended by block_until_ready."""
    self.state, self.metrics = self.compiled(self.state, self.batch, self.key)
    jax.block_until_ready((self.state, self.metrics))

  def row(self, times, cpu_times, load_avg, *, warmup, peak="measure", peak_cache=None):
    """The JSON row from per-step wall and CPU seconds and the load average around them."""
    sec = float(np.median(times))
    device = jax.devices()[0]
    peak_flops, peak_source = device_peak(device, self.dtype, peak, {} if peak_cache is None
                                          else peak_cache)
    stats = device.memory_stats() or {}
    pixels = int(np.prod(self.host["image"].shape[1:3]))
    flops, batch_size = self.flops, self.batch_size
    return {
        "name": f"{self.task}/{self.size}/{self.dtype}/b{batch_size}",
        "task": self.task, "size": self.size, "dtype": self.dtype, "batch": batch_size,
        "augment": self.augment,
        "ms_per_step": 1e3 * sec,
        "ms_per_step_mean": 1e3 * float(np.mean(times)),
        "ms_per_step_min": 1e3 * float(np.min(times)),
        # CPU time of this process per step (all threads; median): on a shared CPU the wall
        # time depends on the other jobs, this mostly on the work done.
        "cpu_ms_per_step": 1e3 * float(np.median(cpu_times)),
        "load_avg_1m": list(load_avg),
        "items_per_s": batch_size / sec,
        "megapixels_per_s": batch_size * pixels / sec / 1e6,
        "compile_s": self.compile_s,
        "flops_per_step": flops,
        "tflops_per_s": None if flops is None else flops / sec / 1e12,
        "mfu": None if flops is None or peak_flops is None else flops / sec / peak_flops,
        "peak_flops": peak_flops, "peak_source": peak_source,
        "peak_mem_bytes": stats.get("peak_bytes_in_use"),
        "step_mem_bytes": self.step_mem,
        "params": int(self.num_params),
        "image_shape": list(self.host["image"].shape[1:]),
        "loss": float(self.metrics["loss"]),
        "steps": len(times), "warmup": warmup,
        "device": device.device_kind, "platform": device.platform,
    }


def time_steps(step, steps):
  """Runs `step()` `steps` times: (wall seconds, process CPU seconds) per step."""
  times, cpu_times = [], []
  for _ in range(steps):
    t, cpu = time.perf_counter(), time.process_time()
    step()
    times.append(time.perf_counter() - t)
    cpu_times.append(time.process_time() - cpu)
  return times, cpu_times


def benchmark(task, size, dtype, batch_size, *, steps=10, warmup=2, log_height=128,
              log_width=512, peak="measure", peak_cache=None, augment=True,
              compiler_options=None):
  """Compiles and times the real train step of one configuration; returns its JSON row.

  augment=False turns the stage's on-device augmentation off (to compare with a step that
  gets its batches augmented elsewhere, as the study's PyTorch loader does);
  compiler_options go to XLA (`jax.stages.Lowered.compile`), e.g. for flag A/Bs.
  """
  if steps < 1 or warmup < 0:
    raise ValueError(f"need steps >= 1 and warmup >= 0, got {steps}, {warmup}")
  runner = StepRunner(task, size, dtype, batch_size, log_height=log_height,
                      log_width=log_width, augment=augment, compiler_options=compiler_options)
  for _ in range(warmup):
    runner.step()
  load_before = os.getloadavg()[0]
  times, cpu_times = time_steps(runner.step, steps)
  return runner.row(times, cpu_times, (load_before, os.getloadavg()[0]), warmup=warmup,
                    peak=peak, peak_cache=peak_cache)


def _parse_list(flag, value, kind=str, allowed=None):
  items = [kind(v) for v in value.split(",") if v]
  bad = [v for v in items if allowed is not None and v not in allowed]
  if not items or bad:
    raise app.UsageError(f"--{flag}: {bad or 'empty'} not in {list(allowed or [])}")
  return items


def _fmt(value, spec):
  """A table cell; "-" for a figure this device or run does not have."""
  width = spec.split(".")[0]
  return f"{'-':>{width}s}" if value is None else format(value, spec)


def print_table(rows):
  """One line per row; `bf16 x` is bf16 items/s over float32's for the same task/size/batch."""
  fp32 = {(r["task"], r["size"], r["batch"]): r["items_per_s"] for r in rows
          if r["dtype"] == "float32"}
  mib = lambda b: None if b is None else b / 2**20
  print(f"{'task':14s}{'size':6s}{'dtype':9s}{'batch':>6s}{'ms/step':>10s}{'items/s':>10s}"
        f"{'Mpx/s':>8s}{'GFLOP/st':>10s}{'TFLOP/s':>9s}{'MFU':>7s}{'compile s':>10s}"
        f"{'step MiB':>9s}{'peak MiB':>9s}{'bf16 x':>8s}")
  for r in rows:
    base = fp32.get((r["task"], r["size"], r["batch"])) if r["dtype"] == "bfloat16" else None
    gflop = None if r["flops_per_step"] is None else r["flops_per_step"] / 1e9
    ratio = "" if base is None else f"{r['items_per_s'] / base:.2f}x"
    print(f"{r['task']:14s}{r['size']:6s}{r['dtype']:9s}{r['batch']:6d}"
          f"{r['ms_per_step']:10.1f}{r['items_per_s']:10.1f}{r['megapixels_per_s']:8.2f}"
          f"{_fmt(gflop, '10.2f')}{_fmt(r['tflops_per_s'], '9.3f')}{_fmt(r['mfu'], '7.3f')}"
          f"{r['compile_s']:10.1f}{_fmt(mib(r['step_mem_bytes']), '9.0f')}"
          f"{_fmt(mib(r['peak_mem_bytes']), '9.0f')}{ratio:>8s}")


def _configs(fv):
  """(task, size, dtype, batch) for every combination the list flags allow."""
  task_list = _parse_list("tasks", fv.tasks, allowed=TASKS)
  all_sizes = sorted({s for sizes in SIZES.values() for s in sizes})
  size_list = _parse_list("sizes", fv.sizes, allowed=all_sizes)
  batch_list = _parse_list("batches", fv.batches, int)
  dtype_list = _parse_list("dtypes", fv.dtypes, allowed=DTYPES)
  if min(batch_list) < 1:
    raise app.UsageError(f"--batches must be >= 1, got {batch_list}")
  configs = [(t, s, d, b) for t in task_list for s in size_list if s in SIZES[TASKS[t][0]]
             for d in dtype_list for b in batch_list]
  if not configs:
    raise app.UsageError(f"no task in {task_list} has a size in {size_list}; sizes: {SIZES}")
  return configs


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  fv = flags.FLAGS
  memory = apply_host_memory(fv)
  opts = {k: fv[k].value for k in QUICK}
  if fv.quick:
    opts.update({k: v for k, v in QUICK.items() if not fv[k].present})
    configs = list(QUICK_CONFIGS)
  else:
    configs = _configs(fv)
  if opts["log_height"] % 32 or opts["log_width"] % 32:
    raise app.UsageError("--log_height and --log_width must be multiples of 32 (CurveNet stride)")
  device = jax.devices()[0]
  print(f"{len(configs)} configurations on {device.device_kind} ({device.platform}), "
        f"{opts['steps']} timed steps after {opts['warmup']} warm-up; logs "
        f"{opts['log_height']} x {opts['log_width']}; host memory {memory}")
  rows, peak_cache = [], {}
  for t, s, d, b in configs:
    try:
      rows.append(benchmark(t, s, d, b, steps=opts["steps"], warmup=opts["warmup"],
                            log_height=opts["log_height"], log_width=opts["log_width"],
                            peak=fv.peak, peak_cache=peak_cache))
    except jax.errors.JaxRuntimeError as e:
      if "RESOURCE_EXHAUSTED" not in str(e):
        raise
      print(f"{t}/{s}/{d}/b{b}: out of device memory, skipped")
      continue
    r = rows[-1]
    print(f"  {r['name']}: {r['ms_per_step']:.1f} ms/step, {r['items_per_s']:.1f} items/s, "
          f"compile {r['compile_s']:.1f} s", flush=True)
  print_table(rows)
  output.write_rows(fv.out, rows)


if __name__ == "__main__":
  define_flags()
  app.run(main)
