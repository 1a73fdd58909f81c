"""Did a refactoring change what kgrec computes? Train every model variant briefly on
Last.FM and ml-100k with fixed seeds and write each one's validation and test metrics, its
training losses and a hash of its trained weights, so two commits can be compared for
bit-equality (training is deterministic on the CPU).

    python benchmarks/equivalence.py --out before.json          # at the old commit
    python benchmarks/equivalence.py --out after.json           # at the new one
    python benchmarks/equivalence.py --compare before.json after.json

Each variant trains a few epochs (enough to exercise every loss term, validation, best-epoch
keeping and the recommender's freeze), not to convergence: the figures are a fingerprint of
the computation, not results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

# (label, dataset, split kwargs, config overrides)
LASTFM, ML100K = "lastfm-hetrec-kg", "ml-100k-kb4rec"
_SHORT = {"train.epochs": 4, "train.eval_every": 2, "train.batch_size": 4096}
VARIANTS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
for _ds in (LASTFM, ML100K):
    for _m in ("mf", "lightgcn", "kggnn", "hgnn"):
        VARIANTS.append((f"{_ds}/{_m}", _ds, {"strategy": "random"}, {"model.name": _m}))
    VARIANTS += [
        (f"{_ds}/hgnn-softmax", _ds, {"strategy": "random"},
         {"model.name": "hgnn", "train.loss": "softmax", "train.lr": 0.01}),
        (f"{_ds}/kggnn-adv", _ds, {"strategy": "random"},
         {"model.name": "kggnn", "train.adv_eps": 0.1}),
        (f"{_ds}/hgnn-adv", _ds, {"strategy": "random"},
         {"model.name": "hgnn", "train.adv_eps": 0.1, "train.adv_steps": 2}),
        (f"{_ds}/hgnn-cold-item", _ds, {"strategy": "cold_item", "warm": True},
         {"model.name": "hgnn", "model.hgnn.kg_items": "cold"}),
        (f"{_ds}/hgnn-meta-user-k3", _ds, {"strategy": "cold_user", "shots": 3},
         {"model.name": "hgnn", "meta.mode": "meta", "meta.tasks": 16}),
        (f"{_ds}/hgnn-finetune-item-k3", _ds, {"strategy": "cold_item", "shots": 3},
         {"model.name": "hgnn", "meta.mode": "finetune"}),
        (f"{_ds}/hgnn-fixed-tasks", _ds, {"strategy": "random"},
         {"model.name": "hgnn", "model.hgnn.task_weighting": "fixed",
          "model.hgnn.tasks": ["all", "kg"]}),
    ]
VARIANTS.append((f"{LASTFM}/kggnn-ctr", LASTFM, {"strategy": "ctr"}, {"model.name": "kggnn"}))
# the hgnn variants beyond the plain one exercise the joint GNN (the adversary, meta-episodes,
# task heads are its); the plain "hgnn" is the aligned default
for _v in VARIANTS:
    if _v[0].split("/")[1].startswith("hgnn-"):
        _v[3]["model.hgnn.ranking"] = "joint"


def state_hash(rec: Any) -> str:
    h = hashlib.sha256()
    state = dict(rec.state)
    if getattr(rec, "adaptation", None) is not None:
        # hashed under the key it had among the weights, so hashes from before still compare
        state["meta_learner.log_lr"] = rec.adaptation
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    h.update(rec.user_embedding.detach().cpu().contiguous().numpy().tobytes())
    h.update(rec.item_embedding.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def run(only: list[str], out_path: str | None = None) -> dict[str, Any]:
    import torch

    import kgrec

    torch.set_num_threads(1)
    graphs: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for label, ds, split_kw, overrides in VARIANTS:
        if only and label not in only:
            continue
        t0 = time.time()
        g = graphs.setdefault(ds, kgrec.load_dataset(ds))
        kw = dict(split_kw)
        strategy = kw.pop("strategy")
        sp = kgrec.split(g, strategy, valid=0.1, test=0.1, seed=0, **kw)
        cfg = kgrec.Config(model="lightgcn")
        for path, value in {**_SHORT, "train.device": "cpu", **overrides}.items():
            cfg.set(path, value)
        rec = kgrec.train(sp, cfg, progress=False)
        if strategy == "ctr":
            test = kgrec.evaluate_ctr(rec, sp.ctr["test"], threshold_rows=sp.ctr["valid"])
        else:
            test = kgrec.evaluate(rec, sp.test, k=[10, 20])
        test = {k: float(v) for k, v in dict(test).items()}
        hist = [{k: v for k, v in r.items() if k != "seconds"} for r in rec.history]
        out[label] = {"test": test, "history": hist, "weights": state_hash(rec)}
        if out_path:  # after each variant: a crash keeps what was done
            with open(out_path, "w") as f:
                json.dump(out, f, indent=1, sort_keys=True)
        print(f"{label:40s} {time.time() - t0:6.1f}s {out[label]['weights']} "
              f"{json.dumps(test)[:90]}", flush=True)
    return out


def _untimed(x: Any) -> Any:
    """``x`` without its timings: every ``seconds`` key, at any depth (the alignment
    stage's record has its own)."""
    if isinstance(x, dict):
        return {k: _untimed(v) for k, v in x.items() if k != "seconds"}
    if isinstance(x, list):
        return [_untimed(v) for v in x]
    return x


def compare(a_path: str, b_path: str) -> int:
    a, b = (_untimed(json.loads(Path(p).read_text())) for p in (a_path, b_path))
    bad = 0
    for label in sorted(set(a) | set(b)):
        if label not in a or label not in b:
            print(f"MISSING  {label}")
            bad += 1
            continue
        same = a[label] == b[label]
        bad += not same
        print(f"{'same    ' if same else 'DIFFERENT'} {label}")
        if not same:
            for key in ("test", "history", "weights"):
                if a[label][key] != b[label][key]:
                    print(f"    {key}: {json.dumps(a[label][key])[:200]}\n"
                          f"    {' ' * len(key)}  {json.dumps(b[label][key])[:200]}")
    print(f"{len(set(a) | set(b)) - bad} of {len(set(a) | set(b))} variants bit-equal")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the fingerprints here (JSON)")
    ap.add_argument("--only", nargs="*", default=[], help="these labels only")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if args.compare:
        return compare(*args.compare)
    run(args.only, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
