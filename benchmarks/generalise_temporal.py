"""Temporal shift: one of the generalisation benchmarks.

Temporal shift (``--temporal``): ``hgnn`` and LightGCN on ``ml-latest-small`` split by one
global time cut (train on the oldest 80% of the pairs, validate on the next 10%, test on the
newest 10%) against the per-user random 80/10/10 split; the drop is the relative loss of
test Recall@20. Runs write
``benchmarks/results/runs/temporal-<dataset>-<split>-<model>-<seed>.json``.

Each run is its own process; finished runs are not redone. Summary:
``benchmarks/results/generalise.md``.

    python benchmarks/generalise.py --temporal --datasets ml-latest-small
    python benchmarks/generalise_temporal.py --one ml-latest-small temporal hgnn 0 --out F.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import RUNS, Runs, mean_std, one_thread, write_run
from generalise_common import one_main

SPLITS = ("random", "temporal")
MODELS = ("lightgcn", "hgnn", "hgnn-exposure")
# hgnn-exposure: hgnn whose new-item offset is the largest that keeps the validation metric at
# least the id model's (model.hgnn.gate: exposure)
CONFIGS = {"hgnn-exposure": {"name": "hgnn", "hgnn": {"gate": "exposure"}}}
ONE = ("DATASET", "SPLIT", "MODEL", "SEED")  # the arguments of one run


def run_temporal(dataset: str, split_name: str, model: str, seed: int, out: Path) -> None:
    import kgrec

    one_thread()

    start = time.perf_counter()
    split = kgrec.split(kgrec.load_dataset(dataset), split_name, seed=seed)
    cfg = kgrec.Config(data={"dataset": dataset, "seed": seed, "split": split_name},
                       model=CONFIGS.get(model, {"name": model}),
                       train={"seed": seed, "device": "cpu", "lr": 5e-3, "epochs": 500})
    rec = kgrec.train(split, cfg, progress=False)
    test = kgrec.evaluate(rec, split.test, k=[20])
    doc = {"dataset": dataset, "split": split_name, "model": model, "seed": seed,
           "recall@20": test["recall@20"], "ndcg@20": test["ndcg@20"],
           "cold_test_items": int(split.test.cold_items[split.test.positives.indices].sum()),
           "test_links": len(split.test), "epochs": len(rec.history),
           # the links to items first seen after the cut, and their recall in the full ranking
           **{f"{g}_recall@20": t["recall@20"] for g, t in test.groups.items()},
           "sec_per_epoch": statistics.median(h["seconds"] for h in rec.history),
           "wall_s": time.perf_counter() - start}
    write_run(out, doc, cfg, split)


def one(args: list[str], out: Path) -> None:
    """One run from its command-line arguments (:data:`ONE`)."""
    dataset, split_name, model, seed = args
    run_temporal(dataset, split_name, model, int(seed), out)


def jobs(a: argparse.Namespace, dataset: str, seed: int) -> list[tuple[Path, list[str], str]]:
    """The runs of ``dataset`` and ``seed`` that ``generalise.py --temporal`` asks for:
    ``(out file, args of one run, label)``, both splits and both models."""
    return [(RUNS / f"temporal-{dataset}-{sp}-{m}-{seed}.json",
             ["--one", dataset, sp, m, str(seed)],
             f"temporal {dataset} {sp} {m} seed {seed}")
            for sp in SPLITS for m in MODELS]


def summarise(all_runs: Runs) -> list[str]:
    """The temporal-shift tables of ``generalise.md``: per dataset, random against temporal."""
    runs = all_runs.glob("temporal-*.json")
    lines: list[str] = []
    for dataset in sorted({r["dataset"] for r in runs}):
        rs = [r for r in runs if r["dataset"] == dataset]
        tmp0 = next((r for r in rs if r["split"] == "temporal"), None)
        lines += [f"## Temporal shift on {dataset}", "",
                  "One global time cut (train on the oldest 80% of the pairs, validate on the "
                  "next 10%, test on the newest 10%) against the per-user random 80/10/10 "
                  "split; *drop* = relative change of test Recall@20. *New items*: the test "
                  "links to items first seen after the cut"
                  + (f" ({tmp0['cold_test_items']:,} of {tmp0['test_links']:,} test links, "
                     f"seed {tmp0['seed']})" if tmp0 else "")
                  + ", and their recall within the same full ranking.", "",
                  "| model | Recall@20 random | Recall@20 temporal | drop | temporal: new "
                  "items | temporal: seen items | seeds (random/temporal) |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for model in ("hgnn", "hgnn-exposure", "lightgcn"):
            rnd = [r for r in rs if r["model"] == model and r["split"] == "random"]
            tmp = [r for r in rs if r["model"] == model and r["split"] == "temporal"]
            if not rnd and not tmp:
                continue
            a = statistics.mean(r["recall@20"] for r in rnd) if rnd else None
            b = statistics.mean(r["recall@20"] for r in tmp) if tmp else None
            drop = f"{(b - a) / a:+.1%}" if a and b is not None else "–"
            seeds = f"{len(rnd)}/{len(tmp)}"
            new = mean_std([r["cold_items_recall@20"] for r in tmp
                            if "cold_items_recall@20" in r])
            seen = mean_std([r["warm_items_recall@20"] for r in tmp
                             if "warm_items_recall@20" in r])
            lines.append(f"| {model}{all_runs.mark(rnd + tmp)} | "
                         f"{mean_std([r['recall@20'] for r in rnd])} | "
                         f"{mean_std([r['recall@20'] for r in tmp])} | {drop} | {new} | "
                         f"{seen} | {seeds} |")
        lines.append("")
    return lines


if __name__ == "__main__":
    one_main(__doc__, ONE, one)
