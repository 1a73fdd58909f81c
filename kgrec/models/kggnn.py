"""A knowledge-graph-aware heterogeneous GNN.

Users, items and KG entities are propagated jointly, ``L`` layers:

- user <-> item: LightGCN-style symmetric-normalised propagation (CSR);
- item/entity <- KG neighbours: relation-aware messages ``x_t * r`` (the neighbour's
  embedding modulated by a learned relation vector, KGIN's relational aggregation), averaged
  per node; every relation also runs in reverse with its own vector;
- an item's next representation is what it hears from its users plus what it hears from the
  KG; an entity's is what it hears from the KG.

The output is the mean of the layers (layer 0 included), scored by dot product. During
training a share of KG edges is dropped at every step (``kg_dropout``): without it the
model fits the KG's item similarities faster than the users' and stops early on validation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kgrec.config import ModelConfig
from kgrec.models.base import (
    Encoded,
    GraphInputs,
    RecModel,
    SymmetricPropagation,
    bipartite_adjacency,
)
from kgrec.models.layers import RelationalMessages
from kgrec.models.ops import WeightedAdjacency, propagate
from kgrec.models.options import KGGNNOptions
from kgrec.models.registry import MODELS


@MODELS.register("kggnn")
class KGGNN(SymmetricPropagation, RecModel):
    """KG-aware GNN: relation-aware propagation over user-item and item-entity edges.

    Args:
        inputs: sizes, training interactions and the KG (``inputs.kg``; without one the
            model reduces to LightGCN).
        dim: embedding size ``d``.
        layers: propagation layers ``L``.
        kg_layers: layers that also take KG messages (default: all).
        kg_dropout: share of KG edges dropped per training step.
        use_kg: propagate over the KG at all (off: LightGCN over the input embeddings).
        id_embeddings: learn one embedding per user, item and entity (subclasses that build
            inputs from content may turn this off).
    """

    Options = KGGNNOptions

    def __init__(self, inputs: GraphInputs, dim: int = 64, layers: int = 2,
                 kg_layers: int | None = None, kg_dropout: float = 0.5, *,
                 use_kg: bool = True, id_embeddings: bool = True) -> None:
        super().__init__()
        self.num_users, self.num_items = inputs.num_users, inputs.num_items
        kg = inputs.kg if use_kg else None
        self.num_entities = kg.num_entities if kg is not None else 0
        self.layers = layers
        self.kg_layers = layers if kg_layers is None else kg_layers
        self.kg_dropout = kg_dropout
        self.dim = dim
        if id_embeddings:
            self.user = nn.Embedding(self.num_users, dim)
            # Items occupy rows 0..I-1 of the node table, entities follow.
            self.node = nn.Embedding(self.num_items + self.num_entities, dim)
            nn.init.xavier_normal_(self.user.weight)
            nn.init.xavier_normal_(self.node.weight)
        self.register_buffer("adj", bipartite_adjacency(inputs.train_users, inputs.train_items,
                                                        self.num_users, self.num_items),
                             persistent=False)
        n_rel = len(kg.relations) if kg is not None and len(kg) else 0
        self.has_kg = n_rel > 0
        if self.has_kg:
            assert kg is not None
            self.kg_messages = RelationalMessages(kg, kg_dropout)
            # Small relation vectors: KG messages start weak and grow where they help ranking.
            self.relation = nn.Embedding(2 * n_rel, dim)
            nn.init.normal_(self.relation.weight, std=0.1)

    @classmethod
    def from_config(cls, cfg: ModelConfig, inputs: GraphInputs, *, device: str = "auto",
                    progress: bool = True) -> KGGNN:
        return cls(inputs, cfg.dim, cfg.layers, cfg.options.kg_layers,
                   cfg.options.kg_dropout)

    def embed(self) -> tuple[Tensor, Tensor]:
        """Layer-0 inputs: users ``[U, d]`` and items+entities ``[I + E, d]``."""
        return self.user.weight, self.node.weight

    def relation_vectors(self) -> Tensor:
        """``[2R, d]``: one vector per relation and per reversed relation."""
        return self.relation.weight

    @property
    def kg_head(self) -> Tensor:
        """``[2T]`` the KG edges' heads (both directions)."""
        return self.kg_messages.head

    def _kg_messages(self, x: Tensor, rel_vecs: Tensor, into: Tensor | None = None) -> Tensor:
        """Relational KG messages into ``into``'s nodes (:class:`RelationalMessages`)."""
        return self.kg_messages(x, rel_vecs, into)

    def forward(self, trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        return self.encode(*self.embed(), trace=trace)

    def new_user(self) -> tuple[Tensor, Tensor] | None:
        """A user without an id starts from zero; the readout is the identity."""
        w = self.user.weight
        return w.new_zeros(self.dim), w.new_ones(self.dim)

    def encode(self, u: Tensor, nodes: Tensor, user_hears: Tensor | None = None,
               item_hears: Tensor | None = None,
               adj: Tensor | WeightedAdjacency | None = None,
               item_kg: Tensor | None = None,
               trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Propagate layer-0 inputs ``u [U, d]``, ``nodes [I + E, d]`` -> users ``[U, d]``,
        items ``[I, d]`` (the mean over layers).

        ``user_hears [U]`` / ``item_hears [I]`` (float 0/1, optional) silence the interaction
        messages into chosen users/items, so that they are encoded as a cold node would be.
        ``adj`` replaces the training interaction graph for this pass (a few-shot episode's
        graph, which lacks its query links), or a weighted sum of adjacency parts.
        ``item_kg [I]`` (bool, optional): the items that take KG messages (default: all).
        ``trace``: see :meth:`RecModel.forward`.
        """
        U, I = self.num_users, self.num_items
        rel_vecs = self.relation_vectors() if self.has_kg else None
        adj = self.adj if adj is None else adj
        out_u, out_n = u, nodes
        last_kg = min(self.kg_layers, self.layers) - 1
        for layer in range(self.layers):
            if trace is not None:
                trace.append(nodes[:I])
            x = torch.cat([u, nodes[:I]])
            ui = adj(x) if isinstance(adj, WeightedAdjacency) else propagate(adj, x)
            u, items = ui[:U], ui[U:]
            if user_hears is not None:
                u = u * user_hears.unsqueeze(-1)
            if item_hears is not None:
                items = items * item_hears.unsqueeze(-1)
            if self.has_kg and layer <= last_kg:
                # an entity's row of this layer is read only by the next layer's KG messages
                # (the output keeps items alone), so the last KG layer computes none
                kg = self._kg_messages(nodes, rel_vecs,
                                       self._kg_into(item_kg, entities=layer < last_kg))
                into = kg[:I] if item_kg is None else kg[:I] * item_kg.unsqueeze(-1)
                nodes = torch.cat([items + into, kg[I:]])
            else:
                nodes = torch.cat([items, nodes[I:]])
            out_u, out_n = out_u + u, out_n + nodes
        scale = 1.0 / (self.layers + 1)
        return out_u * scale, out_n[:I] * scale

    def _kg_into(self, item_kg: Tensor | None, entities: bool) -> Tensor | None:
        """``[I + E]`` bool: the nodes whose KG messages a layer needs (``None``: all)."""
        if item_kg is None and entities:
            return None
        dev = self.kg_head.device
        items = (torch.ones(self.num_items, dtype=torch.bool, device=dev) if item_kg is None
                 else item_kg.bool())
        ents = torch.full((self.num_entities,), entities, dtype=torch.bool, device=dev)
        return torch.cat([items, ents])

    def rank_encode(self, u: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`encode` as the ranking sees it (a model whose ranking head propagates over
        its own graph overrides this)."""
        return self.encode(u, nodes)

    def ego(self, users: Tensor, items: Tensor) -> list[Tensor]:
        return [self.user(users), self.node(items)]

    def encode_batch(self) -> Encoded:
        """Layer-0 inputs and their propagation over this step's graph (its KG dropout)."""
        u0, n0 = self.embed()
        return Encoded(self.encode(u0, n0), inputs=(u0, n0), propagate=self.encode)

    def readout(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Propagated vectors -> the vectors a pair is scored with (identity here)."""
        return users, items
