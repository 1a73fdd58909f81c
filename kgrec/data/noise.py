"""Noisy copies of a split, for robustness evaluations: the model trains on the noise, the
validation and test sets stay clean.

- :func:`interaction_noise`: a share of the training positives replaced by random ones (the
  user keeps the link, its item becomes a random item the user has in no fold, so no
  held-out pair can enter training by chance);
- :func:`kg_noise`: the relations of a share of the KG triples shuffled among themselves
  (the graph's shape stays, its meaning is scrambled).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kgrec.data.folds import Split
from kgrec.errors import ConfigError
from kgrec.graph import KnowledgeTriples


def _check_share(share: float) -> None:
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"noise share {share} must be in [0, 1]")


def interaction_noise(split: Split, share: float, seed: int = 0) -> Split:
    """A copy of ``split`` whose training positives have ``share`` of their pairs replaced by
    random pairs (same users, random items none of which is a positive of that user in any
    fold). Validation, test and the KG are unchanged."""
    _check_share(share)
    rng = np.random.default_rng(seed)
    users, items = split.train_users.copy(), split.train_items.copy()
    n, n_items = len(users), split.num_items
    chosen = rng.choice(n, size=round(share * n), replace=False)
    taken = set((users.astype(np.int64) * n_items + items).tolist())
    for m in (split.valid.positives, split.test.positives):
        u, i = m.nonzero()
        taken |= set((u.astype(np.int64) * n_items + i).tolist())
    for k in chosen:
        u = int(users[k])
        for _ in range(100):
            j = int(rng.integers(0, n_items))
            if u * n_items + j not in taken:
                break
        else:  # the user has (nearly) every item: keep the true link
            continue
        taken.discard(u * n_items + int(items[k]))
        taken.add(u * n_items + j)
        items[k] = j
    return dataclasses.replace(split, train_users=users, train_items=items)


def kg_noise(split: Split, share: float, seed: int = 0) -> Split:
    """A copy of ``split`` whose KG has the relations of ``share`` of its triples shuffled
    among those triples (:attr:`Split.kg`; the graph itself is untouched)."""
    _check_share(share)
    kg = split.kg if split.kg is not None else split.graph.knowledge()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(kg), size=round(share * len(kg)), replace=False)
    rel = kg.relation.copy()
    rel[chosen] = rel[rng.permutation(chosen)]
    noisy = KnowledgeTriples(kg.head, rel, kg.tail, kg.relations, kg.num_items,
                             kg.num_entities)
    return dataclasses.replace(split, kg=noisy)
