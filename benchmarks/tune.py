"""Optuna on Last.FM: a 30-trial study with the median pruner against the same 30 trials
without pruning, then the best config's test metrics against the default config's.

Both studies use the same search space, TPE sampler seed and base config (KG GNN, per-user
random 80/10/10 split seed 0, validation NDCG@20 every 5 epochs, at most 200 epochs); they
differ only in the pruner. Each study lives in its own SQLite file under
``benchmarks/results/tune/`` (an interrupted run resumes). The test split is touched once
per config at the end.

    python benchmarks/tune.py            # about an hour on 2 cores
    python benchmarks/tune.py --trials 6 # a quick look
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import kgrec
from kgrec.tune import SearchSpace, best_config, tune, write_plots

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "tune"
SPACE = {
    "train.lr": {"float": [5e-4, 2e-2], "log": True},
    "model.dim": {"choice": [32, 64, 128]},
    "model.layers": {"choice": [1, 2, 3]},
    "train.reg": {"float": [1e-6, 1e-2], "log": True},
    "model.kggnn.kg_dropout": {"float": [0.0, 0.9]},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--dataset", default="lastfm-hetrec-kg")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    base = kgrec.Config(data={"dataset": args.dataset}, model="kggnn",
                        train={"epochs": 200, "device": "cpu"})
    split = kgrec.split(kgrec.load_dataset(args.dataset), "random", seed=0)
    space = SearchSpace.from_dict(SPACE)
    rows = {}
    for pruner in ("median", "none"):
        storage = f"sqlite:///{OUT / f'{pruner}.db'}"
        timing = OUT / f"{pruner}-seconds.json"
        start = time.perf_counter()
        study = tune(space, base, n_trials=args.trials, study_name=f"{args.dataset}-{pruner}",
                     storage=storage, pruner=pruner, seed=0, split=split)
        elapsed = time.perf_counter() - start
        # wall time summed over invocations, so a resumed study reports its whole cost
        before = json.loads(timing.read_text())["seconds"] if timing.is_file() else 0.0
        timing.write_text(json.dumps({"seconds": before + elapsed}))
        write_plots(study, OUT / f"plots-{pruner}")
        states = [t.state.name.lower() for t in study.trials]
        cfg = best_config(study)
        cfg.to_yaml(OUT / f"best-{pruner}.yaml")
        # epochs trained, summed over trials (the last validated epoch of each): a cost
        # measure that other jobs on the machine cannot distort
        epochs = sum(max(t.intermediate_values, default=0) for t in study.trials)
        rows[pruner] = {"seconds": json.loads(timing.read_text())["seconds"], "epochs": epochs,
                        "best_valid": study.best_value, "pruned": states.count("pruned"),
                        "complete": states.count("complete"), "config": cfg}
        print(pruner, rows[pruner]["seconds"], study.best_value, flush=True)

    def test(cfg: kgrec.Config) -> dict[str, float]:
        rec = kgrec.train(split, cfg, progress=False)
        return dict(kgrec.evaluate(rec, split.test, k=[20]))

    default = test(base)
    lines = ["# Optuna on Last.FM: pruning vs none, and what tuning buys", "",
             "Reproduce: `python benchmarks/tune.py` (studies in `benchmarks/results/tune/*.db`, "
             "plots in `benchmarks/results/tune/plots-*`).", "",
             f"KG GNN on {args.dataset}, per-user random 80/10/10 (split seed 0), objective = "
             "best validation NDCG@20 (evaluated every 5 epochs, early stopping patience 6, at "
             f"most 200 epochs), {args.trials} trials, TPE seed 0, search space:", "",
             "```yaml", *[f"{k}: {json.dumps(v)}" for k, v in SPACE.items()], "```", "",
             "| study | wall time (s) | epochs trained | complete | pruned | best valid NDCG@20 |",
             "|---|---:|---:|---:|---:|---:|"]
    for pruner, r in rows.items():
        lines.append(f"| {pruner} pruner | {r['seconds']:.0f} | {r['epochs']} | {r['complete']} "
                     f"| {r['pruned']} | {r['best_valid']:.4f} |")
    ratio = rows["median"]["seconds"] / rows["none"]["seconds"]
    ep_ratio = rows["median"]["epochs"] / rows["none"]["epochs"]
    lines += ["", f"Median pruner / no pruner: wall time {ratio:.2f}, epochs trained "
              f"{ep_ratio:.2f}.", "",
              "Test metrics (touched once per config):", "",
              "| config | Recall@20 | NDCG@20 |", "|---|---:|---:|",
              f"| default | {default['recall@20']:.4f} | {default['ndcg@20']:.4f} |"]
    for pruner, r in rows.items():
        m = test(r["config"])
        lines.append(f"| best of {pruner}-pruner study | {m['recall@20']:.4f} | "
                     f"{m['ndcg@20']:.4f} |")
    (HERE / "results" / "tune.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
