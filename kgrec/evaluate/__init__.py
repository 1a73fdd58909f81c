"""Honest evaluation: full ranking over all items, and the click-through protocol."""

from kgrec.evaluate.groups import domain_groups, popularity_groups
from kgrec.evaluate.metrics import METRICS, auc, f1_score, ranking_metrics
from kgrec.evaluate.ranking import MetricTable, evaluate, evaluate_ctr

__all__ = ["METRICS", "MetricTable", "auc", "domain_groups", "evaluate", "evaluate_ctr",
           "f1_score", "popularity_groups", "ranking_metrics"]
