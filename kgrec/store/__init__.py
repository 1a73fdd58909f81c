"""Graph stores: the embedded local store (default) and Neo4j.

A store writes a :class:`~kgrec.graph.RecGraph` and reads one back; both sides validate
against a :class:`~kgrec.schema.GraphSchema`.
"""

from kgrec.store.local import LocalStore

__all__ = ["LocalStore"]
