"""The sparse kernels behind propagation: the sorted segment path used on CUDA equals the
gather + scatter path used on CPU, forward and backward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.utils import scatter

from kgrec.graph import KnowledgeTriples
from kgrec.models.base import GraphInputs
from kgrec.models.kggnn import KGGNN
from kgrec.models.ops import _GatherRows, scatter_mean, segment_mean, segment_sum


def test_gather_rows_and_segment_sum_equal_index_select_and_scatter():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 8, dtype=torch.float64, generator=g, requires_grad=True)
    # heavy repeats, as KG hubs and relations have; row 49 never drawn
    index = torch.randint(0, 5, (400,), generator=g)
    index[::7] = torch.randint(0, 49, (58,), generator=g)
    w = torch.randn(400, 8, dtype=torch.float64, generator=g)
    (_GatherRows.apply(x, index) * w).sum().backward()  # the CUDA path, on CPU
    mine = x.grad.clone()
    x.grad = None
    (x.index_select(0, index) * w).sum().backward()
    torch.testing.assert_close(mine, x.grad)
    assert not mine[49].any()
    head = torch.sort(index).values
    src = torch.randn(400, 8, dtype=torch.float64, generator=g)
    torch.testing.assert_close(segment_sum(src, head, 50),
                               scatter(src, head, dim=0, dim_size=50, reduce="sum"))
    mean = segment_mean(src, head, 50)  # row 49 has no entry: zero, as scatter gives
    torch.testing.assert_close(mean, scatter(src, head, dim=0, dim_size=50, reduce="mean"))
    assert not mean[49].any()
    shuffled = torch.randperm(400, generator=g)  # any order, as the CPU path gives it
    # bit-equal to PyG's (which it replaced): results of runs from before stay reproducible
    assert torch.equal(scatter_mean(src[shuffled], head[shuffled], 50),
                       scatter(src[shuffled], head[shuffled], dim=0, dim_size=50, reduce="mean"))


def _random_kg_inputs(seed: int = 0) -> GraphInputs:
    rng = np.random.default_rng(seed)
    users, items, ents, rels = 40, 60, 30, 4
    inter = rng.integers(0, [users, items], size=(400, 2))
    # a hub entity (index items + 0) on a third of the triples
    head = rng.integers(0, items, 500)
    tail = np.where(rng.random(500) < 0.3, items, items + rng.integers(0, ents, 500))
    kg = KnowledgeTriples(head, rng.integers(0, rels, 500), tail,
                          [f"r{i}" for i in range(rels)], items, ents)
    return GraphInputs(users, items, inter[:, 0], inter[:, 1], kg, None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_kggnn_on_cuda_equals_cpu_forward_and_backward():
    """The CUDA path (edges in head order, segment sums, deterministic kernels) computes the
    CPU path's outputs and gradients."""
    torch.manual_seed(0)
    cpu = KGGNN(_random_kg_inputs(), dim=8, layers=2).double().eval()
    gpu = KGGNN(_random_kg_inputs(), dim=8, layers=2).double().eval()
    gpu.load_state_dict(cpu.state_dict())
    gpu.cuda()
    grads = []
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        for m in (cpu, gpu):
            users, items = m()
            (users.pow(2).sum() + items.pow(3).sum()).backward()
            grads.append(([users.detach().cpu(), items.detach().cpu()],
                          {n: p.grad.cpu() for n, p in m.named_parameters()}))
    finally:
        torch.use_deterministic_algorithms(before)
    (out_c, grad_c), (out_g, grad_g) = grads
    for a, b in zip(out_c, out_g, strict=True):
        torch.testing.assert_close(a, b)
    assert grad_c.keys() == grad_g.keys() == {"user.weight", "node.weight", "relation.weight"}
    for name in grad_c:
        torch.testing.assert_close(grad_c[name], grad_g[name])
