"""Link-prediction tasks: which training pairs each head learns from.

A task is named by a small expression over the training interactions:

- ``all``: every training pair (the main head; ranking and evaluation use it);
- ``weight>=T``: pairs whose largest interaction weight is at least ``T`` (ml-100k's
  rating >= 4 = "like", beside "all" = "watched");
- ``domain=X``: pairs whose item is in domain ``X`` (cross-domain data: one head per domain);
- ``behavior=X``: pairs with at least one interaction of behaviour ``X``;
- ``kg``: knowledge-graph completion over (head, relation, tail) triples.

``auto`` expands to ``all``, plus ``weight>=4`` when the weights are a 1-5 style rating,
one ``domain=`` per domain when there are several, one ``behavior=`` per behaviour when there
are several, and ``kg`` when the graph has a KG.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from kgrec.errors import ConfigError
from kgrec.graph import RecGraph

_EXPR = re.compile(r"^(all|kg|weight>=(?P<t>[-+0-9.eE]+)|(?P<k>domain|behavior)=(?P<v>.+))$")


@dataclass
class Task:
    """One head's training signal: ``mask[P]`` over the training pairs (``None`` for ``kg``)."""

    name: str
    mask: np.ndarray | None


def _pair_index(graph: RecGraph, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """For each interaction row, the index of its (user, item) in the training pairs, or -1."""
    n = max(1, graph.num_items)
    keys = users.astype(np.int64) * n + items
    order = np.argsort(keys)
    inter = graph.interactions
    q = inter.src * n + inter.dst
    pos = np.clip(np.searchsorted(keys[order], q), 0, max(0, len(keys) - 1))
    hit = len(keys) > 0
    found = hit & (keys[order][pos] == q) if hit else np.zeros(len(q), dtype=bool)
    return np.where(found, order[pos], -1)


def auto_tasks(graph: RecGraph, use_kg: bool) -> list[str]:
    """The task names ``auto`` stands for on ``graph``."""
    names = ["all"]
    w = graph.interactions.attrs.get("weight")
    if w is not None:
        w = w[np.isfinite(w)]
        if len(np.unique(w)) > 2 and 4 <= w.max() <= 5 and w.min() >= 0:
            names.append("weight>=4")
    domains = graph.items.attrs.get("domain")
    if domains is not None and len(np.unique(domains)) > 1:
        names += [f"domain={d}" for d in np.unique(domains).tolist()]
    beh = graph.interactions.attrs.get("behavior")
    if beh is not None and len(np.unique(beh)) > 1:
        names += [f"behavior={b}" for b in np.unique(beh).tolist()]
    if use_kg and graph.knowledge_edge_types():
        names.append("kg")
    return names


def resolve_tasks(spec: list[str], graph: RecGraph, users: np.ndarray, items: np.ndarray,
                  use_kg: bool = True) -> list[Task]:
    """The tasks ``spec`` names, with their masks over the training pairs ``users/items [P]``.

    Raises:
        ConfigError: an unknown expression, or a named task with no training pair (a task
            ``auto`` proposes is dropped instead: e.g. the source domain's head when the
            cross-domain split trains on the target domain alone).
    """
    names: list[str] = []
    implied: set[str] = set()
    for s in spec:
        for n in (auto_tasks(graph, use_kg) if s == "auto" else [s]):
            if n not in names:
                names.append(n)
                if s == "auto":
                    implied.add(n)
    if "all" not in names:
        names.insert(0, "all")  # ranking needs the main head
    rows = None
    out = []
    for name in names:
        m = _EXPR.match(name)
        if m is None:
            raise ConfigError(f"model.hgnn.tasks: {name!r} is not all, kg, weight>=T, domain=X or "
                              "behavior=X")
        if name == "all":
            out.append(Task(name, np.ones(len(users), dtype=bool)))
            continue
        if name == "kg":
            if not use_kg or not graph.knowledge_edge_types():
                raise ConfigError("model.hgnn.tasks: 'kg' needs a knowledge graph and "
                                  "model.hgnn.use_kg")
            out.append(Task(name, None))
            continue
        if rows is None:
            rows = _pair_index(graph, users, items)
        inter = graph.interactions
        ok = rows >= 0
        mask = np.zeros(len(users), dtype=bool)
        if m["t"] is not None:
            w = inter.attrs.get("weight")
            if w is None:
                raise ConfigError(f"model.hgnn.tasks: {name!r}: {graph.name} has no weights")
            sel = ok & (np.nan_to_num(w, nan=-np.inf) >= float(m["t"]))
            mask[rows[sel]] = True
        elif m["k"] == "behavior":
            b = inter.attrs.get("behavior")
            if b is None:
                raise ConfigError(f"model.hgnn.tasks: {name!r}: {graph.name} has no behaviours")
            sel = ok & (b == m["v"])
            mask[rows[sel]] = True
        else:
            d = graph.items.attrs.get("domain")
            if d is None:
                raise ConfigError(f"model.hgnn.tasks: {name!r}: {graph.name}'s items have no "
                                  "domain")
            mask = d[items] == m["v"]
        if not mask.any():
            if name in implied:
                continue
            raise ConfigError(f"model.hgnn.tasks: {name!r} selects no training pair of "
                              f"{graph.name}")
        out.append(Task(name, mask))
    return out
