"""RecBole 1.2.1's LightGCN, KGAT and KGIN side by side with kgrec's benchmark, same split.

kgrec builds the split exactly as ``benchmarks/run.py`` does (``kgrec.split(graph, "random",
valid=0.1, test=0.1, seed=seed)``: per user 80/10/10, split seed = run seed) and this script
writes it as RecBole atomic files using RecBole's pre-split benchmark mode:

- ``<name>.train.inter``, ``<name>.valid.inter``, ``<name>.test.inter`` (``user_id``,
  ``item_id``; kgrec's external ids, one row per unique pair, as kgrec trains and ranks);
- ``<name>.kg`` (``head_id``, ``relation_id``, ``tail_id``) and ``<name>.link`` (``item_id``,
  ``entity_id``): kgrec's knowledge graph, ``graph.knowledge()``, with items as KG nodes;
- ``manifest.json``: kgrec's counts, which ``recbole_run.py`` checks RecBole reproduces.

Then, per model, ``benchmarks/recbole_run.py`` runs as a subprocess with RecBole's own Python
(``benchmarks/recbole_setup.sh`` makes that environment) and one CPU thread. The atomic files
hold the datasets' contents, which may not be redistributed, so they go under ``--work``
(default ``/tmp/recbole-work``), never into the repository. Finished runs are not redone.

    bash benchmarks/recbole_setup.sh
    python benchmarks/recbole_peers.py --dataset lastfm-hetrec-kg --seeds 0 \\
        --models LightGCN KGAT KGIN
    python benchmarks/recbole_peers.py --summary      # only rewrite results/recbole.md

Results: ``benchmarks/results/runs/recbole-<dataset>-<model>-seed<k>.json`` and
``benchmarks/results/recbole.md`` (beside kgrec's rows from ``benchmarks/run.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
from pathlib import Path
from typing import Any

from common import HERE, RUNS, Runs, mean_std

MODELS = ["LightGCN", "KGAT", "KGIN"]
DATASETS = ["lastfm-hetrec-kg", "ml-100k-kb4rec", "book-crossing-kg"]
DEFAULT_VENV = Path.home() / ".cache" / "kgrec" / "venvs" / "recbole-1.2.1"
# kgrec's own rows from benchmarks/run.py, same split and seeds, for the side-by-side table.
KGREC_ROWS = {"popularity": "Popularity (floor)", "mf": "kgrec MF-BPR",
              "lightgcn": "kgrec LightGCN", "kggnn": "kgrec KG GNN", "hgnn": "kgrec hgnn"}


def inter_files(split: Any) -> dict[str, str]:
    """The text of the ``train``, ``valid`` and ``test`` atomic ``.inter`` files of a split:
    one row per unique pair, kgrec's external ids, sorted (byte-stable)."""
    import numpy as np

    users, items = split.graph.users.ids, split.graph.items.ids

    def text(u: np.ndarray, i: np.ndarray) -> str:
        order = np.lexsort((i, u))
        lines = [f"{users[a]}\t{items[b]}" for a, b in zip(u[order], i[order], strict=True)]
        return "user_id:token\titem_id:token\n" + "\n".join(lines) + "\n"

    out = {"train": text(split.train_users, split.train_items)}
    for phase, ev in (("valid", split.valid), ("test", split.test)):
        coo = ev.positives.tocoo()
        out[phase] = text(coo.row.astype(np.int64), coo.col.astype(np.int64))
    return out


def split_sha256(split: Any) -> str:
    """The hash RecBole's runs are pinned to: sha256 over the three ``.inter`` files. kgrec's
    random-split runs record it too, so a report can tell the two saw the same split."""
    digest = hashlib.sha256()
    for text in inter_files(split).values():
        digest.update(text.encode())
    return digest.hexdigest()


def write_atomic(dataset: str, seed: int, folder: Path) -> dict[str, Any]:
    """Write kgrec's split of ``dataset`` (seed ``seed``) as RecBole atomic files in ``folder``.

    Returns the manifest (kgrec's counts), also written to ``folder / "manifest.json"``.
    """
    import numpy as np

    import kgrec

    graph = kgrec.load_dataset(dataset)
    split = kgrec.split(graph, "random", valid=0.1, test=0.1, seed=seed)
    items = graph.items.ids
    name = folder.name
    folder.mkdir(parents=True, exist_ok=True)

    counts: dict[str, Any] = {}
    for phase, text in inter_files(split).items():
        (folder / f"{name}.{phase}.inter").write_text(text)
        counts[phase] = text.count("\n") - 1
    assert counts["train"] == len(split.train_users)
    assert counts["valid"] == len(split.valid) and counts["test"] == len(split.test)

    # kgrec's KG puts items and entities in one index space (items first) with items as KG
    # nodes; RecBole keeps entities apart and joins them to items through .link. Each item that
    # occurs in a triple becomes the entity "i:<item id>" linked to that item, other entities
    # "e:<entity id>". Only items that occur in a triple are linked: RecBole 1.2.1's
    # _merge_item_and_entity assumes every linked entity appears in the KG (its _filter_link,
    # which would enforce that, does not run in benchmark mode).
    kg = graph.knowledge()
    ent_ids = graph.nodes["Entity"].ids if "Entity" in graph.nodes else np.zeros(0, dtype=str)
    tokens = np.concatenate([np.char.add("i:", items), np.char.add("e:", ent_ids)])
    rel = np.asarray(kg.relations)
    kg_lines = [f"{h}\t{r}\t{t}" for h, r, t in zip(tokens[kg.head], rel[kg.relation],
                                                      tokens[kg.tail], strict=True)]
    (folder / f"{name}.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\n"
                                       + "\n".join(kg_lines) + "\n")
    ends = np.concatenate([kg.head, kg.tail])
    linked = np.unique(ends[ends < kg.num_items])
    (folder / f"{name}.link").write_text(
        "item_id:token\tentity_id:token\n"
        + "\n".join(f"{items[k]}\ti:{items[k]}" for k in linked) + "\n")
    counts.update(users=graph.num_users, items=graph.num_items, triples=len(kg),
                  relations=len(kg.relations), linked_items=len(linked),
                  entities=graph.num_items + len(ent_ids),
                  test_users=len(split.test.users), valid_users=len(split.valid.users))
    # Users or items with no pair at all are in kgrec's ranking but not in RecBole's
    # vocabulary, which it builds from the .inter files. Items: an .item file listing kgrec's
    # whole catalogue puts them in (written only when needed; recbole_run.py loads it when
    # present, so datasets without such items run exactly as before). Users: refuse.
    seen_u = np.unique(np.concatenate([split.train_users, split.valid.positives.tocoo().row,
                                       split.test.positives.tocoo().row]))
    seen_i = np.unique(np.concatenate([split.train_items, split.valid.positives.tocoo().col,
                                       split.test.positives.tocoo().col]))
    if len(seen_u) != graph.num_users:
        raise SystemExit(f"{dataset}: {graph.num_users - len(seen_u)} users have no "
                         "interaction; RecBole would evaluate a different user set than kgrec")
    counts["items_without_pairs"] = graph.num_items - len(seen_i)
    if counts["items_without_pairs"]:
        (folder / f"{name}.item").write_text("item_id:token\n" + "\n".join(items) + "\n")
    manifest = {"dataset": dataset, "seed": seed, "split": "random 80/10/10 per user",
                "split_sha256": split_sha256(split),
                "kgrec_version": getattr(kgrec, "__version__", "?"), "counts": counts}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def run_model(dataset: str, model: str, seed: int, args: argparse.Namespace, out: Path) -> None:
    """Run ``recbole_run.py`` for one model in RecBole's environment, one thread."""
    name = f"{dataset}-s{seed}"
    atomic = Path(args.work) / "atomic"
    if not (atomic / name / "manifest.json").is_file():
        write_atomic(dataset, seed, atomic / name)
    cwd = Path(args.work) / "runs" / f"{name}-{model}"  # RecBole's log/ and saved/ go here
    cwd.mkdir(parents=True, exist_ok=True)
    # A clean environment for the other interpreter: no kgrec on its path, one thread.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [str(Path(args.venv) / "bin" / "python"), str(HERE / "recbole_run.py"),
           "--model", model, "--data", str(atomic), "--name", name, "--seed", str(seed),
           "--epochs", str(args.epochs), "--threads", "1", "--out", str(out)]
    with (cwd / "stdout.log").open("w") as log:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                              check=False)
    if proc.returncode != 0:
        tail = (cwd / "stdout.log").read_text().splitlines()[-30:]
        raise SystemExit(f"{model} on {name} failed ({proc.returncode}):\n" + "\n".join(tail))


def _rows(docs: list[dict[str, Any]], label: str) -> str:
    seeds = ",".join(str(d["seed"]) for d in docs)
    if "epochs" not in docs[0]:  # a floor: nothing trained
        return (f"| {label} | {mean_std([d['recall@20'] for d in docs])} | "
                f"{mean_std([d['ndcg@20'] for d in docs])} | – | – | {seeds} |")
    epochs = statistics.mean(d["epochs"] for d in docs)
    best = statistics.mean(d["best_epoch"] or 0 for d in docs)
    capped = " (cap)" if any(d.get("max_epochs", 500) <= d["epochs"] for d in docs) else ""
    return (f"| {label} | {mean_std([d['recall@20'] for d in docs])} | "
            f"{mean_std([d['ndcg@20'] for d in docs])} | "
            f"{statistics.median(d['sec_per_epoch'] for d in docs):.2f} | "
            f"{epochs:.0f} (best {best:.0f}){capped} | {seeds} |")


# Every trap met getting RecBole 1.2.1 to run on this protocol, and what was done about it.
NOTES = [
    "**Same split, checked.** RecBole's benchmark mode (`benchmark_filename`) skips its "
    "filtering (`_data_filtering`: k-core, `_filter_link`) and its splitting, so the folds are "
    "kgrec's; `recbole_run.py` compares RecBole's folds with the files pair by pair, checks "
    "users, items, triples, relations and links, and checks every user's evaluation mask "
    "(validation: the training items; test: training + validation items, which RecBole "
    "derives as the sampler's used items of train+valid+test minus the test positives). A "
    "failed check aborts the run. `split_sha256` in each JSON names the exact fold files.",
    "**KG mapping.** kgrec's items are KG nodes themselves; RecBole joins items to entities "
    "through `.link`. Each item occurring in a triple becomes entity `i:<item id>`, linked to "
    "itself; only such items are linked, because with `_filter_link` skipped RecBole's "
    "`_merge_item_and_entity` assumes every linked entity occurs in a triple (its entity "
    "renumbering is misaligned otherwise). Items outside the KG (84 of ml-100k's 1,682) "
    "keep an embedding without KG edges, as in kgrec. Triples are used as given "
    "(`kg_reverse_r: False`, RecBole's default); RecBole adds its `[UI-Relation]` for "
    "user-item edges.",
    "**ml-100k-kb4rec**: kgrec counts every rating (1-5) as a positive interaction; the "
    "atomic files hold kgrec's folds of all 100,000 ratings' unique pairs, with no rating "
    "column, so RecBole sees the same positives (no `threshold`, no rating filter).",
    "**book-crossing-kg: items without pairs.** 57 of its 14,967 items (all in the KG) have "
    "no (user, item) pair in any fold; RecBole builds its item vocabulary from the `.inter` "
    "files and would rank a smaller catalogue than kgrec. The driver then also writes "
    "`<name>.item` listing every kgrec item, which `recbole_run.py` loads (`load_col: item`), "
    "so RecBole ranks all 14,967 items, as kgrec does (the item count is checked). Last.FM "
    "and ml-100k have no such item: no `.item` file, runs unchanged.",
    "**Deterministic**: `reproducibility: True`; Last.FM seed 0 LightGCN and KGAT were run "
    "twice and gave identical validation curves and test metrics.",
    "**torch 2.2.1, not newer.** The newest DGL on PyPI (2.1.0) ships its graphbolt library "
    "only for torch <= 2.2.1 and `import dgl` fails otherwise. This also avoids torch >= 2.6's "
    "`torch.load(weights_only=True)` default, which breaks RecBole's reload of its best "
    "checkpoint; `recbole_run.py` would patch `weights_only=False` back in on a newer torch "
    "(`torch_load_patched` in the JSON; false in every run here).",
    "**DGL API shim (KGAT).** RecBole 1.2.1's KGAT calls DGL 0.6-era APIs: "
    "`dgl.edge_subgraph(..., preserve_nodes=True)` and "
    "`adjacency_matrix(transpose=False, scipy_fmt='coo')`. `recbole_run.py` maps them to "
    "DGL 2.1's `relabel_nodes=False` and `adj_external(...)`, same meaning (rows = heads, "
    "node ids kept); no PyPI DGL has both the old API and a wheel for Python 3.11.",
    "**KGIN needs torch-scatter**, which PyPI has only as source: compiled against the pinned "
    "torch (`--no-build-isolation`, CPU only, ~5 min on 2 cores).",
    "**Other pins**: numpy 1.26.4 (RecBole re-creates `np.float` from `np.float_`, gone in "
    "numpy 2); scipy 1.10.1 (LightGCN fills its adjacency with `dok_matrix._update`, gone "
    "later); torchdata 0.7.1 + pydantic (DGL graphbolt imports); ray <= 2.6.3, colorlog "
    "4.7.2, colorama 0.4.4 (RecBole's own hard pins).",
    "**Early stopping**: RecBole stops when *more than* `stopping_step` evaluations failed to "
    "improve, and counts a tie as an improvement; `stopping_step: 5` with `eval_step: 5` "
    "matches kgrec's patience of 6 evaluations every 5 epochs.",
    "**Evaluation settings that change no number**: `eval_batch_size` raised to 256 users' "
    "worth of scores (RecBole's 4096 scores one user per batch on these catalogues); "
    "`metric_decimal_place: 6` (RecBole rounds to 4 places by default).",
]
# What keeps this from being a like-for-like comparison.
CAVEATS = [
    "No hyper-parameter was tuned for the RecBole models: learning rate 5e-3 (kgrec's choice "
    "for its LightGCN and KG GNN, on Last.FM validation) and RecBole's model defaults "
    "otherwise. The KGAT and KGIN authors' code runs with a learning rate of 1e-4 and tuned "
    "regularisation; both may do better with their own tuning. kgrec's L2 weight is 1e-4, "
    "RecBole's defaults 1e-5.",
    "Seconds per epoch: RecBole and kgrec ran on 1 thread each, with other jobs on the same "
    "2 cores, at different times. An epoch is one pass over the training pairs for "
    "every model; KGAT's also includes a pass over the KG triples (TransR) and the attention "
    "update.",
    "On ml-100k-kb4rec, RecBole's KGIN and KGAT overlapped for about ten minutes (two "
    "one-thread runs plus the other jobs on two cores): their s/epoch are inflated (KGIN "
    "took ~10 s per epoch before the overlap, ~18 s during it; KGAT ~30 s during, ~15 s "
    "after).",
    "Negative sampling: RecBole draws one uniform negative per positive among all items the "
    "user has no training pair with; kgrec's current sampler draws among the items that have "
    "a training pair (so never an item first seen at test time).",
]


def _commands(docs: list[dict[str, Any]]) -> list[str]:
    """Driver command lines that reproduce the runs present: one per dataset and epoch cap."""
    out = []
    for ds in DATASETS:
        for cap in sorted({d["max_epochs"] for d in docs if d["dataset"] == ds}, reverse=True):
            mine = [d for d in docs if d["dataset"] == ds and d["max_epochs"] == cap]
            seeds = " ".join(str(s) for s in sorted({d["seed"] for d in mine}))
            models = " ".join(m for m in MODELS if any(d["model"] == m for d in mine))
            flag = "" if cap == 500 else f" --epochs {cap}"
            out.append(f"python benchmarks/recbole_peers.py --dataset {ds} --seeds {seeds} "
                       f"--models {models}{flag}")
    return out


def tables(runs: Runs) -> dict[str, str]:
    """``recbole.md``: one table per dataset, RecBole rows beside kgrec's (see
    ``report.py``)."""
    from model import recbole_mark

    docs = runs.glob("recbole-*.json")
    versions = sorted({(d["recbole"], d["torch"]) for d in docs})
    ours = [d for ds in DATASETS for key in KGREC_ROWS for d in runs.glob(f"{ds}-{key}-*.json")]
    runs = runs.scoped(ours)
    lines = [
        "# RecBole 1.2.1 peers (LightGCN, KGAT, KGIN) on kgrec's split", "",
        "Reproduce (resumable; per-run JSON in "
        "`benchmarks/results/runs/recbole-<dataset>-<model>-seed<k>.json`; kgrec's rows come "
        "from `python benchmarks/run.py`, same splits and seeds; tables from "
        "`python benchmarks/report.py`):", "", "```",
        "bash benchmarks/recbole_setup.sh    # RecBole's own venv, pinned", *_commands(docs),
        "```", "",
        "RecBole's runs are pinned to their split files (`split_sha256`): a RecBole row stands "
        "while kgrec's runs of this commit, same dataset and seed, hashed the very same files "
        "(checked for every row; ⚠ where not). kgrec's rows: " + runs.header(ours), "",
        "Protocol (kgrec's, `benchmarks/run.py`): per-user random 80/10/10 split of the unique "
        "(user, item) pairs, split seed = run seed; full ranking over all items, the user's "
        "training items masked for validation and training + validation items for test; K = 20 "
        "(RecBole's Recall and NDCG have kgrec's definitions: hits / held-out positives; IDCG "
        "over min(positives, K)); early stopping on validation NDCG@20 evaluated every 5 "
        "epochs, stopping after 6 evaluations without improvement, at most 500 epochs; the best "
        "validation checkpoint is tested. RecBole reads kgrec's split as pre-split atomic files "
        "(`benchmark_filename: [train, valid, test]`), so it neither filters nor re-splits; "
        "each run checks that RecBole's folds hold exactly kgrec's pairs, that every user, "
        "item, triple, relation and link survived, and, user by user, that the evaluation "
        "masks are the ones above.", "",
        "RecBole settings: embedding_size 64, train_batch_size 2048, learning_rate 5e-3 "
        "(kgrec's), Adam, one uniform negative per positive, eval_step 5, stopping_step 5 "
        "(RecBole stops after *more than* stopping_step bad evaluations), seed = run seed; "
        "everything else RecBole 1.2.1's model defaults (LightGCN: 2 layers, reg 1e-5; "
        "KGAT: layers [64], bi aggregator, message dropout 0.1, reg 1e-5; KGIN: 2 hops, 4 "
        "intents, node dropout 0.5, sim_regularity 1e-4, reg 1e-5). Seconds per epoch: median "
        "over epochs of the trainer's `_train_epoch` (for KGAT including its KG step and "
        "attention update), validation excluded. `epochs`: trained (best-validation epoch).",
        "",
        "RecBole's runs: 2 CPUs (x86_64), shared with other jobs; every RecBole run on 1 "
        "thread (`OMP_NUM_THREADS=1`, `torch.set_num_threads(1)`). Versions: "
        + ", ".join(f"RecBole {r} with torch {t}" for r, t in versions)
        + f", Python {docs[0]['python'] if docs else '?'}; pins in "
        "`benchmarks/recbole_setup.sh`. kgrec's rows ran in kgrec's environment, also one "
        "thread per run: compare s/epoch with care.", ""]
    for ds in DATASETS:
        mine = [d for d in docs if d["dataset"] == ds]
        if not mine:
            continue
        lines += [f"## {ds}", "", "| model | Recall@20 | NDCG@20 | s/epoch | epochs | seeds |",
                  "|---|---:|---:|---:|---:|---:|"]
        for m in MODELS:
            sel = sorted((d for d in mine if d["model"] == m), key=lambda d: d["seed"])
            if sel:
                lines.append(_rows(sel, f"RecBole {m}{recbole_mark(runs, sel)}"))
        seeds = {d["seed"] for d in mine}
        for key, label in KGREC_ROWS.items():
            sel = [d for d in runs.glob(f"{ds}-{key}-*.json") if d["seed"] in seeds]
            if sel:
                lines.append(_rows(sel, label + runs.mark(sel)))
        lines.append("")
        for d in sorted(mine, key=lambda d: (d["model"], d["seed"])):
            if d["max_epochs"] != 500:
                bound = (f"early stopping ended it at epoch {d['epochs']} (best "
                         f"{d['best_epoch']}), so the cap did not bind and the result is the "
                         "uncapped one (training is deterministic)"
                         if d["epochs"] < d["max_epochs"] else
                         f"the cap ended it (best validation at epoch {d['best_epoch']}): "
                         "the result may understate the model")
                lines += [f"RecBole {d['model']} (seed {d['seed']}) ran with an epoch cap of "
                          f"{d['max_epochs']} instead of 500, set beforehand from its "
                          f"{d['sec_per_epoch']:.0f} s per epoch on this shared machine; "
                          f"{bound}.", ""]
    missing = [ds for ds in DATASETS if not any(d["dataset"] == ds for d in docs)]
    if missing:
        lines += [f"Not run here (time): {', '.join(missing)}.", ""]
    lines += ["## Deviations and traps", "", *(f"- {n}" for n in NOTES), "",
              "## What makes the comparison unfair", "", *(f"- {n}" for n in CAVEATS), ""]
    return {"recbole.md": "\n".join(lines)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", nargs="+", default=["lastfm-hetrec-kg"], choices=DATASETS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    p.add_argument("--epochs", type=int, default=500, help="maximum epochs (a cap)")
    p.add_argument("--venv", default=str(DEFAULT_VENV), help="RecBole's virtual environment")
    p.add_argument("--work", default="/tmp/recbole-work", help="atomic files, logs, checkpoints")
    p.add_argument("--summary", action="store_true", help="only rewrite the tables")
    args = p.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    if not args.summary:
        for ds in args.dataset:
            for seed in args.seeds:
                for model in args.models:
                    out = RUNS / f"recbole-{ds}-{model}-seed{seed}.json"
                    if out.is_file():
                        continue
                    print(f"RecBole {model} on {ds} seed {seed} ...", flush=True)
                    run_model(ds, model, seed, args, out)
                    d = json.loads(out.read_text())
                    print(f"    recall@20 {d['recall@20']:.4f} ndcg@20 {d['ndcg@20']:.4f} "
                          f"epochs {d['epochs']} {d['sec_per_epoch']:.2f}s/epoch "
                          f"({d['wall_s']:.0f}s)", flush=True)
    import report

    report.write_all()


if __name__ == "__main__":
    main()
