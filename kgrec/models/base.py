"""What every recommender model shares: its inputs and its interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.graph import KnowledgeTriples, RecGraph

if TYPE_CHECKING:
    from kgrec.features.build import AttributeSchema


@dataclass
class GraphInputs:
    """What a model may see of the data: sizes, the training interactions and the KG.

    Attributes:
        num_users, num_items: node counts.
        train_users, train_items: training positives ``[P]`` (the message-passing graph).
        kg: knowledge triples in the joint item+entity index space, or ``None``.
        graph: the whole graph, for node content (names, profiles, KG); its interactions
            beyond ``train_*`` must not be used.
    """

    num_users: int
    num_items: int
    train_users: np.ndarray
    train_items: np.ndarray
    kg: KnowledgeTriples | None = None
    graph: RecGraph | None = None


@dataclass
class PairBatch:
    """One training step's pairs: ``users``, positive ``pos`` and sampled negative ``neg``
    items ``[B]``, and ``index`` ``[B]``, the positions of the pairs among the training
    positives (so a multi-task model can look up which tasks a pair belongs to)."""

    users: Tensor
    pos: Tensor
    neg: Tensor
    index: Tensor


@dataclass
class Isolation:
    """Users and items to encode as few-shot nodes for one pass.

    An isolated node gets no id embedding (its id was trained on all its links, query links
    included): it starts from its content (or its type's learned default vector) and hears
    only the interaction edges of ``adjacency``. A few-shot episode passes the training graph
    without its nodes' query links, so a node hears exactly its K support links; at
    evaluation the training graph already holds exactly a held-out node's support links.

    Attributes:
        users: user indices ``[N_u]`` (long) or ``None``.
        items: item indices ``[N_i]`` (long) or ``None``.
        adjacency: the interaction graph for this pass (``None``: the training graph), as
            :func:`bipartite_adjacency` builds it.
    """

    users: Tensor | None = None
    items: Tensor | None = None
    adjacency: Tensor | None = None

    def masks(self, num_users: int, num_items: int, num_entities: int,
              device: torch.device) -> tuple[Tensor, Tensor]:
        """Bool masks: users ``[U]`` and items+entities ``[I + E]`` (entities never set)."""
        u = torch.zeros(num_users, dtype=torch.bool, device=device)
        n = torch.zeros(num_items + num_entities, dtype=torch.bool, device=device)
        if self.users is not None:
            u[self.users.to(device)] = True
        if self.items is not None:
            n[self.items.to(device)] = True
        return u, n


@dataclass(frozen=True)
class Objective:
    """The ranking loss of a batch of user vectors against positive and negative items.

    - ``bpr`` (default): ``-log sigmoid(<u, pos> - <u, neg>)`` per pair.
    - ``softmax``: sampled softmax. Each user's positive competes with every candidate of
      the batch (all its positives and sampled negatives, ``2B``) on cosine similarity over
      ``temperature``; a candidate that is the same item as a row's positive is not counted
      as that row's negative. One step thus ranks each positive against ``2B - 1`` items,
      not one; on cosine the loss cannot be lowered by growing norms. The model still
      ranks by dot product: the vectors' norms, which the loss leaves to the propagation
      (an item's grows with its degree) and L2, carry popularity, and ranking by cosine
      instead cost hgnn 15% Recall@20 on Last.FM (0.3348 vs 0.3962, seed 0).

    Attributes:
        kind: ``bpr`` or ``softmax``.
        temperature: softmax only; lower is sharper (on Last.FM 0.5 was the best of
            0.1-1.0; 0.2 and below overfit within 15 epochs).
    """

    kind: str = "bpr"
    temperature: float = 0.5

    def __call__(self, u: Tensor, pos: Tensor, neg: Tensor, pos_ids: Tensor | None = None,
                 neg_ids: Tensor | None = None) -> Tensor:
        """Mean loss of ``u`` ``[B, d]`` against ``pos``/``neg`` ``[B, d]``; ``pos_ids``,
        ``neg_ids`` ``[B]`` (the items' indices) let ``softmax`` spot duplicates."""
        if self.kind == "bpr":
            return bpr_loss(u, pos, neg)
        return softmax_loss(u, pos, neg, self.temperature, pos_ids, neg_ids)


@dataclass
class Adversary:
    """Adversarial training of a model's layer-0 inputs (:mod:`kgrec.train.adversarial`):
    radius ``eps``, loss ``weight``, ``steps`` (1 = FGSM/APR, more = PGD)."""

    eps: float
    weight: float = 1.0
    steps: int = 1


class RecModel(nn.Module):
    """A model that embeds every user and item; a pair's score is the dot product.

    Subclasses implement :meth:`forward` (full-graph propagation) and :meth:`ego` (the input
    embeddings of a batch, for L2 regularisation); models with more objectives override
    :meth:`loss`. Models whose inputs can be perturbed set ``supports_adversary`` and add
    the adversarial term to their loss when ``adversary`` is set.
    """

    supports_adversary = False
    adversary: Adversary | None = None
    # the ranking loss; the trainer sets it from ``train.loss`` / ``train.temperature``
    objective: Objective = Objective()

    def forward(self, trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Returns ``(users [U, d], items [I, d])``.

        ``trace``: if a list, a propagation model appends the item vectors each of its
        layers reads (``[I, d]`` per layer, layer 0 first); what a user added after training
        is built from (:meth:`new_user`, :meth:`kgrec.serve.Recommender.add_users`).
        """
        raise NotImplementedError

    def new_user(self) -> tuple[Tensor, Tensor] | None:
        """``(start [d], scale [d])`` for a user built from its links alone: its layer-0
        vector (a user the model has never seen: no id, no profile) and what the readout
        multiplies the propagated vector by. ``None``: this model cannot place such a user
        (it has no propagation, or its ranking propagates over a graph of its own)."""
        return None

    def user_profile(self) -> AttributeSchema | None:
        """How this model encodes a user's profile (its attribute columns; the fused input's
        weights are the ``user_content.*`` entries of the state), so a new user with a profile
        starts where a training user with that profile would. ``None``: profiles are not read
        (the model has no user content)."""
        return None

    def ego(self, users: Tensor, items: Tensor) -> list[Tensor]:
        """Input embeddings of a batch's users ``[B]`` and items ``[B']`` (for L2 terms)."""
        raise NotImplementedError

    def loss(self, batch: PairBatch, reg: float) -> tuple[Tensor, dict[str, float]]:
        """The training loss of one step and its parts (for logging).

        Default: the :attr:`objective` (BPR, ``-log sigmoid(s(u, pos) - s(u, neg))``, unless
        set otherwise), plus ``reg / 2`` times the squared norm of the batch's input
        embeddings per pair.
        """
        users, items = self()
        rank = self.batch_loss(users, items, batch)
        return rank + self.l2(batch, reg), {self.objective.kind: float(rank.detach())}

    def batch_loss(self, users: Tensor, items: Tensor, batch: PairBatch) -> Tensor:
        """:attr:`objective` on ``batch``'s pairs given all users ``[U, d]`` and items
        ``[I, d]``."""
        p, n = batch.pos, batch.neg
        return self.objective(users[batch.users], items[p], items[n], p, n)

    def l2(self, batch: PairBatch, reg: float) -> Tensor:
        """``reg / 2`` times the squared norm of the batch's input embeddings, per pair."""
        ego = self.ego(batch.users, torch.cat([batch.pos, batch.neg]))
        return reg * 0.5 * sum((e ** 2).sum() for e in ego) / len(batch.users)


def bpr_loss(u: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """Mean BPR loss of user vectors ``u`` against positive and negative item vectors
    (all ``[B, d]``)."""
    return -F.logsigmoid((u * pos).sum(-1) - (u * neg).sum(-1)).mean()


def softmax_loss(u: Tensor, pos: Tensor, neg: Tensor, temperature: float,
                 pos_ids: Tensor | None = None, neg_ids: Tensor | None = None) -> Tensor:
    """Sampled softmax (:class:`Objective` ``softmax``): row ``b`` of ``u`` ``[B, d]`` against
    the candidates ``[pos; neg]`` ``[2B, d]`` on cosine / ``temperature``, target ``pos[b]``.
    With ids, a candidate equal to row ``b``'s positive (other than itself) is left out."""
    cand = F.normalize(torch.cat([pos, neg]), dim=-1)
    logits = F.normalize(u, dim=-1) @ cand.T / temperature  # [B, 2B]
    target = torch.arange(len(u), device=u.device)
    if pos_ids is not None and neg_ids is not None:
        dup = pos_ids.unsqueeze(1) == torch.cat([pos_ids, neg_ids]).unsqueeze(0)
        dup[target, target] = False
        logits = logits.masked_fill(dup, float("-inf"))
    return F.cross_entropy(logits, target)


def bipartite_adjacency(users: np.ndarray, items: np.ndarray, num_users: int,
                        num_items: int, keep_items: np.ndarray | None = None) -> Tensor:
    """The symmetric-normalised adjacency of the user-item graph over ``U + I`` nodes.

    ``A[u, U + i] = A[U + i, u] = 1 / sqrt(deg(u) deg(i))`` for each unique training pair.
    ``keep_items`` (bool ``[I]``): only the pairs of these items, still normalised by the
    whole graph's degrees (so the parts of a split adjacency sum to the whole).

    Returns:
        ``torch.sparse_csr`` tensor ``[U + I, U + I]`` (CSR: much faster than ``edge_index``
        for this propagation on CPU).
    """
    keys = np.unique(users.astype(np.int64) * num_items + items)
    u, i = keys // num_items, keys % num_items
    du = np.bincount(u, minlength=num_users).astype(np.float64)
    di = np.bincount(i, minlength=num_items).astype(np.float64)
    w = 1.0 / np.sqrt(du[u] * di[i])
    if keep_items is not None:
        sel = keep_items[i]
        u, i, w = u[sel], i[sel], w[sel]
    rows = np.concatenate([u, i + num_users])
    cols = np.concatenate([i + num_users, u])
    vals = np.concatenate([w, w]).astype(np.float32)
    n = num_users + num_items
    coo = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])),
                                  torch.from_numpy(vals), (n, n)).coalesce()
    return coo.to_sparse_csr()
