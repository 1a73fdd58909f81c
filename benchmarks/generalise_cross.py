"""Cross-domain transfer: one of the generalisation benchmarks.

Cross-domain transfer (``--cross``): DisenCDR's Amazon pairs (users shared, items per
domain), split ``cross_domain``: 10% / 10% of the target domain's users are held out for
test / validation and keep K = 1, 3, 5 of their target links in training; all source-domain
links stay in training; the held-out target links are ranked among the target domain's
items only. ``joint`` trains on the joint graph, ``target`` on the target domain's links
alone (the same held-out links). ``aligned`` is hgnn as it ships (its id model ranks). The
``hgnn-*`` variants are its joint GNN (``model.hgnn.ranking: joint``, one head per domain, the
target's head ranks): ``hgnn`` (the pairs have ids only, and the items' one attribute, their
domain, tells 2 of ~70k items apart, so hgnn places items by ids), ``hgnn-content`` (hgnn
made to use the domain as content, ``model.hgnn.content_min_distinct=0``); beside LightGCN.
Two remedies for negative transfer are joint-only variants of hgnn: ``hgnn-taskusers`` (a
per-user offset per domain head, ``model.hgnn.task_users``) and ``hgnn-src<w>`` (the target head
propagates over its own graph with the source links weighted by ``model.hgnn.source_weight``
w = 0 or 0.3; ``srclearn``: learned from 1, its value at the selected epoch reported).
Runs write
``benchmarks/results/runs/cross-<dataset>-<target>-k<K>-<variant>-<seed>.json``.

Each run is its own process; finished runs are not redone. Summary:
``benchmarks/results/generalise.md``.

    python benchmarks/generalise.py --cross --shots 5
    python benchmarks/generalise_cross.py --one amazon-cdr-sport-cloth 5 hgnn-joint 0 --out F.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import RUNS, Runs, model_section, one_thread, write_run
from generalise_common import Panel, one_main, paired, series, shots_table

CROSS = {"amazon-cdr-sport-cloth": "cloth", "amazon-cdr-phone-sport": "sport"}
CROSS_SHOTS = [1, 3, 5]
CROSS_VARIANTS: dict[str, dict] = {
    # hgnn as it ships (model.hgnn.ranking: aligned): its id model ranks the target items
    "aligned-joint": {"model": {"name": "hgnn"}},
    "aligned-target": {"model": {"name": "hgnn"}, "target_only": True},
    # hgnn's joint GNN (model.hgnn.ranking: joint), one head per domain, the target's ranks
    "hgnn-joint": {"model": {"name": "hgnn"}},
    "hgnn-target": {"model": {"name": "hgnn"}, "target_only": True},
    # The same model keeping the items' one attribute, the domain, as content
    # (model.hgnn.content_min_distinct=0; by default content that tells fewer than 1% of the
    # items apart is dropped): every item unseen in training then gets one vector.
    "hgnn-content-joint": {"model": {"name": "hgnn", "content_min_distinct": 0.0}},
    "hgnn-content-target": {"model": {"name": "hgnn", "content_min_distinct": 0.0},
                            "target_only": True},
    # hgnn with a per-user offset for each domain head (model.hgnn.task_users): the target head
    # may move a user away from where the source domain's links put them.
    "hgnn-taskusers-joint": {"model": {"name": "hgnn", "task_users": True}},
    # hgnn whose target head propagates over its own graph, the source links weighted by
    # model.hgnn.source_weight: 0 (the target's links alone), 0.3, or learned from 1
    "hgnn-src0-joint": {"model": {"name": "hgnn", "source_weight": 0.0}},
    "hgnn-src0.3-joint": {"model": {"name": "hgnn", "source_weight": 0.3}},
    "hgnn-srclearn-joint": {"model": {"name": "hgnn", "source_weight": 1.0,
                                      "learn_source_weight": True}},
    "lightgcn-joint": {"model": {"name": "lightgcn"}},
    "lightgcn-target": {"model": {"name": "lightgcn"}, "target_only": True},
}
ONE = ("DATASET", "SHOTS", "VARIANT", "SEED")  # the arguments of one run


def run_cross(dataset: str, shots: int, variant: str, seed: int, out: Path) -> None:
    import kgrec

    one_thread()

    start = time.perf_counter()
    target = CROSS[dataset]
    v = CROSS_VARIANTS[variant]
    data = {"dataset": dataset, "seed": seed, "split": "cross_domain", "shots": shots,
            "target": target, "target_only": bool(v.get("target_only"))}
    split = kgrec.split(kgrec.load_dataset(dataset), "cross_domain", seed=seed, shots=shots,
                        target=target, target_only=data["target_only"])
    model = dict(v["model"])
    if variant.startswith("hgnn-"):
        model["ranking"] = "joint"
        if not data["target_only"]:
            model["rank_task"] = f"domain={target}"
    cfg = kgrec.Config(data=data, model=model_section(model),
                       train={"seed": seed, "device": "cpu", "lr": 5e-3, "epochs": 500})
    rec = kgrec.train(split, cfg, progress=False)
    test = kgrec.evaluate(rec, split.test, k=[20])
    doc = {"dataset": dataset, "target": target, "shots": shots, "variant": variant,
           "seed": seed, "recall@20": test["recall@20"], "ndcg@20": test["ndcg@20"],
           "train_links": len(split.train_users), "test_users": len(split.test.users),
           "test_links": len(split.test), "epochs": len(rec.history),
           "sec_per_epoch": statistics.median(h["seconds"] for h in rec.history),
           "wall_s": time.perf_counter() - start}
    best = [h for h in rec.history if h.get("best")]
    if best and "source_weight" in best[-1].get("parts", {}):
        doc["source_weight"] = best[-1]["parts"]["source_weight"]
    write_run(out, doc, cfg, split)


def one(args: list[str], out: Path) -> None:
    """One run from its command-line arguments (:data:`ONE`)."""
    dataset, shots, variant, seed = args
    run_cross(dataset, int(shots), variant, int(seed), out)


def jobs(a: argparse.Namespace, dataset: str, seed: int) -> list[tuple[Path, list[str], str]]:
    """The runs of ``dataset`` and ``seed`` that ``generalise.py --cross`` asks for: ``(out
    file, args of one run, label)``; none for a dataset that is not a pair."""
    if dataset not in CROSS:
        return []
    return [(RUNS / f"cross-{dataset}-{CROSS[dataset]}-k{k}-{v}-{seed}.json",
             ["--one", dataset, str(k), v, str(seed)],
             f"cross {dataset} K={k} {v} seed {seed}")
            for k in a.shots for v in a.variants]


def summarise(all_runs: Runs) -> list[str]:
    """The cross-domain tables of ``generalise.md``: per pair, by target shots K."""
    runs = all_runs.glob("cross-*.json")
    lines: list[str] = []
    for dataset in CROSS:
        rs = [r for r in runs if r["dataset"] == dataset]
        if not rs:
            continue
        lines += [f"## Cross-domain transfer on {dataset}: target {CROSS[dataset]}, "
                  "Recall@20 / NDCG@20 by target shots K", "",
                  "Protocol: " + __doc__.split("Cross-domain transfer (``--cross``): ")[1]
                  .split("\n\n")[0].replace("``", "`"), "",
                  *shots_table(all_runs, rs, list(CROSS_VARIANTS), CROSS_SHOTS)]
        ratio = []
        # each joint variant against its model's target-only run (the remedies: hgnn's)
        pairs = [(v, t if (t := v.replace("-joint", "-target")) in CROSS_VARIANTS
                  else "hgnn-target") for v in CROSS_VARIANTS if v.endswith("-joint")]
        for joint, target in pairs:
            for k in CROSS_SHOTS:
                # on the seeds both have: the held-out users differ from seed to seed
                j = {r["seed"]: r["recall@20"] for r in rs
                     if r["variant"] == joint and r["shots"] == k}
                t = {r["seed"]: r["recall@20"] for r in rs
                     if r["variant"] == target and r["shots"] == k}
                mj, mt, n = paired(j, t)
                if mt > 0:
                    ratio.append(f"{joint.removesuffix('-joint')} K={k}: {mj / mt:.2f}x "
                                 f"({n} seed{'s' if n > 1 else ''})")
        gate = [f"K={r['shots']} seed {r['seed']}: {r['source_weight']:.2f}" for r in rs
                if r["variant"] == "hgnn-srclearn-joint" and "source_weight" in r]
        secs = {v: [r["sec_per_epoch"] for r in rs if r["variant"] == v] for v in CROSS_VARIANTS}
        lines += ["", *([f"joint / target-only Recall@20: {', '.join(ratio)}.", ""]
                        if ratio else []),
                  *(["hgnn-srclearn's learned source-link weight at the selected epoch: "
                     + ", ".join(gate) + ".", ""] if gate else []),
                  "Seconds per epoch (median over runs): " + ", ".join(
                      f"{v} {statistics.median(s):.2f}" for v, s in secs.items() if s), ""]
    return lines


def panels(runs: Runs) -> list[Panel]:
    """The plot's panels: Recall@20 against target shots, per pair."""
    cross = runs.glob("cross-*.json")
    out: list[Panel] = []
    for dataset, target in CROSS.items():
        rows = [r for r in cross if r["dataset"] == dataset]
        if rows:
            out.append((f"{dataset}: target {target}", "target shots K", [
                (v, series([r for r in rows if r["variant"] == v], "shots", CROSS_SHOTS))
                for v in ("hgnn-joint", "hgnn-target", "lightgcn-joint", "lightgcn-target")]))
    return out


if __name__ == "__main__":
    one_main(__doc__, ONE, one)
