"""Negative sampling for BPR."""

from __future__ import annotations

import numpy as np


class NegativeSampler:
    """Uniform negatives that are not among the user's training positives.

    Args:
        users, items: training positives ``[P]``.
        num_items: item count.
        rng: the training run's generator (sampling is repeatable under a seed).
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, num_items: int,
                 rng: np.random.Generator, max_rounds: int = 20) -> None:
        self.num_items = num_items
        self.keys = np.unique(users.astype(np.int64) * num_items + items)
        self.rng = rng
        self.max_rounds = max_rounds

    def _is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = users * self.num_items + items
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == q

    def sample(self, users: np.ndarray) -> np.ndarray:
        """One negative item per user in ``users`` ``[B]`` -> ``[B]``."""
        items = self.rng.integers(0, self.num_items, len(users))
        for _ in range(self.max_rounds):
            bad = self._is_positive(users, items)
            if not bad.any():
                break
            items[bad] = self.rng.integers(0, self.num_items, int(bad.sum()))
        return items
