"""RDF knowledge graphs (Turtle, N-Triples, RDF/XML, JSON-LD: whatever rdflib parses).

- Every IRI subject or object of an object property becomes a node: an ``Item`` when it has
  ``rdf:type`` the recipe's ``mapping.item_class``, else an ``Entity``. Its id is the IRI.
- ``rdfs:label`` / ``skos:prefLabel`` (English or untagged preferred) become the node's
  ``name`` and ``text``.
- Every other triple between two IRIs is a KG relation named by its predicate IRI (the store
  turns it into a safe relationship type, e.g. ``.../genre`` -> ``GENRE``).
- Optional ``files.interactions``: a tab-separated ``user item [weight [timestamp]]`` file,
  items given by IRI.

Literals other than labels, blank nodes and ``rdf:type`` triples are not relations.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from kgrec.errors import DataFormatError
from kgrec.graph import ENTITY, ITEM, USER
from kgrec.ingest.builder import GraphBuilder
from kgrec.ingest.recipe import Recipe
from kgrec.ingest.tables import read_table

log = logging.getLogger(__name__)

LABELS = ("http://www.w3.org/2000/01/rdf-schema#label",
          "http://www.w3.org/2004/02/skos/core#prefLabel")
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


def parse_rdf(path: Path, fmt: str | None = None):
    """An rdflib Graph of ``path``; a syntax error names the file (and line when rdflib
    reports one)."""
    import rdflib
    from rdflib.util import guess_format

    if not path.is_file():
        raise DataFormatError("file not found", file=path)
    g = rdflib.Graph()
    try:
        g.parse(str(path), format=fmt or guess_format(str(path)) or "turtle")
    except Exception as exc:  # rdflib raises parser-specific exception types
        line = getattr(exc, "lines", None) or getattr(exc, "line", None)
        raise DataFormatError(f"not valid RDF: {exc}".splitlines()[0][:300], file=path,
                              line=line if isinstance(line, int) else None) from None
    return g


def read(recipe: Recipe) -> GraphBuilder:
    from rdflib import Literal, URIRef

    path = recipe.file("kg")
    assert path is not None
    g = parse_rdf(path, recipe.opt("rdf_format"))
    item_class = recipe.opt("item_class")
    items: set[str] = set()
    if item_class:
        items = {str(s) for s in g.subjects(URIRef(RDF_TYPE), URIRef(item_class))
                 if isinstance(s, URIRef)}
    names: dict[str, tuple[int, str]] = {}  # iri -> (preference, label)
    triples: list[tuple[str, str, str]] = []
    for s, p, o in g:
        if not isinstance(s, URIRef):
            continue
        ps = str(p)
        if ps in LABELS and isinstance(o, Literal):
            pref = 0 if o.language in (None, "en") else 1
            if str(s) not in names or pref < names[str(s)][0]:
                names[str(s)] = (pref, str(o))
        elif ps != RDF_TYPE and isinstance(o, URIRef):
            triples.append((str(s), ps, str(o)))
    if not triples and not items:
        raise DataFormatError("no relations between IRIs and no items: nothing to load",
                              file=path)
    nodes = sorted({x for s, _, o in triples for x in (s, o)} | items)
    item_ids = [n for n in nodes if n in items]
    ent_ids = [n for n in nodes if n not in items]
    index = {n: k for k, n in enumerate(item_ids)}
    index.update({n: len(item_ids) + k for k, n in enumerate(ent_ids)})

    def label_col(ids: list[str]) -> np.ndarray:
        return np.asarray([names.get(i, (0, ""))[1] for i in ids], dtype=str)

    b = GraphBuilder(recipe.name, require_interactions=False)  # a KG alone is a valid load
    b.add_nodes(ITEM, item_ids, domain=np.full(len(item_ids), str(recipe.opt("domain",
                                                                             "default"))),
                name=label_col(item_ids), text=label_col(item_ids))
    b.add_nodes(ENTITY, ent_ids, name=label_col(ent_ids), text=label_col(ent_ids))
    relations = sorted({p for _, p, _ in triples})
    rid = {p: k for k, p in enumerate(relations)}
    if triples:
        h, r, t = zip(*[(index[s], rid[p], index[o]) for s, p, o in triples], strict=True)
        b.add_knowledge(np.asarray(h), np.asarray(r), np.asarray(t), relations, len(item_ids))

    inter_path = recipe.file("interactions", required=False)
    if inter_path is not None:
        table = read_table(inter_path, sep="\t", header=["user", "item", "weight", "timestamp"],
                           min_fields=2)
        users = sorted(set(table.strings("user")))
        uidx = {u: k for k, u in enumerate(users)}
        item_rows = []
        for k, iri in enumerate(table.strings("item")):
            i = index.get(iri)
            if i is None or i >= len(item_ids):
                raise DataFormatError(f"item {iri!r} is not an instance of the item class",
                                      file=inter_path, line=table.lines[k], field="item")
            item_rows.append(i)
        has_w = any(table.strings("weight"))
        has_t = any(table.strings("timestamp"))
        b.add_nodes(USER, users)
        b.add_interactions(np.asarray([uidx[u] for u in table.strings("user")]),
                           np.asarray(item_rows), behavior=str(recipe.opt("behavior",
                                                                          "interact")),
                           weight=table.floats("weight") if has_w else None,
                           timestamp=table.floats("timestamp", allow_nan=True) if has_t
                           else None)
    log.info("%s: %d items, %d entities, %d triples over %d predicates", path.name,
             len(item_ids), len(ent_ids), len(triples), len(relations))
    return b
