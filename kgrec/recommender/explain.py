"""Why an item is recommended to a user, in words a person can check.

Two kinds of reason, the first that applies:

- **knowledge-graph paths** (at most two hops) from the items the user had to the
  recommended one, as sentences: ``same film genre (Drama) as 'Heat'``. An entity the data
  gives no name (Last.FM's and ml-100k's KG entities are bare ids) is described by what the
  graph knows of it, the relation and the items that share it: ``same music artist origin
  as 'Portishead' (and 'Tricky', 12 more)``, never by its id;
- otherwise the **nearest items** the user had, by the model's own item vectors (cosine):
  ``like 'Air' (0.91) and 'Moby' (0.88), which you have``; the model ranks by those vectors,
  so this is the reason nearest to its own.

:class:`Explainer` finds them; :class:`Explaining` is what a
:class:`~kgrec.recommender.Recommender` answers them with (:meth:`Explaining.explain`,
:meth:`Explaining.explanations`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from kgrec.features.nodetext import readable
from kgrec.graph import KnowledgeTriples
from kgrec.recommender.catalogue import Catalogue, seen_items


@dataclass
class Explanation:
    """The reasons for one recommended item.

    Attributes:
        item: the recommended item's id; ``name`` its display name.
        paths: knowledge-graph paths from the user's items to it, as text.
        similar: ``(item name, cosine)`` of the user's items nearest to it in the model's
            item space (given when no path was found).
        graphs: the paths as small graphs to draw (:meth:`Explainer.graphs`).
    """

    item: str
    name: str
    paths: list[str] = field(default_factory=list)
    similar: list[tuple[str, float]] = field(default_factory=list)
    graphs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """One line: the first path, else the nearest items, else that nothing was found."""
        if self.paths:
            return self.paths[0]
        if self.similar:
            near = " and ".join(f"{n!r} ({s:.2f})" for n, s in self.similar)
            return f"no knowledge-graph path within two hops; like {near}, which you have"
        return "no knowledge-graph path within two hops, and no item of yours to compare"

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.item, "name": self.name, "paths": self.paths,
                "similar": [{"name": n, "cosine": round(s, 4)} for n, s in self.similar],
                "graphs": self.graphs}


class Explainer:
    """Explanations over one knowledge graph and one model's item vectors.

    Args:
        kg: the triples (items ``0..I-1``, then entities), or ``None``.
        item_names: display name per item ``[I]``.
        entity_ids, entity_names: per entity (names may be empty).
        item_vectors: the model's item vectors ``[I, d]``.
    """

    def __init__(self, kg: KnowledgeTriples | None, item_names: Sequence[str],
                 entity_ids: Sequence[str], entity_names: Sequence[str],
                 item_vectors: Tensor) -> None:
        self.kg = kg
        self.item_names = list(item_names)
        self.entity_ids = list(entity_ids)
        self.entity_names = list(entity_names)
        self.num_items = len(self.item_names)
        self._vectors = torch.nn.functional.normalize(item_vectors.detach().float().cpu(), dim=1)
        self._adj: dict[int, list[tuple[int, int, bool]]] | None = None

    # ------------------------------------------------------------------ the graph
    def _adjacency(self) -> dict[int, list[tuple[int, int, bool]]]:
        if self._adj is None:
            adj: dict[int, list[tuple[int, int, bool]]] = {}
            if self.kg is not None:
                for h, r, t in zip(self.kg.head.tolist(), self.kg.relation.tolist(),
                                   self.kg.tail.tolist(), strict=True):
                    adj.setdefault(h, []).append((r, t, True))
                    adj.setdefault(t, []).append((r, h, False))
            self._adj = adj
        return self._adj

    def node_name(self, node: int) -> str:
        """An item's name, quoted; an entity's own name, or ``""`` when it has none."""
        if self.kg is None or node < self.kg.num_items:
            return repr(self.item_names[node])
        e = node - self.kg.num_items
        return self.entity_names[e] if e < len(self.entity_names) else ""

    def _sharing(self, entity: int, relation: int, skip: tuple[int, ...]) -> list[str]:
        """Names of other items the KG links to ``entity`` by ``relation`` (up to two, and how
        many more)."""
        assert self.kg is not None
        linked = list(dict.fromkeys(n for r, n, _ in self._adjacency().get(entity, [])
                                    if r == relation and n < self.kg.num_items
                                    and n not in skip))
        out = [repr(self.item_names[n]) for n in linked[:2]]
        if len(linked) > 2:
            out.append(f"{len(linked) - 2} more")
        return out

    def routes(self, seen: Sequence[int], target: int, max_paths: int = 5
               ) -> list[tuple[int, int, bool, int | None, int, bool]]:
        """KG routes of at most two hops from any of ``seen`` to ``target``:
        ``(s, r1, fwd1, n, r2, fwd2)`` is ``s -r1-> n <-r2- target`` (an arrow's ``fwd``
        says whether the triple points away from its item), ``(s, r1, fwd1, None, -1,
        False)`` is the one hop ``s -r1-> target``."""
        if self.kg is None or target >= self.kg.num_items:
            return []
        adj = self._adjacency()
        target_nb: dict[int, list[tuple[int, bool]]] = {}
        for r, n, fwd in adj.get(target, []):
            target_nb.setdefault(n, []).append((r, fwd))
        out: list[tuple[int, int, bool, int | None, int, bool]] = []
        for s in seen:
            for r1, n, fwd1 in adj.get(s, []):
                if n == target:
                    out.append((s, r1, fwd1, None, -1, False))
                for r2, fwd2 in target_nb.get(n, []):
                    if n in (s, target):
                        continue
                    out.append((s, r1, fwd1, n, r2, fwd2))
                if len(out) >= max_paths:
                    return out[:max_paths]
        return out[:max_paths]

    def paths(self, seen: Sequence[int], target: int, max_paths: int = 5) -> list[str]:
        """KG paths of at most two hops from any of ``seen`` to ``target``, as sentences:
        ``'Ronin' -[film director]-> 'Heat'`` (one hop), ``same film genre (Drama) as
        'Heat'`` (two hops through one relation), ``same music artist origin as 'Air' (and
        'Moby')`` where the entity has no name, ``'A' -[r1]-> X <-[r2]- 'B'`` otherwise."""
        rel = self.kg.relations if self.kg is not None else []

        def arrow(r: int, fwd: bool) -> str:
            return f"-[{readable(rel[r])}]->" if fwd else f"<-[{readable(rel[r])}]-"

        out: list[str] = []
        for s, r1, fwd1, n, r2, fwd2 in self.routes(seen, target, max_paths):
            if n is None:
                out.append(f"{self.node_name(s)} {arrow(r1, fwd1)} {self.node_name(target)}")
                continue
            name = self.node_name(n)
            if r1 == r2 and fwd1 == fwd2:  # both items relate to n the same way
                also = self._sharing(n, r1, (s, target))
                out.append(f"same {readable(rel[r1])}{f' ({name})' if name else ''} as "
                           f"{self.node_name(s)}" + (f" (and {', '.join(also)})" if also else ""))
            else:
                middle = name or "(an entity both link to)"
                out.append(f"{self.node_name(s)} {arrow(r1, fwd1)} {middle} "
                           f"{arrow(r2, not fwd2)} {self.node_name(target)}")
        return out

    def graphs(self, seen: Sequence[int], target: int, max_paths: int = 3
               ) -> list[dict[str, Any]]:
        """The routes of :meth:`routes` as small graphs to draw: ``{"nodes": [{"id", "kind",
        "label"}], "edges": [{"source", "target", "label"}]}``, from the user through one of
        its items (and an entity) to ``target``; an entity without a name is labelled by its
        relation."""
        rel = self.kg.relations if self.kg is not None else []
        out = []
        for s, r1, _, n, r2, _ in self.routes(seen, target, max_paths):
            nodes = [{"id": "user", "kind": "user", "label": "you"},
                     {"id": f"item:{s}", "kind": "item", "label": self.item_names[s]}]
            edges = [{"source": "user", "target": f"item:{s}", "label": "had"}]
            last = f"item:{s}"
            if n is not None:
                name = self.node_name(n) or readable(rel[r1])
                nodes.append({"id": f"entity:{n}", "kind": "entity", "label": name})
                edges.append({"source": last, "target": f"entity:{n}",
                              "label": readable(rel[r1])})
                last, r_last = f"entity:{n}", r2
            else:
                r_last = r1
            nodes.append({"id": f"item:{target}", "kind": "recommended",
                          "label": self.item_names[target]})
            edges.append({"source": last, "target": f"item:{target}",
                          "label": readable(rel[r_last])})
            out.append({"nodes": nodes, "edges": edges})
        return out

    def similar(self, seen: Sequence[int], target: int, k: int = 2) -> list[tuple[str, float]]:
        """The ``k`` of ``seen`` nearest to ``target`` by cosine of the item vectors."""
        if not len(seen):
            return []
        idx = torch.as_tensor(list(seen))
        cos = self._vectors[idx] @ self._vectors[target]
        top = torch.topk(cos, min(k, len(seen)))
        return [(self.item_names[int(idx[i])], float(v))
                for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]

    def explain(self, seen: Sequence[int], target: int, target_id: str,
                max_paths: int = 3) -> Explanation:
        """Why ``target`` for a user who had ``seen``: paths, else the nearest items."""
        found = self.paths(seen, target, max_paths)
        return Explanation(target_id, self.item_names[target], found,
                           [] if found else self.similar(seen, target),
                           self.graphs(seen, target, max_paths) if found else [])



class Explaining(Catalogue):
    """A :class:`~kgrec.recommender.catalogue.Catalogue`'s explanations, over its KG, its
    items' names and vectors and what each user has."""

    @property
    def explainer(self) -> Explainer:
        """The :class:`Explainer` over this model's KG and items."""
        if self._explainer is None:
            self._explainer = Explainer(self.kg, self.item_names, self.entity_ids,
                                        self.entity_names, self.item_embedding)
        return self._explainer

    def explain(self, user: str, item: str, max_paths: int = 5) -> list[str]:
        """Knowledge-graph paths from the user's training items to ``item`` (at most two hops),
        as text; entities without a name are named by the relation and the items they link.

        Each path reads ``seen item -[relation]-> entity <-[relation]- item``.
        """
        (u,) = self.user_index([user])
        (t,) = self.item_index([item])
        return self.explainer.paths(seen_items(self.seen, int(u)).tolist(), int(t), max_paths)

    def explanations(self, user: str, items: Sequence[str], max_paths: int = 3
                     ) -> list[Explanation]:
        """Why each of ``items`` suits ``user``: KG paths where there are any, else the
        user's items nearest to it by the model's item vectors."""
        (u,) = self.user_index([user])
        seen = seen_items(self.seen, int(u)).tolist()
        return [self.explainer.explain(seen, int(t), str(x), max_paths)
                for x, t in zip(items, self.item_index(items), strict=True)]
