"""Serving a trained run: the HTTP service (:mod:`kgrec.serve.service`, its durable event
log :mod:`kgrec.serve.events`) and batch output (:mod:`kgrec.serve.batch`).

The :class:`~kgrec.recommender.Recommender` it serves lives in :mod:`kgrec.recommender`
(``kgrec.Recommender``) and training in :mod:`kgrec.train` (``kgrec.train``); the names
once imported from here still load, each with one warning naming where it lives now.
"""

from kgrec.errors import moved_names

_RECOMMENDER = ("FORMAT", "Explainer", "Explanation", "NewUserEncoder", "Recommendations",
                "Recommender", "UserFoldIn")
_TRAINING = ("model_from", "recommender_from", "train")

__getattr__ = moved_names({**{n: ("kgrec.recommender", n) for n in _RECOMMENDER},
                           **{n: ("kgrec.train.api", n) for n in _TRAINING}})
