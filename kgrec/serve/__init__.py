"""Serving a trained run: the HTTP service (:mod:`kgrec.serve.service`, its durable event
log :mod:`kgrec.serve.events`) and batch output (:mod:`kgrec.serve.batch`).

The :class:`~kgrec.recommender.Recommender` it serves lives in :mod:`kgrec.recommender`
and training in :mod:`kgrec.train`; their names are re-exported here for users who import
them from ``kgrec.serve`` (kgrec's own modules import them from where they live).
"""

from kgrec.recommender import (
    FORMAT,
    Explainer,
    Explanation,
    NewUserEncoder,
    Recommendations,
    Recommender,
    UserFoldIn,
)
from kgrec.train.api import model_from, recommender_from, train

__all__ = ["FORMAT", "Explainer", "Explanation", "NewUserEncoder", "Recommendations",
           "Recommender", "UserFoldIn", "model_from", "recommender_from", "train"]
