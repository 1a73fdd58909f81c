"""The training objective: a sum of terms, each enabled by the config and usable with any
model that has the capability it needs.

=========================  =============================  ======================  ==============
term                       what it adds                   enabled by              model needs
=========================  =============================  ======================  ==============
:class:`RankingTerm`       the ranking loss of the        always (models without  -
                           batch's pairs                  task heads)
:class:`MultiTaskTerm`     every task head's loss,        always (models with     ``MultiTask``
                           weighted (fixed/uncertainty)   task heads)
:class:`ContrastiveTerm`   ``cl_weight`` x the model's    always (models with a   ``Contrastive``
                           contrast between its views     contrast)
:class:`AdversarialTerm`   the ranking loss at worst-     ``train.adv_eps > 0``   ``Attackable``
                           case perturbed layer-0 inputs
:class:`L2Term`            ``reg / 2`` x the batch's      always                  -
                           squared input norms per pair
:class:`MetaEpisodeTerm`   the query loss of few-shot     ``meta.mode: meta``     ``FewShot``
                           episodes after adaptation
=========================  =============================  ======================  ==============

One step encodes the batch once (:meth:`RecModel.encode_batch`: one draw of dropout, one
graph) and every term reads that :class:`Step`; their values are summed in the order above
and each logs its parts (the epoch record's ``parts``). The ranking loss itself
(``train.loss``: BPR, sampled softmax) comes from :data:`kgrec.models.losses.LOSSES` and is
the one loss every ranking term uses. A term is any callable ``term(step) -> (value,
parts)``; pass your own list to :class:`Objective` (or override
:meth:`kgrec.train.Trainer.build_objective`) to add one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from torch import Tensor, nn

from kgrec.config import Config
from kgrec.data.folds import Split
from kgrec.data.sampling import NegativeSampler
from kgrec.errors import ConfigError
from kgrec.models.base import Encoded, PairBatch, RecModel
from kgrec.models.capabilities import Attackable, Contrastive, FewShot, MultiTask, has
from kgrec.models.losses import RankingLoss, ranking_loss
from kgrec.train.adversarial import adversarial_loss


@dataclass
class Step:
    """What the terms of one training step share.

    Attributes:
        model: the model being trained.
        batch: the step's pairs.
        enc: the model's forward pass for this step.
        loss: the ranking loss.
        clean: the ranking head's clean loss, once a ranking term has computed it (the
            one-step adversary reuses its graph instead of a second forward pass).
    """

    model: RecModel
    batch: PairBatch
    enc: Encoded
    loss: RankingLoss
    clean: Tensor | None = None


class Term(Protocol):
    """One term of the objective: its value for a step and what to log of it."""

    def __call__(self, step: Step) -> tuple[Tensor, dict[str, float]]: ...


class RankingTerm:
    """The ranking loss of the batch's pairs, on the model's readout."""

    def __call__(self, step: Step) -> tuple[Tensor, dict[str, float]]:
        users, items = step.model.readout(*step.enc.propagated)
        b = step.batch
        value = step.loss(users[b.users], items[b.pos], items[b.neg], b.pos, b.neg)
        step.clean = value
        return value, {step.loss.kind: float(value.detach())}


class MultiTaskTerm:
    """Each task head's loss (:meth:`~kgrec.models.capabilities.MultiTask.task_losses`),
    combined by the model's task weighting (its weights are parameters of the model)."""

    def __call__(self, step: Step) -> tuple[Tensor, dict[str, float]]:
        model = step.model  # a MultiTask model (build_objective chose this term for it)
        losses, parts, step.clean = model.task_losses(step.enc, step.batch, step.loss)
        return model.combine_tasks(losses), parts


class ContrastiveTerm:
    """``cl_weight`` x the model's contrastive loss between the views its step made
    (:meth:`~kgrec.models.capabilities.Contrastive.contrastive_loss`); logs the unweighted
    loss as ``cl``."""

    def __call__(self, step: Step) -> tuple[Tensor, dict[str, float]]:
        model = step.model  # a Contrastive model (build_objective chose this term for it)
        value = model.contrastive_loss(step.enc, step.batch)
        return model.cl_weight * value, {"cl": float(value.detach())}


@dataclass
class AdversarialTerm:
    """``weight`` x the ranking loss at layer-0 inputs moved within radius ``eps`` per row
    (``steps`` = 1: FGSM/APR; more: PGD), over the step's graph
    (:mod:`kgrec.train.adversarial`)."""

    eps: float
    weight: float = 1.0
    steps: int = 1

    def __call__(self, step: Step) -> tuple[Tensor, dict[str, float]]:
        model, b = step.model, step.batch
        assert step.enc.inputs is not None and step.enc.propagate is not None

        def rank(users: Tensor, items: Tensor) -> Tensor:
            users, items = model.readout(users, items)
            return step.loss(users[b.users], items[b.pos], items[b.neg], b.pos, b.neg)

        la = adversarial_loss(step.enc.propagate, rank, step.enc.inputs, self.eps, self.steps,
                              step.clean)
        return self.weight * la, {"adv": float(la.detach())}


@dataclass
class L2Term:
    """``reg / 2`` times the squared norm of the batch's inputs
    (:meth:`RecModel.l2_sum`), per pair."""

    reg: float

    def __call__(self, step: Step) -> tuple[Tensor, dict[str, float]]:
        b = step.batch
        if b.shared and not b.owns_shared:
            # shared negatives are penalised once per step, by the shard that owns them
            b = PairBatch(b.users, b.pos, b.neg[:0], b.index, b.total, True, False)
        total = len(b.users) if b.total is None else b.total
        return self.reg * 0.5 * step.model.l2_sum(b, step.enc) / max(1, total), {}


@dataclass
class MetaEpisodeTerm:
    """``weight`` x the query loss of a batch of few-shot episodes after adaptation
    (:class:`kgrec.train.meta.MetaObjective`)."""

    episodes: object  # MetaObjective
    weight: float = 1.0

    def __call__(self, step: Step) -> tuple[Tensor, dict[str, float]]:
        lm, parts = self.episodes.loss()  # type: ignore[attr-defined]
        return self.weight * lm, parts


@dataclass
class Objective:
    """The terms of the training objective and the ranking loss they share; called on a
    model and a batch, it returns the summed loss and every term's logged parts."""

    loss: RankingLoss
    terms: list[Term] = field(default_factory=list)

    def __call__(self, model: RecModel, batch: PairBatch) -> tuple[Tensor, dict[str, float]]:
        step = Step(model, batch, model.encode_batch(), self.loss)
        total: Tensor | None = None
        parts: dict[str, float] = {}
        share = batch.share
        for term in self.terms:
            value, logged = term(step)
            if share != 1.0 and not isinstance(term, L2Term):
                # a shard's mean, weighted so that the shards' losses sum to the step's mean
                # (L2Term divides by the step's pair count itself)
                value = value * share
            total = value if total is None else total + value
            parts.update(logged)
        assert total is not None, "an objective needs at least one term"
        return total, parts


def build_objective(model: RecModel, cfg: Config, split: Split, sampler: NegativeSampler,
                    rng: np.random.Generator) -> Objective:
    """The objective ``cfg`` asks for on ``model``: its ranking (or multi-task) term, its
    contrast if it is ``Contrastive``, the adversarial term under ``train.adv_eps``, L2, and
    meta-episodes under ``meta.mode: meta``. Under ``meta.mode`` finetune or meta the model
    gets its :class:`MetaLearner` as the submodule ``meta_learner`` (optimised, checkpointed
    and saved with it: its learned step sizes adapt new users at serving time)."""
    loss = ranking_loss(cfg.train)
    terms: list[Term] = [MultiTaskTerm() if has(model, MultiTask) else RankingTerm()]
    if has(model, Contrastive):
        terms.append(ContrastiveTerm())
    if cfg.train.adv_eps > 0:
        _need(model, Attackable, "train.adv_eps")
        terms.append(AdversarialTerm(cfg.train.adv_eps, cfg.train.adv_weight,
                                     cfg.train.adv_steps))
    terms.append(L2Term(cfg.train.reg))
    if cfg.meta.mode != "off":
        from kgrec.models.adaptation import MetaLearner
        from kgrec.train.meta import MetaObjective

        _need(model, FewShot, "meta.mode")
        device = next(model.parameters()).device
        model.add_module("meta_learner", MetaLearner(
            cfg.model.dim, cfg.meta.inner_steps, cfg.meta.inner_lr,
            learn_lr=cfg.meta.mode == "meta" and cfg.meta.learn_inner_lr).to(device))
        if cfg.meta.mode == "meta":
            episodes = MetaObjective(model, split, cfg.meta, model.meta_learner, sampler, rng,
                                     loss)
            terms.append(MetaEpisodeTerm(episodes, cfg.meta.weight))
    return Objective(loss, terms)


def _need(model: nn.Module, capability: type, field: str) -> None:
    if not has(model, capability):
        raise ConfigError(f"{field}: model {type(model).__name__} is not "
                          f"{capability.__name__} ({capability.__doc__.splitlines()[0]})",
                          field=field)


__all__: Sequence[str] = ["AdversarialTerm", "ContrastiveTerm", "L2Term", "MetaEpisodeTerm",
                          "MultiTaskTerm", "Objective", "RankingTerm", "Step", "Term",
                          "build_objective"]
