"""Training: the trainer with overridable steps, the objective's terms (ranking, task
heads, adversarial, meta-episodes, L2), negative sampling, few-shot episodes.

:func:`kgrec.train` (which returns a :class:`~kgrec.serve.Recommender`) is
:func:`kgrec.serve.training.train`, a :class:`Trainer` run wrapped by serve.
"""

from kgrec.models.losses import LOSSES
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
           "TrainingStopped", "build_objective", "resolve_device", "validate"]
