"""One RecBole 1.2.1 run on a split written by ``benchmarks/recbole_peers.py``.

Runs inside RecBole's own virtual environment (``benchmarks/recbole_setup.sh``), never with
kgrec's: it imports only RecBole, torch and the standard library. The driver writes the atomic
files (``<name>.train.inter``, ``.valid.inter``, ``.test.inter``, ``.kg``, ``.link``) and a
``manifest.json`` with kgrec's counts; this script

1. loads them with RecBole's pre-split benchmark mode (``benchmark_filename``), which skips
   RecBole's own filtering and splitting, and checks that RecBole kept exactly kgrec's split:
   the same (user, item) pairs in each fold, every user and item, every triple and link;
2. checks that the full-ranking evaluation masks what kgrec masks (validation: the user's
   training items; test: training and validation items);
3. trains with early stopping on validation NDCG@20 and evaluates the best checkpoint on test;
4. writes a JSON with the metrics, epochs, seconds per training epoch and wall time.

    python benchmarks/recbole_run.py --model KGAT --data /tmp/recbole-work/atomic \\
        --name lastfm-hetrec-kg-s0 --seed 0 --out run.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

PHASES = ("train", "valid", "test")


def _patch_torch_load() -> bool:
    """Let RecBole reload its own checkpoints under torch >= 2.6.

    torch 2.6 made ``torch.load`` default to ``weights_only=True``; RecBole 1.2.1's checkpoint
    holds its Config object, so reloading the best model for the test evaluation fails.
    recbole_setup.sh pins torch 2.5.1, where nothing needs changing; this only guards against a
    newer torch. Returns whether it patched.
    """
    major, minor = (int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    if (major, minor) < (2, 6):
        return False
    original = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("weights_only", False)  # our own files, written by this process
        return original(*args, **kwargs)

    torch.load = load
    return True


def _patch_dgl() -> None:
    """Let RecBole 1.2.1's KGAT run on DGL 2.1, the newest DGL on PyPI; changes no result.

    KGAT's ``init_graph`` calls two DGL APIs of the 0.6 era, both renamed since:
    ``dgl.edge_subgraph(..., preserve_nodes=True)`` is now ``relabel_nodes=False`` (keep the
    parent graph's node ids), and ``DGLGraph.adjacency_matrix(transpose, scipy_fmt=...)`` is
    now ``adj_external`` (rows = edge sources unless transposed, as before). Both old
    spellings are mapped to the new ones; calls in the new spelling pass through untouched.
    """
    import dgl

    new_edge_subgraph = dgl.edge_subgraph
    new_adjacency = dgl.DGLGraph.adjacency_matrix

    def edge_subgraph(graph: Any, edges: Any, *, preserve_nodes: bool | None = None,
                      **kwargs: Any) -> Any:
        if preserve_nodes is not None:
            kwargs.setdefault("relabel_nodes", not preserve_nodes)
        return new_edge_subgraph(graph, edges, **kwargs)

    def adjacency_matrix(self: Any, transpose: bool | None = None, ctx: Any = None,
                         scipy_fmt: str | None = None, etype: Any = None) -> Any:
        if transpose is None and ctx is None and scipy_fmt is None:
            return new_adjacency(self, etype)
        extra = {} if ctx is None else {"ctx": ctx}
        return self.adj_external(transpose=bool(transpose), scipy_fmt=scipy_fmt, etype=etype,
                                 **extra)

    dgl.edge_subgraph = edge_subgraph
    dgl.DGLGraph.adjacency_matrix = adjacency_matrix


def _read_pairs(path: Path, cols: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Rows of an atomic file (tab-separated, typed header) as tuples of the named columns."""
    with path.open(newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.split(":")[0] for h in next(reader)]
        idx = [header.index(c) for c in cols]
        return [tuple(row[i] for i in idx) for row in reader]


def _token_pairs(ds: Any, uid: str, iid: str) -> set[tuple[str, str]]:
    """The (user token, item token) pairs of a RecBole dataset, back in the files' ids."""
    u = ds.id2token(uid, ds.inter_feat[uid].numpy())
    i = ds.id2token(iid, ds.inter_feat[iid].numpy())
    return set(zip(u.tolist(), i.tolist(), strict=True))


def split_digest(folder: Path, name: str) -> str:
    """SHA-256 over the three fold files: names the exact split a result was obtained on."""
    h = hashlib.sha256()
    for phase in PHASES:
        h.update((folder / f"{name}.{phase}.inter").read_bytes())
    return h.hexdigest()


def check_split(dataset: Any, built: list[Any], folder: Path, name: str,
                manifest: dict[str, Any], knowledge: bool) -> dict[str, Any]:
    """Fail unless RecBole holds exactly the split and KG that kgrec wrote; returns counts."""
    uid, iid = dataset.uid_field, dataset.iid_field
    counts: dict[str, Any] = {}
    problems = []
    for phase, ds in zip(PHASES, built, strict=True):
        want = set(_read_pairs(folder / f"{name}.{phase}.inter", ("user_id", "item_id")))
        got = _token_pairs(ds, uid, iid)
        counts[phase] = len(ds)
        if len(ds) != manifest["counts"][phase] or got != want or len(got) != len(ds):
            problems.append(f"{phase}: RecBole has {len(ds)} rows / {len(got)} pairs, kgrec "
                            f"{manifest['counts'][phase]}; same pairs: {got == want}")
    # user_num / item_num count RecBole's [PAD] id 0 as well.
    counts["users"], counts["items"] = dataset.user_num - 1, dataset.item_num - 1
    if counts["users"] != manifest["counts"]["users"]:
        problems.append(f"users: {counts['users']} vs kgrec {manifest['counts']['users']}")
    if counts["items"] != manifest["counts"]["items"]:
        problems.append(f"items: {counts['items']} vs kgrec {manifest['counts']['items']}")
    if knowledge:
        counts["triples"] = len(dataset.kg_feat)
        counts["linked_items"] = len(dataset.item2entity)
        counts["entities"] = dataset.entity_num - 1
        # RecBole adds [PAD] and the user-item relation [UI-Relation] to the KG's relations.
        rel_tokens = set(dataset.field2id_token[dataset.relation_field].tolist())
        counts["relations"] = len(rel_tokens - {"[PAD]", "[UI-Relation]"})
        for key in ("triples", "linked_items", "relations"):
            if counts[key] != manifest["counts"][key]:
                problems.append(f"{key}: {counts[key]} vs kgrec {manifest['counts'][key]}")
    if problems:
        raise SystemExit("RecBole did not keep kgrec's split:\n  " + "\n  ".join(problems))
    return counts


def check_masks(valid_data: Any, test_data: Any, built: list[Any]) -> int:
    """Fail unless validation ranking masks train items and test ranking train + valid items.

    RecBole builds the masks (``uid2history_item``) from its sampler's per-phase "used" items
    minus the phase's positives; this checks the outcome per user against the folds themselves.
    Returns the number of users checked.
    """
    uid, iid = built[0].uid_field, built[0].iid_field
    folds: list[dict[int, set[int]]] = []
    for ds in built:
        per_user: dict[int, set[int]] = {}
        for u, i in zip(ds.inter_feat[uid].numpy().tolist(), ds.inter_feat[iid].numpy().tolist(),
                        strict=True):
            per_user.setdefault(u, set()).add(i)
        folds.append(per_user)
    train, valid, test = folds
    checked = 0
    for loader, positives, masked in ((valid_data, valid, (train,)),
                                      (test_data, test, (train, valid))):
        for u in loader.uid_list.tolist():
            want = set().union(*(m.get(u, set()) for m in masked))
            history = set(loader.uid2history_item[u].tolist())
            pos = set(loader.uid2positive_item[u].tolist())
            if history != want or pos != positives[u]:
                raise SystemExit(f"user {u}: RecBole masks {len(history)} items, expected "
                                 f"{len(want)}; positives {len(pos)} vs {len(positives[u])}")
            checked += 1
        if len(loader.uid_list) != len(positives):
            raise SystemExit("RecBole evaluates a different set of users than the fold holds")
    return checked


def timed(fn: Callable[..., Any], seconds: list[float]) -> Callable[..., Any]:
    """Wrap a trainer's ``_train_epoch`` so each call's duration is appended to ``seconds``.

    Timing the method itself (rather than parsing RecBole's log) covers exactly the training
    part of an epoch, including KGAT's KG step and attention update, and no validation.
    """
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        seconds.append(time.perf_counter() - t)
        return out
    return wrapper


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=["LightGCN", "KGAT", "KGIN"])
    p.add_argument("--data", required=True, type=Path, help="folder holding <name>/")
    p.add_argument("--name", required=True, help="RecBole dataset name (folder and files)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args()

    start = time.perf_counter()
    # Other jobs share the two cores: one intra-op thread, as in kgrec's model benchmark.
    torch.set_num_threads(args.threads)
    patched = _patch_torch_load()

    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    folder = args.data / args.name
    manifest = json.loads((folder / "manifest.json").read_text())
    config_dict = {
        "data_path": str(args.data),
        # Pre-split files: RecBole neither filters nor re-splits (Dataset._data_processing and
        # Dataset.build skip both when benchmark_filename is set).
        "benchmark_filename": list(PHASES),
        "load_col": {"inter": ["user_id", "item_id"],
                     "kg": ["head_id", "relation_id", "tail_id"],
                     "link": ["item_id", "entity_id"]},
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        "entity_kg_num_interval": "[0,inf)",
        "relation_kg_num_interval": "[0,inf)",
        "rm_dup_inter": None,
        # `split` is ignored in benchmark mode; group/order/mode still steer the loaders.
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO",
                      "mode": "full"},
        "metrics": ["Recall", "NDCG"],
        "topk": [20],
        "metric_decimal_place": 6,  # RecBole rounds to 4 places by default
        "valid_metric": "NDCG@20",
        "embedding_size": 64,
        "train_batch_size": 2048,
        # Full-sort batches hold eval_batch_size // n_items users; RecBole's 4096 would score
        # one user at a time on these catalogues.
        "eval_batch_size": 256 * (manifest["counts"]["items"] + 1),
        "learning_rate": 5e-3,
        "epochs": args.epochs,
        # kgrec validates every 5 epochs and stops after 6 evaluations without improvement;
        # RecBole stops when more than `stopping_step` evaluations failed to improve, so 5.
        "eval_step": 5,
        "stopping_step": 5,
        "seed": args.seed,
        "reproducibility": True,
        "use_gpu": False,
        "gpu_id": "",
        "worker": 0,
        "show_progress": False,
        "checkpoint_dir": str(Path.cwd() / "saved"),
        "state": "INFO",
    }
    if (folder / f"{args.name}.item").is_file():
        # Items with no (user, item) pair (written by the driver only when there are some):
        # loading the item list keeps them in RecBole's vocabulary, ranked as kgrec ranks them.
        config_dict["load_col"]["item"] = ["item_id"]
    config = Config(model=args.model, dataset=args.name, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    knowledge = args.model in ("KGAT", "KGIN")
    if args.model == "KGAT":
        _patch_dgl()
    train_data, valid_data, test_data = data_preparation(config, dataset)
    # The folds the loaders were built from (Dataset.build's output, kept by the sampler that
    # also yields the evaluation masks): the check is on exactly what RecBole trains and ranks.
    built = list(valid_data._sampler.datasets)
    counts = check_split(dataset, built, folder, args.name, manifest, knowledge)
    checked_users = check_masks(valid_data, test_data, built)
    print(f"split check passed: {counts}; masks checked for {checked_users} user-folds",
          flush=True)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    epoch_seconds: list[float] = []
    trainer._train_epoch = timed(trainer._train_epoch, epoch_seconds)
    valid_curve: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    best_valid, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=False,
                                callback_fn=lambda e, s: valid_curve.append((e + 1, float(s))))
    train_s = time.perf_counter() - t0
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    # RecBole counts an equal score as an improvement (>=), so the best checkpoint is the last
    # evaluation that reached the maximum.
    best_epoch = max(valid_curve, key=lambda es: (es[1], es[0]))[0] if valid_curve else None
    doc = {
        "library": "RecBole", "recbole": recbole.__version__, "torch": torch.__version__,
        "model": args.model, "dataset": manifest["dataset"], "seed": args.seed,
        "valid_ndcg@20": float(best_valid),
        "recall@20": float(test["recall@20"]), "ndcg@20": float(test["ndcg@20"]),
        "epochs": len(epoch_seconds), "best_epoch": best_epoch, "max_epochs": args.epochs,
        "sec_per_epoch": statistics.median(epoch_seconds) if epoch_seconds else None,
        "train_s": train_s, "wall_s": time.perf_counter() - start,
        "torch_threads": torch.get_num_threads(), "torch_load_patched": patched,
        "dgl_api_shim": args.model == "KGAT",
        "counts": counts, "mask_checked_user_folds": checked_users,
        "split_sha256": split_digest(folder, args.name),
        "valid_curve": valid_curve,
        "config": {k: config[k] for k in ("embedding_size", "train_batch_size", "learning_rate",
                                          "epochs", "eval_step", "stopping_step", "reg_weight",
                                          "n_layers", "layers", "mess_dropout", "context_hops",
                                          "n_factors", "node_dropout_rate", "mess_dropout_rate",
                                          "sim_regularity", "kg_embedding_size",
                                          "aggregator_type", "train_neg_sample_args")
                   if config[k] is not None},
        "python": sys.version.split()[0],
    }
    args.out.write_text(json.dumps(doc, indent=1, default=str))
    print(json.dumps({k: doc[k] for k in ("model", "dataset", "seed", "recall@20", "ndcg@20",
                                          "epochs", "sec_per_epoch", "wall_s")}), flush=True)


if __name__ == "__main__":
    main()
