"""``kgrec neo4j start|stop|status``, ``schema show|apply``, ``load`` and ``export``: a local
Neo4j server and the graphs in it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from kgrec.cli.common import add_format, table
from kgrec.errors import ConfigError


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


def add_conn_args(p: argparse.ArgumentParser, flag: str = "--uri") -> None:
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
    from kgrec.ingest import load_recipe, load_source

    schema = _schema(args.schema)
    if args.rdf:
        graph = load_recipe(_rdf_recipe(args.rdf, args.item_class), cache=False)
    elif args.source:
        graph = load_source(args.source, args.data_dir)
    else:
        raise ConfigError("give a dataset name or recipe, or --rdf FILE")
    with _store(args) as store:
        report = store.write(graph, schema, progress=not args.quiet, force_merge=args.merge)
        counts = store.counts(graph.name)
    table(f"{graph.name} -> {store.uri} ({report.mode}, {report.seconds:.1f}s, "
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


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``neo4j``, ``schema``, ``load`` and ``export``."""
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
    add_conn_args(sa)
    sa.set_defaults(func=cmd_schema_apply)

    ld = sub.add_parser("load", help="load a dataset into Neo4j (idempotent, resumable)")
    ld.add_argument("source", nargs="?", help="dataset name or recipe path")
    ld.add_argument("--rdf", help="an RDF file (Turtle, N-Triples, RDF/XML) instead")
    ld.add_argument("--item-class", help="with --rdf: the rdf:type IRI of items")
    add_conn_args(ld, "--into")
    ld.add_argument("--schema", default="recsys")
    ld.add_argument("--data-dir")
    ld.add_argument("--merge", action="store_true", help="MERGE every node and "
                    "relationship, even for a dataset the database does not hold yet")
    ld.add_argument("--batch-size", type=int, default=10_000, help="rows per transaction")
    ld.add_argument("--writers", type=int, default=2, help="transactions in flight at once "
                    "(their commits overlap)")
    ld.add_argument("--quiet", action="store_true")
    add_format(ld)
    ld.set_defaults(func=cmd_load)

    ex = sub.add_parser("export", help="read a graph out of Neo4j")
    add_conn_args(ex, "--from")
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
