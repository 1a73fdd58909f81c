"""Honest evaluation: full ranking over all items, and the click-through protocol."""

from kgrec.evaluate.metrics import METRICS, auc, f1_score, ranking_metrics
from kgrec.evaluate.ranking import MetricTable, evaluate, evaluate_ctr

__all__ = ["METRICS", "MetricTable", "auc", "evaluate", "evaluate_ctr", "f1_score",
           "ranking_metrics"]
