"""The approximate index for large catalogues: recall against the exact ranking, seen items
masked, new items joining it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import kgrec
from kgrec.recommender.ann import AnnIndex

pytestmark = pytest.mark.cost(5)


def _vectors(n: int, d: int = 16, seed: int = 0, heavy: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) + 0.5  # not centred, as trained item vectors are not
    if heavy:  # a few items far longer than the rest
        x = x * rng.gamma(2.0, 0.5, size=(n, 1))
    return x.astype(np.float32)


@pytest.mark.parametrize("heavy", [False, True])
def test_the_index_finds_the_exact_inner_product_top_k(heavy):
    items, queries = _vectors(20_000, heavy=heavy), _vectors(100, seed=1)
    index = AnnIndex.build(items, lift=not heavy)
    index.set_effort(512)  # the mechanism, given effort; speed and recall: benchmarks/serve.py
    exact = torch.topk(torch.from_numpy(queries) @ torch.from_numpy(items).T, 20).indices
    found = index.search(queries, 20)
    recall = np.mean([len(set(f) & set(e)) / 20 for f, e in zip(found.tolist(),
                                                                 exact.tolist(), strict=True)])
    assert recall >= 0.95, recall


def test_a_recommender_ranks_through_it_without_seen_items_and_with_new_ones():
    n_users, n_items = 50, 5_000
    users, items = torch.from_numpy(_vectors(n_users, seed=2)), torch.from_numpy(
        _vectors(n_items))
    seen = sp.random(n_users, n_items, density=0.01, format="csr", random_state=4)
    seen.data[:] = 1
    rec = kgrec.Recommender(users, items, config=kgrec.Config(model="lightgcn"),
                            user_ids=[f"u{i}" for i in range(n_users)],
                            item_ids=[f"i{i}" for i in range(n_items)],
                            item_names=[f"item {i}" for i in range(n_items)],
                            item_domains=[""] * n_items, seen=seen)
    exact = rec.recommend(rec.user_ids, k=10)
    assert not rec.build_index(min_items=10_000)  # a small catalogue stays exact
    assert rec.build_index(min_items=1_000)
    rec.index.set_effort(512)
    approx = rec.recommend(rec.user_ids, k=10)
    overlap = np.mean([len(set(a.items) & set(e.items)) / 10 for a, e in zip(approx, exact,
                                                                            strict=True)])
    assert overlap >= 0.95, overlap
    for lst, u in zip(approx, range(n_users), strict=True):
        assert not set(lst.items) & {f"i{j}" for j in seen[u].indices}
        assert lst.scores == sorted(lst.scores, reverse=True)
    # a new item with a huge norm along user 0's direction: first in its list at once
    ids = rec.user_ids[0]
    big = (users[0] / users[0].norm() * 50).unsqueeze(0)
    rec.item_embedding = torch.cat([rec.item_embedding, big])
    rec.item_ids.append("star")
    rec.item_names.append("star")
    rec.item_domains = np.append(rec.item_domains, "")
    rec._item_index["star"] = n_items
    rec.seen = sp.hstack([rec.seen, sp.csr_matrix((n_users, 1))]).tocsr()
    rec.index.add(big.numpy())
    assert rec.recommend([ids], k=3)[0].items[0] == "star"
