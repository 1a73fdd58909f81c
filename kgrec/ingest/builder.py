"""Assembling a RecGraph from parsed columns, shared by every reader."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kgrec.errors import DataFormatError
from kgrec.graph import ENTITY, INTERACTED, ITEM, USER, EdgeTable, EdgeType, NodeTable, RecGraph


class GraphBuilder:
    """Collects node tables and edge arrays; :meth:`build` checks and returns a RecGraph."""

    def __init__(self, name: str, *, require_interactions: bool = True) -> None:
        self.name = name
        self.require_interactions = require_interactions
        self.nodes: dict[str, NodeTable] = {}
        self.edges: dict[EdgeType, list[EdgeTable]] = {}

    def add_nodes(self, label: str, ids: Sequence[str] | np.ndarray,
                  **attrs: np.ndarray) -> NodeTable:
        ids = np.asarray(ids, dtype=str)
        table = NodeTable(ids if len(ids) else np.zeros(0, dtype="<U1"),
                          {k: np.asarray(v) for k, v in attrs.items()})
        self.nodes[label] = table
        return table

    def add_edges(self, etype: EdgeType, src: np.ndarray, dst: np.ndarray,
                  **attrs: np.ndarray) -> None:
        self.edges.setdefault(etype, []).append(EdgeTable(src, dst, attrs))

    def add_interactions(self, users: np.ndarray, items: np.ndarray, *, behavior: str,
                         weight: np.ndarray | None = None, timestamp: np.ndarray | None = None,
                         fold: str | None = None) -> None:
        n = len(users)
        attrs: dict[str, np.ndarray] = {
            "behavior": np.full(n, behavior),
            "weight": np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64),
            "timestamp": np.full(n, np.nan) if timestamp is None
            else np.asarray(timestamp, dtype=np.float64),
        }
        if fold is not None:
            attrs["fold"] = np.full(n, fold)
        self.add_edges(INTERACTED, users, items, **attrs)

    def add_knowledge(self, head: np.ndarray, rel: np.ndarray, tail: np.ndarray,
                      relations: Sequence[str], num_items: int, *,
                      made_by: dict[str, np.ndarray] | None = None) -> None:
        """KG triples in the joint index space (items ``< num_items``, then entities).

        ``made_by``: per-triple attribute columns (``user``, ``timestamp``) kept on the edges
        of the relations that users made (``behavior`` holds their names) and dropped from
        the facts: ``{"behavior": [...names], "user": [T], "timestamp": [T]}``.
        """
        made_by = dict(made_by or {})
        behavior = set(made_by.pop("behavior", ()))
        h_item, t_item = head < num_items, tail < num_items
        for r, name in enumerate(relations):
            sel_r = rel == r
            for hi, ht in ((True, True), (True, False), (False, True), (False, False)):
                sel = sel_r & (h_item == hi) & (t_item == ht)
                if not sel.any():
                    continue
                et = (ITEM if hi else ENTITY, name, ITEM if ht else ENTITY)
                attrs = {k: v[sel] for k, v in made_by.items()} if name in behavior else {}
                self.add_edges(et, head[sel] - (0 if hi else num_items),
                               tail[sel] - (0 if ht else num_items), **attrs)

    def build(self, meta: dict[str, Any] | None = None, source: str | None = None) -> RecGraph:
        for label in (USER, ITEM):
            self.nodes.setdefault(label, NodeTable(np.zeros(0, dtype="<U1")))
        edges: dict[EdgeType, EdgeTable] = {}
        for et, parts in self.edges.items():
            keys = parts[0].attrs.keys()
            edges[et] = EdgeTable(np.concatenate([p.src for p in parts]),
                                  np.concatenate([p.dst for p in parts]),
                                  {k: np.concatenate([p.attrs[k] for p in parts]) for k in keys})
        graph = RecGraph(self.nodes, edges, self.name, meta)
        if self.require_interactions and len(graph.interactions) == 0:
            raise DataFormatError("the dataset has no interactions (empty after parsing)",
                                  file=source)
        return graph
