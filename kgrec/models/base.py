"""What every recommender model shares: its inputs and its interface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from kgrec.errors import moved_names
from kgrec.graph import KnowledgeTriples, RecGraph

if TYPE_CHECKING:
    from kgrec.config import Config, ModelConfig
    from kgrec.data.folds import Split
    from kgrec.features.build import AttributeSchema


@dataclass
class GraphInputs:
    """What a model may see of the data: sizes, the training interactions and the KG.

    Attributes:
        num_users, num_items: node counts.
        train_users, train_items: training positives ``[P]`` (the message-passing graph).
        kg: knowledge triples in the joint item+entity index space, or ``None``.
        graph: the graph's nodes, their content and KG, with only the interactions whose
            pair is a training pair (:meth:`from_split` builds it so): a model cannot reach a
            held-out interaction through it.
    """

    num_users: int
    num_items: int
    train_users: np.ndarray
    train_items: np.ndarray
    kg: KnowledgeTriples | None = None
    graph: RecGraph | None = None

    @classmethod
    def from_split(cls, split: Split) -> GraphInputs:
        """A split's training view: its training pairs, its KG (the split's, e.g. noised,
        else the graph's) and its graph with the held-out interactions taken out."""
        kg = split.kg if split.kg is not None else split.graph.knowledge()
        return cls(split.num_users, split.num_items, split.train_users, split.train_items,
                   kg if len(kg) else None, training_view(split))


def training_view(split: Split) -> RecGraph:
    """``split.graph`` keeping only the interaction rows whose (user, item) pair is one of the
    split's training pairs (nodes, content and KG shared, not copied)."""
    g = split.graph
    inter = g.interactions
    n = max(1, g.num_items)
    train = np.unique(split.train_users.astype(np.int64) * n + split.train_items)
    rows = inter.src.astype(np.int64) * n + inter.dst
    return g.subgraph_interactions(np.isin(rows, train))


@dataclass
class PairBatch:
    """One training step's pairs: ``users``, positive ``pos`` and sampled negative ``neg``
    items ``[B]``, and ``index`` ``[B]``, the positions of the pairs among the training
    positives (so a multi-task model can look up which tasks a pair belongs to).

    Under a loss with shared negatives (``sampled_softmax``) ``neg`` is ``[M]``, one draw
    for the whole step. Under data-parallel training a process holds a shard of the step:
    ``total`` is the whole step's pair count (``None``: this batch is the whole step) and
    ``owns_shared`` says whether this shard counts the shared negatives in the L2 term (one
    shard does, so the shards' terms sum to the whole step's)."""

    users: Tensor
    pos: Tensor
    neg: Tensor
    index: Tensor
    total: int | None = None
    shared: bool = False
    owns_shared: bool = True

    @property
    def share(self) -> float:
        """This shard's share of the step's pairs (1.0 for a whole step)."""
        return 1.0 if self.total is None else len(self.users) / max(1, self.total)


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


@dataclass
class Encoded:
    """One training step's forward pass, shared by every term of the objective
    (:mod:`kgrec.train.objectives`), so they all see the same draws (id dropout, KG edge
    dropout) and the same graph.

    Attributes:
        propagated: users ``[U, d]`` and items ``[I, d]`` as the ranking sees them, before
            :meth:`RecModel.readout`.
        inputs: the layer-0 inputs (users ``[U, d]``, items+entities ``[I + E, d]``) that
            made them, for models that have any (:class:`~kgrec.models.capabilities.Attackable`).
        propagate: layer-0 inputs -> ``propagated``, over this step's graph (the adversary
            propagates perturbed inputs with it).
        private: what else the model's own terms need (hgnn: its per-head views).
    """

    propagated: tuple[Tensor, Tensor]
    inputs: tuple[Tensor, Tensor] | None = None
    propagate: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None
    private: Any = None


class RecModel(nn.Module):
    """A model that embeds every user and item; a pair's score is the dot product.

    The contract (PyG's ``MessagePassing`` in spirit: a few methods, shapes in their
    docstrings):

    - :meth:`from_config` builds the model from its config section and the
      :class:`GraphInputs` (the registry calls it: ``@MODELS.register("name")``);
    - :meth:`forward` gives every user's and item's ranking vector;
    - :meth:`encode_batch` is one training step's forward (default: :meth:`forward`), and
      :meth:`l2_sum` the squared norm its L2 term penalises;
    - :meth:`readout` maps propagated vectors to scored ones (default: identity).

    Everything else is a capability the model declares by implementing it
    (:mod:`kgrec.models.capabilities`): attackable inputs, few-shot encoding, task heads,
    placing new items and users. The losses are the trainer's (:mod:`kgrec.train.objectives`).
    """

    name = "model"
    #: the model's options dataclass (its config sub-section ``model.<name>``, with a
    #: ``check()``), or ``None``; registered with the model
    Options: type | None = None

    @classmethod
    def from_config(cls, cfg: ModelConfig, inputs: GraphInputs, *, device: str = "auto",
                    progress: bool = True) -> RecModel:
        """The model ``cfg`` describes, sized for ``inputs`` (``device``/``progress``: for
        models that encode content). Default: ``cls(inputs, cfg.dim)``."""
        return cls(inputs, cfg.dim)  # type: ignore[call-arg]

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        """Refuse (:class:`~kgrec.errors.ConfigError`, naming the field) settings this
        model cannot honour; called by :func:`kgrec.models.check_config` with the whole
        config, beside the capability checks."""

    def forward(self, trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Returns ``(users [U, d], items [I, d])``.

        ``trace``: if a list, a propagation model appends the item vectors each of its
        layers reads (``[I, d]`` per layer, layer 0 first); what a user added after training
        is built from (:meth:`new_user`, :meth:`kgrec.recommender.Recommender.add_users`).
        """
        raise NotImplementedError

    def encode_batch(self) -> Encoded:
        """One training step's forward pass (draws this step's dropout)."""
        return Encoded(self())

    def readout(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Propagated vectors -> the vectors a pair is scored with (identity here)."""
        return users, items

    def new_user(self) -> tuple[Tensor, Tensor] | None:
        """``(start [d], scale [d])`` for a user built from its links alone: its layer-0
        vector (a user the model has never seen: no id, no profile) and what the readout
        multiplies the propagated vector by. ``None``: this model cannot place such a user
        (it has no propagation, or its ranking propagates over a graph of its own)."""
        return None

    def user_profile(self) -> AttributeSchema | None:
        """How this model encodes a user's profile (its attribute columns), so a new user
        with a profile starts where a training user with that profile would. ``None``:
        profiles are not read (the model has no user content)."""
        return None

    def ego(self, users: Tensor, items: Tensor) -> list[Tensor]:
        """Input embeddings of a batch's users ``[B]`` and items ``[B']`` (for L2 terms)."""
        raise NotImplementedError

    def l2_sum(self, batch: PairBatch, enc: Encoded) -> Tensor:
        """The squared norm of the batch's input embeddings (users, positives, negatives),
        which the L2 term scales by ``reg / 2`` per pair."""
        return sum((e ** 2).sum() for e in self.ego(batch.users,
                                                    torch.cat([batch.pos, batch.neg])))


class SymmetricPropagation:
    """:class:`~kgrec.models.capabilities.Propagates` for a model whose layers multiply by
    its ``adj`` buffer (a symmetric CSR adjacency, :func:`bipartite_adjacency`), through
    :func:`kgrec.models.ops.propagate`, which also accepts a callable in its place."""

    def adjacency(self) -> Tensor | None:
        adj = getattr(self, "adj", None)
        return adj if isinstance(adj, Tensor) else None

    def use_adjacency(self, adj: Any) -> None:
        module: nn.Module = self  # type: ignore[assignment]
        module._buffers.pop("adj", None)
        if "adj" in vars(module):
            del module.adj
        if isinstance(adj, Tensor):
            module.register_buffer("adj", adj, persistent=False)
        else:  # an operator standing for the adjacency (not a tensor: no buffer)
            module.adj = adj


def _objective(kind: str = "bpr", temperature: float = 0.5) -> Any:
    from kgrec.models.losses import LOSSES

    cls = LOSSES.get(kind)
    return cls(temperature) if kind == "softmax" else cls()


# the ranking losses moved to kgrec.models.losses (a registry); the old names keep working
__getattr__ = moved_names({"bpr_loss": ("kgrec.models.losses", "bpr_loss"),
                           "softmax_loss": ("kgrec.models.losses", "softmax_loss"),
                           "Objective": ("kgrec.models.losses", "LOSSES")},
                          values={"Objective": _objective})


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
