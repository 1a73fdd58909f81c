"""Few-shot cold users and items (meta-episodes): one of the generalisation benchmarks.

Protocol: a cold-user (or cold-item) split, 10% of the users (items) held out for test and
10% for validation; each held-out node keeps K of its links, drawn at random, in training
(its support set, K = 0, 1, 3, 5); its other links are ranked, full ranking over all items
(training and validation items excluded), K = 20 cut-off. Early stopping on validation
NDCG@20 (held-out validation nodes, adapted the same way), every 5 epochs, patience 6, at
most 500 epochs, lr 5e-3, split seed = run seed.

Variants (``--variants``):

- ``aligned``: ``hgnn`` as it ships (``model.hgnn.ranking: aligned``): the id model trained
  with the support links as ordinary edges, a content student for the items without links,
  the gate chosen on validation; a held-out user is its id vector over its K links;
- ``meta``: ``hgnn``'s joint GNN (``model.hgnn.ranking: joint``) meta-trained on episodes
  (``meta.mode=meta``: episodes with K drawn from 0/1/3/5, first-order MAML with learned
  step sizes); held-out nodes are encoded cold and adapted on their K support links at
  evaluation;
- ``finetune``: the same model without meta-training (``meta.mode=finetune``): held-out nodes
  encoded cold, then fine-tuned on their K support links with the same number of steps at a
  fixed step size;
- ``joint``: the same model, the support links simply trained on as ordinary edges
  (``meta.mode=off``);
- ``lightgcn``: an id-only LightGCN, support links as ordinary edges;
- ``meta-softmax``, ``finetune-softmax``: ``meta`` and ``finetune`` trained with the
  sampled-softmax loss (``train.loss: softmax``; the adaptation's inner loss stays BPR).

Each run is its own process writing
``benchmarks/results/runs/generalise-<dataset>-<side>-k<K>-<variant>-<seed>.json``; finished
runs are not redone. Summary: ``benchmarks/results/generalise.md``.

    python benchmarks/generalise.py --datasets lastfm-hetrec-kg --sides user --seeds 0
    python benchmarks/generalise_fewshot.py --one lastfm-hetrec-kg user 3 meta 0 --out F.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import RUNS, Runs, one_thread, write_run
from generalise_common import Panel, one_main, paired, series, shots_table

DATASETS = ["lastfm-hetrec-kg", "ml-100k-kb4rec"]
SHOTS = [0, 1, 3, 5]
JOINT = {"name": "hgnn", "hgnn": {"ranking": "joint"}}
VARIANTS: dict[str, dict] = {
    "aligned": {"model": {"name": "hgnn"}},
    "meta": {"model": JOINT, "meta": {"mode": "meta"}},
    "finetune": {"model": JOINT, "meta": {"mode": "finetune"}},
    "joint": {"model": JOINT, "meta": {"mode": "off"}},
    "lightgcn": {"model": {"name": "lightgcn"}},
    "meta-softmax": {"model": JOINT, "meta": {"mode": "meta"}, "train": {"loss": "softmax"}},
    "finetune-softmax": {"model": JOINT, "meta": {"mode": "finetune"},
                         "train": {"loss": "softmax"}},
}
ONE = ("DATASET", "SIDE", "SHOTS", "VARIANT", "SEED")  # the arguments of one run


def run_one(dataset: str, side: str, shots: int, variant: str, seed: int, out: Path) -> None:
    import kgrec

    one_thread()

    start = time.perf_counter()
    split_name = f"cold_{side}"
    graph = kgrec.load_dataset(dataset)
    split = kgrec.split(graph, split_name, seed=seed, shots=shots)
    v = dict(VARIANTS[variant])
    cfg = kgrec.Config(data={"dataset": dataset, "seed": seed, "split": split_name,
                             "shots": shots},
                       train={"seed": seed, "device": "cpu", "lr": 5e-3, "epochs": 500,
                              **v.pop("train", {})}, **v)
    t0 = time.perf_counter()
    rec = kgrec.train(split, cfg, progress=False)
    train_s = time.perf_counter() - t0
    evals = [h for h in rec.history if "valid" in h]
    best = max(evals, key=lambda h: h["valid"]["ndcg@20"])
    test = kgrec.evaluate(rec, split.test, k=[20])
    doc = {"dataset": dataset, "side": side, "shots": shots, "variant": variant, "seed": seed,
           "recall@20": test["recall@20"], "ndcg@20": test["ndcg@20"],
           "valid_ndcg@20": best["valid"]["ndcg@20"], "best_epoch": best["epoch"],
           "epochs": len(rec.history),
           "sec_per_epoch": statistics.median(h["seconds"] for h in rec.history),
           "train_s": train_s, "wall_s": time.perf_counter() - start,
           "test_users": len(split.test.users), "test_links": len(split.test)}
    write_run(out, doc, cfg, split)


def one(args: list[str], out: Path) -> None:
    """One run from its command-line arguments (:data:`ONE`)."""
    dataset, side, shots, variant, seed = args
    run_one(dataset, side, int(shots), variant, int(seed), out)


def jobs(a: argparse.Namespace, dataset: str, seed: int) -> list[tuple[Path, list[str], str]]:
    """The runs of ``dataset`` and ``seed`` that ``generalise.py`` asks for: ``(out file,
    args of one run, label)``."""
    return [(RUNS / f"generalise-{dataset}-{side}-k{k}-{v}-{seed}.json",
             ["--one", dataset, side, str(k), v, str(seed)],
             f"{dataset} {side} K={k} {v} seed {seed}")
            for side in a.sides for k in a.shots for v in a.variants]


def intro() -> list[str]:
    """The protocol and the variants, as the head of ``generalise.md`` gives them."""
    return ["Few-shot " + __doc__.split("Variants")[0].split("\n\n", 1)[1].strip()
            .replace("Protocol:", "protocol:"), "",
            "Variants: `aligned` = hgnn as it ships (the id model with the shots as ordinary "
            "edges, a content student for items without links, a gate chosen on "
            "validation); `meta` = hgnn's joint GNN meta-trained on episodes, held-out "
            "nodes adapted on their shots at evaluation; `finetune` = the same model "
            "without meta-training, held-out nodes encoded without ids and fine-tuned on "
            "their shots (same steps, fixed step size); `joint` = the same model with the "
            "shots as ordinary training edges; `lightgcn` = id-only LightGCN, shots as "
            "ordinary edges.", ""]


def summarise(all_runs: Runs) -> list[str]:
    """The few-shot tables of ``generalise.md``: per dataset and side, by shots K."""
    runs = all_runs.glob("generalise-*.json")
    lines: list[str] = []
    for dataset in DATASETS:
        for side in ("user", "item"):
            rows = [r for r in runs if r["dataset"] == dataset and r["side"] == side]
            if not rows:
                continue
            lines += [f"## {dataset}: cold {side}s, Recall@20 / NDCG@20 by shots K", "",
                      *shots_table(all_runs, rows, list(VARIANTS), SHOTS)]
            for meta, fine in (("aligned", "lightgcn"), ("meta", "finetune"),
                               ("meta-softmax", "finetune-softmax"), ("meta", "lightgcn")):
                ratio = []
                for k in SHOTS:  # on the seeds both have, as the cross-domain ratio
                    m, f = ({r["seed"]: r["recall@20"] for r in rows
                             if r["variant"] == v and r["shots"] == k} for v in (meta, fine))
                    mm, mf, _ = paired(m, f)
                    if mf > 0:
                        ratio.append(f"K={k}: {mm / mf:.2f}x")
                if ratio:
                    lines += ["", f"{meta} / {fine} Recall@20: " + ", ".join(ratio) + "."]
            secs = {v: [r["sec_per_epoch"] for r in rows if r["variant"] == v]
                    for v in VARIANTS}
            lines += ["", "Seconds per epoch (median over runs): " + ", ".join(
                f"{v} {statistics.median(s):.2f}" for v, s in secs.items() if s), ""]
    return lines


def panels(runs: Runs) -> list[Panel]:
    """The plot's panels: Recall@20 against shots, per dataset and side."""
    fewshot = runs.glob("generalise-*.json")
    out: list[Panel] = []
    for dataset in DATASETS:
        for side in ("user", "item"):
            rows = [r for r in fewshot if r["dataset"] == dataset and r["side"] == side]
            if rows:
                out.append((f"{dataset}: cold {side}s", "shots K", [
                    (v, series([r for r in rows if r["variant"] == v], "shots", SHOTS))
                    for v in ("aligned", "meta", "finetune", "joint", "lightgcn")]))
    return out


if __name__ == "__main__":
    one_main(__doc__, ONE, one)
