"""Item groups for metric breakdowns (:func:`kgrec.evaluate.evaluate`'s ``item_groups``):
by training popularity and by domain.

A group's table counts only the held-out positives inside the group, while the ranking
stays over all items: a model that never recommends long-tail items scores 0 on ``tail``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from kgrec.errors import ConfigError

POPULARITY = ("head", "mid", "tail")


def popularity_groups(train: sp.spmatrix) -> dict[str, np.ndarray]:
    """Items split by their number of training interactions into three groups of equal
    interaction mass: ``head`` (the most popular items, together a third of the training
    interactions), ``mid`` (the next third) and ``tail`` (the rest, with every item that has
    no training interaction).

    Args:
        train: ``[U, I]`` training interactions (``split.train_matrix()``).

    Returns:
        ``{"head", "mid", "tail"} -> [I]`` bool masks that partition the items.
    """
    degree = np.asarray((train != 0).sum(0)).ravel().astype(np.int64)
    order = np.argsort(-degree, kind="stable")  # most popular first; ties by index
    # an item belongs to the third in which its interactions start, so the group of the
    # most popular item that crosses a boundary does not depend on its own size
    d = degree[order]
    before = np.cumsum(d) - d
    third = np.where(d > 0, np.minimum(3 * before // max(int(d.sum()), 1), 2), 2)
    out = {name: np.zeros(len(degree), dtype=bool) for name in POPULARITY}
    for k, name in enumerate(POPULARITY):
        out[name][order[third == k]] = True
    return out


def domain_groups(domains: Sequence[str]) -> dict[str, np.ndarray]:
    """One ``[I]`` bool mask per item domain (items without a domain in none).

    Raises:
        ConfigError: the items have fewer than two domains (nothing to break down).
    """
    domains = np.asarray(domains, dtype=str)
    names = sorted(set(domains.tolist()) - {""})
    if len(names) < 2:
        raise ConfigError(f"a breakdown by domain needs items of two or more domains; these "
                          f"have {names or 'none'}")
    return {f"domain {d}": domains == d for d in names}
