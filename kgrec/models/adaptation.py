"""Few-shot adaptation of output vectors: the learner that meta-training trains
(:mod:`kgrec.train.meta`) and that places a new user at serving time
(:meth:`kgrec.recommender.NewUserEncoder.adapt`).

It lives with the models, below training and the recommender, because both use it: the
trainer adds it to a model as the submodule ``meta_learner`` and learns its step sizes; the
recommender rebuilds it from those step sizes alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MetaLearner(nn.Module):
    """First-order MAML over the output vectors of a batch of nodes, with a learned
    per-dimension inner step size (Meta-SGD).

    Args:
        dim: vector size ``d``.
        steps: inner gradient steps.
        lr: initial inner step size.
        learn_lr: learn the step sizes (``False``: plain fine-tuning at ``lr``).
    """

    def __init__(self, dim: int, steps: int = 3, lr: float = 0.5, learn_lr: bool = True) -> None:
        super().__init__()
        self.steps = steps
        self.log_lr = nn.Parameter(torch.full((dim,), math.log(lr)), requires_grad=learn_lr)

    def adapt(self, start: Tensor, side: str, task: Tensor, other_pos: Tensor,
              other_neg: Tensor) -> Tensor:
        """Adapt ``start`` ``[T, d]`` on support links.

        Each support link of task ``t`` pairs the task's vector with ``other_pos`` (the linked
        node's vector on the other side, ``[S, d]``) against a sampled negative:
        user side, ``other_neg`` is a non-linked item's vector and the loss is
        ``-log sigmoid(<v_t, pos> - <v_t, neg>)``; item side, ``other_pos`` is a linked user's
        vector, ``other_neg`` an item that user did not link, and the loss is
        ``-log sigmoid(<u, v_t> - <u, neg>)``. Losses are averaged per task, so K does not
        scale the step. Inner gradients are constants (first order); a task with no support
        link keeps its start.

        Returns:
            ``[T, d]`` adapted vectors (differentiable w.r.t. ``start`` and the step sizes).
        """
        if self.steps == 0 or len(task) == 0:
            return start
        counts = torch.bincount(task, minlength=start.shape[0]).clamp(min=1).float()
        w = (1.0 / counts)[task]
        pos, neg = other_pos.detach(), other_neg.detach()
        lr = self.log_lr.exp()
        v = start
        for _ in range(self.steps):
            leaf = v.detach().requires_grad_(True)
            vt = leaf[task]
            if side == "user":
                margin = (vt * pos).sum(-1) - (vt * neg).sum(-1)
            else:
                margin = (pos * vt).sum(-1) - (pos * neg).sum(-1)
            loss = -(F.logsigmoid(margin) * w).sum()
            (g,) = torch.autograd.grad(loss, leaf)
            v = v - lr * g
        return v
