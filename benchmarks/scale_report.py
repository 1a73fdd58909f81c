"""``scale.md`` and ``scale.png`` from ``benchmarks/scale.py``'s runs (see ``report.py``).

Kept apart from ``scale.py`` so that writing the tables does not change a file the runs
read (each run records the hash of its script).
"""

from __future__ import annotations

import statistics
from typing import Any

from common import RESULTS

GB = 2**30


def _mean(xs: list[float]) -> float:
    return statistics.mean(xs) if xs else float("nan")


def time_to_accuracy(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """When ``new`` first reaches ``old``'s best validation NDCG@20 (training seconds)."""
    target = old["best_valid_ndcg@20"]
    hit = next((c for c in new["curve"] if c["ndcg@20"] >= target), None)
    return {"target": target, "old_s": old["best_train_s"], "old_epoch": old["best_epoch"],
            "new_s": hit["train_s"] if hit else None, "new_epoch": hit["epoch"] if hit else None,
            "ratio": hit["train_s"] / old["best_train_s"] if hit else None}


def _amazon(runs, lines: list[str]) -> None:
    olds = {d["seed"]: d for d in runs.glob("scale-amazon-old-*.json")}
    news = {d["seed"]: d for d in runs.glob("scale-amazon-new-*.json")}
    if not olds and not news:
        return
    docs = [*olds.values(), *news.values()]
    lines += [f"## Time to accuracy: LightGCN on kgat-amazon-book{runs.mark(docs)}", "",
              "Per-user random 80/10/10 split (seed 0); validation after every epoch; "
              "seconds are training seconds (validation excluded from both), one thread. "
              "`old`: the trainer as it was, BPR, 2,048 pairs a step, one negative each, "
              "Adam 5e-3, stopped when its training time passed its budget. `new`: "
              "`train.loss: sampled_softmax`, 32,768 pairs a step, 1,024 negatives shared by "
              "the step, temperature 0.1, Adam 1e-2, early stopping (patience 3) or its "
              "budget. Target: `old`'s best validation NDCG@20 of the same training seed; "
              "test metrics at each run's best validated epoch.", "",
              "| seed | old: best valid NDCG@20 (epoch, s) | old stopped by | new reaches it "
              "(epoch, s) | new / old time | new best valid NDCG@20 (epoch) | test Recall@20 "
              "old | test Recall@20 new | test NDCG@20 old | test NDCG@20 new |",
              "|---:|---|---|---|---:|---|---:|---:|---:|---:|"]
    ratios, rec_ok = [], []
    for seed in sorted(set(olds) | set(news)):
        o, n = olds.get(seed), news.get(seed)
        if o is None or n is None:
            lines.append(f"| {seed} | {'missing' if o is None else 'ok'} | | "
                         f"{'missing' if n is None else 'ok'} | | | | | | |")
            continue
        t = time_to_accuracy(o, n)
        reach = (f"epoch {t['new_epoch']}, {t['new_s']:.0f} s" if t["new_s"] is not None
                 else "never")
        ratio = f"**{t['ratio']:.3f}**" if t["ratio"] is not None else "–"
        if t["ratio"] is not None:
            ratios.append(t["ratio"])
        ro, rn = o["test"]["recall@20"], n["test"]["recall@20"]
        rec_ok.append(rn >= ro)
        lines.append(f"| {seed} | {t['target']:.4f} (epoch {t['old_epoch']}, "
                     f"{t['old_s']:.0f} s) | {o['stopped_by']} ({o['budget_s']:.0f} s) | "
                     f"{reach} | {ratio} | {n['best_valid_ndcg@20']:.4f} ({n['best_epoch']}) "
                     f"| {ro:.4f} | {rn:.4f} | {o['test']['ndcg@20']:.4f} | "
                     f"{n['test']['ndcg@20']:.4f} |")
    o_ep = [d["seconds_per_epoch"] for d in olds.values()]
    n_ep = [d["seconds_per_epoch"] for d in news.values()]
    lines += ["", f"Seconds an epoch (median over epochs, mean over seeds): old "
              f"{_mean(o_ep):.0f} s ({next(iter(olds.values()))['steps_per_epoch']} steps, "
              f"one propagation each), new {_mean(n_ep):.1f} s "
              f"({next(iter(news.values()))['steps_per_epoch']} steps)."
              if olds and news else ""]
    if ratios and len(ratios) == len(rec_ok):
        worst = max(ratios)
        lines += ["", f"Goal: time to `old`'s best <= 1/5 of `old`'s, test Recall@20 at "
                  f"least `old`'s, 3 seeds: time ratio {_mean(ratios):.3f} on average, worst "
                  f"{worst:.3f} ({'met' if worst <= 0.2 else 'missed'}); Recall@20 "
                  f"{'at least old' if all(rec_ok) else 'below old'} in "
                  f"{sum(rec_ok)} of {len(rec_ok)} seeds."]
    budget = [d for d in olds.values() if d["stopped_by"] == "budget"
              and d["best_epoch"] == d["epochs"]]
    if budget:
        lines += ["", f"Caveat: `old` was still improving when its budget ended in "
                  f"{len(budget)} of {len(olds)} seeds (its best epoch is its last): its best "
                  "here is its best within the budget, not its converged best, which at "
                  "this epoch time would take hours per seed."]


def _hops(runs, lines: list[str]) -> None:
    for d in runs.glob("scale-hops-*.json"):
        lines += ["", f"## Why not sampled k-hop mini-batches{runs.mark([d])}", "",
                  f"A {d['layers']}-layer LightGCN step needs the {d['layers']}-hop "
                  f"neighbourhood of its users, positives and negatives. On {d['dataset']} "
                  f"({d['nodes']:,} nodes, {d['edges']:,} directed edges), for one random "
                  "step of each size:", "",
                  "| pairs a step | seed nodes | nodes within 1 hop | within 2 hops | edges the "
                  "second layer reads |", "|---:|---:|---:|---:|---:|"]
        for r in d["rows"]:
            lines.append(f"| {r['batch']:,} | {r['seeds']:,} | {r['one_hop']:.1%} | "
                         f"{r['two_hop']:.1%} | {r['edges_read']:.1%} |")
        lines += ["", "A step of 2,048 pairs already reaches almost every node in two hops on "
                  "this degree-skewed graph, so an exact k-hop subgraph saves almost nothing; "
                  "only fan-out-capped sampling (GraphSAGE-style) would, and it changes the "
                  "model's propagation. kgrec keeps the exact full-graph propagation and "
                  "makes each one count for more pairs instead (the `new` set-up)."]


def _peer(runs, lines: list[str]) -> None:
    for d in runs.glob("scale-peer.json"):
        n = d["new"]
        lines += ["", f"## The peer: PyTorch Geometric's LightGCN{runs.mark([d])}", "",
                  "`torch_geometric.nn.models.LightGCN` (LGConv over `edge_index`) and kgrec's "
                  "LightGCN (a CSR adjacency), one step each on the same pairs, back to back, "
                  "one thread; seconds an epoch = median step x steps an epoch. `old`: BPR "
                  "with PyG's `recommendation_loss`; `new`: the same large batch and "
                  "shared-negatives loss on both propagations.", "",
                  "| set-up | steps an epoch | kgrec s/epoch | PyG s/epoch | kgrec / PyG |",
                  "|---|---:|---:|---:|---:|",
                  f"| old | {d['steps_per_epoch']} | {d['epoch_s']['kgrec']:.0f} | "
                  f"{d['epoch_s']['pyg']:.0f} | {d['ratio']:.2f}x |",
                  f"| new | {n['steps_per_epoch']} | {n['epoch_s']['kgrec']:.1f} | "
                  f"{n['epoch_s']['pyg']:.1f} | {n['ratio']:.2f}x |"]


def _kggnn(runs, lines: list[str]) -> None:
    rows = []
    for d in runs.glob("scale-epoch-*-kggnn-*.json"):
        light = runs.glob(f"scale-epoch-{d['dataset']}-lightgcn-{d['variant']}.json")
        if light:
            rows.append((d["dataset"], d["variant"], d["kg_triples"], d["interactions"],
                         light[0], d))
    for d in runs.glob("scale-synthetic-*-kggnn.json"):
        light = runs.glob(f"scale-synthetic-{d['interactions']}-lightgcn.json")
        if light:
            rows.append((d["dataset"], "new", d["kg_triples"], d["train_pairs"], light[0], d))
    if not rows:
        return
    lines += ["", f"## kggnn against LightGCN, seconds an epoch"
              f"{runs.mark([r[4] for r in rows] + [r[5] for r in rows])}", "",
              "Training seconds of one epoch (no validation), one thread; kggnn adds "
              "relation-aware messages over every KG triple (both directions) at every step, "
              "so its extra cost per epoch is steps x triples. kgat-amazon-book as shipped has "
              "no KG file, so kggnn is measured where there is a KG. Goal: kggnn <= 2x "
              "LightGCN.", "",
              "| dataset | set-up | training pairs | KG triples | LightGCN s | kggnn s | "
              "kggnn / LightGCN |", "|---|---|---:|---:|---:|---:|---:|"]
    for ds, variant, triples, pairs, lg, kg in rows:
        ratio = kg["seconds_per_epoch"] / lg["seconds_per_epoch"]
        ok = "met" if ratio <= 2 else "missed"
        note = " (extrapolated)" if kg.get("extrapolated") or lg.get("extrapolated") else ""
        lines.append(f"| {ds} | {variant} | {pairs:,} | {triples:,} | "
                     f"{lg['seconds_per_epoch']:.1f} | {kg['seconds_per_epoch']:.1f}{note} | "
                     f"{ratio:.2f}x ({ok if variant == 'new' else 'before'}) |")


def _synthetic(runs, lines: list[str]) -> list[dict[str, Any]]:
    docs = sorted(runs.glob("scale-synthetic-*.json"), key=lambda d: (d["model"],
                                                                      d["interactions"]))
    if not docs:
        return []
    lines += ["", f"## Growth with the graph: generated power-law graphs{runs.mark(docs)}", "",
              "Users `n/20`, items `n/40`, both drawn from Zipf-like laws (exponent 1), `n` "
              "distinct interactions, a KG of `n` triples into `n/80` entities over 20 "
              "relations (`scale.py`'s `synthetic_graph`); per-user random 80/10/10 split; "
              "the `new` set-up, one thread. Seconds an epoch: a whole epoch, or the mean "
              "step over the first steps times the steps of an epoch (marked). Peak RSS: the "
              "process's high-water mark (generation, split, model and training), this "
              "machine has 24 GB.", "",
              "| interactions | model | training pairs | users | items | KG triples | steps "
              "timed / epoch | s/epoch | peak RSS GB | build s |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d in docs:
        lines.append(f"| {d['interactions']:,} | {d['model']} | {d['train_pairs']:,} | "
                     f"{d['users']:,} | {d['items']:,} | {d['kg_triples']:,} | "
                     f"{d['steps_timed']} / {d['steps_per_epoch']} | "
                     f"{d['seconds_per_epoch']:.0f}{' (extrapolated)' if d['extrapolated'] else ''}"
                     f" | {d['peak_rss'] / GB:.1f} | {d['build_s']:.0f} |")
    for model in sorted({d["model"] for d in docs}):
        mine = [d for d in docs if d["model"] == model]
        if len(mine) >= 2:
            import math

            xs = [math.log(d["interactions"]) for d in mine]
            ys = [math.log(d["peak_rss"]) for d in mine]
            slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0])
            per = (mine[-1]["peak_rss"] - mine[0]["peak_rss"]) / (
                mine[-1]["interactions"] - mine[0]["interactions"])
            fits = mine[-1]["interactions"] + (24 * GB - mine[-1]["peak_rss"]) / per
            ts = [math.log(d["seconds_per_epoch"]) for d in mine]
            tslope = (ts[-1] - ts[0]) / (xs[-1] - xs[0])
            lines += ["", f"{model}: from {mine[0]['interactions']:,} to "
                      f"{mine[-1]['interactions']:,} interactions, seconds an epoch grow as "
                      f"n^{tslope:.2f} and peak RSS as n^{slope:.2f} "
                      f"({per:,.0f} bytes per added interaction); at that rate 24 GB is "
                      f"reached near {fits / 1e6:.0f}M interactions (largest measured: "
                      f"{mine[-1]['interactions'] / 1e6:.0f}M at "
                      f"{mine[-1]['peak_rss'] / GB:.1f} GB)."]
    return docs


def _procs(runs, lines: list[str]) -> None:
    for d in runs.glob("scale-procs-*.json"):
        lines += ["", f"## 1 vs {d['nproc']} processes: {d['dataset']}{runs.mark([d])}", "",
                  f"`kgrec train --nproc N` (data-parallel, gloo on loopback, the graph's rows "
                  f"partitioned), the `new` set-up, {d['epochs']} epochs, on this 2-core "
                  "machine with nothing else running; s/epoch is the last epoch's (the first "
                  "includes warm-up). The metrics after each epoch must equal one process's "
                  "(only the order of float sums differs).", "",
                  "| run | s/epoch | speed-up | efficiency | loss, last epoch | valid NDCG@20 "
                  "after each epoch | max abs diff from 1 process |",
                  "|---|---:|---:|---:|---:|---|---:|"]
        base = next(iter(d["runs"].values()))
        t1 = base["epoch_s"][-1]
        for name, r in d["runs"].items():
            sp = t1 / r["epoch_s"][-1]
            workers = max(r["nproc"], r["threads"])
            diff = max(abs(a[k] - b[k]) for a, b in zip(r["valid"], base["valid"],
                                                        strict=True) for k in a)
            lines.append(f"| {name} | {r['epoch_s'][-1]:.1f} | {sp:.2f}x | "
                         f"{sp / workers:.0%} | {r['loss'][-1]:.6f} | "
                         + ", ".join(f"{v['ndcg@20']:.5f}" for v in r["valid"])
                         + f" | {diff:.1e} |")


def _gpu(runs, lines: list[str]) -> None:
    docs = runs.glob("scale-cuda-*.json")
    lines += ["", "## On a GPU", ""]
    if not docs:
        lines.append("Not run yet: `bash benchmarks/gpu.sh scale` runs these parts on CUDA "
                     "(under 10 minutes on one GPU) the next time a GPU machine is lent.")
        return
    lines += [f"`bash benchmarks/gpu.sh scale`{runs.mark(docs)}.", "",
              "| run | GPU | s/epoch | peak GPU memory GB | best valid NDCG@20 |",
              "|---|---|---:|---:|---:|"]
    for d in docs:
        best = d.get("best_valid_ndcg@20")
        lines.append(f"| {d['_file']} | {d.get('gpu', '')} | "
                     f"{d.get('seconds_per_epoch', float('nan')):.2f} | "
                     f"{d.get('peak_gpu_bytes', 0) / GB:.1f} | "
                     f"{'' if best is None else f'{best:.4f}'} |")


def _plot(runs, synthetic: list[dict[str, Any]]) -> bool:
    olds = runs.glob("scale-amazon-old-*.json")
    news = runs.glob("scale-amazon-new-*.json")
    if not (olds or news or synthetic):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.6))
    for docs, colour, name in ((olds, "tab:blue", "old (BPR, 2k pairs a step)"),
                               (news, "tab:orange", "new (shared-negatives softmax, 32k)")):
        for i, d in enumerate(sorted(docs, key=lambda d: d["seed"])):
            xs = [c["train_s"] / 60 for c in d["curve"]]
            a.plot(xs, [c["ndcg@20"] for c in d["curve"]], "-o", ms=3, color=colour,
                   alpha=0.9 - 0.2 * i, label=name if i == 0 else None)
    for d in olds:
        a.axhline(d["best_valid_ndcg@20"], color="tab:blue", lw=0.6, ls=":")
    a.set_xlabel("training minutes (validation excluded)")
    a.set_ylabel("validation NDCG@20")
    a.set_title("LightGCN on kgat-amazon-book: time to accuracy (3 seeds)")
    a.grid(alpha=0.3)
    a.legend(loc="lower right")
    for model, marker in (("lightgcn", "o"), ("kggnn", "s")):
        mine = sorted([d for d in synthetic if d["model"] == model],
                      key=lambda d: d["interactions"])
        if not mine:
            continue
        xs = [d["interactions"] for d in mine]
        b.loglog(xs, [d["seconds_per_epoch"] for d in mine], "-" + marker, color="tab:green",
                 label=f"{model}: seconds an epoch")
        b.loglog(xs, [d["peak_rss"] / GB for d in mine], "--" + marker, color="tab:purple",
                 label=f"{model}: peak RSS, GB")
    b.axhline(24, color="tab:red", lw=0.8, ls=":", label="this machine's memory (24 GB)")
    b.set_xlabel("interactions (generated power-law graph, KG of as many triples)")
    b.set_ylabel("seconds an epoch (solid) / peak RSS in GB (dashed)")
    b.set_title("Growth with the graph (new set-up, one thread; 5M+ extrapolated)")
    b.grid(alpha=0.3, which="both")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "scale.png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return True


def tables(runs) -> dict[str, str]:
    """``scale.md`` (and ``scale.png``)."""
    docs = runs.glob("scale-*.json")
    if not docs:
        return {}
    runs = runs.scoped(docs)
    lines = ["# Scale: time to accuracy, growth with the graph, processes", "",
             "Reproduce: `python benchmarks/scale.py PART ...` for each part (its docstring "
             "lists them; `benchmarks/gpu.sh` runs the big-graph parts on a GPU), then "
             "`python benchmarks/report.py`.", "", runs.header(docs), "",
             "The CPU parts ran two at a time on this 2-core machine, one thread each (the "
             "`old` amazon runs beside the others), except `procs`, which ran alone.", ""]
    _amazon(runs, lines)
    _hops(runs, lines)
    _peer(runs, lines)
    _kggnn(runs, lines)
    synthetic = _synthetic(runs, lines)
    _procs(runs, lines)
    _gpu(runs, lines)
    if _plot(runs, synthetic):
        lines[4:4] = ["![time to accuracy; seconds an epoch and peak RSS against "
                      "interactions](scale.png)", ""]
    return {"scale.md": "\n".join(lines)}
