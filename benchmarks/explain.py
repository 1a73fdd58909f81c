"""How many recommendations the knowledge graph can explain.

For each KG dataset: LightGCN (the quickstart's model) trained on the per-user random
80/10/10 split (seed 0, the baselines' settings), then for every test user (at most 1,000,
drawn with a fixed seed) the top 10 items with ``Recommender.explanations``: the share of
those items explained by a knowledge-graph path from the user's training items (at most two
hops), the rest by the user's nearest items in the model's item space. Also the share of
users with at least one of their ten explained, and the milliseconds per explanation.

    python benchmarks/explain.py
    python benchmarks/explain.py --datasets lastfm-hetrec-kg

Runs write ``benchmarks/results/runs/explain-<dataset>-<model>-<seed>.json``; table by
``python benchmarks/report.py`` (``explain.md``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import RUNS, Runs, mean_std, one_thread, run_missing, write_run

DATASETS = ["lastfm-hetrec-kg", "ml-100k-kb4rec", "book-crossing-kg"]
LR = {"mf": 1e-3, "lightgcn": 5e-3, "kggnn": 5e-3, "hgnn": 5e-3}


def run_one(dataset: str, model: str, seed: int, out: Path, users: int = 1000) -> None:
    import numpy as np

    import kgrec

    one_thread()
    split = kgrec.split(kgrec.load_dataset(dataset), "random", seed=seed)
    cfg = kgrec.Config(data={"dataset": dataset, "seed": seed}, model=model,
                       train={"seed": seed, "device": "cpu", "lr": LR[model], "epochs": 500})
    rec = kgrec.train(split, cfg, progress=False)
    pool = split.test.users
    chosen = np.random.default_rng(seed).choice(pool, size=min(users, len(pool)), replace=False)
    ids = [rec.user_ids[u] for u in sorted(chosen.tolist())]
    explained = one_hop = items = users_any = 0
    t = time.perf_counter()
    for top in rec.recommend(ids, k=10):
        why = rec.explanations(top.user, top.items)
        items += len(why)
        explained += sum(bool(x.paths) for x in why)
        one_hop += sum(bool(x.paths) and "-[" in x.paths[0] and x.paths[0].count("-[") == 1
                       for x in why)
        users_any += any(x.paths for x in why)
    seconds = time.perf_counter() - t
    write_run(out, {"dataset": dataset, "model": model, "seed": seed, "users": len(ids),
                    "items": items, "explained": explained, "one_hop": one_hop,
                    "share_explained": explained / max(1, items),
                    "share_users_any": users_any / max(1, len(ids)),
                    "ms_per_item": 1000 * seconds / max(1, items),
                    "kg_triples": len(rec.kg) if rec.kg is not None else 0}, cfg, split)


def tables(runs: Runs) -> dict[str, str]:
    docs = runs.glob("explain-*.json")
    if not docs:
        return {}
    runs = runs.scoped(docs)
    lines = ["# Explanations: how many recommendations the knowledge graph explains", "",
             "Reproduce: `python benchmarks/explain.py`, then `python benchmarks/report.py`.",
             "", runs.header(docs), "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| dataset | model | KG triples | users | top-10 items with a KG path | users with "
             "at least one | ms per explanation | seeds |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for ds in DATASETS:
        mine = [d for d in docs if d["dataset"] == ds]
        if mine:
            lines.append(f"| {ds}{runs.mark(mine)} | {mine[0]['model']} | "
                         f"{mine[0]['kg_triples']:,} | {mine[0]['users']:,} | "
                         f"{mean_std([d['share_explained'] for d in mine])} | "
                         f"{mean_std([d['share_users_any'] for d in mine])} | "
                         f"{statistics.median(d['ms_per_item'] for d in mine):.1f} | "
                         f"{len(mine)} |")
    lines += ["", "An item without a KG path is explained by the user's items nearest to it in "
              "the model's item space (cosine), so every recommended item gets a reason."]
    return {"explain.md": "\n".join(lines)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=DATASETS)
    p.add_argument("--model", default="lightgcn", choices=list(LR))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        ds, model, seed = args.one
        run_one(ds, model, int(seed), Path(args.out))
        return
    RUNS.mkdir(parents=True, exist_ok=True)
    run_missing(__file__, [(RUNS / f"explain-{ds}-{args.model}-{s}.json",
                            ["--one", ds, args.model, str(s)], f"explain {ds} seed {s}")
                           for ds in args.datasets for s in args.seeds])
    import report

    report.write_all()


if __name__ == "__main__":
    main()
