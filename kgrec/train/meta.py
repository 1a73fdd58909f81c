"""Few-shot meta-episodes: train the model to place a node from K links, then adapt it.

A cold or few-shot node is one the model must place from its content, its KG neighbours and
the handful (K) of links it has. This module trains for exactly that and evaluates it:

- :class:`EpisodeSampler` builds tasks from the *training* links only: a task is one user
  (or item) with K support links and up to Q query links, disjoint, K drawn per task from
  ``meta.shots`` (K = 0 included: content and KG alone).
- For an episode the model encodes its nodes as few-shot nodes
  (:class:`~kgrec.models.base.Isolation`): no id embedding (an id trained on every link
  has seen the query links), over the training graph without the episode's query links
  (:func:`episode_graph`), so a task node hears its K support links and nothing of its query
  links reaches any embedding. Its output vector is then adapted on the support links by a
  few gradient steps (:class:`MetaLearner`), and the query links score the adapted vector.
- The adapted parameter subset is named and small: each episode node's output vector (the
  user vector through the ranking head, or the item vector), ``[T, d]``. The learner is
  first-order MAML with a learned per-dimension inner step size (Meta-SGD): the inner
  gradients are treated as constants, so the query loss trains the encoder (which produces
  the starting point), the item/user vectors on the other side and the step sizes, at the
  cost of one extra forward pass per training step.
- At evaluation (:func:`fewshot_outputs`) the split's held-out nodes, whose training links
  are exactly their K support links, are encoded the same way and adapted on those links,
  then ranked on the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from kgrec.config import MetaConfig
from kgrec.data.folds import Split
from kgrec.data.sampling import NegativeSampler
from kgrec.errors import ConfigError
from kgrec.models.adaptation import MetaLearner
from kgrec.models.base import Isolation, bipartite_adjacency
from kgrec.models.capabilities import FewShot
from kgrec.models.losses import RankingLoss

SIDES = ("user", "item")


@dataclass
class Episodes:
    """A batch of few-shot tasks on one side.

    Attributes:
        side: ``user`` (tasks are users, links go to items) or ``item``.
        nodes: the task nodes ``[T]`` (user or item indices, distinct).
        shots: K per task ``[T]``.
        support: ``[S, 2]`` (task position in ``nodes``, the linked node on the other side).
        query: ``[Q, 2]`` likewise; never overlaps ``support``.
    """

    side: str
    nodes: np.ndarray
    shots: np.ndarray
    support: np.ndarray
    query: np.ndarray

    def pairs(self, which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(task, user, item)`` arrays of the ``support`` or ``query`` links."""
        links = self.support if which == "support" else self.query
        task, other = links[:, 0], links[:, 1]
        node = self.nodes[task]
        return (task, node, other) if self.side == "user" else (task, other, node)


class EpisodeSampler:
    """Draws few-shot tasks from the training links.

    Args:
        users, items: the training positives ``[P]`` (nothing else is ever looked at).
        num_users, num_items: sizes.
        side: ``user`` or ``item``.
        shots: the K values to draw from, one per task.
        query: query links per task (at most; a node with fewer links gives what it has).
        rng: the training run's generator.
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, num_users: int, num_items: int,
                 *, side: str, shots: list[int], query: int, rng: np.random.Generator) -> None:
        if side not in SIDES:
            raise ConfigError(f"meta: episode side {side!r} is not one of {SIDES}")
        keys = np.unique(users.astype(np.int64) * num_items + items)
        u, i = keys // num_items, keys % num_items
        node, other = (u, i) if side == "user" else (i, u)
        n = num_users if side == "user" else num_items
        m = sp.csr_matrix((np.ones(len(node), np.int8), (node, other)),
                          shape=(n, num_items if side == "user" else num_users))
        self.side, self.indptr, self.indices = side, m.indptr, m.indices
        self.shots = np.sort(np.unique(np.asarray(shots, dtype=np.int64)))
        self.deg = np.diff(m.indptr)
        # a task needs at least one query link beyond its support
        self.eligible = np.flatnonzero(self.deg >= self.shots[0] + 1)
        self.query = query
        self.rng = rng
        if not len(self.eligible):
            raise ConfigError(f"meta: no {side} has more than {self.shots[0]} training links "
                              "to build an episode from")

    def sample(self, n_tasks: int) -> Episodes:
        """``n_tasks`` distinct nodes (fewer if fewer are eligible), each with K support links,
        K drawn uniformly from the ``shots`` the node's degree allows (K < degree), and up to
        ``query`` query links."""
        rng = self.rng
        nodes = rng.choice(self.eligible, size=min(n_tasks, len(self.eligible)), replace=False)
        allowed = np.searchsorted(self.shots, self.deg[nodes], side="left")  # K < degree
        ks = self.shots[(rng.random(len(nodes)) * allowed).astype(np.int64)]
        support, query = [], []
        for t, v in enumerate(nodes):
            links = self.indices[self.indptr[v]:self.indptr[v + 1]]
            links = links[rng.permutation(len(links))]
            k = int(ks[t])
            support.append(np.stack([np.full(k, t), links[:k]], 1))
            q = links[k:k + self.query]
            query.append(np.stack([np.full(len(q), t), q], 1))
        return Episodes(self.side, nodes.astype(np.int64), ks, _links(support), _links(query))


def _links(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64).reshape(-1, 2)


def _vectors(users: Tensor, items: Tensor, side: str) -> Tensor:
    return users if side == "user" else items


def _adapted_scores(learner: MetaLearner, users: Tensor, items: Tensor, ep: Episodes,
                    neg_support: np.ndarray, neg_query: np.ndarray,
                    objective: RankingLoss) -> Tensor:
    """Query loss of the episode's adapted vectors: the model's ranking loss
    (``objective``), so meta-training pulls the same way as the main loss (the inner
    adaptation steps stay BPR)."""
    dev = users.device
    t_s, u_s, i_s = (torch.as_tensor(a, device=dev) for a in ep.pairs("support"))
    t_q, u_q, i_q = (torch.as_tensor(a, device=dev) for a in ep.pairs("query"))
    nodes = torch.as_tensor(ep.nodes, device=dev)
    js = torch.as_tensor(neg_support, device=dev)
    jq = torch.as_tensor(neg_query, device=dev)
    start = _vectors(users, items, ep.side)[nodes]
    if ep.side == "user":
        v = learner.adapt(start, "user", t_s, items[i_s], items[js])
        return objective(v[t_q], items[i_q], items[jq], i_q, jq)
    v = learner.adapt(start, "item", t_s, users[u_s], items[js])
    return objective(users[u_q], v[t_q], items[jq], i_q, jq)


def episode_graph(users: np.ndarray, items: np.ndarray, ep: Episodes, num_users: int,
                  num_items: int) -> tuple[np.ndarray, np.ndarray]:
    """The training pairs an episode may propagate over: every training pair, except that
    a task node keeps only its support links (its query links, and any link not drawn,
    are removed)."""
    n = num_users if ep.side == "user" else num_items
    is_task = np.zeros(n, dtype=bool)
    is_task[ep.nodes] = True
    node = users if ep.side == "user" else items
    keep = ~is_task[node]
    _, su, si = ep.pairs("support")
    return (np.concatenate([users[keep], su]).astype(np.int64),
            np.concatenate([items[keep], si]).astype(np.int64))


class MetaObjective:
    """The meta-training term added to each training step.

    Args:
        model: a :class:`~kgrec.models.capabilities.FewShot` model (``hgnn``).
        split: the training links are taken from it (nothing else).
        cfg: ``meta`` section.
        learner: the :class:`MetaLearner` (a submodule of ``model``, so it is optimised,
            checkpointed and resumed with it).
        negatives: the run's negative sampler.
        rng: the run's generator.
        loss: the run's ranking loss (the query loss; the inner steps stay BPR).
    """

    def __init__(self, model: FewShot, split: Split, cfg: MetaConfig, learner: MetaLearner,
                 negatives: NegativeSampler, rng: np.random.Generator,
                 loss: RankingLoss) -> None:
        self.model, self.cfg, self.learner, self.negatives = model, cfg, learner, negatives
        self.ranking_loss = loss
        self.split = split
        sides = resolve_sides(cfg.side, split)
        self.samplers = [EpisodeSampler(split.train_users, split.train_items, split.num_users,
                                        split.num_items, side=s, shots=cfg.shots,
                                        query=cfg.query, rng=rng) for s in sides]

    def loss(self) -> tuple[Tensor, dict[str, float]]:
        """One batch of episodes per side: mean query loss after adaptation."""
        total, parts = None, {}
        for sampler in self.samplers:
            ep = sampler.sample(self.cfg.tasks)
            s = self.split
            adj = bipartite_adjacency(*episode_graph(s.train_users, s.train_items, ep,
                                                     s.num_users, s.num_items),
                                      s.num_users, s.num_items)
            nodes = torch.as_tensor(ep.nodes)
            adj = adj.to(next(self.model.parameters()).device)
            isolate = (Isolation(users=nodes, adjacency=adj) if ep.side == "user"
                       else Isolation(items=nodes, adjacency=adj))
            users, items = self.model.encode_isolated(isolate)
            _, us, _ = ep.pairs("support")
            _, uq, _ = ep.pairs("query")
            lq = _adapted_scores(self.learner, users, items, ep, self.negatives.sample(us),
                                 self.negatives.sample(uq), self.ranking_loss)
            parts[f"meta_{ep.side}"] = float(lq.detach())
            total = lq if total is None else total + lq
        assert total is not None
        return total, parts


def resolve_sides(side: str, split: Split) -> list[str]:
    """``auto``: the side the split holds out (``cold_item`` -> item), else users."""
    if side == "auto":
        return ["item"] if split.strategy == "cold_item" else ["user"]
    if side == "both":
        return list(SIDES)
    if side not in SIDES:
        raise ConfigError(f"meta.side: {side!r} is not user, item, both or auto")
    return [side]


@torch.no_grad()
def _eval_negatives(split: Split, users: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return NegativeSampler(split.train_users, split.train_items, split.num_items,
                           rng).sample(users)


def fewshot_outputs(model: FewShot, learner: MetaLearner, split: Split,
                    seed: int = 0, trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Users ``[U, d]`` and items ``[I, d]`` for ranking, with the split's held-out nodes
    encoded as few-shot nodes (no id; they hear their training links, which are their
    support links) and adapted on those links (none for K = 0). Other nodes are encoded as
    usual. Deterministic under ``seed`` (negatives). ``trace``: see
    :meth:`~kgrec.models.base.RecModel.forward`.
    """
    model.eval()
    held_u = np.flatnonzero(split.test.heldout_users) if split.test.heldout_users.any() else None
    held_i = np.flatnonzero(split.test.heldout_items) if split.test.heldout_items.any() else None
    if held_u is None and held_i is None:
        return model.encode_isolated(None, trace=trace)
    isolate = Isolation(users=None if held_u is None else torch.as_tensor(held_u),
                        items=None if held_i is None else torch.as_tensor(held_i))
    users, items = model.encode_isolated(isolate, trace=trace)
    users, items = users.detach(), items.detach()
    dev = users.device
    tu, ti = split.train_users, split.train_items
    for side, held in (("user", held_u), ("item", held_i)):
        if held is None:
            continue
        pos = np.full(split.num_users if side == "user" else split.num_items, -1)
        pos[held] = np.arange(len(held))
        node = tu if side == "user" else ti
        keep = pos[node] >= 0
        task = torch.as_tensor(pos[node[keep]], device=dev)
        su, si = tu[keep], ti[keep]
        neg = torch.as_tensor(_eval_negatives(split, su, seed), device=dev)
        with torch.enable_grad():
            if side == "user":
                v = learner.adapt(users[held], "user", task, items[si], items[neg])
            else:
                v = learner.adapt(items[held], "item", task, users[su], items[neg])
        if side == "user":
            users = users.clone()
            users[torch.as_tensor(held, device=dev)] = v.detach()
        else:
            items = items.clone()
            items[torch.as_tensor(held, device=dev)] = v.detach()
    return users, items
