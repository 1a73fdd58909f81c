"""The ``kgrec`` command line: a thin shell over the library (same names, same config).

Library code logs; this module prints tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from kgrec.errors import ConfigError, KgrecError

log = logging.getLogger("kgrec")

# The model with the best test Recall@20 on Last.FM in benchmarks/results/baselines.md
# (LightGCN 0.398 vs KG GNN 0.383 vs MF 0.355, 3 seeds); revisit when that table changes.
QUICKSTART_MODEL = "lightgcn"


# ---------------------------------------------------------------------------- printing
def _console():
    from rich.console import Console

    return Console()


# How tables print: "table" (a drawn table on a terminal, plain full-width columns
# elsewhere), "tsv" (header and rows, a blank line between tables) or "json" (one object per
# table and line). Set from --format.
_FORMAT = "table"


def _cell(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a table as ``--format`` says; when the output is not a terminal, never cut a
    cell (rich would, at 80 columns)."""
    if _FORMAT == "json":
        print(json.dumps({"title": title, "columns": columns,
                          "rows": [[v if isinstance(v, int | float | str) else str(v)
                                    for v in r] for r in rows]}))
        return
    if _FORMAT == "tsv":
        for r in [columns, *rows]:
            print("\t".join(_cell(v).replace("\t", " ").replace("\n", " ") for v in r))
        print()
        return
    if not sys.stdout.isatty():
        cells = [columns, *[[_cell(v) for v in r] for r in rows]]
        width = [max(len(r[k]) for r in cells) for k in range(len(columns))]
        print(title)
        for n, r in enumerate(cells):
            print("  ".join(v.ljust(w) if k == 0 else v.rjust(w)
                            for k, (v, w) in enumerate(zip(r, width, strict=True))).rstrip())
            if n == 0:
                print("  ".join("-" * w for w in width))
        print()
        return
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[_cell(v) for v in r])
    _console().print(t)


def _print_metrics(metrics, title: str) -> None:
    """One row per metric, one column per evaluated group (all users, cold/warm items)."""
    from kgrec.evaluate import MetricTable

    if isinstance(metrics, MetricTable):
        groups = metrics.rows()
        columns = ["metric", *[f"{name} ({users} users)" for name, _, users in groups]]
        rows = [[k, *[vals.get(k, "") for _, vals, _ in groups]] for k in metrics]
        _table(title, columns, rows)
    else:
        _table(title, ["metric", "value"], [[k, v] for k, v in metrics.items()])


# ---------------------------------------------------------------------------- config
def _config_from_args(args: argparse.Namespace) -> Any:
    from kgrec.config import Config

    cfg = Config.load(args.config) if getattr(args, "config", None) else Config()
    for flag, path in (("dataset", "data.dataset"), ("split", "data.split"),
                       ("data_dir", "data.data_dir"), ("model", "model.name"),
                       ("epochs", "train.epochs"), ("device", "train.device"),
                       ("seed", "train.seed"), ("shots", "data.shots"),
                       ("target", "data.target"), ("target_only", "data.target_only"),
                       ("warm", "data.warm"), ("noise", "data.noise"),
                       ("eval_every", "train.eval_every"),
                       ("eval_every_seconds", "train.eval_every_seconds"),
                       ("patience", "train.patience")):
        value = getattr(args, flag, None)
        if value is not None:
            cfg.set(path, value)
    for item in getattr(args, "set", None) or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.lr=0.001")
        cfg.set(key.strip(), yaml.safe_load(raw))
    return cfg.check()


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (see `kgrec config`)")
    p.add_argument("--dataset", help="dataset name or recipe path (data.dataset)")
    p.add_argument("--source", dest="dataset", help="a Neo4j URI to read the graph from: "
                   "bolt://host:7687#NAME reads dataset NAME (the #NAME may go when the "
                   "database holds one); credentials from $KGREC_NEO4J_*")
    p.add_argument("--split", help="given|random|temporal|user_temporal|cold_item|cold_user|"
                   "cross_domain|ctr")
    p.add_argument("--model", help="mf | lightgcn | kggnn | hgnn (model.name)")
    p.add_argument("--epochs", type=int, help="maximum epochs (train.epochs)")
    p.add_argument("--device", help="auto | cpu | cuda (train.device)")
    p.add_argument("--seed", type=int, help="training seed (train.seed)")
    p.add_argument("--shots", type=int, help="few-shot cold split: support links each "
                   "held-out user/item keeps; cross_domain: target links each held-out user "
                   "keeps (data.shots)")
    p.add_argument("--target", help="cross_domain split: the target item domain (data.target)")
    p.add_argument("--target-only", action="store_const", const=True, default=None,
                   help="cross_domain split: train without the source domains' links "
                   "(data.target_only)")
    p.add_argument("--warm", action="store_const", const=True, default=None,
                   help="cold_item/cold_user split: also hold out warm links, so the test "
                   "measures cold, warm and overall (data.warm)")
    p.add_argument("--noise", action="append", metavar="KIND=SHARE",
                   help="train on noisy data: inter=0.2 (20%% of training pairs random), "
                   "kg=0.2 (relations of 20%% of KG triples shuffled); repeatable (data.noise)")
    p.add_argument("--data-dir", help="folder with the datasets (default $KGREC_DATA_DIR)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="set any config field, e.g. --set model.dim=128 (repeatable)")


# ---------------------------------------------------------------------------- commands
def cmd_data_list(args: argparse.Namespace) -> int:
    from kgrec.ingest import Recipe, list_datasets
    from kgrec.ingest.recipe import recipe_path

    rows = []
    for name in list_datasets():
        r = Recipe.load(recipe_path(name))
        rows.append([name, r.format, r.path, " ".join(r.description.split())])
    _table("datasets (loaders/*.yaml)", ["name", "format", "folder", "description"], rows)
    return 0


def cmd_data_recipe(args: argparse.Namespace) -> int:
    from kgrec.ingest.spec import reference

    print(reference(args.format))
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from kgrec.config import DataConfig
    from kgrec.data.split import split_for

    graph = _load(args.name, args.data_dir)
    st = graph.stats()
    rows = []
    for k, v in st.items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                rows.append([f"{k}.{kk}", vv])
        else:
            rows.append([k, v])
    _table(f"{graph.name}", ["statistic", "value"], rows)
    unused = st.get("items_without_interactions", 0)
    if unused:
        print(f"{unused:,} of {graph.num_items:,} catalogue items have no interaction: they "
              "are always cold (ranked from content alone, if the model reads any). To drop "
              "them, set `drop_items_without_interactions: true` in the recipe.")
    if args.split:
        s = split_for(DataConfig(dataset=args.name, split=args.split, data_dir=args.data_dir),
                      graph)
        _table(f"split {args.split}", ["part", "pairs"], [[k, v] for k, v in s.summary().items()])
    return 0


def _load(name: str, data_dir: str | None):
    from kgrec.ingest import load_dataset, load_recipe

    if name.endswith((".yaml", ".yml")):
        return load_recipe(name, data_dir=data_dir)
    return load_dataset(name, data_dir=data_dir)


def cmd_config(args: argparse.Namespace) -> int:
    cfg = _config_from_args(args)
    sys.stdout.write(cfg.to_yaml())
    return 0


def _default_out(cfg) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    ds = Path(cfg.data.dataset).stem
    return Path("runs") / f"{ds}-{cfg.model.name}-{stamp}"


def cmd_train(args: argparse.Namespace) -> int:
    import threading

    from kgrec.data.split import split_for
    from kgrec.serve import train

    cfg = _config_from_args(args)
    out = Path(args.out) if args.out else _default_out(cfg)
    split = split_for(cfg.data)
    stop = threading.Event()
    rec = train(split, cfg, out_dir=out, logdir=args.logdir, resume=args.resume,
                progress=not args.quiet, stop=stop)
    best = max((h for h in rec.history if "valid" in h),
               key=lambda h: h["valid"].get("auc", h["valid"].get(cfg.eval.metric, 0)),
               default=None)
    if best is not None:
        _print_metrics(best["valid"], f"validation, best epoch {best['epoch']}")
    print(f"saved to {out} (curves: {out / 'curves.png'}); test it once with: kgrec evaluate "
          f"{out}")
    if stop.is_set():
        print(f"kgrec: stopped on request after epoch {rec.history[-1]['epoch']}; the run keeps "
              f"the best validated epoch ({best['epoch'] if best else '-'}) and is complete",
              file=sys.stderr)
        return 130
    return 0


def _split_of(rec, data_dir: str | None):
    from kgrec.data.split import fingerprint, split_for

    cfg = rec.config
    if data_dir is not None:
        cfg.data.data_dir = data_dir
    split = split_for(cfg.data)
    if rec.split_fingerprint and fingerprint(split) != rec.split_fingerprint:
        raise KgrecError("the split rebuilt from the saved config differs from the one the "
                         "model was trained on (did the dataset change?); refusing to evaluate")
    return split


def test_report(rec, split, ks: list[int], which: str = "test", among_cold: bool = False,
                by: Sequence[str] = ()):
    """Test metrics of ``rec`` on ``split``: ranking metrics, or AUC/F1 for ``ctr``;
    ``among_cold`` ranks the held-out items (cold, or few-shot with ``data.shots``) among
    themselves only; ``by``: breakdowns (``popularity``, ``domain``) next to the whole."""
    from kgrec.evaluate import domain_groups, evaluate, evaluate_ctr, popularity_groups

    if split.strategy == "ctr":
        if by:
            raise ConfigError("--by: breakdowns are for ranking metrics (not the ctr split)")
        return evaluate_ctr(rec, split.ctr[which], threshold_rows=split.ctr["valid"])
    data = getattr(split, which)
    if among_cold and not data.heldout_items.any():
        raise ConfigError(f"--among-cold: the {split.strategy} split holds out no items")
    groups: dict[str, Any] = {}
    for b in by:
        groups.update(popularity_groups(split.train_matrix()) if b == "popularity"
                      else domain_groups(rec.item_domains))
    return evaluate(rec, data, ks, batch_users=rec.config.eval.batch_users,
                    item_groups=groups, candidates=data.heldout_items if among_cold else None)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from kgrec.serve import Recommender

    rec = Recommender.load(args.run, device=args.device or "cpu")
    split = _split_of(rec, args.data_dir)
    ks = args.k or rec.config.eval.ks
    title = (f"{args.set_name} metrics: {rec.config.model.name} on {rec.dataset} "
             f"({split.strategy} split)")
    if args.perturb is not None:
        import copy

        from kgrec.models.losses import ranking_loss
        from kgrec.serve import model_from
        from kgrec.train.adversarial import attacked_outputs

        if args.among_cold or split.strategy == "ctr" or rec.config.meta.mode != "off":
            raise ConfigError("--perturb: ranking metrics of a model without meta-adaptation "
                              "only (no --among-cold, no ctr split, meta.mode off)")
        users, items = attacked_outputs(model_from(rec, split), split, args.perturb,
                                        steps=args.perturb_steps, seed=rec.config.train.seed,
                                        loss=ranking_loss(rec.config.train))
        rec = copy.copy(rec)
        rec.user_embedding, rec.item_embedding = users, items
        title += f", inputs attacked (L2 radius {args.perturb}, {args.perturb_steps} step(s))"
    metrics = test_report(rec, split, ks, args.set_name, args.among_cold, args.by or ())
    _print_metrics(metrics, title)
    if args.json:
        from kgrec.evaluate import MetricTable

        groups = (metrics.to_dict() if isinstance(metrics, MetricTable)
                  else {"all": {"metrics": dict(metrics)}})  # the ctr protocol's AUC/F1
        Path(args.json).write_text(json.dumps({"title": title, "groups": groups}, indent=1))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from kgrec.serve import Recommender

    rec = Recommender.load(args.run)
    users = list(args.user or [])
    if args.profile and args.items is None:
        args.items = []  # a profile alone places a new user too
    if args.items is not None:
        new = "(new user)"
        profile = {}
        for kv in args.profile or []:
            key, eq, value = kv.partition("=")
            if not eq or not key:
                raise ConfigError(f"recommend --profile: expected KEY=VALUE, got {kv!r}")
            profile[key] = value
        rec.add_users([new], [args.items], profiles=[profile] if profile else None)
        users.append(new)
    if not users:
        raise ConfigError("recommend: name users (--user) or a new user's items (--items)")
    doc = []
    for r in rec.recommend(users, k=args.k, domain=args.domain,
                           exclude_seen=not args.include_seen):
        _table(f"top {args.k} for user {r.user}", ["rank", "item", "name", "score"],
               [[i + 1, item, name, score] for i, (item, name, score) in enumerate(r)])
        why = rec.explanations(r.user, r.items) if args.explain else []
        for rank, x in enumerate(why, 1):
            print(f"  {rank}. why {x.name!r}: {x.text}")
        if why:
            found = sum(bool(x.paths) for x in why)
            print(f"  ({found} of {len(why)} explained by a knowledge-graph path; the others by "
                  "the items of yours the model finds nearest)")
        doc.append({"user": r.user, "items": [{"item": i, "name": n, "score": s}
                                              for i, n, s in r],
                    **({"why": [x.to_dict() for x in why]} if args.explain else {})})
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from kgrec.config import Config
    from kgrec.data.split import split_for
    from kgrec.serve import train

    con = _console()
    cfg = Config(data={"dataset": "lastfm-hetrec-kg", "split": "random", "data_dir":
                       args.data_dir}, model=args.model or QUICKSTART_MODEL)
    cfg.train.device = args.device or "auto"
    out = Path(args.out)
    con.print(f"[bold]kgrec quickstart[/bold]: {cfg.model.name} on {cfg.data.dataset}, "
              "per-user random 80/10/10 split, early stopping on validation NDCG@20")
    start = time.perf_counter()
    split = split_for(cfg.data)
    con.print(f"graph: {split.graph!r}")
    rec = train(split, cfg, out_dir=out, progress=True)
    metrics = test_report(rec, split, [10, 20])
    _print_metrics(metrics, f"test metrics (full ranking over {split.num_items} artists)")
    users = split.test.users
    user = rec.user_ids[int(users[0])]
    seen = rec.seen.indices[rec.seen.indptr[int(users[0])]:rec.seen.indptr[int(users[0]) + 1]]
    con.print(f"user {user} listened to: " + ", ".join(rec.item_names[i] for i in seen[:8]) +
              (" ..." if len(seen) > 8 else ""))
    (top,) = rec.recommend([user], k=10)
    held = set(split.test.positives[int(users[0])].indices.tolist())
    _table(f"top-10 artists for user {user} (* = in the user's held-out test listens)",
           ["rank", "artist", "score"],
           [[i + 1, name + (" *" if rec._item_index[item] in held else ""), score]
            for i, (item, name, score) in enumerate(top)])
    for item, name, _ in top:  # the best-ranked artist the KG can explain
        paths = rec.explain(user, item, max_paths=2)
        if paths:
            for path in paths:
                con.print(f"why {name!r}? {path}")
            break
    if rec.new_users is not None and len(seen) >= 3:  # cold start: a user it never trained on
        picks = [rec.item_ids[i] for i in seen[:3]]
        rec.add_users(["(new listener)"], [picks])
        (fresh,) = rec.recommend(["(new listener)"], k=5)
        con.print("a new listener who likes " + ", ".join(rec.item_names[i] for i in seen[:3])
                  + " gets: " + ", ".join(fresh.names)
                  + f"  (kgrec recommend {out} --items {' '.join(picks)})")
    con.print(f"done in {time.perf_counter() - start:.0f}s; the model, its training curves "
              f"(curves.png) and history are in {out}/; try: kgrec recommend {out} --user {user} "
              "--explain")
    return 0


# ---------------------------------------------------------------------------- Neo4j
def _server(args: argparse.Namespace):
    from kgrec.neo4j.server import Neo4jServer

    return Neo4jServer(args.data, port=args.port, heap=args.heap)


def cmd_neo4j_start(args: argparse.Namespace) -> int:
    from kgrec.neo4j.server import ServerAlreadyRunning

    server = _server(args)
    try:
        # progress on stderr: a start after a crash replays the transaction log first, which
        # can take minutes, and silence then reads as a hang
        info = server.start(progress=lambda line: print(f"kgrec: {line}", file=sys.stderr,
                                                        flush=True))
    except ServerAlreadyRunning as exc:
        print(f"kgrec: {exc}")
        return 0
    where = "KGREC_NEO4J_PASSWORD" if os.environ.get("KGREC_NEO4J_PASSWORD") else \
        str(server.password_file)
    print(f"Neo4j is up: {info.uri} (user {info.user}, password in {where}, pid {info.pid})")
    return 0


def cmd_neo4j_stop(args: argparse.Namespace) -> int:
    print("stopped" if _server(args).stop() else "no kgrec Neo4j server was running")
    return 0


def cmd_neo4j_status(args: argparse.Namespace) -> int:
    server = _server(args)
    if server.running_pid() is None:
        print(f"not running (home {server.home})")
        return 1
    info = server.info()
    print(f"running: {info.uri} (pid {info.pid}, home {info.home})")
    return 0


def _add_conn_args(p: argparse.ArgumentParser, flag: str = "--uri") -> None:
    p.add_argument(flag, dest="uri", help="bolt:// or neo4j:// URI (default $KGREC_NEO4J_URI, "
                   "else the server `kgrec neo4j start` runs)")
    p.add_argument("--user", help="default $KGREC_NEO4J_USER or neo4j")
    pw = p.add_mutually_exclusive_group()
    pw.add_argument("--password", action="store_true", help="ask for the password (typed, not "
                    "echoed; a password is never an argument, which any local user could read)")
    pw.add_argument("--password-file", help="file holding the password (default "
                    "$KGREC_NEO4J_PASSWORD, else the local server's)")
    p.add_argument("--database", default="neo4j")


def _store(args: argparse.Namespace):
    from kgrec.store.neo4j import Neo4jStore

    password = None
    if args.password_file:
        try:
            password = Path(args.password_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"--password-file {args.password_file}: {exc.strerror}") from None
    elif args.password:
        import getpass

        password = getpass.getpass(f"Neo4j password for {args.user or 'neo4j'}: ")
    return Neo4jStore(args.uri, args.user, password, database=args.database,
                      batch_size=getattr(args, "batch_size", 10_000),
                      writers=getattr(args, "writers", 2))


def _schema(name: str):
    from kgrec.schema import GraphSchema

    return GraphSchema.load(name)


def cmd_schema_show(args: argparse.Namespace) -> int:
    for stmt in _schema(args.schema).cypher_constraints():
        print(stmt + ";")
    return 0


def cmd_schema_apply(args: argparse.Namespace) -> int:
    with _store(args) as store:
        for stmt in store.apply_schema(_schema(args.schema)):
            print(stmt + ";")
    print(f"schema {args.schema} applied to {args.uri or 'the local server'}")
    return 0


def _rdf_recipe(path: str, item_class: str | None) -> dict[str, Any]:
    p = Path(path).resolve()
    return {"name": p.stem, "format": "rdf", "path": str(p.parent), "files": {"kg": p.name},
            "mapping": {"item_class": item_class} if item_class else {}}


def cmd_load(args: argparse.Namespace) -> int:
    from kgrec.ingest import load_recipe

    schema = _schema(args.schema)
    if args.rdf:
        graph = load_recipe(_rdf_recipe(args.rdf, args.item_class), cache=False)
    elif args.source:
        graph = _load(args.source, args.data_dir)
    else:
        raise ConfigError("give a dataset name or recipe, or --rdf FILE")
    with _store(args) as store:
        report = store.write(graph, schema, progress=not args.quiet, force_merge=args.merge)
        counts = store.counts(graph.name)
    _table(f"{graph.name} -> {store.uri} ({report.mode}, {report.seconds:.1f}s, "
           f"{report.relationships_per_second:,.0f} relationships/s)", ["label / type", "count"],
           [[k, v] for k, v in sorted(counts.items())])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from kgrec.store.local import LocalStore

    schema = _schema(args.schema)
    with _store(args) as store:
        graph = store.read(schema, dataset=args.dataset, name=args.name,
                           progress=not args.quiet)
    if args.to:
        LocalStore(args.to).write(graph, schema)
        print(f"wrote {graph!r} to {args.to}")
    if args.rdf:
        from kgrec.store.rdf import export_rdf

        n = export_rdf(graph, args.rdf)
        print(f"wrote {n} RDF triples to {args.rdf}")
    if args.graphml:
        import networkx as nx

        nx.write_graphml(graph.to_networkx(), args.graphml)
        print(f"wrote GraphML to {args.graphml}")
    return 0


# ---------------------------------------------------------------------------- Optuna
def cmd_tune(args: argparse.Namespace) -> int:
    from kgrec.tune import SearchSpace, best_config, tune, write_plots

    cfg = _config_from_args(args)
    space = SearchSpace.load(args.space)
    study = tune(space, cfg, n_trials=args.trials, study_name=args.study, storage=args.storage,
                 pruner=args.pruner, seed=args.sampler_seed, timeout=args.timeout,
                 progress=not args.quiet, heartbeat=args.heartbeat)
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = {s.name.lower(): states.count(s) for s in TrialState if states.count(s)}
    completed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not completed:
        raise KgrecError(f"study {args.study!r} has no completed trial ({counts})")
    best = study.best_trial
    _table(f"study {args.study}: {counts}; best trial #{best.number}",
           ["parameter", "value"],
           [[f"valid {study.user_attrs.get('metric', 'value')}", best.value],
            *[[k, v] for k, v in best.params.items()], ["train.seed", best.user_attrs["seed"]]])
    out = Path(args.best_config)
    best_config(study).to_yaml(out)
    print(f"best config: {out} (kgrec train --config {out}; then kgrec evaluate <run>)")
    if args.plots:
        for path in write_plots(study, args.plots):
            print(f"plot: {path}")
    return 0


# ---------------------------------------------------------------------------- parser
def _add_format(p: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    p.add_argument("--format", choices=["table", "tsv", "json"], default=default,
                   help="how tables print: table (drawn on a terminal; plain full-width columns "
                   "when piped), tsv, or json (one object per table and line)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kgrec", description="Knowledge-graph recommenders: load datasets, train, evaluate "
        "with full ranking, recommend. `kgrec quickstart` runs the whole path on Last.FM.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    _add_format(p, argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    q = sub.add_parser("quickstart", help="train the best model on lastfm-hetrec-kg and show "
                       "results")
    q.add_argument("--data-dir", help="folder with the datasets (default $KGREC_DATA_DIR)")
    q.add_argument("--out", default="runs/quickstart", help="where to save the model")
    q.add_argument("--model", help=f"model to train (default {QUICKSTART_MODEL}: the best on "
                   "Last.FM in benchmarks/results/baselines.md)")
    q.add_argument("--device", help="auto | cpu | cuda")
    q.set_defaults(func=cmd_quickstart)

    d = sub.add_parser("data", help="datasets: list, stats")
    dsub = d.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    dl = dsub.add_parser("list", help="the bundled dataset recipes")
    _add_format(dl)
    dl.set_defaults(func=cmd_data_list)
    ds = dsub.add_parser("stats", help="statistics of one dataset (parses it once, then cached)")
    ds.add_argument("name", help="dataset name or recipe path")
    ds.add_argument("--data-dir")
    ds.add_argument("--split", help="also show the sizes of this split")
    _add_format(ds)
    ds.set_defaults(func=cmd_data_stats)
    from kgrec.ingest.spec import FORMATS

    dr = dsub.add_parser("recipe", help="the recipe reference: every field, file role and "
                         "mapping key of every format, with an example each",
                         description="What a dataset recipe (loaders/*.yaml, or your own for "
                         "kgrec.load_recipe) may say. Unknown keys are refused, each named "
                         "with its line.")
    dr.add_argument("format", nargs="?", choices=sorted(FORMATS),
                    help="only this format's part")
    dr.set_defaults(func=cmd_data_recipe)

    c = sub.add_parser("config", help="print the full config (defaults + your overrides) as YAML")
    _add_config_args(c)
    c.set_defaults(func=cmd_config)

    t = sub.add_parser("train", help="train a model; saves it with curves.png and a resumable "
                       "checkpoint")
    _add_config_args(t)
    t.add_argument("--out", help="output directory (default runs/<dataset>-<model>-<time>)")
    t.add_argument("--logdir", help="TensorBoard event directory")
    t.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar (nor lines)")
    t.add_argument("--eval-every", type=int, metavar="N", help="validate every N epochs "
                   "(train.eval_every, default 5)")
    t.add_argument("--eval-every-seconds", type=float, metavar="S", help="... and after any "
                   "epoch ending S seconds after the last validation (train.eval_every_seconds; "
                   "0 = off)")
    t.add_argument("--patience", type=int, metavar="P", help="stop after P validations "
                   "without improvement, so up to P x N epochs past the best "
                   "(train.patience, default 6)")
    _add_format(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="test metrics of a trained model (full ranking, or "
                       "AUC/F1 for the ctr protocol)")
    e.add_argument("run", help="a directory written by `kgrec train`")
    e.add_argument("--k", type=int, nargs="+", help="cut-offs (default: the config's eval.ks)")
    e.add_argument("--set", dest="set_name", default="test", choices=["test", "valid"])
    e.add_argument("--among-cold", action="store_true", help="rank the cold (unseen) items "
                   "among themselves only: the item cold-start protocol")
    e.add_argument("--by", nargs="+", choices=["popularity", "domain"],
                   help="also break the metrics down by item popularity in training (head / "
                   "mid / tail: a third of the training interactions each) and/or by item "
                   "domain; each group counts its own held-out items, ranked among all")
    e.add_argument("--json", metavar="PATH", help="also write the metrics (every group) as JSON")
    e.add_argument("--perturb", type=float, metavar="EPS",
                   help="attack the model's layer-0 inputs (kggnn/hgnn) within L2 radius EPS "
                   "per row against its training ranking loss, then evaluate")
    e.add_argument("--perturb-steps", type=int, default=1,
                   help="attack steps (1 = FGSM, more = PGD)")
    e.add_argument("--data-dir")
    e.add_argument("--device")
    _add_format(e)
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("recommend", help="top-K items for users, with KG explanations")
    r.add_argument("run", help="a directory written by `kgrec train`")
    r.add_argument("--user", nargs="+", help="external user id(s)")
    r.add_argument("--items", nargs="*", metavar="ITEM",
                   help="recommend for a user the model was not trained with, from the items "
                   "they interacted with; lightgcn, kggnn and hgnn; adapted as in few-shot "
                   "evaluation under meta.mode (a meta-trained hgnn also takes none)")
    r.add_argument("--profile", nargs="+", metavar="KEY=VALUE",
                   help="the new user's attributes, as the dataset names them (ml-100k: "
                   "age=24 gender=M occupation=technician; a vector attribute as comma-separated "
                   "numbers); hgnn models that read profiles")
    r.add_argument("--k", type=int, default=10, help="how many items per user (default 10)")
    r.add_argument("--domain", help="only items of this domain")
    r.add_argument("--include-seen", action="store_true", help="keep training items")
    r.add_argument("--explain", action="store_true", help="say why, for every item: a "
                   "knowledge-graph path from the user's items, else the user's nearest items")
    r.add_argument("--json", metavar="PATH", help="also write the lists (and paths) as JSON")
    _add_format(r)
    r.set_defaults(func=cmd_recommend)

    tu = sub.add_parser("tune", help="an Optuna study over the config (validation metric, "
                        "pruning, shared storage, resumable)")
    _add_config_args(tu)
    tu.add_argument("--space", required=True, help="search space YAML (config field -> "
                    "{int|float: [low, high], log: bool} or {choice: [...]})")
    tu.add_argument("--trials", type=int, default=20, help="finished trials the study should "
                    "have, across all workers")
    tu.add_argument("--study", default="kgrec", help="study name (workers sharing a storage "
                    "and name cooperate)")
    tu.add_argument("--storage", default="sqlite:///kgrec-tune.db", help="sqlite:///file.db, "
                    "postgresql://..., or journal:file.log")
    tu.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"])
    tu.add_argument("--sampler-seed", type=int, default=0)
    tu.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    tu.add_argument("--best-config", default="best-config.yaml", help="where to write the "
                    "best trial's config")
    tu.add_argument("--plots", help="folder for Optuna's plots (PNG)")
    tu.add_argument("--heartbeat", type=int, default=10, help="seconds between heartbeats; a "
                    "worker silent for 3 of them has its trial marked FAIL and retried")
    tu.add_argument("--quiet", action="store_true")
    tu.set_defaults(func=cmd_tune)

    n = sub.add_parser("neo4j", help="run a local Neo4j 5.26 server (jars fetched by Maven)")
    nsub = n.add_subparsers(dest="neo4j_command", metavar="SUBCOMMAND")
    for name, fn, text in (("start", cmd_neo4j_start, "start it and wait until Bolt answers"),
                           ("stop", cmd_neo4j_stop, "stop it cleanly"),
                           ("status", cmd_neo4j_status, "is it running, and where")):
        sp = nsub.add_parser(name, help=text)
        sp.add_argument("--port", type=int, help="Bolt port on 127.0.0.1 (default "
                        "$KGREC_NEO4J_PORT or 7687)")
        sp.add_argument("--data", help="server home (default $KGREC_NEO4J_HOME or "
                        "$KGREC_HOME/neo4j)")
        sp.add_argument("--heap", default="1g", help="JVM heap")
        sp.set_defaults(func=fn)

    s = sub.add_parser("schema", help="graph schemas: show or apply their Neo4j constraints")
    ssub = s.add_subparsers(dest="schema_command", metavar="SUBCOMMAND")
    sh = ssub.add_parser("show", help="print the Cypher the schema implies")
    sh.add_argument("schema", nargs="?", default="recsys", help="name or YAML path")
    sh.set_defaults(func=cmd_schema_show)
    sa = ssub.add_parser("apply", help="create the constraints and indexes (idempotent)")
    sa.add_argument("schema", nargs="?", default="recsys", help="name or YAML path")
    _add_conn_args(sa)
    sa.set_defaults(func=cmd_schema_apply)

    ld = sub.add_parser("load", help="load a dataset into Neo4j (idempotent, resumable)")
    ld.add_argument("source", nargs="?", help="dataset name or recipe path")
    ld.add_argument("--rdf", help="an RDF file (Turtle, N-Triples, RDF/XML) instead")
    ld.add_argument("--item-class", help="with --rdf: the rdf:type IRI of items")
    _add_conn_args(ld, "--into")
    ld.add_argument("--schema", default="recsys")
    ld.add_argument("--data-dir")
    ld.add_argument("--merge", action="store_true", help="MERGE every node and "
                    "relationship, even for a dataset the database does not hold yet")
    ld.add_argument("--batch-size", type=int, default=10_000, help="rows per transaction")
    ld.add_argument("--writers", type=int, default=2, help="transactions in flight at once "
                    "(their commits overlap)")
    ld.add_argument("--quiet", action="store_true")
    _add_format(ld)
    ld.set_defaults(func=cmd_load)

    ex = sub.add_parser("export", help="read a graph out of Neo4j")
    _add_conn_args(ex, "--from")
    ex.add_argument("--to", help="write it as a local store directory")
    ex.add_argument("--graphml", help="write it as GraphML (for networkx, Gephi, yEd)")
    ex.add_argument("--rdf", help="write its knowledge graph as RDF (format from the "
                    "extension: .ttl, .nt, .rdf)")
    ex.add_argument("--schema", default="recsys")
    ex.add_argument("--dataset", help="which dataset the database holds (default: the only "
                    "one; the database may hold several, each node knows its own)")
    ex.add_argument("--name", help="the exported graph's name (default: the dataset's)")
    ex.add_argument("--quiet", action="store_true")
    ex.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 \
        else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # the Neo4j driver logs its connection failures with tracebacks; kgrec turns them into one
    # line that says what to do (kgrec.store.neo4j.driver_errors); -vv shows the driver's own
    logging.getLogger("neo4j").setLevel(logging.DEBUG if args.verbose >= 2 else logging.CRITICAL)
    if not getattr(args, "func", None):
        if args.command in ("data", "neo4j", "schema"):
            parser.parse_args([args.command, "--help"])
        parser.print_help()
        return 0
    global _FORMAT
    _FORMAT = getattr(args, "format", None) or "table"
    try:
        return int(args.func(args) or 0)
    except KgrecError as exc:
        print(f"kgrec: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kgrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
