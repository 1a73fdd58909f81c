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
from kgrec.graph import MADE_BY, EdgeTable, EdgeType, NodeTable, RecGraph
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
        # relationships first, so no single transaction holds a dense node's whole edge list;
        # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction
        with self._driver.session(database=self.database) as session:
            session.run("MATCH ()-[r]->() CALL { WITH r DELETE r } "
                        "IN TRANSACTIONS OF 50000 ROWS").consume()
            session.run("MATCH (n) CALL { WITH n DELETE n } "
                        "IN TRANSACTIONS OF 50000 ROWS").consume()

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
        # relationship types outlive their relationships, so count them (count store: O(1))
        clash = {t for t in rel_types
                 if self.run(f"MATCH ()-[r:{_q(t)}]->() RETURN count(r) AS c")[0]["c"]}
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
                for key, query, params, n in self._node_batches(label, table):
                    self._batch(key, query, params, n, fp, done, report, bar, nodes=True)
            eids = {lab: self._internal_ids(lab, t) for lab, t in graph.nodes.items()
                    if any(lab in (et[0], et[2]) for et in graph.edges)}
            for k, (et, table) in enumerate(graph.edges.items()):
                rtype = self._rel_type(schema, et)
                for key, query, params, n in self._edge_batches(k, et, rtype, table, eids, mode):
                    self._batch(key, query, params, n, fp, done, report, bar, nodes=False)
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

    def _batch(self, key: str, query: str, params: dict[str, Any], n: int, fp: str,
               done: set[str], report: LoadReport, bar: tqdm, *, nodes: bool) -> None:
        if key in done:
            report.batches_skipped += 1
            bar.update(n)
            return

        def work(tx: Any) -> None:
            # the batch and its journal entry commit together, or neither does
            tx.run(query, params).consume()
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

    # Parameters travel as columns (one list per property): encoding a list of primitives is
    # an order of magnitude cheaper than a list of maps, on both sides of the wire.
    def _node_batches(self, label: str, table: NodeTable
                      ) -> Iterator[tuple[str, str, dict[str, Any], int]]:
        cols = {check_identifier(k, "property"): v for k, v in table.attrs.items()}
        sets = "".join(f", n.{_q(k)} = $p_{k}[i]" for k in cols)
        query = (f"UNWIND range(0, size($ids) - 1) AS i MERGE (n:{_q(label)} {{id: $ids[i]}})"
                 + (f" SET {sets[2:]}" if sets else ""))
        ids = table.ids.tolist()
        for lo in range(0, len(ids), self.batch_size):
            hi = min(lo + self.batch_size, len(ids))
            params = {"ids": ids[lo:hi], **{f"p_{k}": _values(v[lo:hi]) for k, v in cols.items()}}
            yield f"n:{label}:{lo}", query, params, hi - lo

    def _internal_ids(self, label: str, table: NodeTable) -> np.ndarray:
        """The database's node ids for ``table``'s nodes, in table order ``[N]``."""
        rows = self._driver.execute_query(
            f"MATCH (n:{_q(label)}) RETURN collect(n.id) AS ids, collect(id(n)) AS eids",
            database_=self.database)[0][0]
        lookup = dict(zip(rows["ids"], rows["eids"], strict=True))
        try:
            return np.asarray([lookup[i] for i in table.ids.tolist()], dtype=np.int64)
        except KeyError as exc:
            raise StoreError(f"node ({label} {{id: {exc.args[0]!r}}}) is missing after the "
                             "node batches; was the database changed during the load?") from None

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
    def read(self, schema: GraphSchema | None = None, *, name: str | None = None,
             progress: bool = True, page: int = 20_000) -> RecGraph:
        """Stream the database into a RecGraph (validated against ``schema``).

        Memory stays bounded: nodes come in pages of ``page``, relationships per page of
        ``page`` source nodes, each as a few column lists. Node properties come back with the
        schema's types (missing strings ``""``, missing floats NaN).
        """
        schema = schema or GraphSchema.load("recsys")
        self.check_schema(schema)
        names = {r["type"]: r["name"] for r in
                 self.run(f"MATCH (r:{META_RELTYPE}) RETURN r.type AS type, r.name AS name")}
        nodes: dict[str, NodeTable] = {}
        internal: dict[str, np.ndarray] = {}
        for label, spec in schema.nodes.items():
            table, eids = self._read_nodes(label, spec, page)
            if table is not None:
                nodes[label], internal[label] = table, eids
        # which relationship types exist, and between which labels
        groups: dict[tuple[str, ...], list[str]] = {}
        for t in [r["t"] for r in self.run("CALL db.relationshipTypes() YIELD relationshipType "
                                           "AS t RETURN t")]:
            if not self.run(f"MATCH ()-[r:{_q(t)}]->() RETURN count(r) AS c")[0]["c"]:
                continue
            spec = next((r for r in schema.relationships.values()
                         if not r.types_from_data and r.name == t), None)
            # a type named by the data (a KG relation) may carry the properties its family
            # declares (who made a user-made edge, and when); facts come back without them
            props = tuple(spec.properties) if spec is not None else tuple(dict.fromkeys(
                p for r in schema.relationships.values() if r.types_from_data
                for p in r.properties))
            groups.setdefault(props, []).append(t)
        parts: dict[EdgeType, list[tuple[np.ndarray, np.ndarray, dict[str, list[Any]]]]] = {}
        order = {lab: np.argsort(e) for lab, e in internal.items()}
        total = sum(len(e) for e in internal.values())
        with tqdm(total=total, unit="node", desc="export neo4j -> RecGraph",
                  disable=None if progress else True, dynamic_ncols=True) as bar:
            for src_label, eids in internal.items():
                for lo in range(0, len(eids), page):
                    page_ids = eids[lo:lo + page].tolist()
                    for props, types in groups.items():
                        for rec in self._read_edge_page(page_ids, types, props,
                                                        list(internal), schema):
                            et = (src_label, names.get(rec["t"], rec["t"]), rec["lb"])
                            parts.setdefault(et, []).append(
                                (np.asarray(rec["s"], np.int64), np.asarray(rec["d"], np.int64),
                                 {p: rec[f"p_{p}"] for p in props}))
                    bar.update(len(page_ids))
        edges: dict[EdgeType, EdgeTable] = {}
        for et, chunks in parts.items():
            try:
                spec = schema.spec_of(*et)
            except SchemaError:
                log.warning("skipping relationships (%s)-[%s]->(%s): not in schema %s", *et,
                            schema.name)
                continue
            s = np.concatenate([c[0] for c in chunks])
            d = np.concatenate([c[1] for c in chunks])
            src = order[et[0]][np.searchsorted(internal[et[0]], s, sorter=order[et[0]])]
            dst = order[et[2]][np.searchsorted(internal[et[2]], d, sorter=order[et[2]])]
            attrs = {}
            for p in spec.properties:
                if p in chunks[0][2]:
                    col = _column([v for c in chunks for v in c[2][p]], spec.properties[p])
                    if not _all_missing(col):
                        attrs[p] = col
            edges[et] = EdgeTable(src, dst, attrs)
        graph = RecGraph(nodes, edges, name or "neo4j", {"source": self.uri})
        return graph.validate(schema)

    def _read_edge_page(self, page_ids: list[int], types: list[str], props: tuple[str, ...],
                        labels: list[str], schema: GraphSchema) -> list[dict[str, Any]]:
        for p in props:
            check_identifier(p, "property")
        missing = {}
        ret = ""
        for p in props:
            ptype = next((r.properties[p].type for r in schema.relationships.values()
                          if p in r.properties), "string")
            missing[f"m_{p}"] = float("nan") if ptype == "float" else ""
            # coalesce with a typed 'missing' value keeps columns aligned (collect skips nulls)
            ret += f", collect(coalesce(r.{_q(p)}, $m_{p})) AS p_{p}"
        query = ("UNWIND $ids AS x MATCH (a) WHERE id(a) = x "
                 "MATCH (a)-[r]->(b) WHERE type(r) IN $types "
                 "WITH a, r, b, [l IN labels(b) WHERE l IN $labels][0] AS lb "
                 f"RETURN type(r) AS t, lb, collect(id(a)) AS s, collect(id(b)) AS d{ret}")
        recs = self._driver.execute_query(query, {"ids": page_ids, "types": types,
                                                  "labels": labels, **missing},
                                          database_=self.database)[0]
        return [r.data() for r in recs if r["lb"] is not None]

    def _read_nodes(self, label: str, spec: Any, page: int
                    ) -> tuple[NodeTable | None, np.ndarray]:
        q = _q(label)
        keys = [r["k"] for r in self.run(f"MATCH (n:{q}) UNWIND keys(n) AS k RETURN DISTINCT k")]
        if not keys:
            return None, np.zeros(0, dtype=np.int64)
        keys = [check_identifier(k, "property") for k in sorted(keys) if k != spec.key]
        # collect() drops nulls, so missing values come back as a typed placeholder
        ret = "".join(
            f", collect(coalesce(n.{_q(k)}, $m_{k})) AS p_{k}" for k in keys)
        missing = {f"m_{k}": _missing_for(spec.properties.get(k)) for k in keys}
        eids: list[int] = []
        ids: list[str] = []
        cols: dict[str, list[Any]] = {k: [] for k in keys}
        last = -1
        while True:
            rec = self._driver.execute_query(
                f"MATCH (n:{q}) WHERE id(n) > $last WITH n ORDER BY id(n) LIMIT $page "
                f"RETURN collect(id(n)) AS e, collect(n.{_q(spec.key)}) AS ids{ret}",
                {"last": last, "page": page, **missing}, database_=self.database)[0][0]
            if not rec["e"]:
                break
            eids.extend(rec["e"])
            ids.extend(rec["ids"])
            for k in keys:
                cols[k].extend(rec[f"p_{k}"])
            last = eids[-1]
        attrs = {k: _column(v, spec.properties.get(k)) for k, v in cols.items()}
        return NodeTable(np.asarray(ids, dtype=str), attrs), np.asarray(eids, dtype=np.int64)


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
        if any(v is None or v == "" for v in values):
            raise StoreError("an integer property is missing on some nodes; cannot read it "
                             "back as an integer column")
        return np.asarray(values, dtype=np.int64)
    if ptype == "list":
        return np.asarray(values, dtype=np.float32)
    return np.asarray(["" if v is None else str(v) for v in values], dtype=str)
