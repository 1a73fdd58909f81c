"""Honest evaluation: full ranking over all items, the click-through protocol, and the floors
(random, popularity, content-kNN) a result must clear."""

from kgrec.config import Config, add_check
from kgrec.errors import ConfigError
from kgrec.evaluate.floors import ContentKNNScorer, PopularityScorer, RandomScorer
from kgrec.evaluate.groups import domain_groups, popularity_groups
from kgrec.evaluate.metrics import METRICS, auc, f1_score, ranking_metrics
from kgrec.evaluate.ranking import (
    EmbeddingScorer,
    MetricTable,
    evaluate,
    evaluate_ctr,
    mask_rows,
    top_k,
)
from kgrec.evaluate.report import evaluation_report

__all__ = ["METRICS", "ContentKNNScorer", "EmbeddingScorer", "MetricTable", "PopularityScorer",
           "RandomScorer",
           "auc", "domain_groups", "evaluate", "evaluate_ctr", "evaluation_report", "f1_score",
           "mask_rows", "popularity_groups", "ranking_metrics", "top_k"]


@add_check
def check_metric(cfg: Config) -> None:
    """``eval.metric`` names one of :data:`METRICS` (installed as a config check)."""
    name = cfg.eval.metric.partition("@")[0]
    if name not in METRICS:
        raise ConfigError(f"eval.metric: {cfg.eval.metric!r} is not <metric>@<k> with metric "
                          f"in {METRICS}", field="eval.metric")
