"""One reader per source format; each turns a resolved :class:`Recipe` into a filled
:class:`GraphBuilder`."""

from __future__ import annotations

from collections.abc import Callable

from kgrec.ingest.builder import GraphBuilder
from kgrec.ingest.recipe import Recipe

Reader = Callable[[Recipe], GraphBuilder]


def readers() -> dict[str, Reader]:
    from kgrec.ingest.formats import atomic, disencdr, kgat, kgcn, movielens, rdf

    return {"kgcn": kgcn.read, "recbole-atomic": atomic.read, "movielens-csv": movielens.read,
            "kgat": kgat.read, "disencdr": disencdr.read, "rdf": rdf.read}
