"""hgnn's task heads: one diagonal link-prediction head per task, their weighting, the
cross-domain source weighting of the ranking head's graph, and the KG-completion head.

A mixin of :class:`~kgrec.models.hgnn.HGNN` (its parameters stay the model's, under the same
names, so saved runs load unchanged) that implements
:class:`~kgrec.models.capabilities.MultiTask`. A model with propagated users ``[U, d]`` and
items ``[I, d]`` and ``num_users``/``num_items``/``dim`` can reuse it: call
:meth:`TaskHeads._init_heads` from ``__init__``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.errors import ConfigError
from kgrec.graph import RecGraph
from kgrec.models.base import Encoded, GraphInputs, PairBatch, bipartite_adjacency
from kgrec.models.losses import RankingLoss
from kgrec.models.ops import WeightedAdjacency
from kgrec.models.options import HGNNOptions
from kgrec.models.tasks import resolve_tasks

log = logging.getLogger("kgrec.models.hgnn")


class TaskHeads:
    """Task heads, their weighting and the ranking head's own graph (a mixin of an
    ``nn.Module``)."""

    num_users: int
    num_items: int
    dim: int
    has_kg: bool

    def _init_heads(self, opts: HGNNOptions, graph: RecGraph, inputs: GraphInputs) -> None:
        """The tasks ``opts.tasks`` resolves to on the training view, one head each, the
        ranking head (``opts.rank_task``), per-task user offsets (``opts.task_users``), the
        source weighting (``opts.source_weight``), the KG-completion head and the weights."""
        U = self.num_users
        tasks = resolve_tasks(opts.tasks, graph, inputs.train_users, inputs.train_items,
                              use_kg=self.has_kg)
        self.task_names = [t.name for t in tasks]
        link = [t for t in tasks if t.mask is not None]
        self.link_tasks = [t.name for t in link]
        self.register_buffer("task_mask", torch.from_numpy(np.stack([t.mask for t in link])),
                             persistent=False)
        self.heads = nn.Parameter(torch.ones(len(link), self.dim))
        if opts.rank_task not in self.link_tasks:
            raise ConfigError(f"model.hgnn.rank_task: {opts.rank_task!r} is not one of this "
                              f"model's link tasks {self.link_tasks}")
        self.rank_head = self.link_tasks.index(opts.rank_task)
        # [T, U, d] per-task user offsets (row 0, the ``all`` head, stays zero: the shared
        # vector is that head's own); zero at the start, so the model starts as without them
        self.task_user = (nn.Parameter(torch.zeros(len(link), U, self.dim))
                          if opts.task_users and len(link) > 1 else None)
        if opts.source_weight is not None:
            self._init_source_weight(opts, graph, inputs)  # sets source_log_weight
        else:
            self.source_log_weight = None
        self.kg_task = "kg" in self.task_names
        if self.kg_task:
            self.kgc_relation = nn.Embedding(len(inputs.kg.relations), self.dim)
            nn.init.normal_(self.kgc_relation.weight, mean=1.0, std=0.1)
            kg = inputs.kg
            self.register_buffer("kgc_triples", torch.from_numpy(
                np.stack([kg.head, kg.relation, kg.tail], 1)), persistent=False)
        self.weighting = opts.task_weighting
        fixed = _parse_weights(opts.task_weights, self.task_names)
        self.register_buffer("task_weight", torch.tensor(
            [fixed.get(n, 1.0) for n in self.task_names]), persistent=False)
        if self.weighting == "uncertainty":
            # Kendall et al. (2018): L = sum_t exp(-s_t) L_t + s_t with a learned log variance
            # s_t, kept >= 0 (s = softplus(raw)). Unbounded, s_t runs negative as a ranking
            # loss nears zero and the weights (and so the step size) grow without limit; on
            # Last.FM that overfit within a few epochs. Bounded, a task can only be weighted
            # down from its fixed weight, which is what a noisy auxiliary task needs.
            self.log_var_raw = nn.Parameter(torch.full((len(self.task_names),), -2.0))
        log.info("hgnn tasks: %s (%s weighting)", self.task_names, self.weighting)

    def _init_source_weight(self, opts: HGNNOptions, graph: RecGraph,
                            inputs: GraphInputs) -> None:
        """The ranking head's graph: the target domain's links plus the other domains'
        links weighted by ``opts.source_weight`` (a parameter under ``learn_source_weight``,
        kept as its log so it stays positive)."""
        target = opts.rank_task.partition("=")[2]
        domains = graph.items.attrs.get("domain")
        if domains is None:
            raise ConfigError(f"model.hgnn.source_weight: {graph.name}'s items have no domain")
        in_target = np.asarray(domains) == target
        parts = [bipartite_adjacency(inputs.train_users, inputs.train_items, self.num_users,
                                     self.num_items, keep_items=keep)
                 for keep in (in_target, ~in_target)]
        self.register_buffer("adj_target", parts[0], persistent=False)
        self.register_buffer("adj_source", parts[1], persistent=False)
        log_w = torch.tensor(float(opts.source_weight)).log()  # -inf for 0: exp gives 0 back
        if opts.learn_source_weight:
            self.source_log_weight = nn.Parameter(log_w)
        else:
            self.register_buffer("source_log_weight", log_w, persistent=False)

    def _rank_adjacency(self) -> WeightedAdjacency | None:
        """The ranking head's graph under ``model.hgnn.source_weight`` (else the shared one)."""
        if self.source_log_weight is None:
            return None
        one = torch.ones((), device=self.heads.device)
        return WeightedAdjacency([(self.adj_target, one),
                                  (self.adj_source, self.source_log_weight.exp())])

    def readout(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Users through the ranking head (``model.hgnn.rank_task``, default ``all``)."""
        return self._task_users(users, self.rank_head) * self.heads[self.rank_head], items

    def _task_users(self, users: Tensor, task: int, index: Tensor | None = None) -> Tensor:
        """``users`` (all ``[U, d]``, or the rows ``index`` of them) as task ``task`` sees
        them: plus the task's own offset under ``model.hgnn.task_users``."""
        if self.task_user is None or self.link_tasks[task] == "all":
            return users
        off = self.task_user[task]
        return users + (off if index is None else off[index])

    def task_losses(self, enc: Encoded, batch: PairBatch, loss: RankingLoss
                    ) -> tuple[Tensor, dict[str, float], Tensor | None]:
        """``loss`` per link task on the batch's pairs of that task (through the task's
        head), then DistMult KG completion for ``kg``: the losses ``[T]``, their logged
        values, and the clean ranking loss where the ranking head is ``all`` (which always
        has pairs; the one-step adversary reuses its graph)."""
        (u0, n0), (shared, ranked) = enc.inputs, enc.private
        losses: list[Tensor] = []
        parts: dict[str, float] = {}
        for t, name in enumerate(self.link_tasks):
            m = self.task_mask[t, batch.index]
            if not bool(m.any()):
                losses.append(u0.new_zeros(()))
                continue
            users, items = (ranked if t == self.rank_head else shared)[:2]
            ub = self._task_users(users[batch.users[m]], t, batch.users[m]) * self.heads[t]
            lt = loss(ub, items[batch.pos[m]], items[batch.neg[m]], batch.pos[m],
                      batch.neg[m])
            losses.append(lt)
            parts[name] = float(lt.detach())
        if self.source_log_weight is not None:
            parts["source_weight"] = float(self.source_log_weight.detach().exp())
        if self.kg_task:
            lk = self._kg_loss(n0, len(batch.users))
            losses.append(lk)
            parts["kg"] = float(lk.detach())
        clean = losses[self.rank_head] if self.link_tasks[self.rank_head] == "all" else None
        return torch.stack(losses), parts, clean

    def combine_tasks(self, losses: Tensor) -> Tensor:
        """Fixed weights, or Kendall et al.'s learned uncertainty weights (bounded)."""
        if self.weighting == "uncertainty":
            log_var = F.softplus(self.log_var_raw)
            return (torch.exp(-log_var) * losses * self.task_weight + log_var).sum()
        return (losses * self.task_weight).sum()

    def _kg_loss(self, nodes: Tensor, n: int) -> Tensor:
        """DistMult KG completion on layer-0 inputs: a true tail against a random node."""
        idx = torch.randint(0, len(self.kgc_triples), (n,), device=nodes.device)
        h, r, t = self.kgc_triples[idx].unbind(1)
        neg = torch.randint(0, nodes.shape[0], (n,), device=nodes.device)
        hr = nodes[h] * self.kgc_relation(r)
        return -F.logsigmoid((hr * nodes[t]).sum(-1) - (hr * nodes[neg]).sum(-1)).mean()

    def task_weights(self) -> dict[str, float]:
        """The current effective weight of each task (``exp(-s)`` under uncertainty)."""
        w = self.task_weight.clone()
        if self.weighting == "uncertainty":
            w = w * torch.exp(-F.softplus(self.log_var_raw.detach()))
        return dict(zip(self.task_names, w.tolist(), strict=True))


def _parse_weights(spec: list[str], names: list[str]) -> dict[str, float]:
    out = {}
    for item in spec:
        name, sep, value = item.rpartition("=")
        try:
            w = float(value)
        except ValueError:
            w = -1.0
        if not sep or w < 0:
            raise ConfigError(f"model.hgnn.task_weights: {item!r} is not <task>=<weight >= 0>")
        if name not in names:
            raise ConfigError(f"model.hgnn.task_weights: no task {name!r}; tasks are {names}")
        out[name] = w
    return out
