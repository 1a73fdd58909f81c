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
    """``adj @ x`` for a symmetric sparse ``adj`` ``[N, N]`` and dense ``x`` ``[N, d]``.

    ``adj`` may also be a callable standing for one (data-parallel training's
    :class:`~kgrec.train.distributed.PartitionedAdjacency`)."""
    if not isinstance(adj, Tensor):
        return adj(x)
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


# On CUDA, PyTorch's deterministic mode (``train.deterministic``, the default) runs the
# backward of a row gather (an index_add) as a sort-based index_put that serialises repeated
# indices: KG edges repeat hub entities and relations thousands of times, and that one kernel
# took 94% of an hgnn epoch's GPU time on Book-Crossing (a torch.profiler run on an H200).
# Sorted segment sums are deterministic and parallel.


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, index: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(index)
        ctx.rows = x.shape[0]
        return x.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (index,) = ctx.saved_tensors
        ordered, order = torch.sort(index, stable=True)
        return segment_sum(grad.index_select(0, order), ordered, ctx.rows), None


def gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """``x.index_select(0, index)`` (``[N, d]``, ``[E]`` -> ``[E, d]``); on CUDA its backward
    sums each row's gradients by sorting and segment-summing (deterministic and parallel).
    On CPU the plain index_select, whose index_add backward is already both."""
    if not x.is_cuda:
        return x.index_select(0, index)
    return _GatherRows.apply(x, index)


def segment_sum(src: Tensor, index: Tensor, rows: int) -> Tensor:
    """Rows of ``src [E, d]`` summed per ``index [E]`` (sorted ascending) -> ``[rows, d]``."""
    return _segment_sum(src, torch.bincount(index, minlength=rows))


def segment_mean(src: Tensor, index: Tensor, rows: int) -> Tensor:
    """Like :func:`segment_sum`, averaged (a row without entries stays zero)."""
    lengths = torch.bincount(index, minlength=rows)
    return _segment_sum(src, lengths) / lengths.clamp(min=1).unsqueeze(-1)


def scatter_mean(src: Tensor, index: Tensor, rows: int) -> Tensor:
    """``out[r] = mean(src[index == r])`` for any order of ``index`` ``[E]``; ``src`` ``[E, d]``,
    out ``[rows, d]`` (a row without entries stays zero), as ``torch_geometric.utils.scatter``
    with ``reduce="mean"``. Plain torch: importing ``torch_geometric`` costs every process
    ~4 s (it loads ``torch._dynamo``), for this one call."""
    out = src.new_zeros((rows, src.shape[1])).index_add_(0, index, src)
    return out / torch.bincount(index, minlength=rows).clamp(min=1).unsqueeze(-1).to(src.dtype)


def _segment_sum(src: Tensor, lengths: Tensor) -> Tensor:
    return torch.segment_reduce(src, "sum", lengths=lengths, axis=0, unsafe=True)
