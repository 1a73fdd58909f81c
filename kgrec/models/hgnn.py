"""The generalising model: a text-initialised heterogeneous GNN with multi-task heads.

Data path, per training step::

    node content (text, categorical, numeric, vectors)   id embeddings (optional)
            │ Fusion per node type (attention over            │ dropped per node with
            │ the modalities a node has)                      │ probability id_dropout
            └──────────────── + ──────────────────────────────┘
                              │ layer-0 inputs: users [U, d], items+entities [I + E, d]
                              ▼
          KGGNN propagation: user<->item (symmetric) + relation-aware KG messages
          (into every item, or under model.hgnn.kg_items=cold into items without an id only),
          relation vectors = learned + projected relation-name text
                              │ users [U, d], items [I, d]
                              ▼
          one diagonal head per link task t: s_t(u, i) = <u * w_t, i>   (BPR each)
          KG completion on layer-0 inputs: DistMult <h * r, t>          (optional)
          task losses combined with fixed weights or learned uncertainty weights

At evaluation a node's id embedding is used only when it had training edges, so a cold
user or item is placed by its content and its KG neighbours alone. In training a random
``id_dropout`` share of users and items is encoded the same way at each step (no id, no
interaction messages in; DropoutNet's idea on a GNN), so the content path learns to carry
them. Ranking uses the ``model.hgnn.rank_task`` head (``all`` by default); on cross-domain data
``model.hgnn.source_weight`` gives that head its own propagation, with the source domains' links
down-weighted, and ``model.hgnn.task_users`` gives each domain head per-user offsets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from kgrec.config import Config, ModelConfig
from kgrec.errors import ConfigError
from kgrec.features.build import AttributeSchema, Modalities, build_features
from kgrec.models.base import Encoded, GraphInputs, Isolation, PairBatch, RecModel
from kgrec.models.fusion import Fusion
from kgrec.models.heads import TaskHeads
from kgrec.models.kggnn import KGGNN
from kgrec.models.options import HGNNOptions
from kgrec.models.registry import MODELS

log = logging.getLogger(__name__)


@MODELS.register("hgnn")
class HGNN(TaskHeads, KGGNN):
    """BERT-initialised heterogeneous GNN with multi-task link-prediction heads.

    Args:
        inputs: sizes, training interactions, KG and the graph (``inputs.graph`` is required:
            node content comes from it).
        cfg: the model section of the config (``dim``, ``layers``, and hgnn's options,
            :class:`~kgrec.models.options.HGNNOptions`, in ``cfg.options``).
        device: where the text encoder runs (``auto``: CUDA when available).
        progress: progress bar while encoding text.
    """

    Options = HGNNOptions

    def __init__(self, inputs: GraphInputs, cfg: ModelConfig, *, device: str = "auto",
                 progress: bool = True) -> None:
        if inputs.graph is None:
            raise ConfigError("model hgnn needs the graph (node content) in its inputs")
        o: HGNNOptions = cfg.options
        super().__init__(inputs, cfg.dim, cfg.layers, o.kg_layers, o.kg_dropout,
                         use_kg=o.use_kg, id_embeddings=False)
        graph, dim = inputs.graph, cfg.dim
        U, I, E = self.num_users, self.num_items, self.num_entities
        feats = build_features(graph, modalities=tuple(o.features), text_model=o.text_model,
                               device=device, progress=progress)
        for kind in ("users", "items"):
            m = getattr(feats, kind)
            distinct = m.distinct_rows()
            if m.names() and distinct < o.content_min_distinct * m.num_nodes:
                log.warning("hgnn: the %s' content (%s) tells only %d of %d apart; they are "
                            "placed by their ids alone (model.hgnn.content_min_distinct=%g)", kind,
                            "+".join(m.names()), distinct, m.num_nodes,
                            o.content_min_distinct)
                setattr(feats, kind, Modalities(m.num_nodes))
        self.user_content = Fusion(feats.users, dim, o.fusion)
        self._user_schema = feats.users.schema
        self.item_content = Fusion(feats.items, dim, o.fusion)
        self.entity_content = Fusion(feats.entities, dim, o.fusion) if E else None
        self.modalities = {"users": self.user_content.kinds, "items": self.item_content.kinds,
                           "entities": self.entity_content.kinds if E else []}
        log.info("hgnn inputs: %s", self.modalities)
        # How much content enters each type's layer-0 input, learned from zero (ReZero-style):
        # added at full scale from the start, the text projection cost Last.FM 0.05
        # Recall@20 on warm items; from zero, content grows where it helps the ranking.
        self.content_scale = nn.Parameter(torch.zeros(3))

        # Id embeddings: on request, and always for a node type without any content.
        self.user_ids = o.id_embeddings or self.user_content.empty
        self.node_ids = (o.id_embeddings or self.item_content.empty
                         or (E > 0 and self.entity_content.empty))
        self.id_dropout = o.id_dropout
        self.kg_cold_only = o.kg_items == "cold"
        if self.user_ids:
            self.user = nn.Embedding(U, dim)
            nn.init.xavier_normal_(self.user.weight)
        if self.node_ids:
            self.node = nn.Embedding(I + E, dim)
            nn.init.xavier_normal_(self.node.weight)
        # What a never-seen node of a type without content starts from: one learned vector
        # (in a few-shot episode, the meta-learned starting point that adaptation moves).
        self.user_default = nn.Parameter(torch.zeros(dim))
        self.item_default = nn.Parameter(torch.zeros(dim))
        # An id is known only for nodes seen in training; entities are always known.
        self.register_buffer("user_known", torch.from_numpy(
            np.bincount(inputs.train_users, minlength=U) > 0), persistent=False)
        self.register_buffer("node_known", torch.from_numpy(np.concatenate([
            np.bincount(inputs.train_items, minlength=I) > 0, np.ones(E, dtype=bool)])),
            persistent=False)

        if self.has_kg and feats.relation_text is not None:
            self._init_relations(feats.relation_text)

        self._init_heads(o, graph, inputs)

    @classmethod
    def from_config(cls, cfg: ModelConfig, inputs: GraphInputs, *, device: str = "auto",
                    progress: bool = True) -> RecModel:
        """This joint GNN under ``model.hgnn.ranking: joint``; the default, ``aligned``, is
        :class:`~kgrec.models.aligned.AlignedHGNN` (ids where there is behaviour, aligned
        content where there is none)."""
        if cfg.options.ranking == "aligned":
            from kgrec.models.aligned import AlignedHGNN

            return AlignedHGNN(inputs, cfg, device=device, progress=progress)
        return cls(inputs, cfg, device=device, progress=progress)

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        """``source_weight`` needs a domain head to rank and no few-shot adaptation;
        ``learn_source_weight`` a starting weight."""
        m: HGNNOptions = cfg.model.options
        if m.ranking == "aligned":
            joint_only = [(cfg.meta.mode != "off", "meta.mode", cfg.meta.mode),
                          (cfg.train.adv_eps > 0, "train.adv_eps", cfg.train.adv_eps),
                          (m.source_weight is not None, "model.hgnn.source_weight",
                           m.source_weight),
                          (m.rank_task != "all", "model.hgnn.rank_task", m.rank_task),
                          (m.tasks != ["auto"], "model.hgnn.tasks", m.tasks),
                          (m.task_users, "model.hgnn.task_users", m.task_users),
                          (m.kg_items != "all", "model.hgnn.kg_items", m.kg_items)]
            for on, field, value in joint_only:
                if on:
                    raise ConfigError(f"{field}: {value!r} needs the joint GNN "
                                      "(model.hgnn.ranking: joint); the default, aligned, "
                                      "ranks with an id model and a content student",
                                      field=field)
        if m.source_weight is not None and not m.rank_task.startswith("domain="):
            raise ConfigError(f"model.hgnn.source_weight: needs a domain head to rank "
                              f"(model.hgnn.rank_task: domain=X); rank_task is "
                              f"{m.rank_task!r}", field="model.hgnn.source_weight")
        if m.source_weight is not None and cfg.meta.mode != "off":
            raise ConfigError("model.hgnn.source_weight: not with few-shot adaptation "
                              f"(meta.mode {cfg.meta.mode!r}); set meta.mode=off",
                              field="model.hgnn.source_weight")
        if m.learn_source_weight and not (m.source_weight or 0) > 0:
            raise ConfigError(f"model.hgnn.learn_source_weight: needs a starting "
                              f"model.hgnn.source_weight > 0 (it is {m.source_weight})",
                              field="model.hgnn.learn_source_weight")

    # ---------------------------------------------------------------- inputs
    def _warm(self) -> tuple[Tensor, Tensor]:
        """Which users ``[U]`` and items+entities ``[I + E]`` are encoded as warm nodes this
        step: at evaluation, those seen in training; in training, a random ``1 - id_dropout``
        share of those (the rest are encoded exactly as a cold node: no id embedding and no
        interaction messages in, only content and KG)."""
        user, node = self.user_known, self.node_known
        if self.training and self.id_dropout > 0:
            # (a type without content keeps its ids under dropout: it has nothing else; only
            # the interaction messages into it are dropped)
            user = user & (torch.rand(user.shape, device=user.device) >= self.id_dropout)
            drop = torch.rand(node.shape, device=node.device) < self.id_dropout
            drop[self.num_items:] = False  # entities are never cold
            node = node & ~drop
        return user, node

    def embed(self, warm: tuple[Tensor, Tensor] | None = None,
              known: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Layer-0 inputs ``[U, d]``, ``[I + E, d]``: fused content plus, for warm nodes,
        the id embedding.

        ``warm`` (users ``[U]``, items+entities ``[I + E]``, bool): who gets an id on top of
        content (default :meth:`_warm`). A node type without content has only its id, so there
        ``known`` decides instead: a known node gets its id, any other (never seen, or isolated
        for a few-shot episode) the type's learned default vector.
        """
        user_warm, node_warm = warm if warm is not None else self._warm()
        user_known, node_known = known if known is not None else (self.user_known,
                                                                   self.node_known)
        a = self.content_scale
        dev = self.heads.device
        if self.user_content.empty:
            u = torch.where(user_known.unsqueeze(-1), self.user.weight, self.user_default)
        else:
            u = self.user_content()
            if self.user_ids:
                u = _mix(self.user.weight, u, a[0], user_warm)
        parts = []
        if not self.item_content.empty:
            parts.append(self.item_content())
        else:
            parts.append(self.item_default.expand(self.num_items, self.dim))
        if self.entity_content is not None:
            parts.append(self.entity_content() if not self.entity_content.empty else
                         torch.zeros(self.num_entities, self.dim, device=dev))
        nodes = torch.cat(parts)
        if self.node_ids:
            if self.item_content.empty:
                # no content to mix in: ids where known, the default vector elsewhere
                nodes = torch.where(node_known.unsqueeze(-1), self.node.weight, nodes)
            else:
                gate = torch.cat([a[1].expand(self.num_items), a[2].expand(self.num_entities)])
                nodes = _mix(self.node.weight, nodes, gate.unsqueeze(-1), node_warm)
        return u, nodes

    def _encode(self, isolate: Isolation | None = None, trace: list[Tensor] | None = None
                ) -> tuple[Tensor, Tensor, _View, _View]:
        """Layer-0 inputs and two views of them propagated: the shared graph's (every head
        but the ranking one) and the ranking head's (the same view unless
        ``model.hgnn.source_weight``). A view carries its propagation (this step's id dropout and
        graph), so an adversarial pass sees the same graph. ``trace`` records the ranking
        view's layers (:meth:`RecModel.forward`)."""
        user_warm, node_warm = self._warm()
        user_known, node_known = self.user_known, self.node_known
        adj = None
        if isolate is not None:
            iso_u, iso_i = isolate.masks(self.num_users, self.num_items, self.num_entities,
                                         self.heads.device)
            user_warm, user_known = user_warm & ~iso_u, user_known & ~iso_u
            node_warm, node_known = node_warm & ~iso_i, node_known & ~iso_i
            adj = isolate.adjacency
        u0, n0 = self.embed((user_warm, node_warm), (user_known, node_known))
        item_kg = self._item_kg(node_warm)
        # cold-simulated nodes also hear no interaction messages (a no-op at evaluation: an
        # unseen node has no training edges anyway); isolated few-shot nodes do hear theirs
        if self.training:
            if isolate is not None:
                user_warm, node_warm = user_warm | iso_u, node_warm | iso_i
            hears = (user_warm.float(), node_warm[:self.num_items].float())
        else:
            hears = (None, None)

        def propagate_(u: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
            return self.encode(u, n, *hears, adj=adj, item_kg=item_kg)

        gated = self._rank_adjacency()
        one_view = gated is None or isolate is not None
        shared = _View(*self.encode(u0, n0, *hears, adj=adj, item_kg=item_kg,
                                    trace=trace if one_view else None), propagate_)
        if one_view:
            return u0, n0, shared, shared

        def rank_(u: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
            return self.encode(u, n, *hears, adj=gated, item_kg=item_kg)

        return u0, n0, shared, _View(*self.encode(u0, n0, *hears, adj=gated, item_kg=item_kg,
                                                  trace=trace), rank_)

    def rank_encode(self, u: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
        """Propagation as the ranking head sees it (its own graph under ``source_weight``)."""
        return self.encode(u, nodes, adj=self._rank_adjacency(),
                           item_kg=self._item_kg(self.node_known))

    def _item_kg(self, node_warm: Tensor) -> Tensor | None:
        """``[I]`` bool, the items that take KG messages under ``model.hgnn.kg_items: cold``: those
        encoded without an id (``None``: all items, the default)."""
        return ~node_warm[:self.num_items] if self.kg_cold_only else None

    @torch.no_grad()
    def _init_relations(self, text: Tensor) -> None:
        """Start each relation's vector (and its reverse's) from its name's embedding under a
        random projection, at the scale of the random init: relations with similar
        names start alike, then learn freely. (Adding a learned projection of the names at
        every step instead tied the relations together and cost Last.FM 0.03 Recall@20.)"""
        proj = torch.randn(text.shape[1], self.dim) / text.shape[1] ** 0.5  # under train.seed
        # centred: sentence embeddings share a common direction that says nothing
        r = (text - text.mean(0)) @ proj
        r = r / r.std().clamp(min=1e-8) * float(self.relation.weight.std())
        n = text.shape[0]
        self.relation.weight[:n] = r
        self.relation.weight[n:] = r

    # ---------------------------------------------------------------- outputs
    def forward(self, isolate: Isolation | None = None,
                trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Users ``[U, d]`` (through the ranking head) and items ``[I, d]``; ``isolate``
        encodes the given users/items as few-shot nodes: no id, only the interaction edges of
        its graph (episodes and held-out nodes, :mod:`kgrec.train.meta`); ``trace``: see
        :meth:`RecModel.forward`."""
        _, _, _, ranked = self._encode(isolate, trace)
        return self.readout(ranked.users, ranked.items)

    def encode_isolated(self, isolate: Isolation | None,
                        trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """:meth:`forward` with ``isolate``'s nodes encoded as few-shot nodes
        (:class:`~kgrec.models.capabilities.FewShot`)."""
        return self(isolate=isolate, trace=trace)

    def encode_batch(self) -> Encoded:
        """Layer-0 inputs, and the shared and ranking views propagated from them over this
        step's graph (its id and KG dropout)."""
        u0, n0, shared, ranked = self._encode()
        return Encoded((ranked.users, ranked.items), inputs=(u0, n0),
                       propagate=ranked.propagate, private=(shared, ranked))

    def new_user(self) -> tuple[Tensor, Tensor] | None:
        """A new user starts as an isolated one does: no id, and no profile (the fused
        content's 'unknown' vector where users have content, else the learned default);
        the ranking head scales it. ``None`` under ``model.hgnn.source_weight`` (the ranking
        propagates over its own weighted graph)."""
        if self.source_log_weight is not None:
            return None
        start = self.user_default if self.user_content.empty else self.user_content.unknown
        return start, self.heads[self.rank_head]

    def user_profile(self) -> AttributeSchema | None:
        return None if self.user_content.empty else self._user_schema

    # ------------------------------------------------ new nodes, from a saved run's weights
    @classmethod
    def places_items(cls, cfg: ModelConfig, state: Mapping[str, Tensor]) -> bool:
        """Whether these saved weights place an item from its text: the trained text
        projection of the items' content (the aligned ranking's student's, under
        ``hgnn.ranking`` aligned; :class:`~kgrec.models.capabilities.PlacesItems`)."""
        if cfg.options.ranking == "aligned":
            from kgrec.models.aligned import AlignedHGNN

            return AlignedHGNN.places_items(cfg, state)
        return "item_content.text_proj.weight" in state

    @classmethod
    def items_from_text(cls, cfg: ModelConfig, state: Mapping[str, Tensor], texts: list[str],
                        device: str = "cpu") -> Tensor:
        """Ranking vectors ``[N, d]`` of brand-new items from their texts, as this model
        encodes an unseen item: the text through the encoder and the trained projection, no
        id, no interaction or KG messages (:class:`~kgrec.models.capabilities.PlacesItems`).
        Only the text modality is present, so attention (or mean) fusion returns its
        projection unchanged; with no edges every propagation layer adds zero, and the
        output is the mean over the layer-0 input and ``L`` empty layers."""
        from kgrec.features.text import TextEncoder

        if cfg.options.ranking == "aligned":
            from kgrec.models.aligned import AlignedHGNN

            return AlignedHGNN.items_from_text(cfg, state, texts, device)
        w = state.get("item_content.text_proj.weight")
        if w is None:
            raise ConfigError("add_items needs an hgnn model trained with text features "
                              f"(this one has features {cfg.options.features})")
        vec = torch.from_numpy(TextEncoder(cfg.options.text_model, device=str(device))
                               .encode(texts, progress=False)).to(device)
        content = vec @ w.to(device).T + state["item_content.text_proj.bias"].to(device)
        return content / (cfg.layers + 1)

    @classmethod
    def users_from_profiles(cls, cfg: ModelConfig, state: Mapping[str, Tensor],
                            columns: Modalities, texts: list[str] | None,
                            device: str = "cpu") -> Tensor:
        """Layer-0 vectors of new users from their encoded attribute ``columns`` and texts
        (``None``: the users' content has no text), fused by the trained ``user_content``
        weights, divided by ``L + 1`` (a fold-in's start;
        :class:`~kgrec.models.capabilities.PlacesUsers`)."""
        if texts is not None:
            from kgrec.features.text import TextEncoder

            dt = state["user_content.text_proj.weight"].shape[1]
            columns.text_mask = torch.as_tensor([bool(t) for t in texts])
            columns.text = torch.zeros(len(texts), dt)
            if columns.text_mask.any():
                enc = TextEncoder(cfg.options.text_model, device=str(device))
                columns.text[columns.text_mask] = torch.from_numpy(
                    enc.encode([t for t in texts if t], progress=False))
        fusion = Fusion(columns, cfg.dim, cfg.options.fusion)
        prefix = "user_content."
        fusion.load_state_dict({k[len(prefix):]: v for k, v in state.items()
                                if k.startswith(prefix)})
        with torch.no_grad():
            return fusion.to(device)() / (cfg.layers + 1)

    def ego(self, users: Tensor, items: Tensor) -> list[Tensor]:
        out = []
        if self.user_ids:
            out.append(self.user(users))
        if self.node_ids:
            out.append(self.node(items))
        return out

    def l2_sum(self, batch: PairBatch, enc: Encoded) -> Tensor:
        """The batch's layer-0 inputs (content + id), not just the id embeddings: the
        content projection can memorise as well as an id can; plus the users' task offsets."""
        u0, n0 = enc.inputs
        items0 = n0[torch.cat([batch.pos, batch.neg])]
        l2 = (u0[batch.users] ** 2).sum() + (items0 ** 2).sum()
        if self.task_user is not None:
            l2 = l2 + (self.task_user[:, batch.users] ** 2).sum()
        return l2

class _View(NamedTuple):
    """Propagated users ``[U, d]`` and items ``[I, d]``, and the propagation that made them."""

    users: Tensor
    items: Tensor
    propagate: Callable[[Tensor, Tensor], Any]


def _mix(ids: Tensor, content: Tensor, gate: Tensor, warm: Tensor) -> Tensor:
    """A warm node's input is its id embedding plus ``gate`` times its content; a cold node's
    (unseen, or dropped this step) is its content alone, at full scale."""
    w = warm.unsqueeze(-1)
    return torch.where(w, ids + gate * content, content)
