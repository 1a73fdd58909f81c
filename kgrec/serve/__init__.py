"""What training produces: a :class:`Recommender` that ranks, explains, saves and loads, and
places items and users it was not trained with."""

from kgrec.serve.explain import Explainer, Explanation
from kgrec.serve.newusers import NewUserEncoder, UserFoldIn
from kgrec.serve.recommender import FORMAT, Recommendations, Recommender
from kgrec.serve.training import model_from, recommender_from, train

__all__ = ["FORMAT", "Explainer", "Explanation", "NewUserEncoder", "Recommendations",
           "Recommender", "UserFoldIn", "model_from", "recommender_from", "train"]
