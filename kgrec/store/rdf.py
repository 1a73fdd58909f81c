"""Writing a RecGraph's knowledge graph as RDF (rdflib serialisers)."""

from __future__ import annotations

import re
from pathlib import Path

from kgrec.graph import ENTITY, ITEM, RecGraph

KGREC = "urn:kgrec:"
_IRI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s<>\"{}|\\^`]+$")


def _iri(value: str, kind: str) -> str:
    """The value itself when it is an IRI, else ``urn:kgrec:<kind>:<value>`` (escaped)."""
    if _IRI.match(value) and not value.startswith(("urn:kgrec:",)) and "://" in value:
        return value
    from urllib.parse import quote

    return f"{KGREC}{kind}:{quote(value, safe='')}"


def export_rdf(graph: RecGraph, path: str | Path, fmt: str | None = None) -> int:
    """Write the KG (items, entities, their labels and relations) to ``path``.

    Nodes keep their id when it is an IRI; otherwise they get ``urn:kgrec:item:<id>`` /
    ``urn:kgrec:entity:<id>``. Items are typed ``urn:kgrec:Item``; names become ``rdfs:label``.
    The format follows the file extension (``.ttl``, ``.nt``, ``.rdf``/``.xml``, ``.jsonld``).
    Returns the number of triples written.
    """
    import rdflib
    from rdflib.namespace import RDF, RDFS
    from rdflib.util import guess_format

    g = rdflib.Graph()
    iris: dict[str, list[rdflib.URIRef]] = {}
    for label, kind in ((ITEM, "item"), (ENTITY, "entity")):
        table = graph.nodes.get(label)
        if table is None:
            continue
        refs = [rdflib.URIRef(_iri(i, kind)) for i in table.ids.tolist()]
        iris[label] = refs
        names = table.attrs.get("name")
        for k, ref in enumerate(refs):
            if label == ITEM:
                g.add((ref, RDF.type, rdflib.URIRef(KGREC + "Item")))
            if names is not None and names[k]:
                g.add((ref, RDFS.label, rdflib.Literal(str(names[k]))))
    for et in graph.knowledge_edge_types():
        pred = rdflib.URIRef(_iri(et[1], "relation"))
        table = graph.edges[et]
        heads, tails = iris[et[0]], iris[et[2]]
        for s, d in zip(table.src.tolist(), table.dst.tolist(), strict=True):
            g.add((heads[s], pred, tails[d]))
    path = Path(path)
    g.serialize(destination=str(path), format=fmt or guess_format(str(path)) or "turtle",
                encoding="utf-8")
    return len(g)
