"""The metrics a trained recommender reports on a split: what ``kgrec evaluate`` and
``kgrec quickstart`` print, for any caller."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kgrec.errors import ConfigError
from kgrec.evaluate.groups import domain_groups, popularity_groups
from kgrec.evaluate.ranking import MetricTable, evaluate, evaluate_ctr

if TYPE_CHECKING:
    from kgrec.data import Split

#: the breakdowns :func:`evaluation_report` knows (``by=``)
BREAKDOWNS = ("popularity", "domain")


def evaluation_report(rec: Any, split: Split, ks: Sequence[int], which: str = "test",
                      among_cold: bool = False, by: Sequence[str] = ()
                      ) -> MetricTable | dict[str, float]:
    """Metrics of ``rec`` on one evaluation set of ``split``, as its protocol says.

    Args:
        rec: a :class:`~kgrec.recommender.Recommender` (it gives ``config.eval.batch_users`` and,
            for ``by=["domain"]``, ``item_domains``).
        split: the split ``rec`` was trained on.
        ks: ranking cut-offs.
        which: ``"test"`` or ``"valid"``.
        among_cold: rank the held-out items (cold, or few-shot with ``data.shots``) among
            themselves only: the item cold-start protocol.
        by: breakdowns next to the whole: ``popularity`` (head / mid / tail of the training
            interactions) and/or ``domain`` (each item domain).

    Returns:
        A :class:`MetricTable` of ranking metrics, or ``{"auc": ..., "f1": ...}`` for the
        ``ctr`` split.

    Raises:
        ConfigError: a breakdown on the ``ctr`` split, an unknown breakdown, or
            ``among_cold`` on a split that holds out no items.
    """
    unknown = [b for b in by if b not in BREAKDOWNS]
    if unknown:
        raise ConfigError(f"--by: {unknown[0]!r} is not one of {list(BREAKDOWNS)}")
    if split.strategy == "ctr":
        if by:
            raise ConfigError("--by: breakdowns are for ranking metrics (not the ctr split)")
        return evaluate_ctr(rec, split.ctr[which], threshold_rows=split.ctr["valid"])
    data = getattr(split, which)
    if among_cold and not data.heldout_items.any():
        raise ConfigError(f"--among-cold: the {split.strategy} split holds out no items")
    groups: dict[str, Any] = {}
    for b in by:
        groups.update(popularity_groups(split.train_matrix()) if b == "popularity"
                      else domain_groups(rec.item_domains))
    return evaluate(rec, data, list(ks), batch_users=rec.config.eval.batch_users,
                    item_groups=groups, candidates=data.heldout_items if among_cold else None)
