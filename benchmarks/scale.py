"""The big-graph benchmark: time to accuracy on kgat-amazon-book, growth with the graph's
size, and 1 vs 2 processes. One part per call, one JSON per run
(``benchmarks/results/runs/scale-<part>-...json``); tables and ``scale.png`` by
``report.py`` (``scale_report.py`` -> ``scale.md``).

The two training set-ups compared everywhere (the model and its size are the same):

- ``old``: the default trainer, BPR, 2,048 pairs a step, one sampled negative each, Adam at
  5e-3: every step propagates over the whole graph (333 propagations an epoch on
  kgat-amazon-book);
- ``new``: ``train.loss: sampled_softmax``, 32,768 pairs a step, each positive against 1,024
  negatives drawn once per step and shared by the batch, temperature 0.1, Adam at 1e-2
  (21 propagations an epoch).

Parts:

- ``hops``: why not sampled k-hop mini-batches: the share of kgat-amazon-book's nodes within
  1 and 2 hops of a step's users, positives and negatives (and of the edges a second layer
  reads) at 256, 2,048 and 32,768 pairs;
- ``amazon --variant old|new --seed S --budget SECONDS``: train LightGCN on kgat-amazon-book
  (per-user random 80/10/10 split, seed 0), validating after every epoch, until the training
  time (validation excluded) passes the budget or early stopping; the curve of validation
  NDCG@20 against training seconds, and the best epoch's test metrics. Time to accuracy
  compares, seed by seed, when ``new`` first reaches ``old``'s best validation NDCG@20;
- ``peer``: PyTorch Geometric's ``LightGCN`` (``LGConv`` over ``edge_index``, its own
  ``recommendation_loss``) against kgrec's ``old`` step, the same pairs, back to back, the
  same number of steps; seconds an epoch = median step x steps an epoch;
- ``epoch --dataset D --model M --variant V``: one training epoch's seconds (no
  validation in it) for LightGCN and kggnn, e.g. on book-crossing-kg (kgat-amazon-book as
  shipped has no KG file);
- ``synthetic --interactions N --model M``: a generated graph, users and items with
  power-law (Zipf) activity and popularity and a KG of as many triples as interactions, the
  ``new`` set-up: seconds an epoch (measured over at most ``--max-steps`` steps, scaled to
  the epoch when it has more) and the process's peak RSS (generation, split and model
  included);
- ``procs --nproc N``: ``kgrec train --nproc N`` (and one process with N threads) on
  kgat-amazon-book, ``new``, two epochs: seconds an epoch and the validation metrics, which
  must equal one process's.

    python benchmarks/scale.py amazon --variant old --seed 0 --budget 900
    python benchmarks/scale.py synthetic --interactions 5000000 --model lightgcn
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import RUNS, one_thread, write_run

DATASET = "kgat-amazon-book"
VARIANTS = {
    "old": {"train.loss": "bpr", "train.batch_size": 2048},
    "new": {"train.loss": "sampled_softmax", "train.batch_size": 32768,
            "train.negatives": 1024, "train.temperature": 0.1, "train.lr": 0.01},
}


def _gpu_peak() -> dict:
    """The CUDA allocator's peak, bytes (on a GPU run)."""
    import torch

    if DEVICE.startswith("cuda"):
        return {"peak_gpu_bytes": int(torch.cuda.max_memory_allocated()),
                "gpu": torch.cuda.get_device_name(0)}
    return {}


def _rss_peak() -> int:
    """The process's peak resident memory, bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


DEVICE = "cpu"  # --device


def config(model: str, variant: str, dataset: str = DATASET, **more):
    from kgrec.config import Config

    cfg = Config().set("data.dataset", dataset).set("model.name", model)
    for k, v in {**VARIANTS[variant], "train.device": DEVICE, **more}.items():
        cfg = cfg.set(k, v)
    return cfg


def part_amazon(args) -> tuple[dict, object, object]:
    from kgrec.data.prepare import split_for
    from kgrec.evaluate.ranking import EmbeddingScorer, evaluate
    from kgrec.train.loop import Trainer, outputs

    cfg = config("lightgcn", args.variant, **{"train.seed": args.seed, "train.epochs": 1000,
                                             "train.eval_every": 1, "train.patience": 3})
    split = split_for(cfg.data)
    curve: list[dict] = []
    stop = threading.Event()
    spent = [0.0]

    def record(epoch: int, rec: dict) -> None:
        spent[0] += rec["seconds"]
        v = rec["valid"]
        curve.append({"epoch": epoch, "train_s": spent[0], "ndcg@20": v["ndcg@20"],
                      "recall@20": v["recall@20"]})
        print(json.dumps(curve[-1]), flush=True)
        if spent[0] >= args.budget:
            stop.set()

    trainer = Trainer(split, cfg, progress=False, callbacks=[record], stop=stop)
    wall = time.perf_counter()
    trained = trainer.fit()
    wall = time.perf_counter() - wall
    test = evaluate(EmbeddingScorer(*outputs(trained.model, split, trained.config)),
                    split.test, [20], batch_users=cfg.eval.batch_users, by_cold=False)
    best = max(curve, key=lambda c: c["ndcg@20"])
    doc = {"part": "amazon", "variant": args.variant, "model": "lightgcn", "seed": args.seed,
           "dataset": DATASET, "budget_s": args.budget, "curve": curve,
           "best_epoch": best["epoch"], "best_valid_ndcg@20": best["ndcg@20"],
           "best_train_s": best["train_s"], "epochs": len(curve),
           "steps_per_epoch": -(-len(split.train_users) // cfg.train.batch_size),
           "seconds_per_epoch": statistics.median(
               [b["train_s"] - a["train_s"] for a, b in zip([{"train_s": 0.0}, *curve],
                                                            curve, strict=False)]),
           "stopped_by": "budget" if stop.is_set() else "early stopping",
           "test": {k: float(v) for k, v in dict(test).items()}, "wall_s": wall,
           "peak_rss": _rss_peak(), **_gpu_peak()}
    return doc, cfg, split


def part_peer(args) -> tuple[dict, object, object]:
    """PyG's LightGCN against kgrec's ``old`` step on the same pairs."""
    import numpy as np
    import torch
    from torch_geometric.nn.models import LightGCN as PyGLightGCN

    from kgrec.data.prepare import split_for
    from kgrec.train.loop import Trainer

    cfg = config("lightgcn", "old", **{"train.epochs": 1})
    split = split_for(cfg.data)
    trainer = Trainer(split, cfg, progress=False)
    trainer._setup()
    U, I = split.num_users, split.num_items
    tu = torch.from_numpy(split.train_users)
    ti = torch.from_numpy(split.train_items)
    edge_index = torch.stack([torch.cat([tu, ti + U]), torch.cat([ti + U, tu])])
    peer = PyGLightGCN(U + I, cfg.model.dim, cfg.model.layers)
    popt = torch.optim.Adam(peer.parameters(), lr=cfg.train.lr)
    rng = np.random.default_rng(0)
    bs = cfg.train.batch_size
    times: dict[str, list[float]] = {"kgrec": [], "pyg": []}
    from kgrec.models.base import PairBatch

    for _ in range(args.steps):
        idx = torch.from_numpy(rng.integers(0, len(tu), bs))
        u, i = tu[idx], ti[idx]
        j = torch.from_numpy(trainer.sampler.sample(u.numpy()))
        t = time.perf_counter()
        trainer.train_step(PairBatch(u, i, j, idx))
        times["kgrec"].append(time.perf_counter() - t)
        t = time.perf_counter()
        src = u
        pos, neg = i + U, j + U
        rank = peer(edge_index, torch.cat([torch.stack([src, pos]),
                                           torch.stack([src, neg])], 1))
        pos_rank, neg_rank = rank.chunk(2)
        loss = peer.recommendation_loss(pos_rank, neg_rank, node_id=torch.cat(
            [src, pos, neg]), lambda_reg=cfg.train.reg)
        popt.zero_grad()
        loss.backward()
        popt.step()
        times["pyg"].append(time.perf_counter() - t)
    steps = -(-len(tu) // bs)
    med = {k: statistics.median(v[1:]) for k, v in times.items()}  # step 1 warms up
    # the new set-up: the same large batch and shared-negatives loss on PyG's propagation
    from kgrec.models.losses import shared_softmax_loss

    ncfg = config("lightgcn", "new", **{"train.epochs": 1})
    new = Trainer(split, ncfg, progress=False)
    new._setup()
    nbs, M, temp = ncfg.train.batch_size, ncfg.train.negatives, ncfg.train.temperature
    popt = torch.optim.Adam(peer.parameters(), lr=ncfg.train.lr)
    ntimes: dict[str, list[float]] = {"kgrec": [], "pyg": []}
    for _ in range(max(3, args.steps // 3)):
        idx = torch.from_numpy(rng.integers(0, len(tu), nbs))
        u, i = tu[idx], ti[idx]
        j = torch.from_numpy(new.sampler.shared(M))
        t = time.perf_counter()
        new.train_step(PairBatch(u, i, j, idx, shared=True))
        ntimes["kgrec"].append(time.perf_counter() - t)
        t = time.perf_counter()
        emb = peer.get_embedding(edge_index)
        users, items = emb[:U], emb[U:]
        loss = shared_softmax_loss(users[u], items[i], items[j], temp, i, j)
        ego = peer.embedding.weight
        loss = loss + ncfg.train.reg * 0.5 * ((ego[u] ** 2).sum() + (ego[i + U] ** 2).sum()
                                              + (ego[j + U] ** 2).sum()) / len(u)
        popt.zero_grad()
        loss.backward()
        popt.step()
        ntimes["pyg"].append(time.perf_counter() - t)
    nsteps = -(-len(tu) // nbs)
    nmed = {k: statistics.median(v[1:]) for k, v in ntimes.items()}
    doc = {"part": "peer", "variant": "old", "model": "lightgcn", "dataset": DATASET,
           "steps_timed": args.steps, "steps_per_epoch": steps,
           "step_s": med, "epoch_s": {k: v * steps for k, v in med.items()},
           "ratio": med["kgrec"] / med["pyg"],
           "new": {"steps_timed": len(ntimes["kgrec"]), "steps_per_epoch": nsteps,
                   "step_s": nmed, "epoch_s": {k: v * nsteps for k, v in nmed.items()},
                   "ratio": nmed["kgrec"] / nmed["pyg"]}}
    return doc, cfg, split


def _capped_trainer(split, cfg, cap: int):
    """A Trainer that stops after ``cap`` steps and records when each step ended
    (``step_times``), so a large graph's epoch is timed from its first steps."""
    from kgrec.train.loop import Trainer

    class CappedTrainer(Trainer):
        def train_step(self, batch):
            out = super().train_step(batch)
            self.step_times.append(time.perf_counter())
            if len(self.step_times) >= cap:
                self.stop.set()
            return out

    trainer = CappedTrainer(split, cfg, progress=False)
    trainer.step_times = []
    return trainer


def _epoch_seconds(split, cfg, cap: int) -> dict:
    """One epoch's training seconds (or ``cap`` steps', scaled to the epoch)."""
    from kgrec.train.checkpoint import TrainingStopped

    trainer = _capped_trainer(split, cfg, cap)
    try:
        trained = trainer.fit()
        seconds, steps_done = trained.history[0]["seconds"], None
    except TrainingStopped:
        steps_done = len(trainer.step_times)
        seconds = None
    steps = -(-len(split.train_users) // cfg.train.batch_size)
    if seconds is None:
        # from the end of the first step (its warm-up left out) to the end of the last
        per = (trainer.step_times[-1] - trainer.step_times[0]) / max(1, steps_done - 1)
        seconds = per * steps
    return {"seconds_per_epoch": seconds, "steps_per_epoch": steps,
            "steps_timed": steps if steps_done is None else steps_done,
            "extrapolated": steps_done is not None}


def part_epoch(args) -> tuple[dict, object, object]:
    from kgrec.data.prepare import split_for

    cfg = config(args.model, args.variant, args.dataset,
                 **{"train.epochs": 1, "train.eval_every": 1})
    split = split_for(cfg.data)
    doc = {"part": "epoch", "variant": args.variant, "model": args.model,
           "dataset": args.dataset, "interactions": len(split.train_users),
           "kg_triples": len(split.kg) if split.kg is not None else
           len(split.graph.knowledge()),
           **_epoch_seconds(split, cfg, args.max_steps), "peak_rss": _rss_peak(),
           **_gpu_peak()}
    return doc, cfg, split


def synthetic_graph(n: int, seed: int = 0):
    """``n`` distinct interactions between ``n / 20`` users and ``n / 40`` items, each side
    drawn from a Zipf-like law (exponent 1; repeated pairs drawn again), and a KG of ``n``
    triples from items to ``n / 80`` entities over 20 relations, tails Zipf-like too."""
    import numpy as np

    from kgrec.data.strategies import split as split_graph
    from kgrec.ingest.builder import GraphBuilder

    rng = np.random.default_rng(seed)

    def zipf(size: int, count: int) -> np.ndarray:
        w = 1.0 / np.arange(1, size + 1)
        cdf = np.cumsum(w)
        cdf /= cdf[-1]
        drawn = np.searchsorted(cdf, rng.random(count))
        return rng.permutation(size)[drawn]  # popular ids scattered over the range

    U, I, E = max(10, n // 20), max(10, n // 40), max(10, n // 80)
    keys = np.zeros(0, dtype=np.int64)
    while len(keys) < n:  # popular pairs repeat: draw until n distinct ones
        more = n - len(keys)
        keys = np.unique(np.concatenate([keys, zipf(U, 2 * more).astype(np.int64) * I
                                         + zipf(I, 2 * more)]))
    keys = np.sort(rng.choice(keys, n, replace=False))
    b = GraphBuilder(f"synthetic-{n}")
    b.add_nodes("User", np.arange(U).astype(str))
    b.add_nodes("Item", np.arange(I).astype(str))
    b.add_nodes("Entity", np.arange(E).astype(str))
    b.add_interactions(keys // I, keys % I, behavior="click")
    head = rng.integers(0, I, n)
    tail = I + zipf(E, n)
    rel = rng.integers(0, 20, n)
    b.add_knowledge(head, rel, tail, [f"r{r}" for r in range(20)], I)
    graph = b.build({"dataset": f"synthetic-{n}"})
    return split_graph(graph, "random", valid=0.1, test=0.1, seed=seed)


def part_synthetic(args) -> tuple[dict, object, object]:
    t = time.perf_counter()
    split = synthetic_graph(args.interactions)
    built = time.perf_counter() - t
    cfg = config(args.model, "new", f"synthetic-{args.interactions}",
                 **{"train.epochs": 1, "train.eval_every": 1})
    doc = {"part": "synthetic", "variant": "new", "model": args.model,
           "dataset": f"synthetic-{args.interactions}", "interactions": args.interactions,
           "train_pairs": len(split.train_users), "users": int(split.num_users),
           "items": int(split.num_items), "kg_triples": len(split.graph.knowledge()),
           "build_s": built, **_epoch_seconds(split, cfg, args.max_steps),
           "peak_rss": _rss_peak(), **_gpu_peak()}
    return doc, cfg, split


def part_procs(args) -> tuple[dict, object, object]:
    """``kgrec train --nproc N`` vs one process (one thread, and N threads)."""
    out: dict[str, dict] = {}
    sets = [f"{k}={json.dumps(v)}" for k, v in VARIANTS["new"].items()]
    runs = {"1 process, 1 thread": (1, "1"), f"1 process, {args.nproc} threads":
            (1, str(args.nproc)), f"{args.nproc} processes, 1 thread each": (args.nproc, "1")}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (nproc, threads) in runs.items():
            run = Path(tmp) / f"run{len(out)}"
            cmd = [sys.executable, "-m", "kgrec.cli", "train", "--dataset", args.dataset, "--model",
                   "lightgcn", "--epochs", str(args.epochs), "--eval-every", "1", "--device",
                   DEVICE, "--quiet", "--out", str(run), "--nproc", str(nproc)]
            for s in sets:
                cmd += ["--set", s]
            env = dict(os.environ, OMP_NUM_THREADS=threads)
            t = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - t
            hist = json.loads((run / "history.json").read_text())
            out[name] = {"nproc": nproc, "threads": int(threads), "wall_s": wall,
                         "epoch_s": [h["seconds"] for h in hist],
                         "loss": [h["loss"] for h in hist],
                         "valid": [h["valid"] for h in hist]}
            print(name, out[name]["epoch_s"], flush=True)
    doc = {"part": "procs", "variant": "new", "model": "lightgcn", "dataset": args.dataset,
           "nproc": args.nproc, "epochs": args.epochs, "runs": out}
    return doc, None, None


def part_hops(args) -> tuple[dict, object, object]:
    """How much of the graph a sampled k-hop mini-batch would hold: the share of nodes
    within 1 and 2 hops of a step's users, positives and negatives, and the share of edges
    the second layer would read (the rows of the 1-hop nodes), for several batch sizes."""
    import numpy as np

    from kgrec.data.prepare import split_for
    from kgrec.models.base import bipartite_adjacency

    cfg = config("lightgcn", "old")
    split = split_for(cfg.data)
    adj = bipartite_adjacency(split.train_users, split.train_items, split.num_users,
                              split.num_items)
    crow, col = adj.crow_indices().numpy(), adj.col_indices().numpy()
    n, U = adj.shape[0], split.num_users
    rng = np.random.default_rng(0)

    def grow(mask: np.ndarray) -> np.ndarray:
        rows = np.flatnonzero(mask)
        out = mask.copy()
        out[col[np.concatenate([np.arange(crow[r], crow[r + 1]) for r in rows])]] = True
        return out

    rows = []
    for batch in (256, 2048, 32768):
        pick = rng.integers(0, len(split.train_users), batch)
        seeds = np.zeros(n, dtype=bool)
        seeds[split.train_users[pick]] = True
        seeds[split.train_items[pick] + U] = True
        seeds[rng.integers(0, split.num_items, batch) + U] = True
        one = grow(seeds)
        two = grow(one)
        read = np.diff(crow)[one].sum() / len(col)
        rows.append({"batch": batch, "seeds": int(seeds.sum()), "one_hop": float(one.mean()),
                     "two_hop": float(two.mean()), "edges_read": float(read)})
        print(rows[-1], flush=True)
    return ({"part": "hops", "dataset": DATASET, "nodes": int(n), "edges": len(col),
             "layers": cfg.model.layers, "rows": rows}, cfg, split)


PARTS = {"hops": part_hops, "amazon": part_amazon, "peer": part_peer, "epoch": part_epoch,
         "synthetic": part_synthetic, "procs": part_procs}


def run_name(args) -> str:
    if args.part == "amazon":
        return f"scale-amazon-{args.variant}-{args.seed}.json"
    if args.part == "epoch":
        return f"scale-epoch-{args.dataset}-{args.model}-{args.variant}.json"
    if args.part == "synthetic":
        return f"scale-synthetic-{args.interactions}-{args.model}.json"
    if args.part == "procs":
        return f"scale-procs-{args.dataset}-{args.nproc}.json"
    if args.part == "hops":
        return f"scale-hops-{DATASET}.json"
    return "scale-peer.json"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=PARTS)
    p.add_argument("--variant", choices=VARIANTS, default="new")
    p.add_argument("--model", default="lightgcn")
    p.add_argument("--dataset", default=DATASET)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=float, default=900.0,
                   help="amazon: training seconds after which no new epoch starts")
    p.add_argument("--interactions", type=int, default=1_000_000)
    p.add_argument("--max-steps", type=int, default=60)
    p.add_argument("--steps", type=int, default=12, help="peer: steps timed")
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2, help="procs: epochs per run")
    p.add_argument("--device", default="cpu", help="cpu or cuda (the runs' file names say "
                   "which when not cpu)")
    p.add_argument("--out-dir", type=Path, default=RUNS)
    args = p.parse_args()
    global DEVICE
    DEVICE = args.device
    if args.part != "procs":
        one_thread()
    doc, cfg, split = PARTS[args.part](args)
    name = run_name(args)
    if args.device != "cpu":
        doc["device"] = args.device
        name = name.replace("scale-", f"scale-{args.device.split(':')[0]}-", 1)
    write_run(args.out_dir / name, doc, cfg, split)
    print(json.dumps({k: v for k, v in doc.items() if k != "curve"}, indent=1)[:3000])


if __name__ == "__main__":
    main()
