"""Adversarial feature perturbation (APR / FGSM, optionally PGD) on a GNN's layer-0 inputs.

A model's layer-0 inputs are where its features enter: for ``hgnn`` the fused node inputs
(the projected text, categorical, numeric and vector features plus, for warm nodes, the id
embeddings), for ``kggnn`` the id embeddings. The adversary moves every input row inside an
L2 ball of radius ``eps`` in the direction that most increases the ranking loss (one
normalised gradient step, APR's fast approximation, or ``steps`` projected steps, PGD), then
the ranking loss of the perturbed inputs, propagated through the same graph, is added with
weight ``weight``. The model learns a ranking that holds when its inputs are nudged: text
embeddings of near-synonyms, noisy attributes, ids trained on few links.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from kgrec.data.folds import Split
from kgrec.data.sampling import NegativeSampler
from kgrec.errors import ConfigError
from kgrec.models.base import RecModel
from kgrec.models.capabilities import Attackable, has
from kgrec.models.losses import BPR, RankingLoss

Encode = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
Loss = Callable[[Tensor, Tensor], Tensor]


def _unit_rows(g: Tensor) -> Tensor:
    return g / g.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def _project(d: Tensor, eps: float) -> Tensor:
    """Each row of ``d`` back into the L2 ball of radius ``eps``."""
    n = d.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return d * (eps / n).clamp(max=1.0)


def perturbation(encode: Encode, loss: Loss, inputs: tuple[Tensor, Tensor], eps: float,
                 steps: int = 1, clean: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The worst-case perturbation ``(delta_users [U, d], delta_nodes [N, d])`` of ``inputs``
    within per-row L2 radius ``eps``.

    Args:
        encode: layer-0 inputs -> (users, items) outputs.
        loss: (users, items) outputs -> the ranking loss to maximise.
        inputs: the clean layer-0 inputs (users ``[U, d]``, items+entities ``[N, d]``).
        eps: radius.
        steps: 1 = FGSM/APR (one normalised gradient step to the sphere); more = PGD with
            step size ``2.5 * eps / steps``, projected back into the ball.
        clean: the clean loss already computed from ``inputs`` (saves one forward pass in the
            one-step case; its graph is kept for the caller's backward).

    Returns:
        perturbations, detached (constants for the adversarial loss, as in APR).
    """
    u0, n0 = inputs
    if clean is not None and steps == 1:
        gu, gn = torch.autograd.grad(clean, (u0, n0), retain_graph=True, allow_unused=True)
        gu = torch.zeros_like(u0) if gu is None else gu
        gn = torch.zeros_like(n0) if gn is None else gn
        return eps * _unit_rows(gu).detach(), eps * _unit_rows(gn).detach()
    du, dn = torch.zeros_like(u0), torch.zeros_like(n0)
    size = eps if steps == 1 else 2.5 * eps / steps
    base_u, base_n = u0.detach(), n0.detach()
    for _ in range(steps):
        du.requires_grad_(True)
        dn.requires_grad_(True)
        lv = loss(*encode(base_u + du, base_n + dn))
        gu, gn = torch.autograd.grad(lv, (du, dn), allow_unused=True)
        gu = torch.zeros_like(du) if gu is None else gu
        gn = torch.zeros_like(dn) if gn is None else gn
        du = _project(du.detach() + size * _unit_rows(gu), eps)
        dn = _project(dn.detach() + size * _unit_rows(gn), eps)
    return du.detach(), dn.detach()


def adversarial_loss(encode: Encode, loss: Loss, inputs: tuple[Tensor, Tensor], eps: float,
                     steps: int = 1, clean: Tensor | None = None) -> Tensor:
    """The ranking loss at the worst-case perturbed inputs (gradients flow to the model
    through ``inputs`` and ``encode``, not through the perturbation)."""
    du, dn = perturbation(encode, loss, inputs, eps, steps, clean)
    u0, n0 = inputs
    return loss(*encode(u0 + du, n0 + dn))


def attacked_outputs(model: RecModel, split: Split, eps: float, *, steps: int = 1,
                     pairs: int = 8192, seed: int = 0,
                     loss: RankingLoss | None = None) -> tuple[Tensor, Tensor]:
    """The model's user ``[U, d]`` and item ``[I, d]`` vectors after a test-time attack: its
    layer-0 inputs moved within radius ``eps`` per row against the ranking loss (``loss``,
    default BPR) of ``pairs`` sampled training positives (a white-box attacker who knows the
    model and the training data, not the test set). For robustness evaluations (``kgrec
    evaluate --perturb``)."""
    if not has(model, Attackable):
        raise ConfigError(f"--perturb: model {type(model).__name__} has no layer-0 inputs to "
                          "perturb (kggnn and hgnn do)")
    model.eval()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(split.train_users), size=min(pairs, len(split.train_users)),
                     replace=False)
    dev = next(model.parameters()).device
    users = torch.as_tensor(split.train_users[idx], device=dev)
    pos = torch.as_tensor(split.train_items[idx], device=dev)
    neg = torch.as_tensor(NegativeSampler(split.train_users, split.train_items, split.num_items,
                                          rng).sample(split.train_users[idx]), device=dev)
    rank_loss = loss if loss is not None else BPR()

    def encode(u: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
        return model.readout(*model.rank_encode(u, n))

    def rank(us: Tensor, its: Tensor) -> Tensor:
        return rank_loss(us[users], its[pos], its[neg], pos, neg)

    u0, n0 = (x.detach() for x in model.embed())
    du, dn = perturbation(encode, rank, (u0, n0), eps, steps)
    with torch.no_grad():
        return encode(u0 + du, n0 + dn)
