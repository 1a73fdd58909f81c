"""Ranking losses: how a batch of user vectors is scored against positive and negative items.

Each loss registers in :data:`LOSSES` under the name ``train.loss`` gives it, builds itself
from the ``train`` section (:meth:`from_config`) and is called as
``loss(u [B, d], pos [B, d], neg [B, d], pos_ids [B], neg_ids [B]) -> scalar``. The trainer
hands the configured loss to every objective term that ranks (the ranking term, each task
head, the adversarial term, the meta-episode query loss), so they all pull the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from kgrec.registry import Registry

if TYPE_CHECKING:
    from kgrec.config import TrainConfig

LOSSES: Registry[type[RankingLoss]] = Registry("loss", "train.loss")


class RankingLoss:
    """A ranking loss (the base of :data:`LOSSES`' entries). ``kind`` is its registered name,
    the key its value is logged under."""

    name = "loss"

    @property
    def kind(self) -> str:
        return self.name

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> RankingLoss:
        return cls()

    def __call__(self, u: Tensor, pos: Tensor, neg: Tensor, pos_ids: Tensor | None = None,
                 neg_ids: Tensor | None = None) -> Tensor:
        raise NotImplementedError


@LOSSES.register("bpr")
@dataclass(frozen=True)
class BPR(RankingLoss):
    """BPR: ``-log sigmoid(<u, pos> - <u, neg>)`` per pair (the default)."""

    def __call__(self, u: Tensor, pos: Tensor, neg: Tensor, pos_ids: Tensor | None = None,
                 neg_ids: Tensor | None = None) -> Tensor:
        return bpr_loss(u, pos, neg)


@LOSSES.register("softmax")
@dataclass(frozen=True)
class SampledSoftmax(RankingLoss):
    """Sampled softmax over the batch's items on cosine similarity / ``train.temperature``.

    Each user's positive competes with every candidate of the batch (all its positives and
    sampled negatives, ``2B``); a candidate that is the same item as a row's positive is not
    counted as that row's negative. One step thus ranks each positive against ``2B - 1``
    items, not one; on cosine the loss cannot be lowered by growing norms. The model still
    ranks by dot product: the vectors' norms, which the loss leaves to the propagation (an
    item's grows with its degree) and L2, carry popularity, and ranking by cosine instead
    cost hgnn 15% Recall@20 on Last.FM (0.3348 vs 0.3962, seed 0).

    Attributes:
        temperature: lower is sharper (on Last.FM 0.5 was the best of 0.1-1.0; 0.2 and
            below overfit within 15 epochs).
    """

    temperature: float = 0.5

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> RankingLoss:
        return cls(cfg.temperature)

    def __call__(self, u: Tensor, pos: Tensor, neg: Tensor, pos_ids: Tensor | None = None,
                 neg_ids: Tensor | None = None) -> Tensor:
        return softmax_loss(u, pos, neg, self.temperature, pos_ids, neg_ids)


@LOSSES.register("sampled_softmax")
@dataclass(frozen=True)
class SharedSampledSoftmax(RankingLoss):
    """Sampled softmax against negatives shared by the whole batch, on cosine /
    ``train.temperature``.

    Each step draws ``train.negatives`` items once (uniformly, among the training items) and
    row ``b`` ranks its positive against all of them: logits ``[B, 1 + M]``, not ``[B, 2B]``,
    so a batch of tens of thousands of pairs costs one propagation and a matmul against ``M``
    items. That is what makes large batches pay: one full propagation per 32k pairs instead
    of per 2k (kgat-amazon-book: ``benchmarks/results/scale.md``). A shared negative equal to
    a row's positive is left out of that row. Each row's loss depends on its own pair and
    the shared draw only, so splitting a batch across processes (``kgrec train --nproc``)
    gives the same loss as the whole batch in one.

    Called with ``neg [M, d]`` and ``neg_ids [M]`` (the trainer draws them so for this loss:
    :attr:`shared`).

    Attributes:
        temperature: lower is sharper.
        negatives: ``M``, the shared negatives per step.
    """

    temperature: float = 0.5
    negatives: int = 1024
    #: the trainer draws one set of ``negatives`` items per step, not one per pair
    shared = True

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> RankingLoss:
        return cls(cfg.temperature, cfg.negatives)

    def __call__(self, u: Tensor, pos: Tensor, neg: Tensor, pos_ids: Tensor | None = None,
                 neg_ids: Tensor | None = None) -> Tensor:
        return shared_softmax_loss(u, pos, neg, self.temperature, pos_ids, neg_ids)


def ranking_loss(cfg: TrainConfig) -> RankingLoss:
    """The loss ``cfg.loss`` names, built from ``cfg``."""
    return LOSSES.get(cfg.loss).from_config(cfg)


def bpr_loss(u: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """Mean BPR loss of user vectors ``u`` against positive and negative item vectors
    (all ``[B, d]``)."""
    return -F.logsigmoid((u * pos).sum(-1) - (u * neg).sum(-1)).mean()


def softmax_loss(u: Tensor, pos: Tensor, neg: Tensor, temperature: float,
                 pos_ids: Tensor | None = None, neg_ids: Tensor | None = None) -> Tensor:
    """Sampled softmax (:class:`SampledSoftmax`): row ``b`` of ``u`` ``[B, d]`` against the
    candidates ``[pos; neg]`` ``[2B, d]`` on cosine / ``temperature``, target ``pos[b]``.
    With ids, a candidate equal to row ``b``'s positive (other than itself) is left out."""
    cand = F.normalize(torch.cat([pos, neg]), dim=-1)
    logits = F.normalize(u, dim=-1) @ cand.T / temperature  # [B, 2B]
    target = torch.arange(len(u), device=u.device)
    if pos_ids is not None and neg_ids is not None:
        dup = pos_ids.unsqueeze(1) == torch.cat([pos_ids, neg_ids]).unsqueeze(0)
        dup[target, target] = False
        logits = logits.masked_fill(dup, float("-inf"))
    return F.cross_entropy(logits, target)


def shared_softmax_loss(u: Tensor, pos: Tensor, neg: Tensor, temperature: float,
                        pos_ids: Tensor | None = None, neg_ids: Tensor | None = None,
                        reduction: str = "mean") -> Tensor:
    """:class:`SharedSampledSoftmax`: rows of ``u`` ``[B, d]`` against their positive
    ``pos [B, d]`` and the shared negatives ``neg [M, d]``, cosine / ``temperature``. With
    ids, a shared negative equal to a row's positive is left out of that row.
    ``reduction``: ``mean`` or ``sum`` over rows.

    Written for ``B x M`` in the tens of millions: the ``[B, M]`` logits are made once (the
    temperature is folded into the user side, the positive's logit kept apart and the
    accidental hits set in place), since each extra pass over them costs as much as the
    whole propagation of a large batch."""
    un = F.normalize(u, dim=-1) / temperature
    pos_logit = (un * F.normalize(pos, dim=-1)).sum(-1)  # [B]
    hits = (_accidental_hits(pos_ids, neg_ids) if pos_ids is not None and neg_ids is not None
            else None)
    per_row = _SharedLogSumExp.apply(un, F.normalize(neg, dim=-1), pos_logit, hits) - pos_logit
    return per_row.sum() if reduction == "sum" else per_row.mean()


class _SharedLogSumExp(torch.autograd.Function):
    # log(exp(p_b) + sum_m exp(<un_b, neg_m>)) per row, the [B, M] logits made once and its
    # backward written out (softmax weights, then two matmuls): autograd's chain of
    # mm / index_put / logsumexp / logaddexp passes over [B, M] several times more. For
    # 32,768 pairs x 2,048 negatives on one thread that chain took 1.0 s forward and
    # 1.3-1.5 s backward, this one 0.5 s and 0.85 s (a profile while building it, not a
    # recorded run).
    @staticmethod
    def forward(ctx, un: Tensor, neg: Tensor, pos_logit: Tensor,  # type: ignore[override]
                hits: tuple[Tensor, Tensor] | None) -> Tensor:
        logits = un @ neg.T  # [B, M]
        if hits is not None:
            logits[hits] = float("-inf")
        lse = torch.logaddexp(pos_logit, torch.logsumexp(logits, 1))
        ctx.save_for_backward(un, neg, logits, pos_logit, lse)
        return lse

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:  # type: ignore[override]
        un, neg, logits, pos_logit, lse = ctx.saved_tensors
        weights = torch.exp(logits - lse.unsqueeze(1)).mul_(grad.unsqueeze(1))  # [B, M]
        return (weights @ neg, weights.T @ un, grad * torch.exp(pos_logit - lse), None)


def _accidental_hits(pos_ids: Tensor, neg_ids: Tensor) -> tuple[Tensor, Tensor]:
    """``(rows, cols)``: where shared negative ``cols`` is row ``rows``' positive."""
    order = torch.argsort(neg_ids)
    ordered = neg_ids[order]
    first = torch.searchsorted(ordered, pos_ids)  # the first of equal negatives
    # a negative drawn k times hits k columns: walk the runs of equal ids
    rows_all, cols_all = [], []
    at = first.clamp(max=len(ordered) - 1)
    live = torch.arange(len(pos_ids), device=pos_ids.device)
    while len(live):
        hit = ordered[at] == pos_ids[live]
        live, at = live[hit], at[hit]
        rows_all.append(live)
        cols_all.append(order[at])
        at = at + 1
        inside = at < len(ordered)
        live, at = live[inside], at[inside]
    return torch.cat(rows_all), torch.cat(cols_all)
