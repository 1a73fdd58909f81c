"""Negative sampling for BPR."""

from __future__ import annotations

import numpy as np


class NegativeSampler:
    """Uniform negatives among the items seen in training, not among the user's positives.

    Items without a training edge (held out by a cold-item split, or simply unseen) are never
    drawn: at training time they do not exist yet, and using them only as negatives teaches
    a content-based model that new items are bad, which is the opposite of cold start.

    Args:
        users, items: training positives ``[P]``.
        num_items: item count.
        rng: the training run's generator (sampling is repeatable under a seed).
        pool: the items to draw from (default: those in ``items``).
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, num_items: int,
                 rng: np.random.Generator, max_rounds: int = 20,
                 pool: np.ndarray | None = None) -> None:
        self.num_items = num_items
        self.keys = np.unique(users.astype(np.int64) * num_items + items)
        self.pool = np.unique(items if pool is None else pool).astype(np.int64)
        self.rng = rng
        self.max_rounds = max_rounds

    def _draw(self, n: int) -> np.ndarray:
        return self.pool[self.rng.integers(0, len(self.pool), n)]

    def shared(self, n: int) -> np.ndarray:
        """``n`` items drawn uniformly from the pool for a whole batch ``[n]`` (a loss with
        shared negatives leaves out, per row, the one equal to its positive)."""
        return self._draw(n)

    def _is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = users * self.num_items + items
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == q

    def sample(self, users: np.ndarray) -> np.ndarray:
        """One negative item per user in ``users`` ``[B]`` -> ``[B]``."""
        items = self._draw(len(users))
        for _ in range(self.max_rounds):
            bad = self._is_positive(users, items)
            if not bad.any():
                break
            items[bad] = self._draw(int(bad.sum()))
        return items
