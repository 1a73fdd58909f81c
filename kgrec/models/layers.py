"""Layers models share: relation-aware KG messages (KGIN's relational aggregation).

:class:`RelationalMessages` is the KG half of ``kggnn``/``hgnn``'s propagation, a layer a
KGIN or KGAT implementation reuses: it holds a knowledge graph's edges (every triple also
reversed, with its own relation id) and, given node vectors ``x [N, d]`` and relation
vectors ``[2R, d]``, returns each node's mean of ``x[tail] * r`` over its KG edges.

Why not PyG's ``MessagePassing``: the same aggregation as a ``MessagePassing`` subclass
(``aggr="mean"``, ``message = x_j * r``) was measured against this one, forward and backward
on the bundled KGs, one thread (``benchmarks/kg_layer.py``, ``benchmarks/results/kg_layer.md``),
and importing ``torch_geometric`` alone costs every process seconds; this layer stays plain
torch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from kgrec.graph import KnowledgeTriples
from kgrec.models.ops import gather_rows, scatter_mean, segment_mean


class RelationalMessages(nn.Module):
    """Mean relational messages over a knowledge graph's edges, both directions.

    Args:
        kg: triples in the joint item+entity index space (``R`` relations).
        dropout: share of edges dropped at each training pass (one draw per call).

    Shapes:
        ``forward(x [N, d], rel_vecs [2R, d], into [N] bool | None) -> [N, d]``.
    """

    def __init__(self, kg: KnowledgeTriples, dropout: float = 0.0) -> None:
        super().__init__()
        n_rel = len(kg.relations)
        self.num_relations = n_rel
        self.dropout = dropout
        head = np.concatenate([kg.head, kg.tail])
        tail = np.concatenate([kg.tail, kg.head])
        rel = np.concatenate([kg.relation, kg.relation + n_rel])
        self.register_buffer("head", torch.from_numpy(head), persistent=False)
        self.register_buffer("tail", torch.from_numpy(tail), persistent=False)
        self.register_buffer("rel", torch.from_numpy(rel), persistent=False)
        # the edges in head order, for the segment-sum aggregation used on CUDA
        self.register_buffer("order", torch.from_numpy(np.argsort(head, kind="stable")),
                             persistent=False)

    def __len__(self) -> int:
        """Edges, both directions."""
        return len(self.head)

    def forward(self, x: Tensor, rel_vecs: Tensor, into: Tensor | None = None) -> Tensor:
        """Mean over each node's KG neighbours of ``x[tail] * r``: ``[N, d]``.

        ``into [N]`` (bool, optional): the nodes whose messages are needed; the rows of the
        others are left zero and their edges are not computed."""
        head, tail, rel = self.head, self.tail, self.rel
        keep = None
        if self.training and self.dropout > 0:
            keep = torch.rand(len(head), device=head.device) >= self.dropout
        sort = x.is_cuda
        # (kept in their original order otherwise: sorted, the CPU backward would sum a
        # tail's gradients in another order, and seeds would stop reproducing earlier runs)
        if sort:  # the same edges (and dropout draw), in head order
            o = self.order
            head, tail, rel = head[o], tail[o], rel[o]
            keep = keep[o] if keep is not None else None
        if keep is not None:
            head, tail, rel = head[keep], tail[keep], rel[keep]
        if into is not None:
            keep = into.index_select(0, head)
            head, tail, rel = head[keep], tail[keep], rel[keep]
        # gather_rows (index_select on CPU), not x[tail]: its backward is an index_add, 2.4x
        # faster on CPU than advanced indexing's accumulate-put for ~10^5 edges (a
        # micro-benchmark, 1 thread)
        msg = gather_rows(x, tail) * gather_rows(rel_vecs, rel)
        if sort:
            return segment_mean(msg, head, x.shape[0])
        return scatter_mean(msg, head, x.shape[0])
