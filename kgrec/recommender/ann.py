"""An approximate top-K index for large catalogues (optional: ``pip install hnswlib``).

kgrec ranks by inner product, and graph indexes search best by a metric in which every item
looks alike; so the items are lifted to a sphere first (Bachrach et al., 2014): item ``x``
becomes ``[x, sqrt(M^2 - |x|^2)]`` and a query ``[q, 0]``, where ``M`` is the largest item
norm, which leaves every inner product, and so the ranking, unchanged while giving every item
norm ``M``. An item added later with a norm above ``M`` is lifted with 0 (its inner product
is still exact; the index may find it less reliably). Whether lifting helps depends on the
norms: on a trained LightGCN's items (kgat-amazon-book) it raised recall@20 at ``ef`` 128
from 0.87 to 0.99; on vectors whose norms are heavy-tailed (a few items far longer than the
rest) it lowers it (0.46 against 0.99 raw on a gamma-scaled Gaussian), since nearly every
lifted item then sits near the pole. ``lift=False`` searches the raw inner product.

Backends, chosen by measurement on a 1M-item catalogue (``benchmarks/serve.py --parts ann``):
``hnswlib`` (the default), ``faiss`` (``IndexHNSWFlat``) and ``usearch``, each where it is
installed. Search effort (the candidate list's length, ``ef``) trades recall for speed.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

BACKENDS = ("hnswlib", "faiss", "usearch")
#: ``ef`` levels a benchmark sweeps; the default effort is the one that met recall >= 0.98
EFFORTS = (32, 64, 128, 256, 512)
DEFAULT_EFFORT = 128


def available() -> list[str]:
    """The backends whose libraries are installed."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


class AnnIndex:
    """An approximate maximum-inner-product index over item vectors ``[I, d]``.

    Build with :meth:`build`; :meth:`search` returns item indices ``[B, k]``, best first (by
    the index's order, which approximates the exact inner-product order).
    """

    def __init__(self, backend: str, index: Any, dim: int, max_norm: float | None, size: int,
                 params: dict[str, Any]) -> None:
        self.backend, self._index, self.dim = backend, index, dim
        self.max_norm, self.size, self._params = max_norm, size, params
        self.effort = DEFAULT_EFFORT
        self.set_effort(DEFAULT_EFFORT)

    @classmethod
    def build(cls, items: np.ndarray, *, backend: str = "hnswlib", m: int = 16,
              ef_construction: int = 100, threads: int = 1, lift: bool = True) -> AnnIndex:
        """Index ``items`` ``[I, d]`` (float32).

        Args:
            backend: one of :data:`BACKENDS` (its library installed).
            m: graph degree (each node keeps ``2 m`` neighbours at the bottom layer).
            ef_construction: candidate list while building (higher: better graph, slower).
            threads: build threads.
            lift: search the items lifted to a sphere (see the module), else the raw inner
                product.

        Raises:
            ImportError: the backend's library is not installed (the message says which).
        """
        if backend not in BACKENDS:
            raise ValueError(f"unknown ANN backend {backend!r}; one of {BACKENDS}")
        if importlib.util.find_spec(backend) is None:
            raise ImportError(f"the {backend!r} ANN backend needs `pip install "
                              f"{'faiss-cpu' if backend == 'faiss' else backend}`")
        items = np.ascontiguousarray(items, dtype=np.float32)
        max_norm = None
        if lift:
            max_norm = float(np.linalg.norm(items, axis=1).max()) if len(items) else 1.0
        lifted = _lift(items, max_norm)
        n, dim = lifted.shape
        params = {"m": m, "ef_construction": ef_construction, "lift": lift}
        if backend == "hnswlib":
            import hnswlib

            index = hnswlib.Index(space="ip", dim=dim)
            index.init_index(max_elements=max(n, 1), ef_construction=ef_construction, M=m)
            index.set_num_threads(threads)
            if n:
                index.add_items(lifted, np.arange(n))
        elif backend == "faiss":
            import faiss

            faiss.omp_set_num_threads(threads)
            index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            if n:
                index.add(lifted)
        else:
            from usearch.index import Index

            index = Index(ndim=dim, metric="ip", dtype="f32", connectivity=m,
                          expansion_add=ef_construction)
            if n:
                index.add(np.arange(n), lifted, threads=threads)
        return cls(backend, index, dim, max_norm, n, params)

    def effort_levels(self) -> tuple[int, ...]:
        return EFFORTS

    def params(self) -> dict[str, Any]:
        """How it was built, and its search effort."""
        return {**self._params, "backend": self.backend, "effort": self.effort}

    def set_effort(self, ef: int) -> None:
        """Search effort: the candidate list's length (at least the ``k`` asked)."""
        self.effort = int(ef)
        if self.backend == "hnswlib":
            self._index.set_ef(self.effort)
        elif self.backend == "faiss":
            self._index.hnsw.efSearch = self.effort
        else:
            self._index.expansion_search = self.effort

    def add(self, items: np.ndarray) -> None:
        """Append items ``[N, d]`` (they get the next indices)."""
        items = np.ascontiguousarray(items, dtype=np.float32)
        lifted = _lift(items, self.max_norm)
        ids = np.arange(self.size, self.size + len(items))
        if self.backend == "hnswlib":
            if self._index.get_max_elements() < self.size + len(items):
                self._index.resize_index(max(2 * self._index.get_max_elements(),
                                             self.size + len(items)))
            self._index.add_items(lifted, ids)
        elif self.backend == "faiss":
            self._index.add(lifted)
        else:
            self._index.add(ids, lifted)
        self.size += len(items)

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Item indices ``[B, k]`` nearest by inner product to queries ``[B, d]`` (``k`` at
        most the index's size)."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if self.max_norm is not None:
            q = np.concatenate([q, np.zeros((len(q), 1), np.float32)], axis=1)
        k = min(k, self.size)
        if self.backend == "hnswlib":
            if self.effort < k:
                self._index.set_ef(k)
            labels, _ = self._index.knn_query(q, k=k)
            if self.effort < k:
                self._index.set_ef(self.effort)
            return labels.astype(np.int64)
        if self.backend == "faiss":
            self._index.hnsw.efSearch = max(self.effort, k)
            return self._index.search(q, k)[1].astype(np.int64)
        self._index.expansion_search = max(self.effort, k)
        found = self._index.search(q, k)
        keys = np.asarray(found.keys, dtype=np.int64)
        return keys.reshape(len(q), -1)


def _lift(items: np.ndarray, max_norm: float | None) -> np.ndarray:
    """``[x, sqrt(M^2 - |x|^2)]``: every item on the sphere of radius ``M`` (``None``: the
    items as they are)."""
    if max_norm is None:
        return items
    sq = np.maximum(max_norm ** 2 - (items.astype(np.float64) ** 2).sum(1), 0.0)
    return np.concatenate([items, np.sqrt(sq).astype(np.float32)[:, None]], axis=1)
