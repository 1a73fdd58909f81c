#!/usr/bin/env bash
# The generalising model on CUDA vs CPU: seconds per training epoch of `hgnn` on the largest
# ranking dataset (book-crossing-kg: 17,860 users, 14,967 items, 77,903 KG nodes), same split,
# same config, a fixed number of epochs (no early stopping), in one script. Under 10 minutes
# on one GPU plus 16 CPU cores; writes benchmarks/results/gpu.md (and $OUT/gpu.md if $OUT is
# set, for the device runner).
#
#   bash benchmarks/gpu.sh            # uses (or makes) the project's environment; PY=... overrides
#   bash benchmarks/gpu.sh scale      # the big-graph runs instead (benchmarks/scale.py on CUDA)
#
# `scale` (under 10 minutes on one H200 and 16 cores, each part under a time limit): time to
# accuracy of LightGCN on kgat-amazon-book, old and new set-ups, on the GPU; the generated
# power-law graphs at 5M and 20M interactions (LightGCN, and kggnn at 5M), seconds an epoch
# and the GPU's peak memory; with several GPUs, `kgrec train --nproc <GPUs>` over NCCL. Run
# files go to $OUT/runs (the device runner) or benchmarks/results/runs as
# scale-cuda-*.json, and report.py adds them to scale.md.
#
# On a machine with torch + torch-geometric but without the text model's package, point
# KGREC_HOME at a kgrec home whose text-cache holds the dataset's texts (built here by any
# earlier run): a fully cached run never loads the model.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_PY="$HOME/.cache/kgrec/venvs/$(sha256sum requirements.lock | cut -c1-12)/bin/python"
if [ -z "${PY:-}" ]; then
  if [ -x "$VENV_PY" ]; then PY=$VENV_PY; else make -s venv >/dev/null && PY=$VENV_PY; fi
fi
export HF_HUB_OFFLINE=1 KGREC_DATA_DIR=${KGREC_DATA_DIR:-$(realpath ../shared/data)}
if [ "${1:-}" = "scale" ]; then
  RUNS=${OUT:+$OUT/runs}; RUNS=${RUNS:-benchmarks/results/runs}; mkdir -p "$RUNS"
  part() {  # a part that overruns its limit is stopped; the others still run
    local limit=$1; shift
    echo "== scale.py $* (limit ${limit}s)"
    timeout "$limit" "$PY" benchmarks/scale.py "$@" --device cuda --out-dir "$RUNS" | tail -n 3 \
      || echo "!! scale.py $* did not finish within ${limit}s"
  }
  # limits sum to 600 s with several GPUs, 510 s with one
  part 90 amazon --variant new --seed 0 --budget 40
  part 120 amazon --variant old --seed 0 --budget 80
  part 90 synthetic --interactions 5000000 --model lightgcn --max-steps 40
  part 70 synthetic --interactions 5000000 --model kggnn --max-steps 20
  part 140 synthetic --interactions 20000000 --model lightgcn --max-steps 30
  gpus=$("$PY" -c "import torch; print(torch.cuda.device_count())")
  if [ "$gpus" -gt 1 ]; then part 90 procs --nproc "$gpus" --epochs 2; fi
  exit 0
fi
"$PY" - <<'PY'
import json, os, platform, statistics, time
from pathlib import Path

import torch

import kgrec

DATASET, EPOCHS = "book-crossing-kg", 6
graph = kgrec.load_dataset(DATASET)
split = kgrec.split(graph, "random", seed=0)
rows = []
# train.deterministic (the default) makes CUDA's index_add (the backward of every gather in
# the KG messages) a sort-based kernel that serialises repeated indices; measured both ways
runs = ([("cuda", True), ("cuda", False)] if torch.cuda.is_available() else []) + [("cpu", True)]
for device, deterministic in runs:
    cfg = kgrec.Config(data={"dataset": DATASET}, model="hgnn",
                       train={"epochs": EPOCHS, "eval_every": EPOCHS, "device": device,
                              "deterministic": deterministic})
    t = time.perf_counter()
    rec = kgrec.train(split, cfg, progress=False)
    wall = time.perf_counter() - t
    secs = [h["seconds"] for h in rec.history[1:]]  # epoch 1 warms caches and kernels
    rows.append((device, deterministic, statistics.median(secs), wall,
                 rec.history[-1]["valid"]["recall@20"]))
    print(rows[-1], flush=True)
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
lines = ["# hgnn on CUDA vs CPU", "", "Reproduce: `bash benchmarks/gpu.sh`.", "",
         f"{DATASET}, per-user random split seed 0, default hgnn config, {EPOCHS} epochs; "
         f"seconds per epoch = median over epochs 2..{EPOCHS} (training only). GPU: {name}; "
         f"CPU: {os.cpu_count()} cores, {platform.machine()}; torch {torch.__version__}.", "",
         "| device | train.deterministic | s/epoch | wall s (incl. text encoding, validation) "
         "| valid Recall@20 |", "|---|---|---:|---:|---:|"]
lines += [f"| {d} | {det} | {s:.2f} | {w:.0f} | {r:.4f} |" for d, det, s, w, r in rows]
if len(rows) == 3:
    cpu = rows[2][2]
    lines += ["", f"CPU / CUDA seconds per epoch: {cpu / rows[0][2]:.1f}x with deterministic "
              f"kernels, {cpu / rows[1][2]:.1f}x without."]
text = "\n".join(lines) + "\n"
Path("benchmarks/results/gpu.md").write_text(text)
if os.environ.get("OUT"):
    Path(os.environ["OUT"], "gpu.md").write_text(text)
print(text)
PY
