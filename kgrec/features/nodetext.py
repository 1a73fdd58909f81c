"""What text each node gets (the input of the text encoder).

- Items: their ``text`` (recipes compose it: title, year, genres), else ``name``.
- Entities: their ``name`` / ``text`` where the data has one (RDF labels, MovieLens genres
  and tags); otherwise a description from the KG itself: the readable relation names that
  link the entity to items, with those items' names, e.g.
  ``"music artist origin of: Queen, Muse, Radiohead"``. Entities with neither get no text.
- Users: their ``text`` (ml-100k: "A 24 year old technician, gender M."), else none.
- Relations: their names with separators as spaces (``film.film.actor`` -> ``film film actor``).
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from kgrec.graph import ENTITY, ITEM, USER, RecGraph


def readable(relation: str) -> str:
    """``film.film.actor`` / ``http://x.org/ns#hasGenre`` -> ``film film actor`` / ``has genre``."""
    local = re.split(r"[/#]", relation.rstrip("/#"))[-1] if "://" in relation else relation
    local = re.sub(r"([a-z])([A-Z])", r"\1 \2", local)
    return " ".join(re.split(r"[._:\-\s]+", local)).strip().lower()


def _own_text(table) -> np.ndarray:
    n = len(table)
    out = np.full(n, "", dtype=object)
    for key in ("name", "text"):  # text wins: it is the richer one
        col = table.attrs.get(key)
        if col is not None:
            out = np.where(col != "", col.astype(object), out)
    return out


def node_texts(graph: RecGraph, *, max_items: int = 5) -> dict[str, list[str]]:
    """The text of every node, per node type (``""`` = no text)."""
    out: dict[str, list[str]] = {}
    kinds = graph.meta.get("attributes") or {}
    for t in (USER, ITEM):
        out[t] = [str(x) for x in _own_text(graph.nodes[t])] if t in graph.nodes else []
        # attributes a recipe declares as text join the node's own: "bio: plays the oboe"
        for attr in [a for a, k in (kinds.get(t) or {}).items() if k == "text"]:
            col = graph.nodes[t].attrs[attr].astype(str).tolist()
            out[t] = [". ".join(x for x in (own, f"{readable(attr)}: {v}" if v else "") if x)
                      for own, v in zip(out[t], col, strict=True)]
    if ENTITY in graph.nodes:
        ents = graph.nodes[ENTITY]
        own = _own_text(ents)
        names_col = graph.items.attrs.get("name")
        item_names = (names_col.astype(object) if names_col is not None
                      else _own_text(graph.items))
        # entity -> relation -> names of linked items
        linked: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for (src, rel, dst), table in graph.edges.items():
            if {src, dst} != {ITEM, ENTITY}:
                continue
            items, es = (table.src, table.dst) if src == ITEM else (table.dst, table.src)
            for i, e in zip(items.tolist(), es.tolist(), strict=True):
                names = linked[e][rel]
                if len(names) < max_items and item_names[i]:
                    names.append(str(item_names[i]))
        texts = []
        for e in range(len(ents)):
            if own[e]:
                texts.append(str(own[e]))
            elif e in linked:
                parts = [f"{readable(r)} of: {', '.join(n)}" if n else readable(r)
                         for r, n in sorted(linked[e].items())]
                texts.append("; ".join(parts))
            else:
                texts.append("")
        out[ENTITY] = texts
    return out


def relation_texts(relations: list[str]) -> list[str]:
    return [readable(r) for r in relations]
