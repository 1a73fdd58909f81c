"""The embedded local store: a directory with ``manifest.json`` and one ``.npy`` per column.

Writes go to a temporary sibling directory that is renamed into place only when complete, and
``manifest.json`` is written last; so a reader sees either the old graph, the new graph or
nothing, never half of one. Arrays are saved without pickle.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.errors import StoreError
from kgrec.graph import EdgeTable, NodeTable, RecGraph
from kgrec.schema import GraphSchema

FORMAT = "kgrec-local/1"


class LocalStore:
    """A RecGraph on disk at ``root``.

    Args:
        root: the store directory (created on :meth:`write`).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def exists(self) -> bool:
        return (self.root / "manifest.json").is_file()

    def manifest(self) -> dict[str, Any]:
        path = self.root / "manifest.json"
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise StoreError(f"no graph stored at {self.root} (missing manifest.json)") from None
        except json.JSONDecodeError as exc:
            raise StoreError(f"{path}: corrupt manifest: {exc}") from exc
        if doc.get("format") != FORMAT:
            raise StoreError(f"{path}: unsupported store format {doc.get('format')!r}")
        return doc

    def write(self, graph: RecGraph, schema: GraphSchema | None = None,
              extra: dict[str, Any] | None = None) -> None:
        """Validate ``graph`` (against ``schema`` when given) and store it atomically."""
        graph.validate(schema)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.tmp-", dir=self.root.parent))
        try:
            manifest: dict[str, Any] = {"format": FORMAT, "name": graph.name,
                                        "schema": schema.name if schema else None,
                                        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                        "meta": graph.meta, "nodes": {}, "edges": []}
            manifest.update(extra or {})
            for t, table in graph.nodes.items():
                d = tmp / "nodes" / t
                d.mkdir(parents=True)
                _save(d / "ids.npy", table.ids)
                for k, v in table.attrs.items():
                    _save(d / f"{k}.npy", v)
                manifest["nodes"][t] = {"count": len(table), "attrs": sorted(table.attrs)}
            for k, (et, table) in enumerate(graph.edges.items()):
                d = tmp / "edges" / str(k)
                d.mkdir(parents=True)
                _save(d / "src.npy", table.src)
                _save(d / "dst.npy", table.dst)
                for name, v in table.attrs.items():
                    _save(d / f"{name}.npy", v)
                manifest["edges"].append({"type": list(et), "dir": str(k), "count": len(table),
                                          "attrs": sorted(table.attrs)})
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
            old = self.root.with_name(f".{self.root.name}.old-{os.getpid()}-{time.time_ns()}")
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.root, old)
            try:
                os.rename(tmp, self.root)
            except OSError:
                # another process wrote the same store between our two renames; keep theirs
                if not (self.root / "manifest.json").is_file():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def read(self, schema: GraphSchema | None = None) -> RecGraph:
        """Load the stored graph (validated against ``schema`` when given)."""
        doc = self.manifest()
        nodes = {}
        for t, spec in doc["nodes"].items():
            d = self.root / "nodes" / t
            nodes[t] = NodeTable(_load(d / "ids.npy"), {k: _load(d / f"{k}.npy")
                                                        for k in spec["attrs"]})
        edges = {}
        for spec in doc["edges"]:
            d = self.root / "edges" / spec["dir"]
            edges[tuple(spec["type"])] = EdgeTable(_load(d / "src.npy"), _load(d / "dst.npy"),
                                                   {k: _load(d / f"{k}.npy")
                                                    for k in spec["attrs"]})
        graph = RecGraph(nodes, edges, doc["name"], doc.get("meta"))
        if schema is not None:
            graph.validate(schema)
        return graph


def _save(path: Path, arr: np.ndarray) -> None:
    if arr.dtype == object:
        raise StoreError(f"{path.name}: object arrays cannot be stored (use fixed-width strings)")
    np.save(path, arr, allow_pickle=False)


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: cannot read stored array: {exc}") from exc
