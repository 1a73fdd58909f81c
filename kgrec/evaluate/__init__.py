"""Honest evaluation: full ranking over all items, the click-through protocol, and the floors
(random, popularity, content-kNN) a result must clear."""

from kgrec.evaluate.floors import ContentKNNScorer, PopularityScorer, RandomScorer
from kgrec.evaluate.groups import domain_groups, popularity_groups
from kgrec.evaluate.metrics import METRICS, auc, f1_score, ranking_metrics
from kgrec.evaluate.ranking import MetricTable, evaluate, evaluate_ctr

__all__ = ["METRICS", "ContentKNNScorer", "MetricTable", "PopularityScorer", "RandomScorer",
           "auc", "domain_groups", "evaluate", "evaluate_ctr", "f1_score", "popularity_groups",
           "ranking_metrics"]
