"""Ids where there is behaviour, aligned content where there is none: hgnn's default
ranking (``model.hgnn.ranking: aligned``).

Three stages, the cold-start literature's (ALDI, SIGIR 2023; DropoutNet and Heater before it):

1. **The id model** (``model.hgnn.backbone``: LightGCN by default) is trained alone by the
   ordinary training loop: :meth:`AlignedHGNN.encode_batch` is the teacher's, so with the
   same seed a warm item's vector is bit for bit the id model's.
2. **The student** (:class:`ContentStudent`: an item's fused content, i.e. MiniLM text,
   attributes and vectors, plus the mean of its KG neighbours' learned vectors, through an
   MLP) is trained against the frozen teacher to produce the vector the teacher would have
   learned, with the warm items as teachers (:func:`kgrec.train.align.fit_student`).
3. **The gate and the offset** ``k``, ``b`` are chosen on validation
   (:func:`kgrec.train.align.calibrate`).

The ranking vectors, for an item of ``n`` training links and ``w = n / (n + k)`` (``w = 1``
for every warm item when ``k = 0``, ``w = 0`` for an item without links)::

    users [U, d + 1] = [teacher user, 1]
    items [I, d + 1] = [w * teacher item + (1 - w) * student item, b * s * (1 - w)]

so a score is still one dot product (what the recommender, ANN indexes and the fold-in of
new users assume), and ``s`` is the spread (std) of the teacher's scores, measured once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from kgrec.config import ModelConfig
from kgrec.features.build import Modalities, build_features
from kgrec.graph import KnowledgeTriples
from kgrec.models.base import Encoded, GraphInputs, PairBatch, RecModel
from kgrec.models.capabilities import Propagates, has
from kgrec.models.fusion import Fusion
from kgrec.models.options import HGNNOptions

log = logging.getLogger(__name__)


def student_mlp(dim: int) -> nn.Sequential:
    """ALDI's mapper: ``[2d] -> 2d -> 2d -> d`` with tanh between."""
    return nn.Sequential(nn.Linear(2 * dim, 2 * dim), nn.Tanh(),
                         nn.Linear(2 * dim, 2 * dim), nn.Tanh(),
                         nn.Linear(2 * dim, dim))


class ContentStudent(nn.Module):
    """An item's vector from its content and KG neighbours alone (no id, no interactions).

    ``student() -> [I, d]``: ``MLP([fused content ; mean of the KG neighbours' vectors])``,
    a neighbour's vector being a learned embedding plus its own fused content (an entity's
    name, a neighbouring item's text). ALDI's student is an MLP over content; the KG part is
    kgrec's: items that share a director or a genre entity share what it learned.

    Args:
        items: the items' :class:`Modalities`; ``entities``: the entities' (or ``None``).
        kg: the KG in the joint item+entity index space (``None``: no KG part).
        dim: output size ``d``.
        fusion: ``attention`` or ``mean`` (:class:`Fusion`).
    """

    def __init__(self, items: Modalities, entities: Modalities | None,
                 kg: KnowledgeTriples | None, dim: int, fusion: str = "attention") -> None:
        super().__init__()
        self.num_items = items.num_nodes
        self.content = Fusion(items, dim, fusion)
        self.kinds = list(self.content.kinds)
        self.entity_content = None
        if kg is not None and len(kg):
            n = kg.num_items + kg.num_entities
            # both directions: an item hears the entities it points to and those pointing at it
            rows = np.concatenate([kg.head, kg.tail])
            cols = np.concatenate([kg.tail, kg.head])
            keep = rows < kg.num_items
            rows, cols = rows[keep], cols[keep]
            keys = np.unique(rows.astype(np.int64) * n + cols)
            rows, cols = keys // n, keys % n
            deg = np.bincount(rows, minlength=kg.num_items).astype(np.float32)
            vals = 1.0 / deg[rows]
            adj = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])),
                                          torch.from_numpy(vals), (kg.num_items, n)).coalesce()
            self.register_buffer("kg_adj", adj.to_sparse_csr(), persistent=False)
            self.kg_node = nn.Embedding(n, dim)
            nn.init.normal_(self.kg_node.weight, std=0.1)
            if entities is not None and entities.num_nodes and entities.names():
                self.entity_content = Fusion(entities, dim, fusion)
            self.kinds.append("kg")
        else:
            self.kg_adj = None
        self.mlp = student_mlp(dim)

    def forward(self) -> Tensor:
        """``[I, d]``."""
        c = self.content() if not self.content.empty else self.content.unknown.expand(
            self.num_items, -1)
        if self.kg_adj is not None:
            nodes = self.kg_node.weight
            own = [c]
            if self.entity_content is not None:
                own.append(self.entity_content())
            else:
                own.append(nodes.new_zeros(nodes.shape[0] - self.num_items, nodes.shape[1]))
            nodes = nodes + torch.cat(own)
            k = torch.sparse.mm(self.kg_adj, nodes)
        else:
            k = torch.zeros_like(c)
        return self.mlp(torch.cat([c, k], 1))


class AlignedHGNN(RecModel):
    """hgnn under ``ranking: aligned``: a trained id model for warm items, a content + KG
    student aligned to it for the rest, blended by degree (module docstring).

    Args:
        inputs: sizes, training interactions, KG and the graph (node content).
        cfg: the model section (``dim``, ``layers``, :class:`HGNNOptions`).
        device, progress: where and how visibly text is encoded.
    """

    name = "hgnn"

    def __init__(self, inputs: GraphInputs, cfg: ModelConfig, *, device: str = "auto",
                 progress: bool = True) -> None:
        super().__init__()
        from kgrec.models.registry import MODELS

        o: HGNNOptions = cfg.options
        self.options = o
        self.num_users, self.num_items = inputs.num_users, inputs.num_items
        self.dim, self.layers = cfg.dim, cfg.layers
        # the teacher first, so that under one seed it starts exactly as the id model alone
        self.teacher = MODELS.get(o.backbone).from_config(
            ModelConfig(name=o.backbone, dim=cfg.dim, layers=cfg.layers), inputs,
            device=device, progress=progress)
        assert inputs.graph is not None, "hgnn needs the graph"
        feats = build_features(inputs.graph, modalities=tuple(o.features),
                               text_model=o.text_model, device=device, progress=progress)
        m = feats.items
        if m.names() and m.distinct_rows() < o.content_min_distinct * m.num_nodes:
            log.warning("hgnn: the items' content (%s) tells only %d of %d apart; the student "
                        "reads the KG alone", "+".join(m.names()), m.distinct_rows(),
                        m.num_nodes)
            m = Modalities(m.num_nodes)
        kg = inputs.kg if o.use_kg else None
        self.student = ContentStudent(m, feats.entities if kg is not None else None, kg,
                                      cfg.dim, o.fusion)
        self.modalities = {"items": self.student.kinds}
        log.info("hgnn (aligned, %s teacher) student inputs: %s", o.backbone,
                 self.student.kinds)
        degree = np.bincount(inputs.train_items, minlength=inputs.num_items)
        self.register_buffer("degree", torch.from_numpy(degree.astype(np.float32)),
                             persistent=False)
        # chosen on validation after training (kgrec.train.align.calibrate); saved with the
        # weights so a saved run ranks as it was evaluated
        self.register_buffer("gate_k", torch.zeros(()))
        self.register_buffer("cold_offset", torch.zeros(()))
        self.register_buffer("score_scale", torch.ones(()))
        # 0 until the student is trained: before, the model ranks exactly as the teacher alone
        # (every item by its id vector), so the teacher's validation and early stopping are
        # the id model's own
        self.register_buffer("aligned", torch.zeros(()))

    @classmethod
    def from_config(cls, cfg: ModelConfig, inputs: GraphInputs, *, device: str = "auto",
                    progress: bool = True) -> AlignedHGNN:
        return cls(inputs, cfg, device=device, progress=progress)

    # ------------------------------------------------------------------ training: the teacher
    def encode_batch(self) -> Encoded:
        """The teacher's training step (the student is trained afterwards, against it)."""
        return self.teacher.encode_batch()

    def readout(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        return self.teacher.readout(users, items)

    def ego(self, users: Tensor, items: Tensor) -> list[Tensor]:
        return self.teacher.ego(users, items)

    def l2_sum(self, batch: PairBatch, enc: Encoded) -> Tensor:
        return self.teacher.l2_sum(batch, enc)

    def adjacency(self) -> Tensor | None:
        """The teacher's adjacency: what the training loop propagates over
        (:class:`~kgrec.models.capabilities.Propagates`; ``None`` for an MF teacher)."""
        return self.teacher.adjacency() if has(self.teacher, Propagates) else None

    def use_adjacency(self, adj: Any) -> None:
        if not has(self.teacher, Propagates):
            raise TypeError(f"the {self.options.backbone} id model propagates over no graph")
        self.teacher.use_adjacency(adj)

    # ------------------------------------------------------------------ ranking
    def item_weight(self) -> Tensor:
        """``[I]`` how much of an item's ranking vector is the id model's: ``n / (n + k)``
        (1 for every item with links when ``k = 0``; 0 for an item without)."""
        n, k = self.degree, self.gate_k
        if float(k) <= 0:
            return (n > 0).float()
        return n / (n + k)

    def teacher_vectors(self, trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """The teacher's scored user ``[U, d]`` and item ``[I, d]`` vectors."""
        return self.teacher.readout(*self.teacher(trace=trace))

    def forward(self, trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Users ``[U, d + 1]`` and items ``[I, d + 1]`` (module docstring); ``trace``: the
        teacher's layer inputs, with a zero last column."""
        inner: list[Tensor] | None = [] if trace is not None else None
        users, items = self.teacher_vectors(inner)
        if trace is not None and inner is not None:
            trace.extend(torch.cat([t, t.new_zeros(t.shape[0], 1)], 1) for t in inner)
        if not bool(self.aligned):
            return self.rank_vectors(users, items, items, weight=torch.ones_like(self.degree))
        return self.rank_vectors(users, items, self.student())

    def rank_vectors(self, users: Tensor, items: Tensor, student: Tensor,
                     weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The ranking vectors from teacher users/items and student items ``[I, d]``
        (``weight`` ``[I]``: the teacher's share, default :meth:`item_weight`)."""
        w = (self.item_weight() if weight is None else weight).unsqueeze(-1)
        blend = w * items + (1 - w) * student
        offset = self.cold_offset * self.score_scale * (1 - w)
        return (torch.cat([users, users.new_ones(users.shape[0], 1)], 1),
                torch.cat([blend, offset], 1))

    def new_user(self) -> tuple[Tensor, Tensor] | None:
        """The teacher's start and scale, with the constant last component (``L + 1``, as
        the fold-in divides the start by it)."""
        parts = self.teacher.new_user()
        if parts is None:
            return None
        start, scale = parts
        n = float(getattr(self.teacher, "layers", 0) + 1)
        return (torch.cat([start, start.new_full((1,), n)]),
                torch.cat([scale, scale.new_ones(1)]))

    # ------------------------------------------------ new items, from a saved run's weights
    @classmethod
    def places_items(cls, cfg: ModelConfig, state: Mapping[str, Tensor]) -> bool:
        """Whether these saved weights place an item from its text: the student's trained
        text projection (:class:`~kgrec.models.capabilities.PlacesItems`)."""
        return "student.content.text_proj.weight" in state

    @classmethod
    def items_from_text(cls, cfg: ModelConfig, state: Mapping[str, Tensor], texts: list[str],
                        device: str = "cpu") -> Tensor:
        """Ranking vectors ``[N, d + 1]`` of brand-new items from their texts, as the
        evaluation places an item without links whose only content is its text and which has
        no KG neighbours: the student on the text, on the teacher's scale, with the new
        items' offset."""
        from kgrec.errors import ConfigError
        from kgrec.features.text import TextEncoder

        w = state.get("student.content.text_proj.weight")
        if w is None:
            raise ConfigError("add_items needs an hgnn model trained with text features "
                              f"(this one has features {cfg.options.features})")
        dev = torch.device(device)
        vec = torch.from_numpy(TextEncoder(cfg.options.text_model, device=str(device))
                               .encode(texts, progress=False)).to(dev)
        c = vec @ w.to(dev).T + state["student.content.text_proj.bias"].to(dev)
        mlp = student_mlp(cfg.dim).to(dev)
        mlp.load_state_dict({k[len("student.mlp."):]: v.to(dev) for k, v in state.items()
                             if k.startswith("student.mlp.")})
        with torch.no_grad():
            # no KG neighbours: their mean is zero, as in ContentStudent.forward
            z = mlp(torch.cat([c, torch.zeros_like(c)], 1))
            offset = (state["cold_offset"] * state["score_scale"]).to(dev).expand(len(texts), 1)
        return torch.cat([z, offset], 1)
