"""Baselines benchmark: MF-BPR, LightGCN, the KG GNN and hgnn on three datasets, one
protocol, beside the floors (random, popularity) ranked the same way.

Protocol: per-user random 80/10/10 split (split seed = run seed), full ranking over all
items excluding the user's training and validation items, K = 20, early stopping on
validation NDCG@20 (evaluated every 5 epochs, patience 6 evaluations, at most 500 epochs),
the library's defaults (dim 64, 2 layers, batch 2048, L2 1e-4) with one learning rate per
model, picked from {1e-3, 5e-3} on Last.FM's validation NDCG@20 (seed 0): MF 1e-3, LightGCN,
KG GNN and hgnn 5e-3. Seeds 0, 1, 2. Nothing is tuned on the test split.

The peers a user would pick instead, each in its stronger set-up: SimGCL and XSimGCL (their
reference code's defaults, ``kgrec/models/simgcl.py``), and LightGCN and MF with the
shared-negatives softmax (``train.loss: sampled_softmax``, 1,024 negatives, 4,096 pairs a
step). Their learning rate (and the softmax's temperature) is chosen the same way, on
Last.FM's validation NDCG@20 at seed 0, by ``--select`` (one recorded run per setting,
``select-*.json``); their runs read the chosen setting from those files.

Each (dataset, model, seed) runs in its own process on one thread, so its peak RSS is its
own; results go to ``benchmarks/results/runs/<dataset>-<model>-<seed>.json`` (with their
provenance: commit, config, split hash, versions) and a finished run is not redone (the
benchmark resumes after a kill). Tables: ``python benchmarks/report.py`` writes
``benchmarks/results/baselines.md`` (and ``ctr.md``) from the run files.

    python benchmarks/run.py                      # everything (hours on 2 cores)
    python benchmarks/run.py --datasets lastfm-hetrec-kg --seeds 0
    python benchmarks/run.py --protocol ctr       # click-through protocol -> ctr.md

The click-through protocol (``--protocol ctr``) is RippleNet/KGCN/MCCLK's: the labelled rows
of ``ratings_final`` (positives and the preprocessing's sampled negatives) cut 6:2:2 at
random; models learn from the training rows' positives (BPR, as everywhere in kgrec, where the
papers train a classifier on both labels), early stopping on validation AUC; test AUC, and F1
at the score threshold that maximises F1 on the validation rows. The popularity floor
(items scored by their training positives) is run the same way: the published AUCs are only
meaningful beside it.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

from common import RUNS, Runs, mean_std, one_thread, run_missing, write_run

DATASETS = ["lastfm-hetrec-kg", "ml-100k-kb4rec", "book-crossing-kg"]
MODELS = ["mf", "lightgcn", "kggnn", "hgnn"]
FLOORS = ["random", "popularity"]
NAMES = {"random": "Random (floor)", "popularity": "Popularity (floor)", "mf": "MF-BPR",
         "lightgcn": "LightGCN", "kggnn": "KG GNN (kggnn)", "hgnn": "hgnn (content + KG)",
         "simgcl": "SimGCL", "xsimgcl": "XSimGCL", "lightgcn-ss": "LightGCN, shared negatives",
         "mf-ss": "MF, shared negatives"}
LR = {"mf": 1e-3, "lightgcn": 5e-3, "kggnn": 5e-3, "hgnn": 5e-3}  # see the docstring
SELECT_DATASET = "lastfm-hetrec-kg"
_SHARED = {"loss": "sampled_softmax", "negatives": 1024, "batch_size": 4096}
_SOFTMAX_GRID = {"lr": [1e-3, 5e-3], "temperature": [0.1, 0.2]}
#: peer -> (registered model, fixed train settings, the grid chosen on validation by --select)
PEERS = {"simgcl": ("simgcl", {}, {"lr": [1e-3, 5e-3]}),
         "xsimgcl": ("xsimgcl", {}, {"lr": [1e-3, 5e-3]}),
         "lightgcn-ss": ("lightgcn", _SHARED, _SOFTMAX_GRID),
         "mf-ss": ("mf", _SHARED, _SOFTMAX_GRID)}
CTR_DATASETS = ["lastfm-hetrec-kg", "book-crossing-kg"]
CTR_MODELS = ["mf", "lightgcn", "kggnn"]
# KGCN paper (Wang et al., WWW 2019), Table 3, KGCN-sum: (AUC, F1).
KGCN_PUBLISHED = {"lastfm-hetrec-kg": (0.796, 0.721), "book-crossing-kg": (0.684, 0.631)}


def floor_scorer(name: str, split):
    from kgrec.evaluate import PopularityScorer, RandomScorer

    if name == "random":
        return RandomScorer(split.num_items, seed=split.seed)
    return PopularityScorer.from_split(split)


def grid(peer: str) -> list[dict]:
    """Every setting of ``peer``'s selection grid, in a fixed order."""
    import itertools

    axes = PEERS[peer][2]
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


def select_file(peer: str, k: int) -> Path:
    return RUNS / f"select-{SELECT_DATASET}-{peer}-{k}.json"


def chosen(peer: str) -> dict:
    """The setting of ``peer``'s grid with the best validation NDCG@20 (``--select``)."""
    import json

    docs = [json.loads(select_file(peer, k).read_text()) if select_file(peer, k).is_file()
            else None for k in range(len(grid(peer)))]
    if None in docs:
        raise SystemExit(f"{peer}: run `python benchmarks/run.py --select` first (its "
                         "settings are chosen on validation)")
    stale = [k for k, d in enumerate(docs) if d["setting"] != grid(peer)[k]]
    if stale:
        raise SystemExit(f"{peer}: {select_file(peer, stale[0]).name} was chosen from another "
                         "grid; delete the select files and run --select again")
    return max(docs, key=lambda d: d["valid_ndcg@20"])["setting"]


def train_settings(model: str, seed: int, setting: dict | None = None) -> tuple[str, dict]:
    """The registered model and train section of a baseline or peer run."""
    if model not in PEERS:
        return model, {"seed": seed, "device": "cpu", "lr": LR[model], "epochs": 500}
    name, fixed, _ = PEERS[model]
    return name, {"seed": seed, "device": "cpu", "epochs": 500, **fixed,
                  **(setting if setting is not None else chosen(model))}


def run_select(peer: str, k: int, out: Path) -> None:
    """One setting of a peer's grid on the selection dataset, seed 0: its validation only."""
    import kgrec

    one_thread()
    setting = grid(peer)[k]
    split = kgrec.split(kgrec.load_dataset(SELECT_DATASET), "random", valid=0.1, test=0.1,
                        seed=0)
    name, train = train_settings(peer, 0, setting)
    cfg = kgrec.Config(data={"dataset": SELECT_DATASET, "seed": 0, "split": "random"},
                       model=name, train=train)
    rec = kgrec.train(split, cfg, progress=False)
    best = max((h for h in rec.history if "valid" in h), key=lambda h: h["valid"]["ndcg@20"])
    write_run(out, {"dataset": SELECT_DATASET, "model": peer, "variant": f"{peer}-{k}",
                    "setting": setting, "valid_ndcg@20": best["valid"]["ndcg@20"],
                    "best_epoch": best["epoch"]}, cfg, split)


def run_one(dataset: str, model: str, seed: int, out: Path, protocol: str) -> None:
    from recbole_peers import split_sha256

    import kgrec
    from kgrec.evaluate import popularity_groups

    one_thread()
    start = time.perf_counter()
    graph = kgrec.load_dataset(dataset)
    ctr = protocol == "ctr"
    split = kgrec.split(graph, "ctr" if ctr else "random", valid=0.2 if ctr else 0.1,
                        test=0.2 if ctr else 0.1, seed=seed)
    doc: dict = {"dataset": dataset, "model": model, "seed": seed, "protocol": protocol}
    cfg = None
    if model in FLOORS:
        scorer = floor_scorer(model, split)
    else:
        cfg = kgrec.Config(data={"dataset": dataset, "seed": seed,
                                 "split": "ctr" if ctr else "random",
                                 **({"valid": 0.2, "test": 0.2} if ctr else {})},
                           model=train_settings(model, seed)[0],
                           train=train_settings(model, seed)[1])
        t0 = time.perf_counter()
        scorer = kgrec.train(split, cfg, progress=False)
        train_s = time.perf_counter() - t0
        metric = "auc" if ctr else "ndcg@20"
        evals = [h for h in scorer.history if "valid" in h]
        best = max(evals, key=lambda h: h["valid"][metric])
        doc.update({f"valid_{metric}": best["valid"][metric], "best_epoch": best["epoch"],
                    "epochs": len(scorer.history),
                    "sec_per_epoch": statistics.median(h["seconds"] for h in scorer.history),
                    "train_s": train_s})
        if "align" in scorer.history[-1]:  # hgnn's aligned ranking: student and gate stages
            doc["align"] = scorer.history[-1]["align"]
    if ctr:
        test = kgrec.evaluate_ctr(scorer, split.ctr["test"], threshold_rows=split.ctr["valid"])
        doc.update(auc=test["auc"], f1=test["f1"])
    else:
        test = kgrec.evaluate(scorer, split.test, k=[20])
        doc.update({"recall@20": test["recall@20"], "ndcg@20": test["ndcg@20"],
                    "recbole_split_sha256": split_sha256(split)})
        groups = popularity_groups(split.train_matrix())
        by = kgrec.evaluate(scorer, split.test, k=[20], item_groups=groups, by_cold=False)
        doc["by_popularity"] = {g: {"recall@20": by.groups[g]["recall@20"],
                                    "items": int(groups[g].sum()), "users": by.groups[g].users}
                                for g in by.groups}
    doc.update(wall_s=time.perf_counter() - start,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    write_run(out, doc, cfg, split)


# ------------------------------------------------------------------------------ tables
def _rows(runs: Runs, ds: str, models: list[str], prefix: str = "") -> list[tuple[str, list]]:
    return [(m, docs) for m in models
            if (docs := runs.glob(f"{prefix}{ds}-{m}-[0-9]*.json"))]


def baselines_table(runs: Runs) -> str:
    lines = ["# Baselines: MF-BPR, LightGCN, the KG GNN and hgnn, beside the floors and the "
             "peers (SimGCL, XSimGCL, shared negatives)", "",
             "Reproduce: `python benchmarks/run.py` (resumable; per-run JSON in "
             "`benchmarks/results/runs/`), then `python benchmarks/report.py`.", "",
             "Protocol: per-user random 80/10/10 split, full ranking over all items (training "
             "and validation items excluded), K = 20, early stopping on validation NDCG@20 "
             "(every 5 epochs, patience 6, at most 500 epochs), default hyper-parameters with "
             "one learning rate per model chosen on Last.FM validation (MF 1e-3, the others "
             "5e-3), seeds 0/1/2 (split and training). Mean ± std over seeds. The floors are "
             "ranked by the same code: random scores, and every item by its number of "
             "training interactions. Seconds per epoch: median over epochs (training only; "
             "validation excluded). Peak RSS: max over seeds, of the run's own process. The "
             "RecBole peers on the same splits: `recbole.md`.", ""]
    listed = FLOORS + MODELS + list(PEERS)
    every = [d for ds in DATASETS for _, docs in _rows(runs, ds, listed) for d in docs]
    runs = runs.scoped(every)
    lines += [runs.header(every), ""]
    for ds in DATASETS:
        rows, recalls = [], {}
        for m, docs in _rows(runs, ds, listed):
            rec = [d["recall@20"] for d in docs]
            recalls[m] = statistics.mean(rec)
            trained = m not in FLOORS
            rows.append(
                f"| {NAMES[m]}{runs.mark(docs)} | {mean_std(rec)} | "
                f"{mean_std([d['ndcg@20'] for d in docs])} | "
                + (f"{statistics.mean(d['epochs'] for d in docs):.0f} (best "
                   f"{statistics.mean(d['best_epoch'] for d in docs):.0f}) | "
                   f"{statistics.median(d['sec_per_epoch'] for d in docs):.2f} | "
                   if trained else "– | – | ")
                + f"{max(d['peak_rss_mb'] for d in docs):.0f} | {len(docs)} |")
        if not rows:
            continue
        lines += [f"## {ds}", "", "| model | Recall@20 | NDCG@20 | epochs | s/epoch | "
                  "peak RSS MB | seeds |", "|---|---:|---:|---:|---:|---:|---:|", *rows, ""]
        ids = max((m for m in ("mf", "lightgcn") if m in recalls), key=recalls.get,
                  default=None)
        said = [f"{NAMES[m]} / {NAMES[ids]}: {recalls[m] / recalls[ids]:.2f}x"
                for m in ("kggnn", "hgnn") if m in recalls and ids]
        if "popularity" in recalls and ids:
            said.append(f"{NAMES[ids]} / popularity: {recalls[ids] / recalls['popularity']:.2f}x")
        peers = [m for m in recalls if m not in FLOORS and m != "hgnn"]
        if "hgnn" in recalls and peers:
            best = max(peers, key=recalls.get)
            said.append(f"hgnn / the best peer ({NAMES[best]}): "
                        f"{recalls['hgnn'] / recalls[best]:.2f}x")
        if said:
            lines += ["Recall@20 ratios (means over seeds): " + "; ".join(said) + ".", ""]
    return "\n".join(lines) + "\n"


def ctr_table(runs: Runs) -> str:
    lines = ["# Click-through protocol (RippleNet / KGCN / MCCLK)", "",
             "Reproduce: `python benchmarks/run.py --protocol ctr`, then "
             "`python benchmarks/report.py`.", "",
             "Labelled rows of `ratings_final` (positives + the preprocessing's sampled "
             "negatives) cut 6:2:2 at random (seed = run seed); models learn from the training "
             "rows' positives with BPR; early stopping on validation AUC; F1 at the threshold "
             "that maximises F1 on the validation rows. Mean ± std over the seeds listed. The "
             "popularity floor scores a pair by the item's number of training positives: it "
             "alone is about as good as the published KGCN, so a published AUC says little "
             "without it.", "",
             "Not the papers' training objective (they fit a classifier on both labels), so "
             "the published figures are set beside ours for scale, not as a like-for-like "
             "comparison.", ""]
    every = [d for ds in CTR_DATASETS for _, docs in _rows(runs, ds, FLOORS + CTR_MODELS, "ctr-")
             for d in docs]
    runs = runs.scoped(every)
    lines += [runs.header(every), ""]
    for ds in CTR_DATASETS:
        rows = [f"| {NAMES[m]}{runs.mark(docs)} | {mean_std([d['auc'] for d in docs])} | "
                f"{mean_std([d['f1'] for d in docs])} | {len(docs)} |"
                for m, docs in _rows(runs, ds, FLOORS + CTR_MODELS, "ctr-")]
        if rows:
            auc, f1 = KGCN_PUBLISHED[ds]
            lines += [f"## {ds}", "", "| model | AUC | F1 | seeds |", "|---|---:|---:|---:|",
                      *rows, f"| KGCN (published) | {auc:.3f} | {f1:.3f} | |", ""]
    return "\n".join(lines) + "\n"


def tables(runs: Runs) -> dict[str, str]:
    """The result files this benchmark's runs make (see ``report.py``)."""
    return {"baselines.md": baselines_table(runs), "ctr.md": ctr_table(runs)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--protocol", choices=["ranking", "ctr"], default="ranking")
    p.add_argument("--datasets", nargs="+")
    p.add_argument("--models", nargs="+", choices=FLOORS + MODELS + list(PEERS))
    p.add_argument("--select", action="store_true",
                   help="run the peers' selection grids (Last.FM validation, seed 0)")
    p.add_argument("--select-one", nargs=2, metavar=("PEER", "K"), help=argparse.SUPPRESS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--one", nargs=3, metavar=("DATASET", "MODEL", "SEED"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    ctr = args.protocol == "ctr"
    if args.select_one:
        run_select(args.select_one[0], int(args.select_one[1]), Path(args.out))
        return
    if args.select:
        RUNS.mkdir(parents=True, exist_ok=True)
        run_missing(__file__, [(select_file(m, k), ["--select-one", m, str(k)],
                                f"select {m} {grid(m)[k]}")
                               for m in (args.models or PEERS) if m in PEERS
                               for k in range(len(grid(m)))])
        return
    if args.one:
        ds, m, seed = args.one
        run_one(ds, m, int(seed), Path(args.out), args.protocol)
        return
    datasets = args.datasets or (CTR_DATASETS if ctr else DATASETS)
    models = args.models or FLOORS + (CTR_MODELS if ctr else MODELS)
    RUNS.mkdir(parents=True, exist_ok=True)
    run_missing(__file__, [
        (RUNS / f"{'ctr-' if ctr else ''}{ds}-{m}-{seed}.json",
         ["--one", ds, m, str(seed), "--protocol", args.protocol], f"{ds} {m} seed {seed}")
        for ds in datasets for m in models for seed in args.seeds])
    import report

    report.write_all()


if __name__ == "__main__":
    sys.exit(main())
