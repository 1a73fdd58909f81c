"""Baselines benchmark: MF-BPR, LightGCN and the KG GNN on three datasets, one protocol.

Protocol: per-user random 80/10/10 split (split seed = run seed), full ranking over all
items excluding the user's training and validation items, K = 20, early stopping on
validation NDCG@20 (evaluated every 5 epochs, patience 6 evaluations, at most 300 epochs),
the library's defaults (dim 64, 2 layers, batch 2048, L2 1e-4, at most 500 epochs) with one
learning rate per model, picked from {1e-3, 5e-3} on Last.FM's validation NDCG@20 (seed 0):
MF 1e-3, LightGCN 5e-3, KG GNN 5e-3. Seeds 0, 1, 2. Nothing is tuned on the test split.

Each (dataset, model, seed) runs in its own process so its peak RSS is its own; results go to
``benchmarks/results/runs/<dataset>-<model>-<seed>.json`` and a finished run is not redone
(the benchmark resumes after a kill). The summary is ``benchmarks/results/baselines.md``.

    python benchmarks/run.py                      # everything (about an hour on 2 cores)
    python benchmarks/run.py --datasets lastfm-hetrec-kg --seeds 0
    python benchmarks/run.py --protocol ctr       # click-through protocol -> ctr.md

The click-through protocol (``--protocol ctr``) is RippleNet/KGCN/MCCLK's: the labelled rows
of ``ratings_final`` (positives and the preprocessing's sampled negatives) cut 6:2:2 at
random; models learn from the training rows' positives (BPR, as everywhere in kgrec, where the
papers train a classifier on both labels), early stopping on validation AUC; test AUC, and F1
at the score threshold that maximises F1 on the validation rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUNS = RESULTS / "runs"
DATASETS = ["lastfm-hetrec-kg", "ml-100k-kb4rec", "book-crossing-kg"]
MODELS = ["mf", "lightgcn", "kggnn"]
NAMES = {"mf": "MF-BPR", "lightgcn": "LightGCN", "kggnn": "KG GNN (kggnn)"}
LR = {"mf": 1e-3, "lightgcn": 5e-3, "kggnn": 5e-3}  # chosen on validation, see the docstring
# Published by the issue for RecBole 1.2.1 on this kind of machine, same protocol (not run here).
RECBOLE = {"ml-100k-kb4rec": {"BPR": 0.365, "CKE": 0.365},
           "lastfm-hetrec-kg": {"BPR": 0.339, "CKE": 0.346}}
CTR_DATASETS = ["lastfm-hetrec-kg", "book-crossing-kg"]
# KGCN paper (Wang et al., WWW 2019), Table 3, KGCN-sum: (AUC, F1).
KGCN_PUBLISHED = {"lastfm-hetrec-kg": (0.796, 0.721), "book-crossing-kg": (0.684, 0.631)}


def run_one(dataset: str, model: str, seed: int, out: Path, protocol: str) -> None:
    import kgrec

    start = time.perf_counter()
    graph = kgrec.load_dataset(dataset)
    ctr = protocol == "ctr"
    split = kgrec.split(graph, "ctr" if ctr else "random", valid=0.2 if ctr else 0.1,
                        test=0.2 if ctr else 0.1, seed=seed)
    cfg = kgrec.Config(data={"dataset": dataset, "seed": seed}, model=model,
                       train={"seed": seed, "device": "cpu", "lr": LR[model], "epochs": 500})
    rec = kgrec.train(split, cfg, progress=False)
    evals = [h for h in rec.history if "valid" in h]
    metric = "auc" if ctr else "ndcg@20"
    best = max(evals, key=lambda h: h["valid"][metric])
    if ctr:
        test = kgrec.evaluate_ctr(rec, split.ctr["test"], threshold_rows=split.ctr["valid"])
    else:
        test = dict(kgrec.evaluate(rec, split.test, k=[20]))
    doc = {"dataset": dataset, "model": model, "seed": seed, "protocol": protocol,
           **{k: v for k, v in test.items() if k in ("recall@20", "ndcg@20", "auc", "f1")},
           f"valid_{metric}": best["valid"][metric], "best_epoch": best["epoch"],
           "epochs": len(rec.history),
           "sec_per_epoch": statistics.median(h["seconds"] for h in rec.history),
           "wall_s": time.perf_counter() - start,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "config": cfg.to_dict()}
    out.write_text(json.dumps(doc, indent=1))


def mean_std(xs: list[float]) -> str:
    if len(xs) == 1:
        return f"{xs[0]:.4f}"
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}"


def summarise_ctr(datasets: list[str], models: list[str], command: str) -> str:
    lines = ["# Click-through protocol (RippleNet / KGCN / MCCLK)", "",
             f"Reproduce: `{command}`.", "",
             "Labelled rows of `ratings_final` (positives + the preprocessing's sampled "
             "negatives) cut 6:2:2 at random (seed = run seed); models learn from the training "
             "rows' positives with BPR; early stopping on validation AUC; F1 at the threshold "
             "that maximises F1 on the validation rows. Mean ± std over the seeds listed.", "",
             "Not the papers' training objective (they fit a classifier on both labels), so "
             "the published figures are set beside ours for scale, not as a like-for-like "
             "comparison.", ""]
    for ds in datasets:
        rows = []
        for m in models:
            docs = [json.loads(p.read_text()) for p in sorted(RUNS.glob(f"ctr-{ds}-{m}-*.json"))]
            if docs:
                rows.append(f"| {NAMES[m]} | {mean_std([d['auc'] for d in docs])} | "
                            f"{mean_std([d['f1'] for d in docs])} | {len(docs)} |")
        if rows:
            auc, f1 = KGCN_PUBLISHED[ds]
            lines += [f"## {ds}", "", "| model | AUC | F1 | seeds |", "|---|---:|---:|---:|",
                      *rows, f"| KGCN (published) | {auc:.3f} | {f1:.3f} | |", ""]
    return "\n".join(lines)


def summarise(datasets: list[str], models: list[str], command: str) -> str:
    import torch

    lines = ["# Baselines: MF-BPR vs LightGCN vs the KG GNN", "",
             f"Reproduce: `{command}` (resumable; per-run JSON in `benchmarks/results/runs/`).",
             "",
             "Protocol: per-user random 80/10/10 split, full ranking over all items (training "
             "and validation items excluded), K = 20, early stopping on validation NDCG@20 "
             "(every 5 epochs, patience 6, at most 500 epochs), default hyper-parameters with "
             "one learning rate per model chosen on Last.FM validation (MF 1e-3, LightGCN and "
             "KG GNN 5e-3), seeds 0/1/2 (split and training). Mean ± std over seeds. Seconds "
             "per epoch: median "
             "over epochs (training only; validation excluded). Peak RSS: max over seeds, of "
             "the run's own process.", "",
             f"Machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
             f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}.", ""]
    for ds in datasets:
        rows = []
        recalls: dict[str, float] = {}
        for m in models:
            docs = [json.loads(p.read_text()) for p in sorted(RUNS.glob(f"{ds}-{m}-*.json"))]
            if not docs:
                continue
            rec = [d["recall@20"] for d in docs]
            recalls[m] = statistics.mean(rec)
            rows.append(f"| {NAMES[m]} | {mean_std(rec)} | "
                        f"{mean_std([d['ndcg@20'] for d in docs])} | "
                        f"{statistics.mean(d['epochs'] for d in docs):.0f} "
                        f"(best {statistics.mean(d['best_epoch'] for d in docs):.0f}) | "
                        f"{statistics.median(d['sec_per_epoch'] for d in docs):.2f} | "
                        f"{max(d['peak_rss_mb'] for d in docs):.0f} | {len(docs)} |")
        if not rows:
            continue
        lines += [f"## {ds}", "", "| model | Recall@20 | NDCG@20 | epochs | s/epoch | "
                  "peak RSS MB | seeds |", "|---|---:|---:|---:|---:|---:|---:|", *rows, ""]
        if "mf" in recalls and "kggnn" in recalls:
            lines.append(f"KG GNN / MF-BPR Recall@20: {recalls['kggnn'] / recalls['mf']:.2f}x; "
                         + (f"KG GNN / LightGCN: {recalls['kggnn'] / recalls['lightgcn']:.2f}x."
                            if "lightgcn" in recalls else ""))
        if ds in RECBOLE:
            lines.append("For scale (from the issue, RecBole 1.2.1, same protocol, not run "
                         "here): " + ", ".join(f"{k} {v:.3f}" for k, v in RECBOLE[ds].items())
                         + " Recall@20.")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--protocol", choices=["ranking", "ctr"], default="ranking")
    p.add_argument("--datasets", nargs="+")
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--one", nargs=3, metavar=("DATASET", "MODEL", "SEED"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    ctr = args.protocol == "ctr"
    if args.one:
        ds, m, seed = args.one
        run_one(ds, m, int(seed), Path(args.out), args.protocol)
        return
    default = CTR_DATASETS if ctr else DATASETS
    datasets = args.datasets or default
    RUNS.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/run.py" + (" --protocol ctr" if ctr else "")
    summary = RESULTS / ("ctr.md" if ctr else "baselines.md")
    summarise_fn = summarise_ctr if ctr else summarise
    # the summary covers every dataset that has runs, so a partial rerun does not drop rows
    covered = sorted(set(default) | set(datasets), key=lambda d: (d not in default, d))
    todo = [(d, m, s) for d in datasets for m in args.models for s in args.seeds]
    for k, (ds, m, seed) in enumerate(todo, 1):
        out = RUNS / f"{'ctr-' if ctr else ''}{ds}-{m}-{seed}.json"
        if out.is_file():
            continue
        print(f"[{k}/{len(todo)}] {ds} {m} seed {seed} ...", flush=True)
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--one", ds, m, str(seed), "--out", str(out),
                        "--protocol", args.protocol], check=True)
        d = json.loads(out.read_text())
        shown = {k: round(v, 4) for k, v in d.items() if k in ("recall@20", "ndcg@20", "auc",
                                                                 "f1")}
        print(f"    {shown} epochs {d['epochs']} ({time.perf_counter() - t:.0f}s)", flush=True)
        summary.write_text(summarise_fn(covered, args.models, command))
    summary.write_text(summarise_fn(covered, args.models, command))
    print(summary.read_text())


if __name__ == "__main__":
    main()
