"""What a model can do, declared as typed protocols: the trainer, the evaluation and serve
ask a model for a capability, never for its class name.

A model has a capability when it implements the protocol's methods (structural typing, as
``typing.Protocol`` checks at run time): ``isinstance(model, Attackable)``. For a model
*class* (serve places new items from a saved run's weights without building the model) use
:func:`has`. A config that asks for something the named model cannot do is refused by
:func:`kgrec.models.check_config` naming the field and the capability.

=====================  ==========================================  =========================
capability             what it means                               who needs it
=====================  ==========================================  =========================
:class:`Attackable`    layer-0 inputs that can be perturbed        ``train.adv_eps``, ``kgrec
                       and propagated again                        evaluate --perturb``
:class:`FewShot`       encodes chosen nodes as few-shot ones (no   ``meta.mode``
                       id, only the given graph's links)
:class:`MultiTask`     one head per link task, weighted            ``model.hgnn.rank_task``
:class:`PlacesItems`   places a brand-new item from its text       ``Recommender.add_items``
:class:`PlacesUsers`   places a new user from its profile          ``Recommender.add_users``
                                                                   with profiles
:class:`AlignsContent` a content student aligned to a trained id   the trainer's last stage
                       model, a gate chosen on validation          (:mod:`kgrec.train.align`)
:class:`Propagates`    multiplies by a symmetric user-item          data-parallel training
                       adjacency that can be swapped for another    (``kgrec train --nproc``)
                       operator standing for it
:class:`Contrastive`   a self-supervised contrast between views     the objective's
                       its training step made                       ``ContrastiveTerm``
=====================  ==========================================  =========================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from torch import Tensor

if TYPE_CHECKING:
    from kgrec.config import ModelConfig
    from kgrec.features.build import Modalities
    from kgrec.models.base import Encoded, Isolation, PairBatch
    from kgrec.models.losses import RankingLoss


@runtime_checkable
class Attackable(Protocol):
    """Layer-0 inputs an adversary can move (:mod:`kgrec.train.adversarial`)."""

    def embed(self) -> tuple[Tensor, Tensor]:
        """Layer-0 inputs: users ``[U, d]``, items+entities ``[I + E, d]``."""

    def rank_encode(self, u: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
        """Propagate layer-0 inputs as the ranking sees them: users ``[U, d]``, items
        ``[I, d]`` (before :meth:`readout`)."""

    def readout(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Propagated vectors -> the vectors a pair is scored with."""


@runtime_checkable
class FewShot(Protocol):
    """Encodes chosen users/items as few-shot nodes (:class:`~kgrec.models.base.Isolation`):
    no id, only the interaction edges of the given graph, from content (or the type's
    learned default vector). Meta-episodes and few-shot evaluation need it
    (:mod:`kgrec.train.meta`)."""

    def encode_isolated(self, isolate: Isolation | None,
                        trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Users ``[U, d]`` and items ``[I, d]`` with ``isolate``'s nodes encoded as
        few-shot nodes."""


@runtime_checkable
class MultiTask(Protocol):
    """One link-prediction head per task, with learned or fixed task weights; the ranking
    uses one of them (``model.hgnn.rank_task``)."""

    task_names: list[str]

    def task_losses(self, enc: Encoded, batch: PairBatch, loss: RankingLoss
                    ) -> tuple[Tensor, dict[str, float], Tensor | None]:
        """Per-task losses ``[T]`` of one step, their logged parts, and the ranking head's
        clean loss where an adversary may reuse it (``None`` otherwise)."""

    def combine_tasks(self, losses: Tensor) -> Tensor:
        """The weighted sum of the per-task losses ``[T]``."""

    def task_weights(self) -> dict[str, float]:
        """Each task's current effective weight."""


@runtime_checkable
class PlacesItems(Protocol):
    """Places a brand-new item from its text, from a saved run's config and weights alone
    (no graph, no model object): what ``Recommender.add_items`` serves with."""

    @classmethod
    def places_items(cls, cfg: ModelConfig, state: Mapping[str, Tensor]) -> bool:
        """Whether a run saved with this config and these weights can place an item from
        its text (it was trained with text features); the class names its own weights."""

    @classmethod
    def items_from_text(cls, cfg: ModelConfig, state: Mapping[str, Tensor],
                        texts: list[str], device: str = "cpu") -> Tensor:
        """Ranking vectors ``[N, d]`` of new items with these texts."""


@runtime_checkable
class PlacesUsers(Protocol):
    """Places a new user's layer-0 vector from its profile (attributes and text)."""

    @classmethod
    def users_from_profiles(cls, cfg: ModelConfig, state: Mapping[str, Tensor],
                            columns: Modalities, texts: list[str],
                            device: str = "cpu") -> Tensor:
        """Layer-0 vectors ``[N, d]`` (divided by ``L + 1``, as a fold-in's start) of new
        users with these encoded attribute columns and texts."""


@runtime_checkable
class AlignsContent(Protocol):
    """An id model (the teacher) trained by the ordinary loop, and a content ``student``
    trained afterwards to reproduce its item vectors, blended by a gate chosen on validation
    (:mod:`kgrec.train.align`; :class:`kgrec.models.aligned.AlignedHGNN`)."""

    student: Any
    options: Any
    aligned: Tensor
    degree: Tensor
    gate_k: Tensor
    cold_offset: Tensor
    score_scale: Tensor

    def teacher_vectors(self, trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """The trained teacher's scored users ``[U, d]`` and items ``[I, d]``."""

    def rank_vectors(self, users: Tensor, items: Tensor, student: Tensor
                     ) -> tuple[Tensor, Tensor]:
        """Ranking vectors from teacher users, teacher items and student items."""


@runtime_checkable
class Propagates(Protocol):
    """Its layers multiply by a symmetric user-item adjacency, which the model hands out and
    takes back: data-parallel training (:mod:`kgrec.train.distributed`) replaces it by an
    operator over this process's rows of it, then puts the whole one back. A model that
    wraps another (hgnn's id model) answers for the one it trains."""

    def adjacency(self) -> Tensor | None:
        """The symmetric CSR adjacency ``[U + I, U + I]`` the training step propagates over
        (``None``: none to share, e.g. a matrix factorisation backbone)."""

    def use_adjacency(self, adj: Any) -> None:
        """Propagate over ``adj`` from now on: a sparse tensor, or a callable
        ``x [N, d] -> A @ x [N, d]`` standing for one."""


@runtime_checkable
class Contrastive(Protocol):
    """A contrastive loss between views of the nodes that its training step's forward pass
    (:meth:`~kgrec.models.base.RecModel.encode_batch`) made, e.g. SimGCL's noise-perturbed
    passes; the objective adds ``cl_weight`` x it (:mod:`kgrec.train.objectives`)."""

    cl_weight: float

    def contrastive_loss(self, enc: Encoded, batch: PairBatch) -> Tensor:
        """The step's unweighted contrastive loss (a scalar), from ``enc`` (this step's
        ``encode_batch()``, whose ``private`` carries the views) and the step's pairs."""


def can_place_items(cls: type, cfg: ModelConfig, state: Mapping[str, Tensor]) -> bool:
    """Whether model class ``cls`` places new items from text with these saved weights
    (:class:`PlacesItems`). A class written before the protocol asked ``places_items`` (a
    plug-in with ``items_from_text`` alone) is taken at its word, with one warning."""
    if callable(getattr(cls, "items_from_text", None)) and not hasattr(cls, "places_items"):
        from kgrec.errors import deprecated

        deprecated(f"{cls.__name__}: PlacesItems without places_items",
                   "a classmethod places_items(cfg, state) -> bool beside items_from_text")
        return True
    return has(cls, PlacesItems) and bool(cls.places_items(cfg, state))


def has(model: Any, capability: type) -> bool:
    """Whether ``model`` (an instance or a class) has ``capability``: implements every
    method the protocol declares."""
    if not isinstance(model, type):
        return isinstance(model, capability)
    members = [m for m in vars(capability) if not m.startswith("_")
               and callable(getattr(capability, m, None))]
    return all(callable(getattr(model, m, None)) for m in members)
