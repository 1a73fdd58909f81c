"""Sparse propagation with a backward pass that reuses the (symmetric) adjacency."""

from __future__ import annotations

import torch
from torch import Tensor


class _SymmetricSpMM(torch.autograd.Function):
    # For a symmetric A, d(A x)/dx^T g = A g: reusing A skips the CSR transpose (a sort)
    # that autograd would otherwise build on every backward pass (~30% of a LightGCN step).
    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:  # type: ignore[override]
        return None, torch.sparse.mm(ctx.adj, grad)


def propagate(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for a symmetric sparse ``adj`` ``[N, N]`` and dense ``x`` ``[N, d]``."""
    return _SymmetricSpMM.apply(adj, x)


class WeightedAdjacency:
    """``x -> sum_k w_k (A_k @ x)``: a symmetric adjacency split into parts ``A_k`` (sparse,
    ``[N, N]``) weighted by scalars ``w_k`` (tensors; learned weights get their gradient
    through the dense product, so the sparse parts stay constant)."""

    def __init__(self, parts: list[tuple[Tensor, Tensor]]) -> None:
        self.parts = parts

    def __call__(self, x: Tensor) -> Tensor:
        out = None
        for adj, w in self.parts:
            y = w * propagate(adj, x)
            out = y if out is None else out + y
        assert out is not None
        return out
