"""No leakage: held-out pairs never reach the training positives or the propagation graph."""

import numpy as np
import pytest

import kgrec
from kgrec.models.base import bipartite_adjacency

pytestmark = pytest.mark.cost(2)  # seconds on 2 idle cores: scheduled by it


def pairs(users, items, n_items):
    return set((np.asarray(users) * n_items + np.asarray(items)).tolist())


def csr_pairs(m, n_items):
    r, c = m.nonzero()
    return pairs(r, c, n_items)


def all_pairs(graph):
    return pairs(graph.interactions.src, graph.interactions.dst, graph.num_items)


@pytest.mark.parametrize("strategy", ["random", "temporal", "user_temporal", "cold_item",
                                      "cold_user"])
def test_folds_are_disjoint_and_cover_every_pair(ml100k, strategy):
    s = kgrec.split(ml100k, strategy, valid=0.1, test=0.1, seed=3)
    n = ml100k.num_items
    train = pairs(s.train_users, s.train_items, n)
    valid, test = csr_pairs(s.valid.positives, n), csr_pairs(s.test.positives, n)
    assert not train & valid and not train & test and not valid & test
    assert train | valid | test == all_pairs(ml100k)
    assert 0.05 < len(test) / len(all_pairs(ml100k)) < 0.2
    # The test ranking excludes exactly the user's training and validation items.
    assert csr_pairs(s.test.exclude, n) == train | valid
    assert csr_pairs(s.valid.exclude, n) == train


@pytest.mark.parametrize("strategy", ["random", "cold_item"])
def test_propagation_graph_has_no_held_out_edge(ml100k, strategy):
    s = kgrec.split(ml100k, strategy, seed=1)
    adj = bipartite_adjacency(s.train_users, s.train_items, s.num_users, s.num_items)
    rows = adj.crow_indices().numpy()
    cols = adj.col_indices().numpy()
    r = np.repeat(np.arange(len(rows) - 1), np.diff(rows))
    user_side = r < s.num_users
    edges = pairs(r[user_side], cols[user_side] - s.num_users, s.num_items)
    assert edges == pairs(s.train_users, s.train_items, s.num_items)
    held = csr_pairs(s.valid.positives, s.num_items) | csr_pairs(s.test.positives, s.num_items)
    assert not edges & held


def test_cold_items_have_no_training_edge(ml100k):
    s = kgrec.split(ml100k, "cold_item", seed=0)
    test_items = np.unique(s.test.positives.nonzero()[1])
    valid_items = np.unique(s.valid.positives.nonzero()[1])
    assert len(test_items) > 100
    assert not set(test_items.tolist()) & set(s.train_items.tolist())
    assert not set(valid_items.tolist()) & set(s.train_items.tolist())
    assert not set(test_items.tolist()) & set(valid_items.tolist())
    assert s.test.cold_items[test_items].all()


def test_cold_users_have_no_training_edge(ml100k):
    s = kgrec.split(ml100k, "cold_user", seed=0)
    test_users = s.test.users
    assert len(test_users) >= 90
    assert not set(test_users.tolist()) & set(s.train_users.tolist())


def test_temporal_split_trains_on_the_past(ml100k):
    s = kgrec.split(ml100k, "temporal", seed=0)
    ts = ml100k.interactions.attrs["timestamp"]
    key = ml100k.interactions.src * ml100k.num_items + ml100k.interactions.dst
    first = {}
    for k, t in zip(key.tolist(), ts.tolist(), strict=True):
        first[k] = min(t, first.get(k, t))
    train_t = [first[k] for k in pairs(s.train_users, s.train_items, ml100k.num_items)]
    test_t = [first[k] for k in csr_pairs(s.test.positives, ml100k.num_items)]
    assert max(train_t) <= min(test_t)


def test_user_temporal_holds_out_each_users_latest(ml100k):
    s = kgrec.split(ml100k, "user_temporal", seed=0)
    inter = ml100k.interactions
    u = int(s.test.users[0])
    mine = inter.src == u
    latest_test = s.test.positives[u].indices
    ts = dict(zip(inter.dst[mine].tolist(), inter.attrs["timestamp"][mine].tolist(),
                  strict=True))
    train_items = s.train_items[s.train_users == u]
    assert min(ts[i] for i in latest_test) >= max(ts[i] for i in train_items)


def test_given_split_keeps_the_datasets_test_fold(data_dir):
    g = kgrec.load_dataset("amazon-cdr-phone-sport", data_dir=data_dir)
    s = kgrec.split(g, "given", valid=0.1, seed=0)
    fold = g.interactions.attrs["fold"]
    given_test = pairs(g.interactions.src[fold == "test"], g.interactions.dst[fold == "test"],
                       g.num_items)
    given_train = pairs(g.interactions.src[fold == "train"], g.interactions.dst[fold == "train"],
                        g.num_items)
    assert csr_pairs(s.test.positives, g.num_items) == given_test - given_train
    valid = csr_pairs(s.valid.positives, g.num_items)
    assert valid and valid <= given_train
    assert pairs(s.train_users, s.train_items, g.num_items) == given_train - valid


def test_random_split_is_per_user_and_repeatable(ml100k):
    a = kgrec.split(ml100k, "random", seed=5)
    b = kgrec.split(ml100k, "random", seed=5)
    c = kgrec.split(ml100k, "random", seed=6)
    assert np.array_equal(a.train_items, b.train_items)
    assert not np.array_equal(a.train_items, c.train_items)
    per_user = np.diff(a.test.positives.indptr)
    counts = np.bincount(ml100k.interactions.src, minlength=ml100k.num_users)
    assert np.all(np.abs(per_user - np.round(counts * 0.1)) <= 1)


def test_ctr_split_uses_the_sampled_negatives(lastfm):
    s = kgrec.split(lastfm, "ctr", valid=0.2, test=0.2, seed=0)
    n = sum(len(r) for r in s.ctr.values())
    assert n == 42346
    assert abs(len(s.ctr["test"]) - 0.2 * n) <= 1
    train_pos = pairs(s.train_users, s.train_items, lastfm.num_items)
    test = s.ctr["test"]
    assert not train_pos & pairs(test.users[test.labels == 1], test.items[test.labels == 1],
                                 lastfm.num_items)
    neg_all = pairs(lastfm.edges[("User", "SAMPLED_NEGATIVE", "Item")].src,
                    lastfm.edges[("User", "SAMPLED_NEGATIVE", "Item")].dst, lastfm.num_items)
    assert not train_pos & neg_all


def test_bad_split_arguments(ml100k):
    with pytest.raises(kgrec.ConfigError,
                       match=r"data\.split: 'sideways' is not one of .*'cross_domain'"):
        kgrec.split(ml100k, "sideways")
    with pytest.raises(kgrec.ConfigError, match=r"data\.valid \+ data\.test must be below 1"):
        kgrec.split(ml100k, "random", valid=0.6, test=0.5)
    with pytest.raises(kgrec.ConfigError, match="no train/test fold"):
        kgrec.split(ml100k, "given")


@pytest.mark.parametrize("strategy", ["cold_item", "cold_user"])
def test_warm_links_held_out_beside_the_cold_ones(ml100k, strategy):
    plain = kgrec.split(ml100k, strategy, seed=2)
    s = kgrec.split(ml100k, strategy, seed=2, warm=True)
    n = ml100k.num_items
    train = pairs(s.train_users, s.train_items, n)
    valid, test = csr_pairs(s.valid.positives, n), csr_pairs(s.test.positives, n)
    assert not train & valid and not train & test and not valid & test
    assert train | valid | test == all_pairs(ml100k)
    # the same nodes are held out, still with no training link ...
    side = "heldout_items" if strategy == "cold_item" else "heldout_users"
    held = getattr(s.test, side)
    assert np.array_equal(held, getattr(plain.test, side))
    node = s.train_items if strategy == "cold_item" else s.train_users
    assert not held[node].any()
    # ... every warm node keeps a training link, and about a tenth of the warm links are test
    present = np.unique(ml100k.interactions.dst if strategy == "cold_item"
                        else ml100k.interactions.src)
    warm_nodes = present[~held[present]]
    assert np.isin(warm_nodes, node).all()
    tr, te = (s.test.positives.nonzero()[1], s.test.positives.nonzero()[0])
    warm_test = ~held[tr if strategy == "cold_item" else te]
    n_warm = sum(1 for u, i in (divmod(p, n) for p in all_pairs(ml100k))
                 if not held[i if strategy == "cold_item" else u])
    assert 0.08 < warm_test.sum() / n_warm < 0.12
    # without warm=True nothing changes
    again = kgrec.split(ml100k, strategy, seed=2)
    assert np.array_equal(again.train_items, plain.train_items)
    with pytest.raises(kgrec.ConfigError, match=r"data\.warm: only the cold_item and cold_user"):
        kgrec.split(ml100k, "random", warm=True)
