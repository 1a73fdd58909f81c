"""Data-parallel training over ``torch.distributed``: several processes on one machine or
several, one model, the same result as one process.

How a step is shared (``kgrec train --nproc N``, or any launcher that sets ``torchrun``'s
environment: ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``):

- **Pairs.** Every process draws the same step (the same seed, permutation and negatives)
  and keeps its contiguous shard of it; its loss is its shard's mean weighted by the shard's
  share, so the processes' losses sum to the step's mean, and the gradients are summed
  across processes (one ``all_reduce`` of one flat buffer per step) before each process takes
  the same optimiser step. The parameters never diverge and are never broadcast.
- **Graph.** The user-item adjacency is partitioned by rows (:class:`PartitionedAdjacency`:
  contiguous node ranges holding equal numbers of edges): each process multiplies its rows
  and the layer's vectors are gathered (``all_gather``); the backward sums the layer's
  gradient across processes (``all_reduce``) and multiplies by this process's rows
  transposed. A process thus holds ``1/N`` of the edges during training and does ``1/N`` of
  each propagation. Node vectors (``[N, d]`` per layer) are replicated: for the graphs this
  library trains, edges, not nodes, are what outgrows a machine (about 1 KB per interaction
  against 256 B per node at ``d = 64``).
- **The rest.** Validation runs on rank 0 (the forward pass is collective, the ranking is
  not) and its metrics are broadcast, so every process stops at the same epoch; checkpoints
  are written by rank 0 and, on resume, read by rank 0 and broadcast; the saved run is rank
  0's.

Limits: the KG messages of ``kggnn``/``hgnn`` are computed in full by every process (not
partitioned); every process reads the whole edge list once to build its rows; the trained
model is served on one machine. Why not PyG's ``torch_geometric.distributed``: it needs
``pyg-lib`` (no wheel for the pinned torch) and samples neighbourhoods, which the measured
full-graph step with large batches beats on these graphs (``benchmarks/results/scale.md``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from kgrec.models.capabilities import Propagates, has

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that validates, checkpoints and saves."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    def shard(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` items."""
        return slice(n * self.rank // self.size, n * (self.rank + 1) // self.size)

    def any(self, flag: bool) -> bool:
        """``flag`` or-ed over every process (so that a stop reaches all of them)."""
        if not self.parallel:
            return flag
        t = torch.tensor([int(flag)], device=collective_device())
        dist.all_reduce(t)
        return bool(t.item())

    def sum(self, values: list[float]) -> list[float]:
        """``values`` summed element-wise over every process (float64)."""
        if not self.parallel:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=collective_device())
        dist.all_reduce(t)
        return t.tolist()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process."""
        if not self.parallel:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def collective_device() -> torch.device:
    """Where small tensors for a collective must live: the GPU under NCCL, else the CPU."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def current() -> World:
    """The process group this process is in (one process if none)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def init_from_env(device: str = "cpu") -> World:
    """Join the process group the environment describes (``torchrun``'s variables;
    ``kgrec train --nproc`` sets the same). Without ``WORLD_SIZE`` (or with 1): one process.
    The backend is gloo on CPU, NCCL on CUDA."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1 or not dist.is_available():
        return World()
    if not dist.is_initialized():
        cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # a long validation on rank 0 keeps the others waiting in a collective
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(hours=2))
    return current()


def shutdown() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(argv: Sequence[str], nproc: int, *, nnodes: int = 1, node_rank: int = 0,
           master_addr: str = "127.0.0.1", master_port: int = 0) -> int:
    """Run ``python -m kgrec.cli <argv>`` as ``nproc`` processes of this node, as ``torchrun
    --nproc-per-node nproc --nnodes nnodes --node-rank node_rank`` would: each gets
    ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` (and one
    thread, unless ``OMP_NUM_THREADS`` is set). Waits for all; if one fails the others are
    stopped. Returns the first non-zero exit status (0 if all succeeded).

    ``master_port`` 0: a free port on this machine (one node only; several nodes must agree
    on one)."""
    if master_port == 0:
        master_port = free_port() if nnodes == 1 else 29500
    world = nnodes * nproc
    procs: list[subprocess.Popen[bytes]] = []
    for local in range(nproc):
        env = dict(os.environ, RANK=str(node_rank * nproc + local), LOCAL_RANK=str(local),
                   WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(nproc),
                   MASTER_ADDR=master_addr, MASTER_PORT=str(master_port))
        env.setdefault("OMP_NUM_THREADS", "1")
        procs.append(subprocess.Popen([sys.executable, "-m", "kgrec.cli", *argv], env=env))

    def forward(signum: int, frame: Any) -> None:  # Ctrl-C / SIGTERM reach every rank
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = 0
        while any(p.poll() is None for p in procs):
            failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
            if failed and not status:
                status = failed[0]
                log.error("a training process exited with status %d; stopping the others",
                          status)
                for p in procs:
                    if p.poll() is None:
                        p.terminate()
            time.sleep(0.2)
        return status or next((p.returncode for p in procs if p.returncode), 0)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def all_reduce_grads(params: Sequence[Tensor], world: World) -> None:
    """Sum the parameters' gradients over the processes (one flat buffer, one call); a
    parameter without a gradient counts as zero, so every process holds every gradient."""
    if not world.parallel:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p)
        offset += n


class PartitionedAdjacency:
    """A symmetric sparse adjacency ``[N, N]`` of which this process holds a block of rows:
    ``x [N, d] -> A @ x [N, d]``, computed by every process together (collective: all must
    call it in the same order).

    The rows are cut into contiguous ranges holding equal numbers of edges (a degree-skewed
    graph's hubs would otherwise load one process). Forward: this block's product, then
    ``all_gather``. Backward: the layer's gradient summed over processes (each holds its own
    loss's part), this block's rows of it, times the block transposed (kept as CSR: a
    transpose per step would sort the edges each time).

    Args:
        adj: the whole adjacency (``torch.sparse_csr``, symmetric).
        world: this process's rank and the number of processes.
    """

    def __init__(self, adj: Tensor, world: World) -> None:
        n = adj.shape[0]
        crow = adj.crow_indices()
        nnz = int(crow[-1])
        cuts = torch.searchsorted(crow, torch.tensor(
            [nnz * r // world.size for r in range(1, world.size)], dtype=crow.dtype))
        self.bounds = [0, *[int(c) for c in cuts], n]
        self.world, self.num_nodes = world, n
        start, stop = self.bounds[world.rank], self.bounds[world.rank + 1]
        lo, hi = int(crow[start]), int(crow[stop])
        self.block = torch.sparse_csr_tensor(
            crow[start:stop + 1] - lo, adj.col_indices()[lo:hi], adj.values()[lo:hi],
            (stop - start, n))
        self.block_t = self.block.to_sparse_coo().t().coalesce().to_sparse_csr()
        self.rows = slice(start, stop)
        self.sizes = [b - a for a, b in zip(self.bounds[:-1], self.bounds[1:], strict=True)]

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.num_nodes, self.num_nodes))

    def __call__(self, x: Tensor) -> Tensor:
        return _PartitionedSpMM.apply(x, self)


class _PartitionedSpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, part: PartitionedAdjacency) -> Tensor:  # type: ignore[override]
        ctx.part = part
        local = torch.sparse.mm(part.block, x)
        width = max(part.sizes)  # all_gather needs equal shapes: pad, then trim
        padded = local.new_zeros((width, x.shape[1]))
        padded[:len(local)] = local
        pieces = [torch.empty_like(padded) for _ in part.sizes]
        dist.all_gather(pieces, padded)
        return torch.cat([p[:n] for p, n in zip(pieces, part.sizes, strict=True)])

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        part = ctx.part
        total = grad.contiguous().clone()
        dist.all_reduce(total)
        return torch.sparse.mm(part.block_t, total[part.rows]), None


def partition_adjacency(model: torch.nn.Module, world: World) -> Tensor | None:
    """Give a :class:`~kgrec.models.capabilities.Propagates` model this process's
    :class:`PartitionedAdjacency` in place of its whole adjacency.

    Returns the whole adjacency on rank 0, which validates and serves the trained model alone
    afterwards (:func:`restore_adjacency`); ``None`` on the other ranks, which keep only their
    rows, and wherever there is nothing to partition: one process, or a model that does not
    propagate over a shared adjacency (it then propagates in full in every process, and a
    warning says so)."""
    if not world.parallel:
        return None
    adj = model.adjacency() if has(model, Propagates) else None
    if adj is None or adj.layout != torch.sparse_csr:
        if world.main:
            log.warning("data-parallel: %s has no user-item adjacency to partition; every "
                        "process propagates the whole graph (the pairs are still shared)",
                        type(model).__name__)
        return None
    part = PartitionedAdjacency(adj, world)
    model.use_adjacency(part)
    log.info("data-parallel: rank %d of %d holds rows %d-%d of the graph (%d of %d edges)",
             world.rank, world.size, part.rows.start, part.rows.stop, part.block.values().numel(),
             adj.values().numel())
    return adj if world.main else None


def restore_adjacency(model: torch.nn.Module, adj: Tensor | None) -> None:
    """Put the whole adjacency back (after training, to evaluate and serve in one
    process); nothing for ``None``."""
    if adj is not None:
        model.use_adjacency(adj)


__all__ = ["PartitionedAdjacency", "World", "all_reduce_grads", "current", "init_from_env",
           "launch", "partition_adjacency", "restore_adjacency", "shutdown"]
