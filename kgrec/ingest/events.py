"""Events logged after a dataset was made (``kgrec serve``'s durable log) read back, and
added to a graph so that the next training run learns from them.

The log is JSON lines, one event each (see :mod:`kgrec.serve.events`, which writes it)::

    {"seq": 1, "type": "interaction", "user": "u1", "item": "i9", "behavior": "click",
     "time": 1.7e9, "received": "..."}
    {"seq": 2, "type": "item", "id": "new-1", "text": "...", "name": "...", "domain": ""}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.errors import DataFormatError
from kgrec.graph import INTERACTED, ITEM, USER, EdgeTable, NodeTable, RecGraph


def read_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """The log's events in order (a partial last line, from a crash mid-write, skipped: it
    was never acknowledged). A missing file has no events.

    Raises:
        DataFormatError: a complete line that is not an event (naming file and line).
    """
    path = Path(path)
    if not path.is_file():
        return
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                return  # torn by a crash: never acknowledged
            try:
                doc = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataFormatError(f"{path}:{n}: not a JSON event ({exc})") from None
            if not isinstance(doc, dict) or doc.get("type") not in ("interaction", "item"):
                raise DataFormatError(f"{path}:{n}: an event is an object whose 'type' is "
                                      "'interaction' or 'item'")
            need = ("user", "item") if doc["type"] == "interaction" else ("id", "text")
            missing = [k for k in need if not isinstance(doc.get(k), str) or not doc[k]]
            if missing:
                raise DataFormatError(f"{path}:{n}: field {missing[0]!r} missing or not a "
                                      "non-empty string")
            doc["_line"] = n
            yield doc


def _missing(col: np.ndarray, n: int) -> np.ndarray:
    """``n`` missing values of ``col``'s kind: '' for text, NaN for numbers and vectors."""
    if col.dtype.kind in "USO":
        return np.full(n, "", dtype=col.dtype if col.dtype.kind != "O" else object)
    return np.full((n, *col.shape[1:]), np.nan)


def _extend(cols: dict[str, np.ndarray], n: int, values: dict[str, list[Any]]
            ) -> dict[str, np.ndarray]:
    """Each column of ``cols`` with ``n`` rows appended: ``values[column]`` where given
    (``None``: missing), else missing values of its kind (integers become floats, to hold
    NaN)."""
    out = {}
    for k, col in cols.items():
        new = _missing(col, n)
        for j, v in enumerate(values.get(k, [None] * n)):
            if v is not None:
                new[j] = v
        out[k] = np.concatenate([col.astype(new.dtype) if col.dtype.kind in "iub" else col,
                                 new])
    return out


def _grow(table: NodeTable, ids: list[str], values: dict[str, list[Any]]) -> NodeTable:
    return NodeTable(np.concatenate([table.ids, np.asarray(ids, dtype=str)]),
                     _extend(table.attrs, len(ids), values))


def with_events(graph: RecGraph, path: str | Path) -> RecGraph:
    """``graph`` with the logged new items (their text, name and domain), new users and new
    interactions (behaviour, time, weight 1) added, as if the dataset had held them. A link
    the graph already has is added again (as a repeated interaction in the source would
    be); splits count a user-item pair once.

    Raises:
        DataFormatError: an interaction names an item neither the graph nor an earlier event
            has (naming the file and line).
    """
    events = list(read_events(path))
    item_ids = graph.items.lookup
    new_items: dict[str, dict[str, Any]] = {}
    for e in events:
        if e["type"] == "item" and e["id"] not in item_ids and e["id"] not in new_items:
            new_items[e["id"]] = e
    users = graph.users.lookup
    new_users: dict[str, None] = {}
    links = []
    for e in events:
        if e["type"] != "interaction":
            continue
        if e["item"] not in item_ids and e["item"] not in new_items:
            raise DataFormatError(f"{path}:{e['_line']}: item {e['item']!r} is in neither "
                                  f"{graph.name} nor an earlier event")
        if e["user"] not in users:
            new_users.setdefault(e["user"], None)
        links.append(e)
    if not new_items and not links:
        return graph
    items = _grow(graph.items, list(new_items), {
        "text": [e.get("text") for e in new_items.values()],
        "name": [e.get("name") or e.get("text") for e in new_items.values()],
        "domain": [e.get("domain") or None for e in new_items.values()]})
    people = _grow(graph.users, list(new_users), {})
    nodes = {**graph.nodes, ITEM: items, USER: people}
    edges = dict(graph.edges)
    if links:
        old = graph.interactions
        u_look, i_look = people.lookup, items.lookup
        src = np.asarray([u_look[e["user"]] for e in links], dtype=old.src.dtype)
        dst = np.asarray([i_look[e["item"]] for e in links], dtype=old.dst.dtype)
        given = {"behavior": [e.get("behavior", "click") for e in links],
                 "weight": [1.0] * len(links),
                 "timestamp": [e.get("time") for e in links]}
        edges[INTERACTED] = EdgeTable(np.concatenate([old.src, src]),
                                      np.concatenate([old.dst, dst]),
                                      _extend(old.attrs, len(links), given))
    return RecGraph(nodes, edges, graph.name, {**graph.meta, "events": str(path)})
