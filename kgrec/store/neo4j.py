"""Neo4j as a graph store: batched, idempotent, resumable, exclusive writes; columnar reads.

**One database, several datasets.** Every node carries the dataset it belongs to
(``dataset``, the graph's name) as part of its identity: the uniqueness constraints are on
``(dataset, id)``, so Last.FM's user ``'0'`` and Book-Crossing's user ``'0'`` are two nodes,
and :meth:`Neo4jStore.read` reads one dataset back by name.

**Writes** go in batches of ``UNWIND`` over column parameters inside explicit write
transactions (``session.execute_write``). Each batch commits together with a journal entry
(``(:KgrecBatch {load, key})``, unique on both) in the same transaction, so after a crash or
``kill -9`` a rerun skips exactly the batches that committed and redoes the rest, and a
batch can never commit twice: the final counts are exact. A finished load leaves
``(:KgrecLoad {fingerprint, finished: true})``; loading the same graph again changes nothing.
A load is exclusive per dataset: it holds the write lock of ``(:KgrecDataset {name})`` in an
open transaction for its whole length, so a second load of the same dataset waits (saying
so) and then finds the work done; a killed loader's connection closes and the server
releases its lock.

Nodes are ``CREATE``d where the label holds none of the dataset's nodes yet (and when
resuming that load), else ``MERGE``d on ``(dataset, id)``. Relationships are created with
``CREATE`` when the dataset is new, or when resuming its own load; otherwise (loading a
changed graph of a dataset the database already holds) they are ``MERGE``d on their
identity: endpoints and type, plus ``behavior``, ``timestamp`` and ``user`` where present.

**Reads** are one columnar query per relationship type and source label (pages of source
nodes), each answering a few long lists.

Names reaching Cypher (labels, types, property keys) come only from a validated
:class:`~kgrec.schema.GraphSchema` and are checked against the identifier pattern and
back-quoted; every value travels as a query parameter. Driver failures become
:class:`~kgrec.errors.StoreError` lines that say what happened and what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgrec.errors import ConfigError, SchemaError, StoreError
from kgrec.graph import MADE_BY, EdgeTable, EdgeType, NodeTable, RecGraph
from kgrec.progress import progress as progress_bar
from kgrec.schema import DATASET, GraphSchema, check_identifier

log = logging.getLogger(__name__)

META_LOAD, META_BATCH, META_RELTYPE = "KgrecLoad", "KgrecBatch", "KgrecRelationType"
META_DATASET = "KgrecDataset"
# Neo4j's range index keys hold at most 8,167 bytes (measured on 5.26: a (dataset, id) key
# whose two strings total 8,152 bytes fails); kgrec refuses longer keys before a load starts.
MAX_KEY_BYTES = 8_100


@contextlib.contextmanager
def driver_errors(uri: str, action: str) -> Iterator[None]:
    """Turn the driver's failures during ``action`` (``"load"``, ``"export"``) into
    :class:`StoreError` lines that say what happened and what to do."""
    from neo4j.exceptions import DatabaseError, IncompleteCommit, ServiceUnavailable, SessionExpired

    again = ("committed batches are kept: start it and run the same load again (it resumes "
             "where it stopped)" if action == "load" else f"run the {action} again")
    try:
        yield
    except IncompleteCommit:
        raise StoreError(f"the Neo4j server at {uri} went away while a batch was committing; "
                         f"that batch may or may not have committed, and the journal knows "
                         f"which: {again}") from None
    except (ServiceUnavailable, SessionExpired, ConnectionError) as exc:
        raise StoreError(f"lost the Neo4j server at {uri} during the {action} "
                         f"({type(exc).__name__}); {again}") from None
    except DatabaseError as exc:
        raise StoreError(f"Neo4j at {uri} failed during the {action}: {exc.message} "
                         f"({exc.code})") from None



def _q(name: str, what: str = "name") -> str:
    """A back-quoted identifier; anything else is refused before it can reach Cypher."""
    return f"`{check_identifier(name, what)}`"


def graph_fingerprint(graph: RecGraph) -> str:
    """A hash of every id, attribute and edge array: the identity of one load."""
    h = hashlib.sha256(graph.name.encode())
    for t in sorted(graph.nodes):
        table = graph.nodes[t]
        h.update(t.encode())
        h.update(np.ascontiguousarray(table.ids).tobytes())
        for k in sorted(table.attrs):
            h.update(k.encode())
            h.update(np.ascontiguousarray(table.attrs[k]).tobytes())
    for et in sorted(graph.edges):
        table = graph.edges[et]
        h.update("|".join(et).encode())
        h.update(table.src.tobytes())
        h.update(table.dst.tobytes())
        for k in sorted(table.attrs):
            h.update(k.encode())
            h.update(np.ascontiguousarray(table.attrs[k]).tobytes())
    return h.hexdigest()[:24]


@dataclass
class LoadReport:
    """What a :meth:`Neo4jStore.write` did."""

    fingerprint: str
    mode: str
    nodes_written: int = 0
    relationships_written: int = 0
    batches_skipped: int = 0
    seconds: float = 0.0
    per_type: dict[str, int] = field(default_factory=dict)

    @property
    def relationships_per_second(self) -> float:
        return self.relationships_written / self.seconds if self.seconds else 0.0


class Neo4jStore:
    """A RecGraph in a Neo4j database.

    Args:
        uri: ``bolt://`` or ``neo4j://`` URI (default ``$KGREC_NEO4J_URI``, else the local
            server started by ``kgrec neo4j start``).
        user, password: credentials (default ``$KGREC_NEO4J_USER`` / ``$KGREC_NEO4J_PASSWORD``,
            else the local server's).
        database: database name.
        batch_size: rows per write transaction.
        writers: transactions in flight at once (their commits overlap; 1: one at a time).
        retry_seconds: how long a transaction that failed for a transient reason (the server
            unreachable, a deadlock, a cluster's leader moving) is retried before the command
            gives up (default ``$KGREC_NEO4J_RETRY_SECONDS``, else 30, the driver's own).
    """

    def __init__(self, uri: str | None = None, user: str | None = None,
                 password: str | None = None, *, database: str = "neo4j",
                 batch_size: int = 10_000, writers: int = 2,
                 retry_seconds: float | None = None) -> None:
        from neo4j import GraphDatabase

        uri = uri or os.environ.get("KGREC_NEO4J_URI")
        user = user or os.environ.get("KGREC_NEO4J_USER")
        password = password or os.environ.get("KGREC_NEO4J_PASSWORD")
        if uri is None or password is None:
            from kgrec.neo4j.server import Neo4jServer

            info = Neo4jServer().info()
            uri, user, password = uri or info.uri, user or info.user, password or info.password
        self.uri = uri
        self.user = user or "neo4j"
        self.database = database
        self.batch_size = batch_size
        self.writers = max(1, writers)
        self._lock = threading.Lock()
        if retry_seconds is None:
            env = os.environ.get("KGREC_NEO4J_RETRY_SECONDS", "30")
            try:
                retry_seconds = float(env)
            except ValueError:
                raise ConfigError(f"KGREC_NEO4J_RETRY_SECONDS={env!r}: not a number of "
                                  "seconds") from None
        try:
            self._driver = GraphDatabase.driver(uri, auth=(self.user, password),
                                                notifications_min_severity="OFF",
                                                max_transaction_retry_time=retry_seconds)
        except ValueError as exc:
            raise StoreError(f"bad Neo4j URI {uri!r}: {exc}") from None
        self._check()

    # ------------------------------------------------------------------ plumbing
    def _check(self) -> None:
        from neo4j.exceptions import AuthError, ServiceUnavailable

        try:
            self._driver.verify_connectivity()
        except AuthError:
            self.close()
            raise StoreError(f"Neo4j at {self.uri} refused the credentials of user "
                             f"{self.user!r}; give the right ones: KGREC_NEO4J_USER / "
                             "KGREC_NEO4J_PASSWORD, or on the command line --user with "
                             "--password (asks for it) or --password-file FILE") from None
        except (ServiceUnavailable, OSError) as exc:
            self.close()
            raise StoreError(f"cannot reach Neo4j at {self.uri} ({type(exc).__name__}); is "
                             "the server running? `kgrec neo4j start` runs a local one") from None

    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> Neo4jStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """Run one read query; returns the records as dicts."""
        records, _, _ = self._driver.execute_query(query, params, database_=self.database)
        return [r.data() for r in records]

    def _write(self, query: str, **params: Any) -> None:
        self._driver.execute_query(query, params, database_=self.database)

    # ------------------------------------------------------------------ schema
    def apply_schema(self, schema: GraphSchema) -> list[str]:
        """Create the schema's constraints and indexes, and the journal's (idempotent);
        returns the Cypher run. Constraints of an older kgrec (unique ``id`` alone, which
        would make two datasets collide) are dropped first."""
        have = {r["name"] for r in self.run("SHOW CONSTRAINTS YIELD name RETURN name")}
        legacy = [f"kgrec_{label.lower()}_{spec.key}" for label, spec in schema.nodes.items()]
        statements = [f"DROP CONSTRAINT {name} IF EXISTS" for name in legacy if name in have]
        statements += [*schema.cypher_constraints(),
                       f"CREATE CONSTRAINT kgrec_load_fp IF NOT EXISTS FOR (n:{META_LOAD}) "
                       "REQUIRE n.fingerprint IS UNIQUE",
                       f"CREATE CONSTRAINT kgrec_batch_key IF NOT EXISTS FOR (n:{META_BATCH}) "
                       "REQUIRE (n.load, n.key) IS UNIQUE",
                       f"CREATE CONSTRAINT kgrec_dataset_name IF NOT EXISTS "
                       f"FOR (n:{META_DATASET}) REQUIRE n.name IS UNIQUE",
                       "DROP INDEX kgrec_batch_load IF EXISTS"]
        for s in statements:
            self._write(s)
        self._write("CALL db.awaitIndexes(300)")
        return statements

    def check_schema(self, schema: GraphSchema) -> None:
        """Raise :class:`SchemaError` unless every key constraint of ``schema`` exists."""
        have = {(tuple(r["labels"] or ()), tuple(r["properties"] or ()))
                for r in self.run("SHOW CONSTRAINTS YIELD labelsOrTypes AS labels, properties, "
                                  "type WHERE type = 'UNIQUENESS' RETURN labels, properties")}
        missing = [f"{label}.({DATASET}, {spec.key})" for label, spec in schema.nodes.items()
                   if ((label,), (DATASET, spec.key)) not in have]
        if missing:
            raise SchemaError(f"the database at {self.uri} lacks the uniqueness constraints of "
                              f"schema {schema.name!r} on {missing}; run `kgrec schema apply`")

    # ------------------------------------------------------------------ counts
    def datasets(self) -> list[str]:
        """The names of the datasets loaded into this database."""
        return sorted(r["n"] for r in self.run(f"MATCH (d:{META_DATASET}) RETURN d.name AS n"))

    def counts(self, dataset: str | None = None) -> dict[str, int]:
        """Nodes per label and relationships per type (kgrec's own journal excluded), of one
        dataset or of the whole database."""
        out: dict[str, int] = {}
        where = f" WHERE n.{DATASET} = $ds" if dataset is not None else ""
        for r in self.run("CALL db.labels() YIELD label RETURN label"):
            lab = r["label"]
            if lab.startswith("Kgrec"):
                continue
            out[lab] = self.run(f"MATCH (n:{_q(lab)}){where} RETURN count(n) AS c",
                                ds=dataset)[0]["c"]
        for r in self.run("CALL db.relationshipTypes() YIELD relationshipType AS t RETURN t"):
            t = r["t"]
            out[t] = self.run(f"MATCH (n)-[r:{_q(t)}]->(){where} RETURN count(r) AS c",
                              ds=dataset)[0]["c"]
        return {k: v for k, v in out.items() if v}

    def clear(self) -> None:
        """Delete every node and relationship (in batches). For tests and scratch databases."""
        # relationships first, so no single transaction holds a dense node's whole edge list;
        # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction
        with self._driver.session(database=self.database) as session:
            session.run("MATCH ()-[r]->() CALL { WITH r DELETE r } "
                        "IN TRANSACTIONS OF 50000 ROWS").consume()
            session.run("MATCH (n) CALL { WITH n DELETE n } "
                        "IN TRANSACTIONS OF 50000 ROWS").consume()

    # ------------------------------------------------------------------ recommendations
    def write_recommended(self, dataset: str, run: str, users: Sequence[str],
                          items: Sequence[Sequence[str]], scores: Sequence[Sequence[float]],
                          *, replace: bool = False) -> dict[str, int]:
        """Write top-K lists as ``(:User)-[:RECOMMENDED {run, rank, score}]->(:Item)``
        between the dataset's nodes, one explicit transaction per batch of users.

        Idempotent per run: a relationship is keyed by its user, item, ``run`` and ``rank``
        (MERGE; its score set only when created), so writing the same run again changes
        nothing. ``replace``: first delete these users' RECOMMENDED relationships of other
        runs (by default runs sit side by side, told apart by ``run``).

        Returns:
            ``{"created": n, "existing": n, "deleted": n, "missing_users": n}`` (users the
            database lacks get nothing; load the dataset first).

        Raises:
            StoreError: the database holds no node of ``dataset``.
        """
        if not self._holds("User", dataset):
            raise StoreError(f"{self.uri} holds no User of dataset {dataset!r}; load it first "
                             f"(kgrec load {dataset})")
        with driver_errors(self.uri, "write recommendations"):
            self._write("CREATE INDEX kgrec_recommended_run IF NOT EXISTS "
                        "FOR ()-[r:RECOMMENDED]-() ON (r.run)")
            out = {"created": 0, "existing": 0, "deleted": 0, "missing_users": 0}
            step = max(1, self.batch_size // max(1, max((len(x) for x in items), default=1)))
            for lo in range(0, len(users), step):
                rows = [{"u": u, "i": list(its), "s": [float(v) for v in sc]}
                        for u, its, sc in zip(users[lo:lo + step], items[lo:lo + step],
                                              scores[lo:lo + step], strict=True)]

                def work(tx: Any, rows: list[dict[str, Any]] = rows) -> dict[str, int]:
                    deleted = 0
                    if replace:
                        deleted = tx.run(
                            f"UNWIND $rows AS row MATCH (u:User {{{DATASET}: $ds, id: row.u}})"
                            "-[r:RECOMMENDED]->() WHERE r.run <> $run DELETE r "
                            "RETURN count(r) AS c", rows=rows, ds=dataset, run=run).single()["c"]
                    rec = tx.run(
                        f"UNWIND $rows AS row MATCH (u:User {{{DATASET}: $ds, id: row.u}}) "
                        "WITH u, row UNWIND range(0, size(row.i) - 1) AS k "
                        f"MATCH (i:Item {{{DATASET}: $ds, id: row.i[k]}}) "
                        "MERGE (u)-[r:RECOMMENDED {run: $run, rank: k + 1}]->(i) "
                        "ON CREATE SET r.score = row.s[k], r.new = true "
                        "WITH r, r.new IS NOT NULL AS created REMOVE r.new "
                        "RETURN sum(CASE WHEN created THEN 1 ELSE 0 END) AS created, "
                        "count(r) AS total", rows=rows, ds=dataset, run=run).single()
                    found = tx.run(f"UNWIND $rows AS row MATCH (u:User {{{DATASET}: $ds, "
                                   "id: row.u}) RETURN count(u) AS c", rows=rows,
                                   ds=dataset).single()["c"]
                    return {"created": rec["created"], "existing": rec["total"] - rec["created"],
                            "deleted": deleted, "missing_users": len(rows) - found}

                with self._driver.session(database=self.database) as session:
                    got = session.execute_write(work)
                for key, v in got.items():
                    out[key] += v
        return out

    # ------------------------------------------------------------------ write
    def write(self, graph: RecGraph, schema: GraphSchema | None = None, *,
              progress: bool = True, force_merge: bool = False) -> LoadReport:
        """Write ``graph`` as dataset ``graph.name`` (validated against ``schema``);
        idempotent, resumable, and exclusive per dataset.

        Raises :class:`StoreError` before anything is written when a key is too long for
        Neo4j's index, and with what to do when the server goes away mid-load.
        """
        schema = schema or GraphSchema.load("recsys")
        graph.validate(schema)
        _check_for_neo4j(graph, schema)
        with driver_errors(self.uri, "load"):
            self.apply_schema(schema)
            self._refuse_legacy_nodes(schema)
            with self._exclusive(graph.name, progress) as lock:
                report = self._write_graph(graph, schema, progress, force_merge)
                # the graph's provenance and attribute kinds travel with it (the lock's own
                # transaction holds this node)
                lock.run(f"MATCH (d:{META_DATASET} {{name: $ds}}) SET d.meta = $meta",
                         ds=graph.name, meta=json.dumps(graph.meta, default=str)).consume()
                return report

    def _write_graph(self, graph: RecGraph, schema: GraphSchema, progress: bool,
                     force_merge: bool) -> LoadReport:
        fp = graph_fingerprint(graph)
        ds = graph.name
        start = time.perf_counter()
        load = self.run(f"MATCH (l:{META_LOAD} {{fingerprint: $fp}}) RETURN l.finished AS f, "
                        "l.mode AS mode, l.create_labels AS create", fp=fp)
        if load and load[0]["f"] and not force_merge:
            log.info("graph %s (%s) is already loaded in %s; nothing to do", ds, fp, self.uri)
            return LoadReport(fp, "skip", seconds=time.perf_counter() - start)
        if load and not load[0]["f"] and not force_merge:
            # resuming this very load: the choices it made when it started hold
            mode, create = load[0]["mode"], list(load[0]["create"] or [])
        else:
            held = {label: self._holds(label, ds) for label in graph.nodes}
            mode = "merge" if force_merge or any(held.values()) else "create"
            create = [] if force_merge else [label for label, table in graph.nodes.items()
                                             if len(table) and not held[label]]
        self._write(f"MERGE (l:{META_LOAD} {{fingerprint: $fp}}) SET l.graph = $g, "
                    "l.started = coalesce(l.started, datetime()), l.finished = false, "
                    "l.mode = $mode, l.create_labels = $create", fp=fp, g=ds, mode=mode,
                    create=create)
        done = {r["k"] for r in self.run(f"MATCH (b:{META_BATCH} {{load: $fp}}) "
                                         "RETURN b.key AS k", fp=fp)}
        report = LoadReport(fp, mode)
        self._write_relation_names(graph, schema)
        total = sum(len(t) for t in graph.nodes.values()) + \
            sum(len(t) for t in graph.edges.values())
        with progress_bar(total, f"load {ds} -> neo4j ({mode})", "row",
                          enabled=progress) as bar:
            for label, table in graph.nodes.items():
                self._batches(self._node_batches(label, table, ds, label in create), fp,
                              done, report, bar, nodes=True)
            eids = {lab: self._internal_ids(lab, t, ds) for lab, t in graph.nodes.items()
                    if any(lab in (et[0], et[2]) for et in graph.edges)}
            for k, (et, table) in enumerate(graph.edges.items()):
                rtype = self._rel_type(schema, et)
                self._batches(self._edge_batches(k, et, rtype, table, eids, mode), fp, done,
                              report, bar, nodes=False)
                report.per_type[rtype] = report.per_type.get(rtype, 0) + len(table)
        self._write(f"MATCH (l:{META_LOAD} {{fingerprint: $fp}}) SET l.finished = true, "
                    "l.finished_at = datetime()", fp=fp)
        with self._driver.session(database=self.database) as session:
            # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction
            session.run(f"MATCH (b:{META_BATCH} {{load: $fp}}) CALL {{ WITH b DELETE b }} "
                        "IN TRANSACTIONS OF 10000 ROWS", fp=fp).consume()
        report.seconds = time.perf_counter() - start
        log.info("loaded %s into %s: %d nodes, %d relationships in %.1fs (%s mode, %d batches "
                 "skipped)", ds, self.uri, report.nodes_written,
                 report.relationships_written, report.seconds, mode, report.batches_skipped)
        return report

    def _holds(self, label: str, dataset: str) -> bool:
        """Whether the database holds any ``label`` node of ``dataset``."""
        return bool(self.run(f"MATCH (n:{_q(label)}) WHERE n.{DATASET} = $ds RETURN 1 AS x "
                             "LIMIT 1", ds=dataset))

    def _refuse_legacy_nodes(self, schema: GraphSchema) -> None:
        """Nodes an older kgrec loaded have no dataset; they would sit beside the new ones
        unseen. Say how to adopt or remove them instead."""
        for label in schema.nodes:
            if self.run(f"MATCH (n:{_q(label)}) WHERE n.{DATASET} IS NULL RETURN 1 AS x "
                        "LIMIT 1"):
                raise StoreError(
                    f"the database at {self.uri} holds {label} nodes without a dataset (loaded "
                    "by an older kgrec); give them their dataset's name with `MATCH (n) WHERE "
                    f"n:User OR n:Item OR n:Entity SET n.{DATASET} = 'NAME'`, or clear the "
                    "database, then load again")

    @contextlib.contextmanager
    def _exclusive(self, dataset: str, progress: bool, poll: float = 5.0) -> Iterator[Any]:
        """Hold ``dataset``'s load lock for the ``with`` block; wait (saying so) while another
        process holds it. The lock is the write lock on ``(:KgrecDataset {name})`` taken by a
        transaction that stays open until the block ends: if this process dies, its
        connection closes and the server rolls the transaction back, freeing the lock.
        Yields that transaction (what else must change that node goes through it)."""
        from neo4j.exceptions import ClientError, TransientError

        who = f"pid {os.getpid()} on {socket.gethostname()}"
        self._write(f"MERGE (d:{META_DATASET} {{name: $ds}})", ds=dataset)
        waited = 0.0
        while True:
            # a probe that gives up after `poll` seconds, so the wait can be reported
            with self._driver.session(database=self.database) as probe:
                tx = probe.begin_transaction(timeout=poll)
                try:
                    tx.run(f"MATCH (d:{META_DATASET} {{name: $ds}}) SET d.probe = true",
                           ds=dataset).consume()
                    holder = None
                except (TransientError, ClientError) as exc:
                    if "imeout" not in exc.code and "Terminated" not in exc.code \
                            and "LockClient" not in exc.code:
                        raise
                    holder = self.run(f"MATCH (d:{META_DATASET} {{name: $ds}}) "
                                      "RETURN d.loader AS who, toString(d.since) AS since",
                                      ds=dataset)
                finally:
                    tx.close()  # rolls the probe back
            if holder is None:
                break
            waited += poll
            h = holder[0] if holder else {}
            msg = (f"another load of {dataset!r} is running ({h.get('who') or 'unknown'}, "
                   f"since {h.get('since') or '?'}); waiting for it, {waited:.0f}s so far")
            log.warning(msg)
            if progress:
                print(f"kgrec: {msg}", flush=True)
        session = self._driver.session(database=self.database)
        tx = session.begin_transaction()
        try:
            # blocks while another loader holds the lock (one that took it after the probe)
            tx.run(f"MATCH (d:{META_DATASET} {{name: $ds}}) SET d.loader = $who, "
                   "d.since = datetime() REMOVE d.probe", ds=dataset, who=who).consume()
            yield tx
            tx.run(f"MATCH (d:{META_DATASET} {{name: $ds}}) SET d.loader = null, "
                   "d.loaded = datetime()", ds=dataset).consume()
            tx.commit()
        finally:
            if not tx.closed():
                tx.close()
            session.close()

    def _batch(self, key: str, query: str, params: dict[str, Any], n: int, fp: str,
               done: set[str], report: LoadReport, bar: Any, *, nodes: bool) -> None:
        if key in done:
            report.batches_skipped += 1
            bar.update(n)
            return

        def work(tx: Any) -> None:
            # the batch and its journal entry commit together, or neither does; the entry is
            # unique, so the same batch can never commit twice
            tx.run(query, params).consume()
            tx.run(f"CREATE (:{META_BATCH} {{load: $fp, key: $key}})", fp=fp, key=key).consume()

        with self._driver.session(database=self.database) as session:
            session.execute_write(work)
        with self._lock:
            if nodes:
                report.nodes_written += n
            else:
                report.relationships_written += n
                elapsed = max(1e-9, bar.format_dict["elapsed"])
                bar.set_postfix(rels_per_s=f"{report.relationships_written / elapsed:,.0f}",
                                refresh=False)
            bar.update(n)

    def _batches(self, batches: Iterator[tuple[str, str, dict[str, Any], int]], fp: str,
                 done: set[str], report: LoadReport, bar: Any, *, nodes: bool) -> None:
        """Commit ``batches``, ``self.writers`` at a time: while one transaction commits on
        the server, the next is already on its way (a lock conflict between two batches is
        retried by the driver; each batch still commits with its journal entry or not at
        all)."""
        if self.writers <= 1:
            for key, query, params, n in batches:
                self._batch(key, query, params, n, fp, done, report, bar, nodes=nodes)
            return
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        with ThreadPoolExecutor(self.writers) as pool:
            pending: set[Any] = set()
            for key, query, params, n in batches:
                if len(pending) >= self.writers:  # at most `writers` batches in memory
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        f.result()
                pending.add(pool.submit(self._batch, key, query, params, n, fp, done,
                                        report, bar, nodes=nodes))
            for f in pending:
                f.result()

    @staticmethod
    def _rel_type(schema: GraphSchema, et: EdgeType) -> str:
        return check_identifier(schema.relationship_type(*et), "relationship type")

    def _write_relation_names(self, graph: RecGraph, schema: GraphSchema) -> None:
        """``(:KgrecRelationType {type, name, properties})`` per relationship type: the
        relation's name in the data (types are sanitised), and the properties its
        relationships may carry, so a read asks for those only."""
        seen: dict[str, str] = {}
        rows: dict[str, dict[str, Any]] = {}
        for et, table in graph.edges.items():
            spec = schema.spec_of(*et)
            t = self._rel_type(schema, et)
            if spec.types_from_data and seen.setdefault(t, et[1]) != et[1]:
                raise SchemaError(f"KG relations {seen[t]!r} and {et[1]!r} both become "
                                  f"relationship type {t}; rename one in the recipe")
            row = rows.setdefault(t, {"type": t, "name": et[1], "properties": [],
                                      "partial": []})
            present = {k for k, v in table.attrs.items() if not _all_missing(v)}
            partial = {k for k in present if _any_missing(table.attrs[k])}
            row["properties"] = sorted(set(row["properties"]) | present)
            row["partial"] = sorted(set(row["partial"]) | partial)
        if rows:
            # across loads: the union of what was written, and partial if ever partial or
            # missing from one load (a property some relationships lack needs coalesce())
            self._write(f"UNWIND $rows AS row MERGE (r:{META_RELTYPE} {{type: row.type}}) "
                        "WITH r, row, coalesce(r.properties, row.properties) AS before "
                        "SET r.name = row.name, "
                        "r.partial = [p IN before + row.properties WHERE p IN row.partial "
                        "OR p IN coalesce(r.partial, []) OR NOT (p IN before AND "
                        "p IN row.properties)], "
                        "r.properties = [p IN before WHERE NOT p IN row.properties] "
                        "+ row.properties", rows=list(rows.values()))

    # Parameters travel as columns (one list per property): encoding a list of primitives is
    # an order of magnitude cheaper than a list of maps, on both sides of the wire.
    def _node_batches(self, label: str, table: NodeTable, dataset: str, create: bool
                      ) -> Iterator[tuple[str, str, dict[str, Any], int]]:
        cols = {check_identifier(k, "property"): v for k, v in table.attrs.items()}
        sets = "".join(f", n.{_q(k)} = $p_{k}[i]" for k in cols)
        # CREATE where the label holds none of the dataset's nodes: no index lookup per row
        verb = "CREATE" if create else "MERGE"
        query = (f"UNWIND range(0, size($ids) - 1) AS i "
                 f"{verb} (n:{_q(label)} {{{DATASET}: $ds, id: $ids[i]}})"
                 + (f" SET {sets[2:]}" if sets else ""))
        ids = table.ids.tolist()
        for lo in range(0, len(ids), self.batch_size):
            hi = min(lo + self.batch_size, len(ids))
            params = {"ids": ids[lo:hi], "ds": dataset,
                      **{f"p_{k}": _values(v[lo:hi]) for k, v in cols.items()}}
            yield f"n:{label}:{lo}", query, params, hi - lo

    def _internal_ids(self, label: str, table: NodeTable, dataset: str) -> np.ndarray:
        """The database's node ids for ``table``'s nodes, in table order ``[N]``."""
        rows = self._driver.execute_query(
            f"MATCH (n:{_q(label)}) WHERE n.{DATASET} = $ds "
            "RETURN collect(n.id) AS ids, collect(id(n)) AS eids", {"ds": dataset},
            database_=self.database)[0][0]
        lookup = dict(zip(rows["ids"], rows["eids"], strict=True))
        try:
            return np.asarray([lookup[i] for i in table.ids.tolist()], dtype=np.int64)
        except KeyError as exc:
            raise StoreError(f"node ({label} {{id: {exc.args[0]!r}}}) of dataset {dataset!r} is "
                             "missing after the node batches; was the database changed during "
                             "the load?") from None

    def _edge_batches(self, k: int, et: EdgeType, rtype: str, table: EdgeTable,
                      eids: dict[str, np.ndarray], mode: str
                      ) -> Iterator[tuple[str, str, dict[str, Any], int]]:
        cols = {check_identifier(c, "property"): v for c, v in table.attrs.items()}
        props = ", ".join(f"{_q(c)}: $p_{c}[i]" for c in cols)
        # endpoints by node id: a direct seek, no index lookup
        head = ("UNWIND range(0, size($s) - 1) AS i MATCH (a) WHERE id(a) = $s[i] "
                "MATCH (b) WHERE id(b) = $d[i] ")
        create = f"CREATE (a)-[r:{_q(rtype)}]->(b)" + (f" SET r += {{{props}}}" if props else "")
        if mode == "create":
            query = head + create
        else:
            same = " AND ".join(
                f"coalesce(old.{_q(c)}, $none) = coalesce($p_{c}[i], $none)"
                for c in cols if c in ("behavior", "timestamp", MADE_BY)) or "true"
            query = head + (f"OPTIONAL MATCH (a)-[old:{_q(rtype)}]->(b) WHERE {same} "
                            "WITH a, b, i, count(old) AS n WHERE n = 0 " + create)
        s_ids, d_ids = eids[et[0]][table.src], eids[et[2]][table.dst]
        for lo in range(0, len(table), self.batch_size):
            hi = min(lo + self.batch_size, len(table))
            params = {"s": s_ids[lo:hi].tolist(), "d": d_ids[lo:hi].tolist(), "none": "\0",
                      **{f"p_{c}": _values(v[lo:hi]) for c, v in cols.items()}}
            yield f"e:{k}:{'|'.join(et)}:{lo}", query, params, hi - lo

    # ------------------------------------------------------------------ read
    def read(self, schema: GraphSchema | None = None, *, dataset: str | None = None,
             name: str | None = None, progress: bool = True, page: int = 100_000) -> RecGraph:
        """Read one dataset back into a RecGraph (validated against ``schema``).

        Args:
            schema: the schema (default ``recsys``).
            dataset: which dataset (default: the only one the database holds; with several,
                :class:`StoreError` lists them).
            name: the RecGraph's name (default: the dataset's).
            progress: a progress bar (or periodic lines when not on a terminal).
            page: source nodes per relationship query; each answer is a few column lists,
                turned into arrays at once, so memory stays near the arrays' own size.
        """
        schema = schema or GraphSchema.load("recsys")
        with driver_errors(self.uri, "export"):
            self.check_schema(schema)
            dataset = self._pick_dataset(dataset)
            return self._read_graph(schema, dataset, name or dataset, progress, page)

    def _pick_dataset(self, dataset: str | None) -> str:
        have = self.datasets()
        if dataset is not None:
            if dataset not in have:
                raise StoreError(f"the database at {self.uri} holds no dataset {dataset!r}; it "
                                 f"holds {have or 'none'}")
            return dataset
        if len(have) == 1:
            return have[0]
        if not have:
            raise StoreError(f"the database at {self.uri} holds no kgrec dataset; load one with "
                             "`kgrec load NAME`")
        raise StoreError(f"the database at {self.uri} holds {len(have)} datasets ({have}); name "
                         "one (--dataset NAME, or bolt://host:port#NAME)")

    def _read_graph(self, schema: GraphSchema, dataset: str, name: str, progress: bool,
                    page: int) -> RecGraph:
        # A database holding only this dataset needs no filter on it: every read is then
        # the plain columnar query (the floor neo4j_io.py measures).
        alone = self.datasets() == [dataset]
        meta = {r["type"]: r for r in self.run(
            f"MATCH (r:{META_RELTYPE}) RETURN r.type AS type, r.name AS name, "
            "r.properties AS properties, r.partial AS partial")}
        names = {t: r["name"] for t, r in meta.items()}
        nodes: dict[str, NodeTable] = {}
        internal: dict[str, np.ndarray] = {}
        for label, spec in schema.nodes.items():
            table, eids = self._read_nodes(label, spec, None if alone else dataset)
            if table is not None:
                nodes[label], internal[label] = table, eids
        # which label and row each database node id is: endpoints are resolved here, so the
        # server computes no label per relationship
        labels = list(internal)
        all_ids = np.concatenate([internal[lab] for lab in labels]) if labels else \
            np.zeros(0, np.int64)
        owner = np.concatenate([np.full(len(internal[lab]), k) for k, lab in enumerate(labels)])\
            if labels else np.zeros(0, np.int64)
        row = np.concatenate([np.arange(len(internal[lab])) for lab in labels]) if labels else \
            np.zeros(0, np.int64)
        # node ids are dense (the store reuses freed ones), so a table beats a search
        where = np.full(int(all_ids.max()) + 2 if len(all_ids) else 1, -1, dtype=np.int64)
        where[all_ids] = np.arange(len(all_ids))
        types = [r["t"] for r in self.run("CALL db.relationshipTypes() YIELD relationshipType "
                                          "AS t RETURN t")]
        from_data = [r for r in schema.relationships.values() if r.types_from_data]
        edges: dict[EdgeType, EdgeTable] = {}
        with progress_bar(len(types), f"export {dataset} neo4j -> RecGraph", "type",
                          enabled=progress) as bar:
            for t in types:
                spec = next((r for r in schema.relationships.values()
                             if not r.types_from_data and r.name == t), None)
                # a type named by the data (a KG relation) may carry the properties its
                # family declares (who made a user-made edge, and when); facts have none
                specs = [spec] if spec is not None else from_data
                props = {p: r.properties[p] for r in specs for p in r.properties}
                written = (meta.get(t) or {}).get("properties")
                partial = (meta.get(t) or {}).get("partial")
                if written is not None:  # only what the loads wrote (older loads: all)
                    props = {p: v for p, v in props.items() if p in written}
                s, d, cols = self._read_edges(t, props, None if alone else dataset,
                                              set(props) if partial is None else set(partial))
                bar.update(1)
                if not len(s):
                    continue
                ps = where[np.minimum(s, len(where) - 1)]
                pd = where[np.minimum(d, len(where) - 1)]
                ours = (ps >= 0) & (pd >= 0)
                if not ours.all():  # relationships of nodes that are not kgrec's
                    keep = np.flatnonzero(ours)
                    ps, pd = ps[keep], pd[keep]
                    cols = {p: [v[k] for k in keep.tolist()] for p, v in cols.items()}
                    if not len(keep):
                        continue
                for (a, b), sel in _groups(owner[ps], owner[pd]):
                    et = (labels[a], names.get(t, t), labels[b])
                    try:
                        spec_et = schema.spec_of(*et)
                    except SchemaError:
                        log.warning("skipping relationships (%s)-[%s]->(%s): not in schema %s",
                                    *et, schema.name)
                        continue
                    attrs = {}
                    for p, values in cols.items():
                        col = _column(values if sel is None else [values[k] for k in sel],
                                      spec_et.properties.get(p))
                        if not _all_missing(col):
                            attrs[p] = col
                    take = slice(None) if sel is None else sel
                    edges[et] = EdgeTable(row[ps][take], row[pd][take], attrs)
        stored = self.run(f"MATCH (d:{META_DATASET} {{name: $ds}}) RETURN d.meta AS m",
                          ds=dataset)
        info = json.loads(stored[0]["m"]) if stored and stored[0]["m"] else {}
        graph = RecGraph(nodes, edges, name, {**info, "source": self.uri, "dataset": dataset})
        return graph.validate(schema)

    def _read_edges(self, rtype: str, props: dict[str, Any], dataset: str | None,
                    partial: set[str]) -> tuple[np.ndarray, np.ndarray, dict[str, list[Any]]]:
        """Every ``rtype`` relationship (of ``dataset``'s nodes, when given) as columns:
        source and target node ids, and one list per property (missing: NaN or ""; only
        the ``partial`` properties can be missing)."""
        missing = {}
        ret = ""
        for p, spec in props.items():
            check_identifier(p, "property")
            if p not in partial:
                ret += f", collect(r.{_q(p)})"
                continue
            missing[f"m_{p}"] = float("nan") if spec.type == "float" else ""
            # coalesce with a typed 'missing' value keeps columns aligned (collect skips nulls)
            ret += f", collect(coalesce(r.{_q(p)}, $m_{p}))"
        where = f" WHERE a.{DATASET} = $ds" if dataset is not None else ""
        query = (f"MATCH (a)-[r:{_q(rtype)}]->(b){where} "
                 f"RETURN collect(id(a)), collect(id(b)){ret}")
        (rec,) = self._driver.execute_query(query, {"ds": dataset, **missing},
                                            database_=self.database)[0]
        # Record.data() would walk every element in Python; the lists come out as they are
        values = rec.values()
        return (np.asarray(values[0], np.int64), np.asarray(values[1], np.int64),
                dict(zip(props, values[2:], strict=True)))

    def _read_nodes(self, label: str, spec: Any, dataset: str | None
                    ) -> tuple[NodeTable | None, np.ndarray]:
        """The ``label`` nodes (of ``dataset``, when given) and their database ids."""
        q = _q(label)
        where = f" WHERE n.{DATASET} = $ds" if dataset is not None else ""
        keys = [r["k"] for r in self.run(f"MATCH (n:{q}){where} UNWIND keys(n) AS k "
                                         "RETURN DISTINCT k", ds=dataset)]
        if not keys:
            return None, np.zeros(0, dtype=np.int64)
        keys = [check_identifier(k, "property") for k in sorted(keys)
                if k not in (spec.key, DATASET)]
        # collect() drops nulls, so missing values come back as a typed placeholder
        ret = "".join(f", collect(coalesce(n.{_q(k)}, $m_{k}))" for k in keys)
        missing = {f"m_{k}": _missing_for(spec.properties.get(k)) for k in keys}
        (rec,) = self._driver.execute_query(
            f"MATCH (n:{q}){where} RETURN collect(id(n)), collect(n.{_q(spec.key)}){ret}",
            {"ds": dataset, **missing}, database_=self.database)[0]
        values = rec.values()
        attrs = {k: _column(v, spec.properties.get(k))
                 for k, v in zip(keys, values[2:], strict=True)}
        return (NodeTable(np.asarray(values[1], dtype=str), attrs),
                np.asarray(values[0], dtype=np.int64))


def _groups(src_label: np.ndarray, dst_label: np.ndarray
            ) -> list[tuple[tuple[int, int], np.ndarray | None]]:
    """The rows of each (source label, target label) pair (``None``: all rows)."""
    pair = src_label * 64 + dst_label
    kinds = np.unique(pair)
    if len(kinds) == 1:
        return [((int(kinds[0]) // 64, int(kinds[0]) % 64), None)]
    return [((int(k) // 64, int(k) % 64), np.flatnonzero(pair == k)) for k in kinds]


def _check_for_neo4j(graph: RecGraph, schema: GraphSchema) -> None:
    """What Neo4j would refuse half-way through a load, refused before it starts: a node
    key (dataset + id) or an indexed property longer than an index key may be, and a node
    property named like kgrec's own ``dataset``."""
    ds = len(graph.name.encode())
    for label, table in graph.nodes.items():
        if DATASET in table.attrs:
            raise StoreError(f"{label} nodes have a property {DATASET!r}, which kgrec keeps for "
                             "the name of the dataset a node belongs to; rename it in the "
                             "recipe")
        indexed = {"id": table.ids, **{k: table.attrs[k] for k in ("domain",)
                                       if k in table.attrs}}
        for prop, col in indexed.items():
            if not len(col) or col.dtype.kind != "U":
                continue
            # the longest in characters first; only those can be too long in bytes
            lengths = np.char.str_len(col)
            if int(lengths.max()) * 4 + ds <= MAX_KEY_BYTES:
                continue
            for k in np.argsort(-lengths)[:1000].tolist():
                size = len(str(col[k]).encode()) + (ds if prop == "id" else 0)
                if size > MAX_KEY_BYTES:
                    shown = str(table.ids[k])
                    shown = shown if len(shown) <= 40 else shown[:40] + "..."
                    raise StoreError(
                        f"{label} node {shown!r}: its {prop} takes {size:,} bytes"
                        + (" with the dataset name" if prop == "id" else "")
                        + f"; Neo4j indexes at most {MAX_KEY_BYTES:,} (its index key limit), "
                        "so the load would fail half-way. Nothing was written.")


def _values(arr: np.ndarray) -> list[Any]:
    """A column as a parameter list: NaN and "" become null (no property)."""
    if arr.ndim == 2:
        return [row.tolist() for row in arr]
    vals = arr.tolist()
    if arr.dtype.kind == "f":
        return [None if v != v else v for v in vals]
    if arr.dtype.kind == "U":
        return [v if v else None for v in vals]
    return vals


def _missing_for(spec: Any) -> Any:
    """The placeholder for a missing node property on read: NaN for floats, "" otherwise."""
    return float("nan") if spec is not None and spec.type == "float" else ""


def _any_missing(col: np.ndarray) -> bool:
    if col.dtype.kind == "f":
        return bool(np.isnan(col).any())
    if col.dtype.kind == "U":
        return bool((col == "").any())
    return False


def _all_missing(col: np.ndarray) -> bool:
    if col.dtype.kind == "f":
        return bool(np.isnan(col).all())
    if col.dtype.kind == "U":
        return bool((col == "").all())
    return False


def _column(values: list[Any], spec: Any) -> np.ndarray:
    ptype = spec.type if spec is not None else None
    if ptype is None:
        sample = next((v for v in values if v is not None), "")
        ptype = "float" if isinstance(sample, float) else "int" if isinstance(sample, int) \
            and not isinstance(sample, bool) else "list" if isinstance(sample, list) else "string"
    if ptype == "float":  # numpy reads None as NaN
        return np.asarray(values, dtype=np.float64)
    if ptype == "int":
        if any(v is None or v == "" for v in values):
            raise StoreError("an integer property is missing on some nodes; cannot read it "
                             "back as an integer column")
        return np.asarray(values, dtype=np.int64)
    if ptype == "list":
        return np.asarray(values, dtype=np.float32)
    if None in values:  # (reads coalesce a missing string to "", so this is rare)
        values = ["" if v is None else v for v in values]
    return np.asarray(values, dtype=str)
