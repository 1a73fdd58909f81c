"""Training: the trainer with overridable steps, the objective's terms (ranking, task
heads, adversarial, meta-episodes, L2), few-shot episodes.

:func:`kgrec.train` (which returns a :class:`~kgrec.recommender.Recommender`) is
:func:`kgrec.train.api.train`, a :class:`Trainer` run wrapped in a recommender;
:func:`model_from` rebuilds the model behind one.
"""

from kgrec.models.losses import LOSSES
from kgrec.train.api import model_from, recommender_from, train
from kgrec.train.loop import (
    EmbeddingScorer,
    TrainedModel,
    Trainer,
    TrainingStopped,
    resolve_device,
    validate,
)
from kgrec.train.objectives import Objective, build_objective

__all__ = ["LOSSES", "EmbeddingScorer", "Objective", "TrainedModel", "Trainer",
           "TrainingStopped", "build_objective", "model_from", "recommender_from",
           "resolve_device", "train", "validate"]
