"""Generalisation benchmarks: few-shot cold users and items (meta-episodes).

Protocol: a cold-user (or cold-item) split, 10% of the users (items) held out for test and
10% for validation; each held-out node keeps K of its links, drawn at random, in training
(its support set, K = 0, 1, 3, 5); its other links are ranked, full ranking over all items
(training and validation items excluded), K = 20 cut-off. Early stopping on validation
NDCG@20 (held-out validation nodes, adapted the same way), every 5 epochs, patience 6, at
most 500 epochs, lr 5e-3, split seed = run seed.

Variants (``--variants``):

- ``meta``: ``hgnn`` meta-trained on episodes (``meta.mode=meta``: episodes with K drawn
  from 0/1/3/5, first-order MAML with learned step sizes); held-out nodes are encoded cold
  and adapted on their K support links at evaluation;
- ``finetune``: the same model without meta-training (``meta.mode=finetune``): held-out nodes
  encoded cold, then fine-tuned on their K support links with the same number of steps at a
  fixed step size;
- ``joint``: the same model, the support links simply trained on as ordinary edges
  (``meta.mode=off``);
- ``lightgcn``: an id-only LightGCN, support links as ordinary edges;
- ``meta-softmax``, ``finetune-softmax``: ``meta`` and ``finetune`` trained with the
  sampled-softmax loss (``train.loss: softmax``; the adaptation's inner loss stays BPR).

Robustness (``--robust``): ``hgnn`` on the per-user random 80/10/10 split, trained on noisy
data and tested on the clean test set: (a) 10/20/30% of the training positives replaced by
random pairs, (b) the relations of 10/20/30% of the KG triples shuffled; each with and
without adversarial training (``train.adv_eps`` 0.1, FGSM, weight 1); ``--loss softmax``
trains them all with the sampled-softmax loss instead of BPR. Runs write
``benchmarks/results/runs/robust-<dataset>-<noise>-<share>-<adv|plain>[-softmax]-<seed>.json``.
``--adv-eps 0.25 0.5 ...`` runs the adversarial variant at other radii (files
``...-adv<eps>[-softmax]-<seed>.json``) and adds a radius table to the summary.

Temporal shift (``--temporal``): ``hgnn`` and LightGCN on ``ml-latest-small`` split by one
global time cut (train on the oldest 80% of the pairs, validate on the next 10%, test on the
newest 10%) against the per-user random 80/10/10 split; the drop is the relative loss of
test Recall@20. Runs write
``benchmarks/results/runs/temporal-<dataset>-<split>-<model>-<seed>.json``.

Cross-domain transfer (``--cross``): DisenCDR's Amazon pairs (users shared, items per
domain), split ``cross_domain``: 10% / 10% of the target domain's users are held out for
test / validation and keep K = 1, 3, 5 of their target links in training; all source-domain
links stay in training; the held-out target links are ranked among the target domain's
items only. ``joint`` trains on the joint graph (one head per domain, the target's head
ranks), ``target`` on the target domain's links alone (the same held-out links); each for
``hgnn`` (default config: the pairs have ids only, and the items' one attribute, their
domain, tells 2 of ~70k items apart, so hgnn places items by ids), ``hgnn-content`` (hgnn
made to use the domain as content, ``model.content_min_distinct=0``) and LightGCN; two
remedies for negative transfer are joint-only variants of hgnn: ``hgnn-taskusers`` (a
per-user offset per domain head, ``model.task_users``) and ``hgnn-src<w>`` (the target head
propagates over its own graph with the source links weighted by ``model.source_weight``
w = 0 or 0.3; ``srclearn``: learned from 1, its value at the selected epoch reported).
Runs write
``benchmarks/results/runs/cross-<dataset>-<target>-k<K>-<variant>-<seed>.json``.

Each run is its own process writing
``benchmarks/results/runs/generalise-<dataset>-<side>-k<K>-<variant>-<seed>.json``; finished
runs are not redone. Summary: ``benchmarks/results/generalise.md``.

    python benchmarks/generalise.py --datasets lastfm-hetrec-kg --sides user --seeds 0
    python benchmarks/generalise.py --summary
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import RESULTS, RUNS, Runs, mean_std, one_thread, run_missing, write_run

DATASETS = ["lastfm-hetrec-kg", "ml-100k-kb4rec"]
SHOTS = [0, 1, 3, 5]
VARIANTS: dict[str, dict] = {
    "meta": {"model": {"name": "hgnn"}, "meta": {"mode": "meta"}},
    "finetune": {"model": {"name": "hgnn"}, "meta": {"mode": "finetune"}},
    "joint": {"model": {"name": "hgnn"}, "meta": {"mode": "off"}},
    "lightgcn": {"model": {"name": "lightgcn"}},
    "meta-softmax": {"model": {"name": "hgnn"}, "meta": {"mode": "meta"},
                     "train": {"loss": "softmax"}},
    "finetune-softmax": {"model": {"name": "hgnn"}, "meta": {"mode": "finetune"},
                         "train": {"loss": "softmax"}},
}


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


ADV_EPS = 0.1  # the radius of the main robustness table
ADV = {"train": {"adv_weight": 1.0, "adv_steps": 1}}
NOISE = [("none", 0.0), ("inter", 0.1), ("inter", 0.2), ("inter", 0.3), ("kg", 0.1),
         ("kg", 0.2), ("kg", 0.3)]


ATTACK_EPS = [0.05, 0.1, 0.25, 0.5]


def run_robust(dataset: str, noise: str, share: float, adv_eps: float, seed: int, out: Path,
               loss: str = "bpr") -> None:
    """One robustness run; ``adv_eps`` 0 trains without adversarial training."""
    import kgrec
    from kgrec.data.noise import interaction_noise, kg_noise

    one_thread()

    start = time.perf_counter()
    split = kgrec.split(kgrec.load_dataset(dataset), "random", seed=seed)
    if noise == "inter":
        split = interaction_noise(split, share, seed=seed)
    elif noise == "kg":
        split = kg_noise(split, share, seed=seed)
    train = {"seed": seed, "device": "cpu", "lr": 5e-3, "epochs": 500, "loss": loss}
    if adv_eps:
        train.update(ADV["train"], adv_eps=adv_eps)
    cfg = kgrec.Config(data={"dataset": dataset, "seed": seed}, model={"name": "hgnn"},
                       train=train)
    rec = kgrec.train(split, cfg, progress=False)
    test = kgrec.evaluate(rec, split.test, k=[20])
    attacked = {}
    if noise == "none":  # (c): the clean model's inputs attacked at test time
        from kgrec.train.adversarial import attacked_outputs
        from kgrec.train.loop import EmbeddingScorer, model_from

        model = model_from(rec, split)
        for eps in ATTACK_EPS:
            u, i = attacked_outputs(model, split, eps, seed=seed)
            scores = kgrec.evaluate(EmbeddingScorer(u, i), split.test, k=[20])
            attacked[str(eps)] = scores["recall@20"]
    doc = {"dataset": dataset, "noise": noise, "share": share, "adv": adv_eps > 0,
           "adv_eps": adv_eps, "seed": seed,
           "loss": loss, "attacked_recall@20": attacked,
           "recall@20": test["recall@20"], "ndcg@20": test["ndcg@20"],
           "epochs": len(rec.history),
           "sec_per_epoch": statistics.median(h["seconds"] for h in rec.history),
           "wall_s": time.perf_counter() - start}
    write_run(out, doc, cfg, split)


def run_temporal(dataset: str, split_name: str, model: str, seed: int, out: Path) -> None:
    import kgrec

    one_thread()

    start = time.perf_counter()
    split = kgrec.split(kgrec.load_dataset(dataset), split_name, seed=seed)
    cfg = kgrec.Config(data={"dataset": dataset, "seed": seed, "split": split_name},
                       model={"name": model},
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


CROSS = {"amazon-cdr-sport-cloth": "cloth", "amazon-cdr-phone-sport": "sport"}
CROSS_SHOTS = [1, 3, 5]
CROSS_VARIANTS: dict[str, dict] = {
    "hgnn-joint": {"model": {"name": "hgnn"}},
    "hgnn-target": {"model": {"name": "hgnn"}, "target_only": True},
    # The same model keeping the items' one attribute, the domain, as content
    # (model.content_min_distinct=0; by default content that tells fewer than 1% of the
    # items apart is dropped): every item unseen in training then gets one vector.
    "hgnn-content-joint": {"model": {"name": "hgnn", "content_min_distinct": 0.0}},
    "hgnn-content-target": {"model": {"name": "hgnn", "content_min_distinct": 0.0},
                            "target_only": True},
    # hgnn with a per-user offset for each domain head (model.task_users): the target head
    # may move a user away from where the source domain's links put them.
    "hgnn-taskusers-joint": {"model": {"name": "hgnn", "task_users": True}},
    # hgnn whose target head propagates over its own graph, the source links weighted by
    # model.source_weight: 0 (the target's links alone), 0.3, or learned from 1
    "hgnn-src0-joint": {"model": {"name": "hgnn", "source_weight": 0.0}},
    "hgnn-src0.3-joint": {"model": {"name": "hgnn", "source_weight": 0.3}},
    "hgnn-srclearn-joint": {"model": {"name": "hgnn", "source_weight": 1.0,
                                      "learn_source_weight": True}},
    "lightgcn-joint": {"model": {"name": "lightgcn"}},
    "lightgcn-target": {"model": {"name": "lightgcn"}, "target_only": True},
}


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
    if model["name"] == "hgnn" and not data["target_only"]:
        model["rank_task"] = f"domain={target}"
    cfg = kgrec.Config(data=data, model=model,
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


def shots_table(all_runs: Runs, runs: list[dict], variants: list[str], shots: list[int]
                ) -> list[str]:
    """Markdown rows: one per variant with runs, ``Recall@20 / NDCG@20`` (mean ± std over
    seeds) per K, and the number of seeds per K."""
    lines = ["| variant | " + " | ".join(f"K={k}" for k in shots) + " | seeds per K |",
             "|---|" + "---:|" * (len(shots) + 1)]
    for v in variants:
        cells, seeds = [], []
        for k in shots:
            sel = [r for r in runs if r["variant"] == v and r["shots"] == k]
            seeds.append(len({r["seed"] for r in sel}))
            cells.append(f"{mean_std([r['recall@20'] for r in sel])} / "
                         f"{mean_std([r['ndcg@20'] for r in sel])}" if sel else "–")
        if any(seeds):
            mark = all_runs.mark([r for r in runs if r["variant"] == v])
            lines.append(f"| {v}{mark} | " + " | ".join(cells) + " | "
                         + "/".join(map(str, seeds)) + " |")
    return lines


def summarise_cross(all_runs: Runs) -> list[str]:
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
                mj, mt, n = _paired(j, t)
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


def summarise_temporal(all_runs: Runs) -> list[str]:
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
        for model in ("hgnn", "lightgcn"):
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


def _loss(run: dict) -> str:
    return run.get("loss", "bpr")  # runs from before train.loss existed were BPR


def _adv_eps(run: dict) -> float:
    return run.get("adv_eps", ADV_EPS if run["adv"] else 0.0)  # older runs: 0.1 or off


def _recalls(rs: list[dict], noise: str, share: float, eps: float) -> dict[int, float]:
    """Test Recall@20 by seed of the runs at this noise and adversarial radius (0 = plain)."""
    return {r["seed"]: r["recall@20"] for r in rs
            if r["noise"] == noise and r["share"] == share and _adv_eps(r) == eps}


def _paired(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, int]:
    """The means of two by-seed results over the seeds both have, and how many (0: none), so
    that a one-seed run is never set against a three-seed mean."""
    both = a.keys() & b.keys()
    if not both:
        return 0.0, 0.0, 0
    return (statistics.mean(a[x] for x in both), statistics.mean(b[x] for x in both),
            len(both))


def _drop(noisy: dict[int, float], clean: dict[int, float]) -> str:
    """Relative change of the mean Recall@20 against clean training (paired seeds)."""
    n, c, k = _paired(noisy, clean)
    return f"{n / c - 1:+.1%}" if k and c else "–"


def _mean_cell(xs: dict[int, float]) -> str:
    return f"{statistics.mean(xs.values()):.4f}" if xs else "–"


def _robust_radii(rs: list[dict]) -> list[str]:
    """A table of clean and noisy Recall@20 for every adversarial radius that was run."""
    radii = sorted({_adv_eps(r) for r in rs})
    shares = sorted({(r["noise"], r["share"]) for r in rs if r["noise"] != "none"})
    if len(radii) <= 2 or not shares:
        return []
    lines = ["Adversarial radius (`train.adv_eps`; 0 = plain): Recall@20 (seeds) clean and "
             "under noise, drop against the same radius trained clean on the same seeds:", "",
             "| adv_eps | clean | " + " | ".join(f"{n} {s:.0%}" for n, s in shares) + " |",
             "|---:|---:|" + "---:|" * len(shares)]
    for eps in radii:
        clean = _recalls(rs, "none", 0.0, eps)
        cells = [f"{_mean_cell(clean)} ({len(clean)})" if clean else "–"]
        for noise, share in shares:
            xs = _recalls(rs, noise, share, eps)
            drop = _drop(xs, clean)
            cells.append("–" if not xs else f"{_mean_cell(xs)} ({len(xs)})"
                         + ("" if drop == "–" else f", {drop}"))
        lines.append(f"| {eps:g} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def summarise_robust(all_runs: Runs) -> list[str]:
    runs = all_runs.glob("robust-*.json")
    lines: list[str] = []
    for dataset, loss in sorted({(r["dataset"], _loss(r)) for r in runs},
                                key=lambda x: (x[0], x[1] != "bpr")):
        rs = [r for r in runs if r["dataset"] == dataset and _loss(r) == loss]
        what = "hgnn" if loss == "bpr" else f"hgnn with the {loss} loss"
        lines += [f"## Robustness on {dataset}: {what} trained on noisy data, clean test set",
                  "",
                  f"Adversarial = `train.adv_eps={ADV_EPS:g}` (FGSM on the layer-0 inputs, "
                  "weight 1). "
                  "Drop = relative loss of Recall@20 against the same variant trained on "
                  "clean data, over the same seeds. Goal: adversarial training halves the "
                  "drop at 20% noise, losing at most 2% clean Recall@20.", "",
                  "| noise | share | Recall@20 plain | Recall@20 adversarial | drop plain | "
                  "drop adversarial | seeds (plain / adversarial) |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        radius = {False: 0.0, True: ADV_EPS}
        clean = {a: _recalls(rs, "none", 0.0, radius[a]) for a in (False, True)}
        for noise, share in NOISE:
            vals = {a: _recalls(rs, noise, share, radius[a]) for a in (False, True)}
            if not any(vals.values()):
                continue
            cells = [_mean_cell(vals[a]) for a in (False, True)]
            cells += [_drop(vals[a], clean[a]) for a in (False, True)]
            n = {a: len(vals[a]) for a in (False, True)}
            seeds = f"{n[False]}" if n[False] == n[True] else f"{n[False]} / {n[True]}"
            lines.append(f"| {noise} | {share:.0%} | " + " | ".join(cells) + f" | {seeds} |")
        lines.append("")
        lines += _robust_radii(rs)
        att = {a: [r for r in rs if r["noise"] == "none" and _adv_eps(r) == radius[a]
                   and r.get("attacked_recall@20")] for a in (False, True)}
        if att[False] or att[True]:
            lines += ["Test-time attack on the clean models (`kgrec evaluate --perturb EPS`: "
                      "FGSM on the layer-0 inputs against the training ranking loss):", "",
                      "| L2 radius | Recall@20 plain | Recall@20 adversarial | drop plain | "
                      "drop adversarial |", "|---:|---:|---:|---:|---:|"]
            for eps in ATTACK_EPS:
                hit = {a: {r["seed"]: r["attacked_recall@20"][str(eps)] for r in att[a]
                           if str(eps) in r["attacked_recall@20"]} for a in (False, True)}
                cells = [_mean_cell(hit[a]) for a in (False, True)]
                cells += [_drop(hit[a], clean[a]) for a in (False, True)]
                lines.append(f"| {eps} | " + " | ".join(cells) + " |")
            lines.append("")
    return lines


def _series(rows: list[dict], key: str, xs: list) -> tuple[list, list[float], list[float]]:
    """Mean and std of Recall@20 over seeds at each ``x`` where ``key`` equals it."""
    out: tuple[list, list[float], list[float]] = ([], [], [])
    for x in xs:
        vals = [r["recall@20"] for r in rows if r[key] == x]
        if vals:
            out[0].append(x)
            out[1].append(statistics.mean(vals))
            out[2].append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
    return out


def plot_summary(runs: Runs) -> list[str]:
    """``generalise.png``: Recall@20 against shots (few-shot, cross-domain), noise share
    and attack radius (robustness), mean ± std over seeds. Returns the markdown lines that
    show it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fewshot, cross, robust = (runs.glob(f"{k}-*.json") for k in ("generalise", "cross",
                                                                   "robust"))
    panels = []
    for dataset in DATASETS:
        for side in ("user", "item"):
            rows = [r for r in fewshot if r["dataset"] == dataset and r["side"] == side]
            if rows:
                panels.append((f"{dataset}: cold {side}s", "shots K", [
                    (v, _series([r for r in rows if r["variant"] == v], "shots", SHOTS))
                    for v in ("meta", "finetune", "joint", "lightgcn")]))
    for dataset, target in CROSS.items():
        rows = [r for r in cross if r["dataset"] == dataset]
        if rows:
            panels.append((f"{dataset}: target {target}", "target shots K", [
                (v, _series([r for r in rows if r["variant"] == v], "shots", CROSS_SHOTS))
                for v in ("hgnn-joint", "hgnn-target", "lightgcn-joint", "lightgcn-target")]))
    for loss in ("softmax", "bpr"):
        rows = [r for r in robust if _loss(r) == loss]
        for noise in ("inter", "kg"):
            series = []
            for name, eps in (("plain", 0.0), ("adversarial", ADV_EPS)):
                sel = [r for r in rows if _adv_eps(r) == eps
                       and (r["noise"] == noise or r["noise"] == "none")]
                series.append((name, _series(sel, "share", [0.0, 0.1, 0.2, 0.3])))
            if sum(len(s[1][0]) for s in series) > 2:
                panels.append((f"Last.FM, {loss}: {noise} noise", "noise share", series))
        att = []
        for name, eps in (("plain", 0.0), ("adversarial", ADV_EPS)):
            sel = [r for r in rows if r["noise"] == "none" and _adv_eps(r) == eps
                   and r.get("attacked_recall@20")]
            pts = [{"recall@20": r["recall@20"], "eps": 0.0} for r in sel] + [
                {"recall@20": v, "eps": float(e)} for r in sel
                for e, v in r["attacked_recall@20"].items()]
            att.append((name, _series(pts, "eps", [0.0, *ATTACK_EPS])))
        if any(s[1][0] for s in att):
            panels.append((f"Last.FM, {loss}: test-time attack", "L2 radius", att))
    if not panels:
        return []
    cols = 4
    rows_n = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.3 * rows_n), squeeze=False)
    for ax, (title, xlabel, series) in zip(axes.flat, panels, strict=False):
        for name, (x, mean, std) in series:
            if x:
                ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=name)
        if "shots" in xlabel:  # (radii 0, 0.05 and 0.1 would overprint)
            ax.set_xticks(sorted({v for _, (x, _, _) in series for v in x}))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Recall@20")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(RESULTS / "generalise.png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return ["![Recall@20 against shots, noise and attack radius (mean ± std over seeds)]"
            "(generalise.png)", ""]


def tables(all_runs: Runs) -> dict[str, str]:
    """``generalise.md`` (and ``generalise.png``) from the runs (see ``report.py``)."""
    runs = all_runs.glob("generalise-*.json")
    every = [*runs, *(all_runs.glob(f"{k}-*.json") for k in ("cross", "robust", "temporal"))]
    every = [d for x in every for d in (x if isinstance(x, list) else [x])]
    all_runs = all_runs.scoped(every)
    lines = ["# Generalisation: few-shot cold start, cross-domain transfer, temporal shift, "
             "robustness to noise", "",
             "Reproduce: `python benchmarks/generalise.py --shots 3 --variants meta finetune "
             "lightgcn` (few-shot), `python benchmarks/generalise.py --cross --shots 5` "
             "(cross-domain), `python benchmarks/generalise.py --temporal --datasets "
             "ml-latest-small` (temporal shift), `python benchmarks/generalise.py --robust` "
             "(robustness); resumable, per-run JSON in `benchmarks/results/runs/`; then "
             "`python benchmarks/report.py`. One thread per run.", "",
             all_runs.header(every), "",
             "Few-shot " + __doc__.split("Variants")[0].split("\n\n", 1)[1].strip()
             .replace("Protocol:", "protocol:"), "",
             "Variants: `meta` = hgnn meta-trained on episodes, held-out nodes adapted on "
             "their shots at evaluation; `finetune` = the same model without meta-training, "
             "held-out nodes encoded without ids and fine-tuned on their shots (same steps, "
             "fixed step size); `joint` = the same model with the shots as ordinary training "
             "edges; `lightgcn` = id-only LightGCN, shots as ordinary edges.", ""]
    lines += plot_summary(all_runs)
    for dataset in DATASETS:
        for side in ("user", "item"):
            rows = [r for r in runs if r["dataset"] == dataset and r["side"] == side]
            if not rows:
                continue
            lines += [f"## {dataset}: cold {side}s, Recall@20 / NDCG@20 by shots K", "",
                      *shots_table(all_runs, rows, list(VARIANTS), SHOTS)]
            for meta, fine in (("meta", "finetune"), ("meta-softmax", "finetune-softmax"),
                               ("meta", "lightgcn")):
                ratio = []
                for k in SHOTS:  # on the seeds both have, as the cross-domain ratio
                    m, f = ({r["seed"]: r["recall@20"] for r in rows
                             if r["variant"] == v and r["shots"] == k} for v in (meta, fine))
                    mm, mf, _ = _paired(m, f)
                    if mf > 0:
                        ratio.append(f"K={k}: {mm / mf:.2f}x")
                if ratio:
                    lines += ["", f"{meta} / {fine} Recall@20: " + ", ".join(ratio) + "."]
            secs = {v: [r["sec_per_epoch"] for r in rows if r["variant"] == v]
                    for v in VARIANTS}
            lines += ["", "Seconds per epoch (median over runs): " + ", ".join(
                f"{v} {statistics.median(s):.2f}" for v, s in secs.items() if s), ""]
    lines += summarise_cross(all_runs)
    lines += summarise_temporal(all_runs)
    lines += summarise_robust(all_runs)
    return {"generalise.md": "\n".join(lines)}


def _jobs(a: argparse.Namespace) -> list[tuple[Path, list[str], str]]:
    """The runs a command asks for: ``(out file, args of one run, label)``."""
    jobs = []
    for seed, dataset in ((s, d) for s in a.seeds for d in a.datasets):
        if a.cross:
            if dataset not in CROSS:
                continue
            jobs += [(RUNS / f"cross-{dataset}-{CROSS[dataset]}-k{k}-{v}-{seed}.json",
                      ["--one-cross", dataset, str(k), v, str(seed)],
                      f"cross {dataset} K={k} {v} seed {seed}")
                     for k in a.shots for v in a.variants]
        elif a.temporal:
            jobs += [(RUNS / f"temporal-{dataset}-{sp}-{m}-{seed}.json",
                      ["--one-temporal", dataset, sp, m, str(seed)],
                      f"temporal {dataset} {sp} {m} seed {seed}")
                     for sp in ("random", "temporal") for m in ("lightgcn", "hgnn")]
        elif a.robust:
            tag = "" if a.loss == "bpr" else f"-{a.loss}"
            eps = [0.0] * ("plain" in a.adv) + a.adv_eps * ("adv" in a.adv)
            name = {e: "plain" if not e else "adv" if e == ADV_EPS else f"adv{e:g}"
                    for e in eps}
            jobs += [(RUNS / f"robust-{dataset}-{noise}-{share}-{name[e]}{tag}-{seed}.json",
                      ["--one-robust", dataset, noise, str(share), str(e), str(seed), a.loss],
                      f"robust {dataset} {noise} {share} {name[e]}{tag} seed {seed}")
                     for noise, share in a.noise for e in eps]
        else:
            jobs += [(RUNS / f"generalise-{dataset}-{side}-k{k}-{v}-{seed}.json",
                      ["--one", dataset, side, str(k), v, str(seed)],
                      f"{dataset} {side} K={k} {v} seed {seed}")
                     for side in a.sides for k in a.shots for v in a.variants]
    return jobs


def main() -> None:
    from kgrec.config import LOSSES  # the config's list, not a copy of it

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=DATASETS)
    p.add_argument("--sides", nargs="+", default=["user", "item"], choices=["user", "item"])
    p.add_argument("--shots", nargs="+", type=int, default=SHOTS)
    p.add_argument("--variants", nargs="+", choices=[*VARIANTS, *CROSS_VARIANTS],
                   help=f"few-shot: {list(VARIANTS)} (default all); --cross: "
                   f"{list(CROSS_VARIANTS)} (default all)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--robust", action="store_true", help="the robustness runs instead")
    p.add_argument("--summary", action="store_true", help="only rewrite the tables")
    p.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    p.add_argument("--temporal", action="store_true", help="the temporal-shift runs instead")
    p.add_argument("--cross", action="store_true", help="the cross-domain transfer runs "
                   f"instead (datasets {list(CROSS)})")
    p.add_argument("--one-cross", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--loss", default="bpr", choices=LOSSES,
                   help="--robust: the training loss (train.loss)")
    p.add_argument("--noise", nargs="+", metavar="KIND=SHARE",
                   help="--robust: only these, e.g. none=0 inter=0.2 (default all: "
                   + " ".join(f"{n}={s}" for n, s in NOISE) + ")")
    p.add_argument("--adv", nargs="+", default=["plain", "adv"], choices=["plain", "adv"],
                   help="--robust: without and/or with adversarial training")
    p.add_argument("--adv-eps", nargs="+", type=float, default=[ADV_EPS],
                   help=f"--robust: the adversarial radii to run (default {ADV_EPS})")
    p.add_argument("--one-robust", nargs=6, help=argparse.SUPPRESS)
    p.add_argument("--one-temporal", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.cross:
        a.shots = [k for k in a.shots if k in CROSS_SHOTS] if a.shots != SHOTS else CROSS_SHOTS
        a.datasets = [d for d in a.datasets if d in CROSS] or list(CROSS)
    a.variants = a.variants or list(CROSS_VARIANTS if a.cross else VARIANTS)
    a.noise = ([(n, float(s)) for n, _, s in (x.partition("=") for x in a.noise)]
               if a.noise else NOISE)
    if a.one_cross:
        dataset, shots, variant, seed = a.one_cross
        run_cross(dataset, int(shots), variant, int(seed), Path(a.out))
        return
    if a.one:
        dataset, side, shots, variant, seed = a.one
        run_one(dataset, side, int(shots), variant, int(seed), Path(a.out))
        return
    if a.one_robust:
        dataset, noise, share, adv_eps, seed, loss = a.one_robust
        run_robust(dataset, noise, float(share), float(adv_eps), int(seed), Path(a.out), loss)
        return
    if a.one_temporal:
        dataset, split_name, model, seed = a.one_temporal
        run_temporal(dataset, split_name, model, int(seed), Path(a.out))
        return
    RUNS.mkdir(parents=True, exist_ok=True)
    if not a.summary:
        run_missing(__file__, _jobs(a))
    import report

    report.write_all()


if __name__ == "__main__":
    main()
