"""report.html from two tiny sweeps: the budget study's workdir (written as ssl_seg.main writes
one, from the real configs/welllog_budget.py config, with an interrupted stage, a duplicate and
malformed lines) and a SimMIM grid run by launch.sweep (one run failing). The embedded data
equals report.csv, problems are flagged, and headless Chromium draws the page without errors.
"""

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from configs import welllog_budget
from launch import report, report_html, sweep
from ssl_seg import config_utils, plots

WARM_RGB, COLD_RGB = (214, 39, 40), (31, 119, 180)  # report_page.ARM


def _f1(arm, budget, seed, frac):
  """Eval F1/curve1 of the generated runs at a fraction of the stage's epochs."""
  if arm == "warm":
    return 0.2 + 0.5 * frac + 0.01 * seed + (0.05 if budget == 4 else 0.0)
  return 0.45 * frac + 0.01 * seed


def _eval_row(stage, st, epoch, f1):
  classes = {"background": 0.99, "curve1": f1, "curve2": f1 / 2}
  row = {"stage": stage, "task": st.task, "seed": st.seed, "split": "eval", "epoch": epoch,
         "step": epoch, "miou": (0.99 + f1 + f1 / 2) / 3, "pixel_acc": 0.97, "loss": 1 - f1}
  for c, v in classes.items():
    row.update({f"f1/{c}": v, f"f1_tol1/{c}": min(1.0, v + 0.1),
                f"rule/f1/{c}": {"curve1": 0.3, "curve2": 0.0}.get(c, 0.98)})
  return row


@pytest.fixture(scope="module")
def budget_root(tmp_path_factory):
  """A budget-study workdir (2 budgets x 2 arms x 3 seeds) plus a rerun dir with a duplicate."""
  root = tmp_path_factory.mktemp("budget_sweep")
  workdir = root / "budget"
  workdir.mkdir()
  cfg = welllog_budget.get_config("budgets=2/4,seeds=3,variant=tiny,finetune_steps=40")
  for name in cfg.stage_order:  # One-step epochs: 40 points on every fabricated curve.
    if name.startswith("finetune"):
      st = cfg.stages[name]
      st.data.epoch_steps, st.epochs, st.eval.every_epochs = 1, 40, 8
  config_utils.write_resolved(cfg, str(workdir))
  lines = []
  rng = np.random.default_rng(0)
  for name in cfg.stage_order:
    st = cfg.stages[name]
    if name == "pretrain":
      lines.append({"stage": name, "task": st.task, "seed": 0, "split": "eval", "epoch": st.epochs,
                    "step": st.epochs, "loss": 0.2})
      continue
    arm, budget, seed = (st.tags.arm, st.tags.budget, st.tags.seed) if "tags" in st else \
        ("warm", 0, 0)
    last = 24 if name == "finetune_cold_b4_s2" else st.epochs  # Interrupted at epoch 24.
    for epoch in range(1, last + 1):
      lines.append({"stage": name, "task": st.task, "seed": st.seed, "split": "train",
                    "epoch": epoch, "step": epoch, "loss": 1.0})
      if epoch % st.eval.every_epochs == 0 or epoch == st.epochs:
        lines.append(_eval_row(name, st, epoch, _f1(arm, budget, seed, epoch / st.epochs)))
    if seed == 0:
      os.makedirs(workdir / name)
      scan = rng.integers(0, 255, (32, 64), dtype=np.uint8)
      mask = (rng.random((32, 64)) < 0.1).astype(np.uint8) * (1 + (budget == 4))
      plots.save_panel(str(workdir / name / "example_0.png"),
                       {"scan": scan, "truth": mask, "prediction": mask})
  final_warm_b4_s0 = max(i for i, r in enumerate(lines)
                         if r["stage"] == "finetune_warm_b4_s0" and r["split"] == "eval")
  lines[final_warm_b4_s0]["miou"] = "0.5"  # A metric that is a string.
  text = [json.dumps(r) + "\n" for r in lines]
  text.insert(3, "[1, 2]\n")  # A JSON list line.
  text.append('{"stage": "finetune_warm_b2_s0", "spl')  # A torn last line.
  (workdir / "metrics.jsonl").write_text("".join(text))
  # A second workdir with the same stage and seed: a duplicate, not a fourth seed.
  rerun = root / "rerun"
  rerun.mkdir()
  shutil.copy(workdir / "config.json", rerun / "config.json")
  st = cfg.stages.finetune_warm_b2_s0
  rows = [_eval_row("finetune_warm_b2_s0", st, e, 0.99) for e in range(8, 41, 8)]
  (rerun / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  md, paths = report.report(str(root))
  return root, md, paths, final_warm_b4_s0 + 2  # 1-based, after the inserted list line.


# A stand-in for ssl_seg.main in a SimMIM grid: the study's stages and their eval rows; the
# run labels=64, pretrain_size=4000, seed 1 fails before writing anything.
FAKE_SIMMIM = r"""
import json, math, os, sys
args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
wd, seed = args["--workdir"], int(args["--config.seed"])
conf = dict(kv.split("=") for kv in args["--config"].partition(":")[2].split(",") if "=" in kv)
labels, size = int(conf["labels"]), int(conf["pretrain_size"])
if (labels, size, seed) == (64, 4000, 1):
  print("fake failure"); sys.exit(3)
seg = lambda init: {"task": "segment", "epochs": 2, "init_from": {"stage": init},
                    "class_names": ["pet", "background", "border"],
                    "data": {"num_train": 8192, "num_labels": labels}}
stages = {"pretrain": {"task": "mim", "epochs": 1, "init_from": {"stage": ""},
                       "data": {"num_train": 8192, "subset": size, "num_labels": -1}},
          "classify": {"task": "classify", "epochs": 1, "init_from": {"stage": "pretrain"},
                       "data": {"num_train": 8192, "num_labels": -1}},
          "segment": seg("pretrain"), "segment_via_classify": seg("classify"),
          "segment_scratch": seg("")}
json.dump({"seed": seed, "stage_order": list(stages), "stages": stages},
          open(os.path.join(wd, "config.json"), "w"))
rows = [{"stage": "pretrain", "task": "mim", "split": "eval", "epoch": 1, "step": 1,
         "seed": seed, "loss": 0.3},
        {"stage": "classify", "task": "classify", "split": "eval", "epoch": 1, "step": 1,
         "seed": seed, "loss": 0.9, "acc": 0.6}]
for stage in ("segment", "segment_via_classify", "segment_scratch"):
  base = 0.3 + 0.05 * math.log2(labels / 16) + 0.01 * seed
  if stage != "segment_scratch":
    base += 0.05 * size / 4000 + (0.02 if stage == "segment_via_classify" else 0.0)
  for epoch in (1, 2):
    miou = base - (2 - epoch) * 0.1
    rows.append({"stage": stage, "task": "segment", "split": "eval", "epoch": epoch,
                 "step": epoch, "seed": seed, "loss": 1 - miou, "miou": miou,
                 "pixel_acc": 0.8, "f1/pet": miou, "f1/background": 0.9, "f1/border": 0.2})
with open(os.path.join(wd, "metrics.jsonl"), "a") as f:
  f.writelines(json.dumps(r) + "\n" for r in rows)
"""


@pytest.fixture(scope="module")
def simmim_root(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("simmim_sweep")
  (tmp / "fake_main.py").write_text(FAKE_SIMMIM)
  root = tmp / "runs"
  argv = ["--config=configs/vit_paper.py:data=synthetic", "--seeds=0,1",
          "--grid=:labels=16,64;:pretrain_size=1000,4000", f"--root={root}", "--parallel=4",
          f"--command={sys.executable} {tmp / 'fake_main.py'}"]
  assert sweep.main(argv) == 1  # One run failed.
  md, paths = report.report(str(root))
  return root, md, paths


def _page_data(path):
  text = open(path, encoding="utf-8").read()
  m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
  assert m, "no report-data block"
  return json.loads(m.group(1)), text


def _assert_table_equals_csv(root, data):
  rows = list(csv.DictReader(open(root / "report.csv", newline="")))
  assert len(rows) == len(data["table"]) > 0
  for row, embedded in zip(rows, data["table"]):
    assert set(embedded) <= set(row)
    for k, cell in row.items():  # Cells a group lacks are empty in the CSV.
      value = embedded.get(k)
      assert cell == ("" if value is None else str(value)), (k, cell, value)


def test_budget_page_data_equals_report_csv_and_flags_every_problem(budget_root):
  root, md, paths, string_line = budget_root
  assert os.path.basename(paths[-1]) == "report.html"
  data, text = _page_data(root / "report.html")
  _assert_table_equals_csv(root, data)
  # Only finished, unique stages are averaged: cold b4 has 2 seeds (seed 2 was interrupted at
  # epoch 24, whose intermediate eval is not its result), warm b2 ignores the rerun's copy.
  table = {r["group"]: r for r in data["table"]}
  cold4, warm2 = table["arm=cold, budget=4"], table["arm=warm, budget=2"]
  assert cold4["n"] == 2 and math.isclose(cold4["f1/curve1_mean"], 0.455)
  assert warm2["n"] == 3 and math.isclose(warm2["f1/curve1_mean"], 0.71)
  assert math.isclose(table["arm=warm, budget=4"]["miou_mean"],  # The string miou is dropped.
                      np.mean([(0.99 + 1.5 * (0.75 + 0.01 * s)) / 3 for s in (1, 2)]))
  status = {(r["workdir"], r["stage"]): (r["status"], r["note"]) for r in data["runs"]}
  assert status[("budget", "finetune_cold_b4_s2")] == (
      "incomplete", "last eval at epoch 24 of 40: interrupted or still running")
  dup_status, dup_note = status[("rerun", "finetune_warm_b2_s0")]
  assert dup_status == "duplicate" and "budget [finetune_warm_b2_s0], which is used" in dup_note
  assert "configs identical" in dup_note
  assert "- incomplete: budget/finetune_cold_b4_s2: last eval at epoch 24 of 40" in md
  assert "- missing seeds: arm=cold, budget=4 has seeds [0, 1], lacks [2]" in md
  # Malformed lines: a warning naming file and line each, and the page shows them.
  metrics_path = root / "budget" / "metrics.jsonl"
  n_lines = len(metrics_path.read_text().split("\n"))
  for where, what in ((4, "is a JSON list, not an object; skipped"),
                      (string_line, "'miou' is str \"0.5\", not a number; ignored"),
                      (n_lines, "is cut short")):
    assert f"warning: {metrics_path}:{where}: line {where} {what}" in md
  assert data["warnings"] and "Malformed lines were skipped" in text
  # The well-log exhibit: both budgets, both curves, the rule and the match figure.
  wl = data["welllog"]
  assert [p["budget"] for p in wl["panels"]] == [2, 4]
  assert wl["classes"] == ["curve1", "curve2"] and wl["kinds"] == ["f1", "f1_tol1"]
  b2, b4 = wl["panels"]
  assert b2["rule"]["f1/curve1"] == 0.3 and b2["rule"]["f1/curve2"] == 0.0
  assert [p[0] for p in b2["arms"]["warm"]["curves"]["f1/curve1"]] == [8, 16, 24, 32, 40]
  warm_std = np.std([0.2 + 0.5 * 0.2 + 0.01 * s for s in range(3)])
  np.testing.assert_allclose(b2["arms"]["warm"]["curves"]["f1/curve1"][0][1:4],
                             [0.31, warm_std, 3], rtol=1e-4)
  # Cold b2's final F1 is 0.46 (mean of 0.45, 0.46, 0.47); warm's mean passes it at epoch 24.
  assert b2["match"]["f1/curve1"] == {"target": pytest.approx(0.46), "cold_epoch": 40,
                                      "cold_step": 40, "warm_epochs": 40, "epoch": 24,
                                      "step": 24, "first_eval": False}
  assert b4["match"]["f1/curve1"]["epoch"] == 16  # Cold b4: 0.455 from its two finished seeds.
  assert text.count("data:image/png;base64,") == 4 + 1  # One seed per group, + synthetic.


def test_simmim_page_mIoU_vs_labels_with_cis_and_the_intermediate_difference(simmim_root):
  root, md, _ = simmim_root
  data, _ = _page_data(root / "report.html")
  _assert_table_equals_csv(root, data)
  # The ViT table holds the metrics its tasks report: no per-class F1 columns.
  assert md.split("\n")[0] == "| group | n | miou | pixel_acc | acc |"
  series = {s["label"]: s["points"] for s in data["simmim"]["series"]}
  line = "segment, :pretrain_size=4000, init: pretrain 4000"
  assert [p[0] for p in series[line]] == [16, 64]
  (x, mean, std, ci, n), last = series[line][0], series[line][1]
  assert (x, n, last[4]) == (16, 2, 1)  # The failed run leaves one seed at 64 labels.
  np.testing.assert_allclose([mean, std, ci], [0.355, np.std([0.35, 0.36], ddof=1),
                                               report.t95(1) * np.std([0.35, 0.36], ddof=1)
                                               / np.sqrt(2)], rtol=1e-9)
  assert last[2] is None and last[3] is None  # n = 1: no std, no CI.
  assert "segment_scratch, :pretrain_size=1000, init: from scratch" in series
  # Intermediate stage: segment_via_classify - segment = +0.02 at every point, paired by seed.
  inter = {s["label"]: s["points"] for s in data["simmim"]["intermediate"]}
  assert sorted(inter) == [":pretrain_size=1000, init: pretrain 1000",
                           ":pretrain_size=4000, init: pretrain 4000"]
  for pts in inter.values():
    for _, diff, _, _, _ in pts:
      assert diff == pytest.approx(0.02)
  missing = [r for r in data["runs"] if r["status"] == "missing"]
  assert [r["workdir"] for r in missing] == ["labels=64/pretrain_size=4000/seed=1"]
  assert "| stage=segment, :labels=64, :pretrain_size=4000 | 1 | 0.450 (n=1, no CI) |" in md


def test_single_workdir_page_as_main_writes_it(tmp_path, budget_root):
  root = budget_root[0]
  workdir = tmp_path / "run"
  shutil.copytree(root / "rerun", workdir)
  lines = []
  path = report_html.write_for_workdir(str(workdir), log=lines.append)
  assert path == str(workdir / "report.html") and lines == [f"report page: {path}"]
  data, _ = _page_data(path)
  assert [p["label"] for p in data["welllog"]["panels"]] == ["budget 2"]
  assert not (workdir / "report.md").exists()  # Only the page: the workdir stays as it was.
  (workdir / "metrics.jsonl").write_text("")  # Nothing finished: no page, no error.
  assert report_html.write_for_workdir(str(tmp_path / "run"), log=lines.append) is None


def _chromium():
  exe = shutil.which("chromium") or shutil.which("chromium-browser")
  if not exe:
    pytest.fail("chromium is not installed: the page test needs Debian's `chromium` package "
                "(apt-get install -y chromium; .ci/run installs it)")
  return exe


def _browse(tmp_path, page, *mode):
  cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--window-size=1200,2400", *mode,
         f"file://{page}"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
  assert not console, console  # The page logs nothing: any console line is an error.
  return proc.stdout


def test_headless_chromium_draws_the_pages_without_errors(tmp_path, budget_root, simmim_root):
  shot = tmp_path / "page.png"
  _browse(tmp_path, budget_root[0] / "report.html", f"--screenshot={shot}")
  # The view in the link: budget 2, curve2, F1 within 1 px (cold's final 0.33 after 40 epochs).
  dom = _browse(tmp_path, f"{budget_root[0] / 'report.html'}#budget=2&class=curve2&score=f1_tol1",
                "--dump-dom")
  assert ("Warm reaches cold's final f1_tol1/curve2 (0.330, after 40 epochs / 40 steps) at "
          "epoch 24 (step 24): 1.7x fewer epochs than cold.") in dom
  assert re.search(r'<option value="1">budget 4</option>', dom)  # The budget selector.
  body = re.search(r"<body([^>]*)>", dom).group(1)
  assert "data-errors" not in body, body
  assert int(re.search(r'data-charts="(\d+)"', body).group(1)) == 3  # F1/epoch, /budget, all.
  assert int(re.search(r'data-marks="(\d+)"', body).group(1)) >= 2 * 5 + 2 * 2
  assert dom.count("<circle") >= 2 * 5 + 2 * 2  # Warm and cold eval points, per budget.
  pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
  for rgb in (WARM_RGB, COLD_RGB):  # The curves were drawn, in their colours.
    assert (np.abs(pixels - rgb).sum(1) < 30).sum() > 300, rgb
  dom = _browse(tmp_path, simmim_root[0] / "report.html", "--dump-dom")
  body = re.search(r"<body([^>]*)>", dom).group(1)
  assert "data-errors" not in body and 'data-charts="3"' in body, body  # mIoU, Δ, all.
