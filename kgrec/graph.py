"""The canonical in-memory heterogeneous graph, independent of any store.

A :class:`RecGraph` holds, for each node type, a vocabulary (external id <-> contiguous index)
and attribute columns; for each edge type ``(src_type, relation, dst_type)`` integer arrays
``src``/``dst`` (indices into the node types) and optional attribute columns. Every array is a
numpy array; strings are fixed-width unicode (``dtype.kind == 'U'``), so the local store never
needs pickle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from kgrec.errors import SchemaError, UnknownIdError

if TYPE_CHECKING:
    import networkx as nx
    from torch_geometric.data import HeteroData

    from kgrec.schema import GraphSchema

EdgeType = tuple[str, str, str]

USER, ITEM, ENTITY = "User", "Item", "Entity"
INTERACTED = (USER, "INTERACTED", ITEM)
SAMPLED_NEGATIVE = (USER, "SAMPLED_NEGATIVE", ITEM)
# The edge attribute that marks a knowledge edge as made by a user (a tag, "also bought", a
# review): the external id of the user who made it; ``timestamp`` says when. Such edges are
# behaviour, not facts, and a split keeps only those built from its training interactions.
MADE_BY = "user"


@dataclass
class NodeTable:
    """The nodes of one type.

    Attributes:
        ids: external ids, shape ``[N]``, unique strings.
        attrs: attribute columns, each shape ``[N]`` (``text``, ``name``, ``domain``, numbers) or
            ``[N, D]`` for precomputed vectors.
    """

    ids: np.ndarray
    attrs: dict[str, np.ndarray] = field(default_factory=dict)
    _lookup: dict[str, int] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=str)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lookup(self) -> dict[str, int]:
        """External id -> index (built once, on first use)."""
        if self._lookup is None:
            self._lookup = {k: i for i, k in enumerate(self.ids.tolist())}
        return self._lookup

    def index(self, ids: Iterable[str], what: str = "id") -> np.ndarray:
        """Indices of external ``ids``; raises :class:`UnknownIdError` naming the first unknown."""
        return index_of(self.lookup, ids, what)


def index_of(lookup: Mapping[str, int], ids: Iterable[Any], what: str = "id",
             hint: str = "") -> np.ndarray:
    """The one id lookup: indices ``[N]`` (int64) of external ``ids`` (compared as strings)
    in ``lookup``; :class:`UnknownIdError` naming the first unknown one as ``what``, with
    ``hint`` after it."""
    out = []
    for x in ids:
        i = lookup.get(str(x))
        if i is None:
            raise UnknownIdError(f"unknown {what} {x!r}{hint}")
        out.append(i)
    return np.asarray(out, dtype=np.int64)


@dataclass
class EdgeTable:
    """The edges of one type: ``src[k] -> dst[k]`` with optional attribute columns ``[E]``."""

    src: np.ndarray
    dst: np.ndarray
    attrs: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.src = np.asarray(self.src, dtype=np.int64)
        self.dst = np.asarray(self.dst, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.src)

    def take(self, mask_or_index: np.ndarray) -> EdgeTable:
        """A new table with the selected rows."""
        return EdgeTable(self.src[mask_or_index], self.dst[mask_or_index],
                         {k: v[mask_or_index] for k, v in self.attrs.items()})


@dataclass
class KnowledgeTriples:
    """All KG edges in one index space: items are ``0..I-1``, entities ``I..I+E-1``.

    Attributes:
        head, relation, tail: shape ``[T]`` each.
        relations: relation names, ``relation`` indexes into it.
        num_items, num_entities: sizes of the two parts of the index space.
    """

    head: np.ndarray
    relation: np.ndarray
    tail: np.ndarray
    relations: list[str]
    num_items: int
    num_entities: int

    def __len__(self) -> int:
        return len(self.head)


class RecGraph:
    """Users, items, KG entities and the edges between them.

    Args:
        nodes: node type -> :class:`NodeTable` (``User``, ``Item``, ``Entity``).
        edges: ``(src_type, relation, dst_type)`` -> :class:`EdgeTable`.
        name: dataset name.
        meta: free-form provenance (recipe, source files), JSON-serialisable.
    """

    def __init__(self, nodes: dict[str, NodeTable], edges: dict[EdgeType, EdgeTable],
                 name: str = "graph", meta: dict[str, Any] | None = None) -> None:
        self.nodes = nodes
        self.edges = {tuple(k): v for k, v in edges.items()}
        self.name = name
        self.meta = dict(meta or {})
        for t in (USER, ITEM):
            self.nodes.setdefault(t, NodeTable(np.zeros(0, dtype=str)))

    # ------------------------------------------------------------------ shortcuts
    @property
    def users(self) -> NodeTable:
        return self.nodes[USER]

    @property
    def items(self) -> NodeTable:
        return self.nodes[ITEM]

    @property
    def num_users(self) -> int:
        return len(self.nodes[USER])

    @property
    def num_items(self) -> int:
        return len(self.nodes[ITEM])

    @property
    def interactions(self) -> EdgeTable:
        """User -[INTERACTED]-> Item edges (empty if the graph has none)."""
        return self.edges.get(INTERACTED) or EdgeTable(np.zeros(0), np.zeros(0))

    def knowledge_edge_types(self) -> list[EdgeType]:
        """Edge types whose endpoints are items or entities (the knowledge graph)."""
        kg_labels = {ITEM, ENTITY}
        return [et for et in self.edges if et[0] in kg_labels and et[2] in kg_labels]

    def behavior_edge_types(self) -> list[EdgeType]:
        """Knowledge edge types made by users (their edges carry :data:`MADE_BY`): tags,
        co-purchases, reviews. A split rebuilds them from training interactions only."""
        return [et for et in self.knowledge_edge_types() if MADE_BY in self.edges[et].attrs]

    def with_edges(self, edges: dict[EdgeType, EdgeTable]) -> RecGraph:
        """A graph sharing this one's nodes, with ``edges`` replacing the edge tables of the
        same types."""
        return RecGraph(self.nodes, {**self.edges, **edges}, self.name, self.meta)

    def knowledge(self) -> KnowledgeTriples:
        """All KG edges as triples in the joint item+entity index space (items first)."""
        n_items = self.num_items
        n_ent = len(self.nodes[ENTITY]) if ENTITY in self.nodes else 0
        names = sorted({et[1] for et in self.knowledge_edge_types()})
        rel_id = {n: i for i, n in enumerate(names)}
        heads, rels, tails = [], [], []
        for et in self.knowledge_edge_types():
            table = self.edges[et]
            off_h = 0 if et[0] == ITEM else n_items
            off_t = 0 if et[2] == ITEM else n_items
            heads.append(table.src + off_h)
            tails.append(table.dst + off_t)
            rels.append(np.full(len(table), rel_id[et[1]], dtype=np.int64))
        def cat(xs: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64)

        return KnowledgeTriples(cat(heads), cat(rels), cat(tails), names, n_items, n_ent)

    def item_text(self) -> np.ndarray:
        """A display string per item: ``name``, else ``text``, else the external id."""
        attrs = self.items.attrs
        for key in ("name", "text"):
            if key in attrs:
                col = attrs[key]
                return np.where(col != "", col, self.items.ids)
        return self.items.ids

    # ------------------------------------------------------------------ checks
    def validate(self, schema: GraphSchema | None = None) -> RecGraph:
        """Check structure (index ranges, lengths) and, with a schema, labels and properties.

        Returns ``self`` so it can be chained. Raises :class:`SchemaError`.
        """
        for t, table in self.nodes.items():
            n = len(table)
            if len(np.unique(table.ids)) != n:
                ids, counts = np.unique(table.ids, return_counts=True)
                raise SchemaError(f"node type {t}: duplicate id {ids[counts > 1][0]!r}")
            for k, col in table.attrs.items():
                if len(col) != n:
                    raise SchemaError(f"node type {t}: attribute {k!r} has {len(col)} rows, "
                                      f"expected {n}")
        for et, table in self.edges.items():
            for end, arr, t in (("src", table.src, et[0]), ("dst", table.dst, et[2])):
                if t not in self.nodes:
                    raise SchemaError(f"edge type {et}: unknown node type {t!r}")
                n = len(self.nodes[t])
                if len(arr) and (arr.min() < 0 or arr.max() >= n):
                    raise SchemaError(f"edge type {et}: {end} index out of range [0, {n})")
            if len(table.dst) != len(table.src):
                raise SchemaError(f"edge type {et}: src and dst differ in length")
        if schema is not None:
            for t, table in self.nodes.items():
                spec = schema.nodes.get(t)
                if spec is None:
                    raise SchemaError(f"node type {t!r} is not in schema {schema.name!r}")
                cols = {k: v for k, v in table.attrs.items() if v.ndim == 1}
                schema.validate_properties(f"node {t}", spec.properties, spec.extra_properties,
                                           cols, len(table))
            for et, table in self.edges.items():
                spec = schema.spec_of(*et)
                schema.relationship_type(*et)  # raises if the name cannot be made safe
                schema.validate_properties(f"relationship {et}", spec.properties, False,
                                           table.attrs, len(table))
        return self

    # ------------------------------------------------------------------ views
    def stats(self) -> dict[str, Any]:
        """Counts and shape figures: nodes per type, edges per type, density, per-domain items."""
        out: dict[str, Any] = {"name": self.name,
                               "nodes": {t: len(v) for t, v in self.nodes.items()}}
        inter = self.interactions
        out["interactions"] = len(inter)
        if len(inter):
            per_user = np.bincount(inter.src, minlength=self.num_users)
            per_item = np.bincount(inter.dst, minlength=self.num_items)
            out["users_with_interactions"] = int((per_user > 0).sum())
            out["items_with_interactions"] = int((per_item > 0).sum())
            # catalogue items nobody interacted with: always cold (a recipe may drop them)
            out["items_without_interactions"] = int((per_item == 0).sum())
            out["interactions_per_user_median"] = float(np.median(per_user[per_user > 0]))
            out["density"] = len(inter) / max(1, self.num_users * self.num_items)
            if "behavior" in inter.attrs:
                b, c = np.unique(inter.attrs["behavior"], return_counts=True)
                out["behaviors"] = dict(zip(b.tolist(), c.tolist(), strict=True))
        if SAMPLED_NEGATIVE in self.edges:
            out["sampled_negatives"] = len(self.edges[SAMPLED_NEGATIVE])
        kg = self.knowledge()
        out["kg_triples"] = len(kg)
        out["kg_relations"] = len(kg.relations)
        if "domain" in self.items.attrs:
            d, c = np.unique(self.items.attrs["domain"], return_counts=True)
            out["items_per_domain"] = dict(zip(d.tolist(), c.tolist(), strict=True))
        return out

    def to_hetero_data(self) -> HeteroData:
        """A PyG :class:`~torch_geometric.data.HeteroData`.

        Each node type gets ``num_nodes`` (and ``x`` when the graph holds a 2-D vector
        attribute named ``x``); each edge type gets ``edge_index`` ``[2, E]`` and its numeric
        attributes (``weight``, ``timestamp``) as ``[E]`` tensors.
        """
        import torch
        from torch_geometric.data import HeteroData

        data = HeteroData()
        for t, table in self.nodes.items():
            data[t].num_nodes = len(table)
            if "x" in table.attrs and table.attrs["x"].ndim == 2:
                data[t].x = torch.from_numpy(np.ascontiguousarray(table.attrs["x"]))
        for et, table in self.edges.items():
            store = data[et]
            store.edge_index = torch.from_numpy(np.stack([table.src, table.dst]))
            for k, v in table.attrs.items():
                if v.dtype.kind in "fiu":
                    store[k] = torch.from_numpy(np.ascontiguousarray(v))
        return data

    def to_networkx(self) -> nx.MultiDiGraph:
        """A networkx ``MultiDiGraph``; nodes are ``(type, external_id)`` with their attributes,
        edges are keyed by relation name."""
        import networkx as nx

        g = nx.MultiDiGraph(name=self.name)
        for t, table in self.nodes.items():
            cols = {k: v for k, v in table.attrs.items() if v.ndim == 1}
            for i, nid in enumerate(table.ids.tolist()):
                attrs = {k: _py(v[i]) for k, v in cols.items()}
                g.add_node((t, nid), label=t, id=nid, **attrs)
        for (s, r, d), table in self.edges.items():
            sids, dids = self.nodes[s].ids, self.nodes[d].ids
            cols = table.attrs
            for k in range(len(table)):
                attrs = {c: _py(v[k]) for c, v in cols.items()}
                g.add_edge((s, sids[table.src[k]]), (d, dids[table.dst[k]]), key=r,
                           relation=r, **attrs)
        return g

    def differences(self, other: RecGraph, limit: int = 10) -> list[str]:
        """How ``other`` differs from this graph, up to ``limit`` findings (``[]``: equal).

        Order does not matter (nodes are matched by id, edges compared as multisets), and a
        column whose values are all missing (NaN or empty) counts as absent: that is what a
        property graph such as Neo4j can represent.
        """
        out: list[str] = []
        for t in sorted(set(self.nodes) | set(other.nodes)):
            a, b = self.nodes.get(t), other.nodes.get(t)
            if a is None or b is None or len(a) != len(b):
                out.append(f"node type {t}: {len(a) if a else 0} vs {len(b) if b else 0} nodes")
                continue
            if set(a.ids.tolist()) != set(b.ids.tolist()):
                out.append(f"node type {t}: different ids")
                continue
            perm = b.index(a.ids.tolist())
            ca, cb = _present(a.attrs), _present(b.attrs)
            if set(ca) != set(cb):
                out.append(f"node type {t}: attributes {sorted(ca)} vs {sorted(cb)}")
            for k in set(ca) & set(cb):
                if not _same(ca[k], cb[k][perm]):
                    out.append(f"node type {t}: attribute {k!r} differs")
        for et in sorted(set(self.edges) | set(other.edges)):
            a, b = self.edges.get(et), other.edges.get(et)
            if a is None or b is None or len(a) != len(b):
                out.append(f"edge type {et}: {len(a) if a else 0} vs {len(b) if b else 0} edges")
                continue
            if sorted(_present(a.attrs)) != sorted(_present(b.attrs)):
                out.append(f"edge type {et}: attributes {sorted(_present(a.attrs))} vs "
                           f"{sorted(_present(b.attrs))}")
                continue
            if _edge_rows(self, et, a) != _edge_rows(other, et, b):
                out.append(f"edge type {et}: different edges")
        return out[:limit]

    def keep_items(self, keep: np.ndarray) -> RecGraph:
        """A graph with only the items where ``keep`` (``[I]`` bool) is true; every edge that
        touches a dropped item goes with it, the rest are renumbered."""
        keep = np.asarray(keep, dtype=bool)
        new_index = np.cumsum(keep) - 1
        nodes = dict(self.nodes)
        items = self.items
        nodes[ITEM] = NodeTable(items.ids[keep], {k: v[keep] for k, v in items.attrs.items()})
        edges = {}
        for et, table in self.edges.items():
            ok = np.ones(len(table), dtype=bool)
            if et[0] == ITEM:
                ok &= keep[table.src]
            if et[2] == ITEM:
                ok &= keep[table.dst]
            t = table.take(ok)
            edges[et] = EdgeTable(new_index[t.src] if et[0] == ITEM else t.src,
                                  new_index[t.dst] if et[2] == ITEM else t.dst, t.attrs)
        return RecGraph(nodes, edges, self.name, self.meta)

    def subgraph_interactions(self, mask: np.ndarray) -> RecGraph:
        """A graph that shares nodes and KG but keeps only the selected interactions."""
        edges = dict(self.edges)
        edges[INTERACTED] = self.interactions.take(mask)
        return RecGraph(self.nodes, edges, self.name, self.meta)

    def __repr__(self) -> str:
        parts = ", ".join(f"{t}={len(v)}" for t, v in self.nodes.items())
        return (f"RecGraph({self.name!r}, {parts}, interactions={len(self.interactions)}, "
                f"kg_triples={sum(len(self.edges[e]) for e in self.knowledge_edge_types())})")


def _present(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    def missing(c: np.ndarray) -> bool:
        return bool(c.dtype.kind == "f" and np.isnan(c).all()) or bool(
            c.dtype.kind == "U" and (c == "").all())
    return {k: v for k, v in cols.items() if not missing(v)}


def _same(x: np.ndarray, y: np.ndarray) -> bool:
    if x.dtype.kind in "fiu" and y.dtype.kind in "fiu":
        return x.shape == y.shape and bool(np.allclose(x, y, equal_nan=True, rtol=0, atol=0))
    return x.shape == y.shape and bool((x.astype(str) == y.astype(str)).all())


def _edge_rows(g: RecGraph, et: EdgeType, t: EdgeTable) -> list[tuple[Any, ...]]:
    cols = _present(t.attrs)
    keys = sorted(cols)
    s, d = g.nodes[et[0]].ids[t.src].tolist(), g.nodes[et[2]].ids[t.dst].tolist()
    vals = [["nan" if isinstance(v, float) and v != v else v for v in cols[k].tolist()]
            for k in keys]
    return sorted(zip(s, d, *vals, strict=True), key=repr)


def _py(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x


def id_array(values: Sequence[Any]) -> np.ndarray:
    """Strings as a fixed-width unicode array (never ``object``)."""
    arr = np.asarray([str(v) for v in values], dtype=str)
    return arr if len(arr) else np.zeros(0, dtype="<U1")
