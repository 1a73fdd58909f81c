"""Neo4j as a graph store: batched, idempotent, resumable writes; streaming reads.

Writes go in batches of ``UNWIND $rows ... MERGE/CREATE`` inside explicit write transactions
(``session.execute_write``). Each batch commits together with a journal entry
(``(:KgrecBatch {load, key})``) in the same transaction, so after a crash or ``kill -9`` a
rerun skips exactly the batches that committed and redoes the rest: the final counts are
exact. A finished load leaves ``(:KgrecLoad {fingerprint, finished: true})``; loading the
same graph again changes nothing.

Relationships are created with ``CREATE`` (fast) when the database holds none of the types
being written, or when resuming this graph's own load; otherwise (loading a changed graph
into a database that already has one) they are ``MERGE``d on their identity: endpoints and
type, plus ``behavior`` and ``timestamp`` for interactions.

Names reaching Cypher (labels, types, property keys) come only from a validated
:class:`~kgrec.schema.GraphSchema` and are checked against the identifier pattern and
back-quoted; every value travels as a query parameter.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from kgrec.errors import SchemaError, StoreError
from kgrec.graph import EdgeTable, EdgeType, NodeTable, RecGraph
from kgrec.schema import GraphSchema, check_identifier

log = logging.getLogger(__name__)

META_LOAD, META_BATCH, META_RELTYPE = "KgrecLoad", "KgrecBatch", "KgrecRelationType"


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


def _value(v: Any) -> Any:
    """numpy scalar -> Python; NaN and empty strings are 'missing' (no property)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, str) and v == "":
        return None
    return v


def _props(columns: dict[str, np.ndarray], lo: int, hi: int) -> list[dict[str, Any]]:
    names = list(columns)
    cols = []
    for k in names:
        arr = columns[k][lo:hi]
        cols.append(arr.tolist() if arr.ndim == 1 else [row.tolist() for row in arr])
    out = []
    for i in range(hi - lo):
        d = {}
        for k, col in zip(names, cols, strict=True):
            v = _value(col[i])
            if v is not None:
                d[k] = v
        out.append(d)
    return out


class Neo4jStore:
    """A RecGraph in a Neo4j database.

    Args:
        uri: ``bolt://`` or ``neo4j://`` URI (default ``$KGREC_NEO4J_URI``, else the local
            server started by ``kgrec neo4j start``).
        user, password: credentials (default ``$KGREC_NEO4J_USER`` / ``$KGREC_NEO4J_PASSWORD``,
            else the local server's).
        database: database name.
        batch_size: rows per write transaction.
    """

    def __init__(self, uri: str | None = None, user: str | None = None,
                 password: str | None = None, *, database: str = "neo4j",
                 batch_size: int = 20_000) -> None:
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
        try:
            self._driver = GraphDatabase.driver(uri, auth=(self.user, password),
                                                notifications_min_severity="OFF")
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
                             f"{self.user!r}; set KGREC_NEO4J_USER / KGREC_NEO4J_PASSWORD (or "
                             "--user/--password) to the right ones") from None
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
        """Create the schema's constraints and indexes (idempotent); returns the Cypher run."""
        statements = [*schema.cypher_constraints(),
                      f"CREATE CONSTRAINT kgrec_load_fp IF NOT EXISTS FOR (n:{META_LOAD}) "
                      "REQUIRE n.fingerprint IS UNIQUE",
                      f"CREATE INDEX kgrec_batch_load IF NOT EXISTS FOR (n:{META_BATCH}) "
                      "ON (n.load)"]
        for s in statements:
            self._write(s)
        self._write("CALL db.awaitIndexes(300)")
        return statements

    def check_schema(self, schema: GraphSchema) -> None:
        """Raise :class:`SchemaError` unless every key constraint of ``schema`` exists."""
        have = {(tuple(r["labels"] or ()), tuple(r["properties"] or ()))
                for r in self.run("SHOW CONSTRAINTS YIELD labelsOrTypes AS labels, properties, "
                                  "type WHERE type = 'UNIQUENESS' RETURN labels, properties")}
        missing = [f"{label}.{spec.key}" for label, spec in schema.nodes.items()
                   if ((label,), (spec.key,)) not in have]
        if missing:
            raise SchemaError(f"the database at {self.uri} lacks the uniqueness constraints of "
                              f"schema {schema.name!r} on {missing}; run `kgrec schema apply`")

    # ------------------------------------------------------------------ counts
    def counts(self) -> dict[str, int]:
        """Nodes per label and relationships per type (kgrec's own journal excluded)."""
        out: dict[str, int] = {}
        for r in self.run("CALL db.labels() YIELD label RETURN label"):
            lab = r["label"]
            if lab.startswith("Kgrec"):
                continue
            out[lab] = self.run(f"MATCH (n:{_q(lab)}) RETURN count(n) AS c")[0]["c"]
        for r in self.run("CALL db.relationshipTypes() YIELD relationshipType AS t RETURN t"):
            t = r["t"]
            out[t] = self.run(f"MATCH ()-[r:{_q(t)}]->() RETURN count(r) AS c")[0]["c"]
        return {k: v for k, v in out.items() if v}

    def clear(self) -> None:
        """Delete every node and relationship (in batches). For tests and scratch databases."""
        while True:
            rec = self.run("MATCH (n) WITH n LIMIT 20000 DETACH DELETE n RETURN count(*) AS c")
            if not rec or rec[0]["c"] == 0:
                break

    # ------------------------------------------------------------------ write
    def write(self, graph: RecGraph, schema: GraphSchema | None = None, *,
              progress: bool = True, force_merge: bool = False) -> LoadReport:
        """Write ``graph`` (validated against ``schema``); idempotent and resumable."""
        schema = schema or GraphSchema.load("recsys")
        graph.validate(schema)
        self.apply_schema(schema)
        fp = graph_fingerprint(graph)
        start = time.perf_counter()
        load = self.run(f"MATCH (l:{META_LOAD} {{fingerprint: $fp}}) RETURN l.finished AS f",
                        fp=fp)
        if load and load[0]["f"] and not force_merge:
            log.info("graph %s (%s) is already loaded in %s; nothing to do", graph.name, fp,
                     self.uri)
            return LoadReport(fp, "skip", seconds=time.perf_counter() - start)
        rel_types = {self._rel_type(schema, et) for et in graph.edges}
        existing = self.run("CALL db.relationshipTypes() YIELD relationshipType AS t RETURN t")
        clash = {r["t"] for r in existing} & rel_types
        mode = "merge" if force_merge or (clash and not load) else "create"
        self._write(f"MERGE (l:{META_LOAD} {{fingerprint: $fp}}) ON CREATE SET l.graph = $g, "
                    "l.started = datetime(), l.finished = false, l.mode = $mode",
                    fp=fp, g=graph.name, mode=mode)
        done = {r["k"] for r in self.run(f"MATCH (b:{META_BATCH} {{load: $fp}}) "
                                         "RETURN b.key AS k", fp=fp)}
        report = LoadReport(fp, mode)
        self._write_relation_names(graph, schema)
        total = sum(len(t) for t in graph.nodes.values()) + \
            sum(len(t) for t in graph.edges.values())
        with tqdm(total=total, unit="row", desc=f"load {graph.name} -> neo4j ({mode})",
                  disable=None if progress else True, dynamic_ncols=True) as bar:
            for label, table in graph.nodes.items():
                for key, query, rows, n in self._node_batches(label, table, fp):
                    self._batch(key, query, rows, n, fp, done, report, bar, nodes=True)
            for k, (et, table) in enumerate(graph.edges.items()):
                rtype = self._rel_type(schema, et)
                for key, query, rows, n in self._edge_batches(k, et, rtype, table, graph, mode):
                    self._batch(key, query, rows, n, fp, done, report, bar, nodes=False)
                    report.per_type[rtype] = report.per_type.get(rtype, 0) + n
        self._write(f"MATCH (l:{META_LOAD} {{fingerprint: $fp}}) SET l.finished = true, "
                    "l.finished_at = datetime()", fp=fp)
        with self._driver.session(database=self.database) as session:
            # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction
            session.run(f"MATCH (b:{META_BATCH} {{load: $fp}}) CALL {{ WITH b DELETE b }} "
                        "IN TRANSACTIONS OF 10000 ROWS", fp=fp).consume()
        report.seconds = time.perf_counter() - start
        log.info("loaded %s into %s: %d nodes, %d relationships in %.1fs (%s mode, %d batches "
                 "skipped)", graph.name, self.uri, report.nodes_written,
                 report.relationships_written, report.seconds, mode, report.batches_skipped)
        return report

    def _batch(self, key: str, query: str, rows: list[Any], n: int, fp: str, done: set[str],
               report: LoadReport, bar: tqdm, *, nodes: bool) -> None:
        if key in done:
            report.batches_skipped += 1
            bar.update(n)
            return

        def work(tx: Any) -> None:
            tx.run(query, rows=rows).consume()
            tx.run(f"CREATE (:{META_BATCH} {{load: $fp, key: $key}})", fp=fp, key=key).consume()

        with self._driver.session(database=self.database) as session:
            session.execute_write(work)
        if nodes:
            report.nodes_written += n
        else:
            report.relationships_written += n
            elapsed = max(1e-9, bar.format_dict["elapsed"])
            bar.set_postfix(rels_per_s=f"{report.relationships_written / elapsed:,.0f}",
                            refresh=False)
        bar.update(n)

    @staticmethod
    def _rel_type(schema: GraphSchema, et: EdgeType) -> str:
        return check_identifier(schema.relationship_type(*et), "relationship type")

    def _write_relation_names(self, graph: RecGraph, schema: GraphSchema) -> None:
        seen: dict[str, str] = {}
        rows = []
        for et in graph.edges:
            spec = schema.spec_of(*et)
            if not spec.types_from_data:
                continue
            t = self._rel_type(schema, et)
            if seen.setdefault(t, et[1]) != et[1]:
                raise SchemaError(f"KG relations {seen[t]!r} and {et[1]!r} both become "
                                  f"relationship type {t}; rename one in the recipe")
            rows.append({"type": t, "name": et[1]})
        if rows:
            self._write(f"UNWIND $rows AS row MERGE (r:{META_RELTYPE} {{type: row.type}}) "
                        "SET r.name = row.name", rows=rows)

    def _node_batches(self, label: str, table: NodeTable, fp: str
                      ) -> Iterator[tuple[str, str, list[Any], int]]:
        cols = {check_identifier(k, "property"): v for k, v in table.attrs.items()}
        query = (f"UNWIND $rows AS row MERGE (n:{_q(label)} {{id: row.id}}) "
                 "SET n += row.p")
        ids = table.ids.tolist()
        for lo in range(0, len(ids), self.batch_size):
            hi = min(lo + self.batch_size, len(ids))
            props = _props(cols, lo, hi)
            rows = [{"id": ids[i], "p": props[i - lo]} for i in range(lo, hi)]
            yield f"n:{label}:{lo}", query, rows, hi - lo

    def _edge_batches(self, k: int, et: EdgeType, rtype: str, table: EdgeTable,
                      graph: RecGraph, mode: str) -> Iterator[tuple[str, str, list[Any], int]]:
        src_label, _, dst_label = et
        sids, dids = graph.nodes[src_label].ids, graph.nodes[dst_label].ids
        cols = {check_identifier(c, "property"): v for c, v in table.attrs.items()}
        match = (f"UNWIND $rows AS row MATCH (a:{_q(src_label)} {{id: row.s}}) "
                 f"MATCH (b:{_q(dst_label)} {{id: row.d}}) ")
        if mode == "create":
            query = match + f"CREATE (a)-[r:{_q(rtype)}]->(b) SET r = row.p"
        else:
            # identity: endpoints + type (+ behavior and timestamp where the edge has them)
            query = match + (
                f"OPTIONAL MATCH (a)-[old:{_q(rtype)}]->(b) "
                "WHERE coalesce(old.behavior, '') = coalesce(row.p.behavior, '') "
                "AND coalesce(old.timestamp, -1.0) = coalesce(row.p.timestamp, -1.0) "
                "WITH a, b, row, count(old) AS n WHERE n = 0 "
                f"CREATE (a)-[r:{_q(rtype)}]->(b) SET r = row.p")
        src, dst = table.src, table.dst
        for lo in range(0, len(table), self.batch_size):
            hi = min(lo + self.batch_size, len(table))
            props = _props(cols, lo, hi)
            s = sids[src[lo:hi]].tolist()
            d = dids[dst[lo:hi]].tolist()
            rows = [{"s": s[i], "d": d[i], "p": props[i]} for i in range(hi - lo)]
            yield f"e:{k}:{'|'.join(et)}:{lo}", query, rows, hi - lo

    # ------------------------------------------------------------------ read
    def read(self, schema: GraphSchema | None = None, *, name: str | None = None,
             progress: bool = True, page: int = 200_000) -> RecGraph:
        """Stream the database into a RecGraph (validated against ``schema``).

        Memory stays bounded by reading in pages of ``page`` rows; node properties come back
        with the schema's types (missing strings ``""``, missing floats NaN).
        """
        schema = schema or GraphSchema.load("recsys")
        self.check_schema(schema)
        names = {r["type"]: r["name"] for r in
                 self.run(f"MATCH (r:{META_RELTYPE}) RETURN r.type AS type, r.name AS name")}
        nodes: dict[str, NodeTable] = {}
        internal: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # label -> (sorted ids, index)
        for label, spec in schema.nodes.items():
            table, eids = self._read_nodes(label, spec, page)
            if table is None:
                continue
            nodes[label] = table
            order = np.argsort(eids)
            internal[label] = (eids[order], order)
        edges: dict[EdgeType, EdgeTable] = {}
        types = self.run("MATCH (a)-[r]->(b) WITH DISTINCT labels(a) AS la, type(r) AS t, "
                         "labels(b) AS lb RETURN la, t, lb")
        for row in types:
            la = [x for x in row["la"] if x in nodes]
            lb = [x for x in row["lb"] if x in nodes]
            if not la or not lb:
                continue
            t = row["t"]
            rel = names.get(t, t)
            et = (la[0], rel, lb[0])
            try:
                spec = schema.spec_of(*et)
            except SchemaError:
                log.warning("skipping relationships (%s)-[%s]->(%s): not in schema %s", *et,
                            schema.name)
                continue
            edges[et] = self._read_edges(et, t, spec, internal, page, progress)
        graph = RecGraph(nodes, edges, name or "neo4j", {"source": self.uri})
        return graph.validate(schema)

    def _read_nodes(self, label: str, spec: Any, page: int
                    ) -> tuple[NodeTable | None, np.ndarray]:
        q = _q(label)
        keys = [r["k"] for r in self.run(f"MATCH (n:{q}) UNWIND keys(n) AS k RETURN DISTINCT k")]
        if not keys:
            return None, np.zeros(0, dtype=np.int64)
        keys = [check_identifier(k, "property") for k in sorted(keys) if k != spec.key]
        ret = ", ".join(f"n.{_q(k)}" for k in keys)
        eids, ids, cols = [], [], {k: [] for k in keys}
        last = -1
        while True:
            rows = self._driver.execute_query(
                f"MATCH (n:{q}) WHERE id(n) > $last WITH n ORDER BY id(n) LIMIT $page "
                f"RETURN id(n), n.{_q(spec.key)}" + (f", {ret}" if ret else ""),
                {"last": last, "page": page}, database_=self.database)[0]
            if not rows:
                break
            for r in rows:
                vals = r.values()
                eids.append(vals[0])
                ids.append(vals[1])
                for k, v in zip(keys, vals[2:], strict=True):
                    cols[k].append(v)
            last = eids[-1]
        attrs = {k: _column(v, spec.properties.get(k)) for k, v in cols.items()}
        return NodeTable(np.asarray(ids, dtype=str), attrs), np.asarray(eids, dtype=np.int64)

    def _read_edges(self, et: EdgeType, rtype: str, spec: Any,
                    internal: dict[str, tuple[np.ndarray, np.ndarray]], page: int,
                    progress: bool) -> EdgeTable:
        keys = [check_identifier(k, "property") for k in spec.properties]
        # coalesce with a typed 'missing' value keeps the columns aligned (collect skips nulls)
        missing = {k: float("nan") if p.type == "float" else "" if p.type == "string" else None
                   for k, p in spec.properties.items()}
        ret = "".join(f", collect(coalesce(r.{_q(k)}, $m_{k}))" for k in keys)
        src_parts, dst_parts = [], []
        cols: dict[str, list[Any]] = {k: [] for k in keys}
        sorted_s, index_s = internal[et[0]]
        sorted_d, index_d = internal[et[2]]
        # page over source nodes (bounded memory on both sides); lists come back in one record
        for lo in range(0, len(sorted_s), max(1, page // 50)):
            hi = min(lo + max(1, page // 50), len(sorted_s))
            rec = self._driver.execute_query(
                f"MATCH (a:{_q(et[0])})-[r:{_q(rtype)}]->(b:{_q(et[2])}) "
                "WHERE id(a) >= $lo AND id(a) <= $hi "
                f"RETURN collect(id(a)), collect(id(b)){ret}",
                {"lo": int(sorted_s[lo]), "hi": int(sorted_s[hi - 1]),
                 **{f"m_{k}": v for k, v in missing.items()}},
                database_=self.database)[0][0].values()
            src_parts.append(np.asarray(rec[0], dtype=np.int64))
            dst_parts.append(np.asarray(rec[1], dtype=np.int64))
            for k, v in zip(keys, rec[2:], strict=True):
                cols[k].extend(v)
        s = np.concatenate(src_parts) if src_parts else np.zeros(0, np.int64)
        d = np.concatenate(dst_parts) if dst_parts else np.zeros(0, np.int64)
        src = index_s[np.searchsorted(sorted_s, s)]
        dst = index_d[np.searchsorted(sorted_d, d)]
        attrs = {}
        n = len(src)
        for k in keys:
            col = _column(cols[k], spec.properties[k])
            if len(col) != n:
                raise StoreError(f"relationships {rtype}: property {k!r} came back with "
                                 f"{len(col)} values for {n} relationships")
            if n and not _all_missing(col):
                attrs[k] = col
        return EdgeTable(src, dst, attrs)


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
    if ptype == "float":
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    if ptype == "int":
        return np.asarray(values, dtype=np.int64)
    if ptype == "list":
        return np.asarray(values, dtype=np.float32)
    return np.asarray(["" if v is None else str(v) for v in values], dtype=str)
