"""``kgrec quickstart``, ``train``, ``evaluate`` and ``recommend``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kgrec.cli.common import (
    add_config_args,
    add_format,
    config_from_args,
    console,
    lazy,
    models_help,
    print_metrics,
    table,
)
from kgrec.errors import ConfigError, KgrecError

# hgnn as it ships (ids where there is behaviour, aligned content where there is none): on
# Last.FM at least LightGCN's test Recall@20 (benchmarks/results/model.md, 3 seeds), and it
# can place new items from their text; revisit when that table changes.
QUICKSTART_MODEL = "hgnn"


def _default_out(cfg) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    ds = Path(cfg.data.dataset).stem
    return Path("runs") / f"{ds}-{cfg.model.name}-{stamp}"


def cmd_train(args: argparse.Namespace) -> int:
    import os
    import threading

    from kgrec.data.prepare import split_for
    from kgrec.train import distributed, train

    cfg = config_from_args(args)
    launching = (args.nproc > 1 or args.nnodes > 1) and "WORLD_SIZE" not in os.environ
    if args.nproc < 1 or args.nnodes < 1 or not 0 <= args.node_rank < args.nnodes:
        raise ConfigError("train: --nproc and --nnodes must be >= 1 and 0 <= --node-rank < "
                          "--nnodes")
    if launching and not args.out and args.nnodes > 1:
        raise ConfigError("train --nnodes: name --out (every node must agree on it)")
    out = Path(args.out) if args.out else _default_out(cfg)
    if launching:  # this process starts the node's training processes and waits for them
        argv = sys.argv[1:] + ([] if args.out else ["--out", str(out)])
        return distributed.launch(argv, args.nproc, nnodes=args.nnodes,
                                  node_rank=args.node_rank, master_addr=args.master_addr,
                                  master_port=args.master_port)
    world = distributed.init_from_env(cfg.train.device)
    try:
        split = split_for(cfg.data)
        stop = threading.Event()
        rec = train(split, cfg, out_dir=out, logdir=args.logdir, resume=args.resume,
                    progress=not args.quiet, stop=stop)
    finally:
        distributed.shutdown()
    if not world.main:  # rank 0 saved the run and reports it
        return 130 if stop.is_set() else 0
    assert rec is not None
    best = max((h for h in rec.history if "valid" in h),
               key=lambda h: h["valid"].get("auc", h["valid"].get(cfg.eval.metric, 0)),
               default=None)
    if best is not None:
        print_metrics(best["valid"], f"validation, best epoch {best['epoch']}")
    print(f"saved to {out} (curves: {out / 'curves.png'}); test it once with: kgrec evaluate "
          f"{out}")
    if stop.is_set():
        print(f"kgrec: stopped on request after epoch {rec.history[-1]['epoch']}; the run keeps "
              f"the best validated epoch ({best['epoch'] if best else '-'}) and is complete",
              file=sys.stderr)
        return 130
    return 0


def _split_of(rec, data_dir: str | None):
    from kgrec.data.folds import fingerprint
    from kgrec.data.prepare import split_for

    cfg = rec.config
    if data_dir is not None:
        cfg.data.data_dir = data_dir
    split = split_for(cfg.data)
    if rec.split_fingerprint and fingerprint(split) != rec.split_fingerprint:
        raise KgrecError("the split rebuilt from the saved config differs from the one the "
                         "model was trained on (did the dataset change?); refusing to evaluate")
    return split


def cmd_evaluate(args: argparse.Namespace) -> int:
    from kgrec.evaluate import evaluation_report
    from kgrec.recommender import Recommender

    rec = Recommender.load(args.run, device=args.device or "cpu")
    split = _split_of(rec, args.data_dir)
    ks = args.k or rec.config.eval.ks
    title = (f"{args.set_name} metrics: {rec.config.model.name} on {rec.dataset} "
             f"({split.strategy} split)")
    if args.perturb is not None:
        import copy

        from kgrec.models.losses import ranking_loss
        from kgrec.train import model_from
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
    metrics = evaluation_report(rec, split, ks, args.set_name, args.among_cold, args.by or ())
    print_metrics(metrics, title)
    if args.json:
        from kgrec.evaluate import MetricTable

        groups = (metrics.to_dict() if isinstance(metrics, MetricTable)
                  else {"all": {"metrics": dict(metrics)}})  # the ctr protocol's AUC/F1
        Path(args.json).write_text(json.dumps({"title": title, "groups": groups}, indent=1))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from kgrec.recommender import Recommender

    if args.out and not str(args.out).endswith(".csv"):
        raise ConfigError(f"recommend --out {args.out}: writes CSV; name it FILE.csv")
    rec = Recommender.load(args.run)
    if args.all:
        return _recommend_all(rec, args)
    if args.to or args.out or args.replace:
        raise ConfigError("recommend: --to, --out and --replace go with --all")
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
        table(f"top {args.k} for user {r.user}", ["rank", "item", "name", "score"],
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


def _recommend_all(rec, args: argparse.Namespace) -> int:
    """``recommend --all``: every user's top K to a CSV file and/or Neo4j."""
    from kgrec.serve.batch import run_id, write_csv, write_neo4j

    if args.user or args.items is not None or args.profile:
        raise ConfigError("recommend --all: no --user, --items or --profile with it")
    if not args.to and not args.out:
        raise ConfigError("recommend --all: say where to (--out FILE.csv and/or --to "
                          "bolt://HOST:PORT)")
    if args.k < 1:
        raise ConfigError(f"recommend --k {args.k}: must be at least 1")
    progress = not args.quiet
    if args.out:
        rows = write_csv(rec, args.out, args.k, progress=progress)
        print(f"wrote {rows} recommendations of {rec.num_users} users to {args.out}")
    if args.to:
        from kgrec.store.neo4j import Neo4jStore

        password = None
        if args.password_file:
            try:
                password = Path(args.password_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"--password-file {args.password_file}: {exc.strerror}"
                                  ) from None
        run = run_id(args.run)
        with Neo4jStore(args.to, args.neo4j_user, password, database=args.database) as store:
            got = write_neo4j(rec, store, run, args.k, replace=args.replace, progress=progress)
        print(f"run {run} -> {args.to}: {got['created']} RECOMMENDED relationships created, "
              f"{got['existing']} already there, {got['deleted']} of other runs deleted"
              + (f", {got['missing_users']} users not in the database"
                 if got["missing_users"] else ""))
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from kgrec.config import Config
    from kgrec.data.prepare import split_for
    from kgrec.evaluate import evaluation_report
    from kgrec.train import train

    con = console()
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
    metrics = evaluation_report(rec, split, [10, 20])
    print_metrics(metrics, f"test metrics (full ranking over {split.num_items} artists)")
    users = split.test.users
    user = rec.user_ids[int(users[0])]
    seen = rec.seen.indices[rec.seen.indptr[int(users[0])]:rec.seen.indptr[int(users[0]) + 1]]
    con.print(f"user {user} listened to: " + ", ".join(rec.item_names[i] for i in seen[:8]) +
              (" ..." if len(seen) > 8 else ""))
    (top,) = rec.recommend([user], k=10)
    held = set(split.test.positives[int(users[0])].indices.tolist())
    table(f"top-10 artists for user {user} (* = in the user's held-out test listens)",
          ["rank", "artist", "score"],
          [[i + 1, name + (" *" if index in held else ""), score]
           for i, ((_, name, score), index) in enumerate(zip(top, rec.item_index(top.items),
                                                             strict=True))])
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


def add_quickstart(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("quickstart", help="train the best model on lastfm-hetrec-kg and show "
                       "results")
    q.add_argument("--data-dir", help="folder with the datasets (default $KGREC_DATA_DIR)")
    q.add_argument("--out", default="runs/quickstart", help="where to save the model")
    q.add_argument("--model", help=lazy(models_help, f"model to train: {{}} (default "
                                        f"{QUICKSTART_MODEL}: see "
                                        "benchmarks/results/model.md)"))
    q.add_argument("--device", help="auto | cpu | cuda")
    q.set_defaults(func=cmd_quickstart)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``train``, ``evaluate`` and ``recommend``."""
    t = sub.add_parser("train", help="train a model; saves it with curves.png and a resumable "
                       "checkpoint")
    add_config_args(t)
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
    d = t.add_argument_group(
        "several processes (data-parallel, torch.distributed; torchrun's variables work too)")
    d.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="training processes on this machine (default 1); each takes a shard "
                   "of every batch and of the graph's rows, one thread each unless "
                   "OMP_NUM_THREADS is set")
    d.add_argument("--nnodes", type=int, default=1, metavar="M",
                   help="machines taking part (default 1); run the same command on each with "
                   "its --node-rank")
    d.add_argument("--node-rank", type=int, default=0, metavar="R",
                   help="this machine's rank, 0..M-1 (rank 0 validates and saves)")
    d.add_argument("--master-addr", default="127.0.0.1", metavar="HOST",
                   help="address of node 0, reachable from every node (default 127.0.0.1)")
    d.add_argument("--master-port", type=int, default=0, metavar="PORT",
                   help="a free port on node 0 (default: any free one with one node, 29500 "
                   "with several)")
    add_format(t)
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
    add_format(e)
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
    b = r.add_argument_group("every user at once (batch inference)")
    b.add_argument("--all", action="store_true", help="every user's top K, to --out and/or --to")
    b.add_argument("--out", metavar="FILE.csv", help="write user,rank,item,score,name rows")
    b.add_argument("--to", metavar="URI", help="write (:User)-[:RECOMMENDED {run, rank, "
                   "score}]->(:Item) into the Neo4j at URI that holds the run's dataset "
                   "(`kgrec load`); idempotent per run")
    b.add_argument("--replace", action="store_true", help="with --to: delete the users' "
                   "RECOMMENDED relationships of other runs (default: runs sit side by side)")
    b.add_argument("--neo4j-user", help="default $KGREC_NEO4J_USER or neo4j")
    b.add_argument("--password-file", help="file holding the Neo4j password (default "
                   "$KGREC_NEO4J_PASSWORD, else the local server's)")
    b.add_argument("--database", default="neo4j")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    add_format(r)
    r.set_defaults(func=cmd_recommend)
