"""Metrics against values worked out by hand."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import kgrec
from kgrec.data.folds import CTRRows, EvalSet
from kgrec.errors import ConfigError
from kgrec.evaluate import auc, domain_groups, evaluate, popularity_groups, ranking_metrics
from kgrec.evaluate.metrics import best_threshold, f1_score


def test_ranking_metrics_by_hand():
    # user A: 2 held-out positives, hits at ranks 1 and 3 of 3
    # user B: 3 held-out positives, one hit at rank 2
    hits = np.array([[1, 0, 1], [0, 1, 0]], dtype=bool)
    m = ranking_metrics(hits, np.array([2, 3]), [1, 3])
    a_dcg3 = 1 + 1 / math.log2(4)
    a_idcg3 = 1 + 1 / math.log2(3)           # min(2, 3) = 2 ideal hits
    b_dcg3 = 1 / math.log2(3)
    b_idcg3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["recall@3"] == pytest.approx([1.0, 1 / 3])
    assert m["precision@3"] == pytest.approx([2 / 3, 1 / 3])
    assert m["ndcg@3"] == pytest.approx([a_dcg3 / a_idcg3, b_dcg3 / b_idcg3])
    assert m["hit@3"] == pytest.approx([1, 1])
    assert m["mrr@3"] == pytest.approx([1.0, 0.5])
    assert m["f1@3"] == pytest.approx([2 * (2 / 3) / (2 / 3 + 1), 1 / 3])
    assert m["recall@1"] == pytest.approx([0.5, 0.0])
    assert m["ndcg@1"] == pytest.approx([1.0, 0.0])
    assert m["mrr@1"] == pytest.approx([1.0, 0.0])
    assert m["f1@1"] == pytest.approx([2 * 1 * 0.5 / 1.5, 0.0])


def test_auc_by_hand_with_ties():
    labels = np.array([1, 0, 1, 0, 1])
    scores = np.array([0.9, 0.8, 0.8, 0.1, 0.3])
    # positive-negative pairs: (0.9>0.8,0.9>0.1), (0.8=0.8 -> 0.5, 0.8>0.1), (0.3<0.8, 0.3>0.1)
    assert auc(labels, scores) == pytest.approx((2 + 1.5 + 1) / 6)
    assert f1_score(labels, scores >= 0.5) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    t = best_threshold(labels, scores)
    assert f1_score(labels, scores >= t) >= f1_score(labels, scores >= 0.5)


class FixedScorer:
    def __init__(self, scores):
        self.scores = torch.tensor(scores, dtype=torch.float32)

    def score_users(self, users):
        return self.scores[torch.as_tensor(users)]

    def score_pairs(self, users, items):
        return self.scores[users, items].numpy()


def test_evaluate_excludes_training_items_and_ranks_everything_else():
    # 2 users x 5 items. User 0 trained on item 0 (its best score); test positive item 3.
    scores = [[9, 8, 7, 6, 5], [1, 2, 3, 4, 5]]
    positives = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 1], [3, 0, 1])), shape=(2, 5))
    exclude = sp.csr_matrix(([1.0], ([0], [0])), shape=(2, 5))
    es = EvalSet("test", positives, exclude, np.zeros(5, bool), np.zeros(2, bool))
    m = evaluate(FixedScorer(scores), es, [1, 3, 4], batch_users=1, by_cold=False)
    # user 0 ranking without item 0: 1, 2, 3, 4 -> positive at rank 3
    # user 1 ranking: 4, 3, 2, 1, 0 -> positives (0, 1) at ranks 5 and 4
    assert m["recall@3"] == pytest.approx((1.0 + 0.0) / 2)
    assert m["recall@4"] == pytest.approx((1.0 + 0.5) / 2)
    assert m["mrr@4"] == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert m["hit@1"] == 0.0
    idcg_u1 = 1 + 1 / math.log2(3)
    assert m["ndcg@4"] == pytest.approx((1 / math.log2(4) + (1 / math.log2(5)) / idcg_u1) / 2)
    assert m.users == 2
    assert m["coverage@4"] == pytest.approx(4 / 5)  # item 0 is never offered


def test_evaluate_groups_cold_items():
    scores = [[5, 4, 3, 2]]
    positives = sp.csr_matrix(([1.0, 1.0], ([0, 0], [1, 3])), shape=(1, 4))
    es = EvalSet("test", positives, sp.csr_matrix((1, 4)), np.array([0, 0, 0, 1], bool),
                 np.zeros(1, bool))
    m = evaluate(FixedScorer(scores), es, [2])
    assert m["recall@2"] == pytest.approx(0.5)
    assert m.groups["cold_items"]["recall@2"] == 0.0
    assert m.groups["warm_items"]["recall@2"] == 1.0


def test_evaluate_among_candidates_only():
    # items 2 and 3 are the new items; user 0's positives: 1 (old) and 3 (new); user 1: 0 only
    scores = [[5, 4, 3, 2], [1, 2, 3, 4]]
    positives = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 1], [1, 3, 0])), shape=(2, 4))
    es = EvalSet("test", positives, sp.csr_matrix((2, 4)), np.array([0, 0, 1, 1], bool),
                 np.zeros(2, bool))
    m = evaluate(FixedScorer(scores), es, [1, 2], candidates=es.cold_items)
    # among items {2, 3}, user 0 ranks 2 then 3: its one candidate positive (3) at rank 2;
    # user 1 has no positive among the candidates and is not counted
    assert m.users == 1
    assert m["recall@1"] == 0.0 and m["recall@2"] == 1.0
    assert m["ndcg@2"] == pytest.approx(1 / math.log2(3))
    assert m["coverage@2"] == pytest.approx(2 / 4)


def test_ties_are_not_broken_by_item_index():
    # one user, 1000 items all scored alike, positives = the first 20 items: an index-ordered
    # tie-break would give Recall@20 = 1; a random order gives about 20/1000
    positives = sp.csr_matrix((np.ones(20), (np.zeros(20, int), np.arange(20))), shape=(1, 1000))
    es = EvalSet("test", positives, sp.csr_matrix((1, 1000)), np.zeros(1000, bool),
                 np.zeros(1, bool))
    m = evaluate(FixedScorer([[0.0] * 1000]), es, [20])
    assert m["recall@20"] < 0.2
    # real score differences still decide
    m = evaluate(FixedScorer([[1.0] * 20 + [0.0] * 980]), es, [20])
    assert m["recall@20"] == 1.0


def test_popularity_groups_split_the_training_interactions_in_thirds():
    # item degrees 6, 3, 2, 1, 0 (12 interactions): item 0 starts the first third (head),
    # item 1 starts at 6 >= 4 (mid), items 2 and 3 start at 9 and 11 >= 8 (tail), and the
    # item nobody trained on is tail too
    deg = [6, 3, 2, 1, 0]
    rows = np.concatenate([np.arange(d) for d in deg])
    cols = np.repeat(np.arange(5), deg)
    train = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(6, 5))
    g = popularity_groups(train)
    assert g["head"].tolist() == [True, False, False, False, False]
    assert g["mid"].tolist() == [False, True, False, False, False]
    assert g["tail"].tolist() == [False, False, True, True, True]
    # a popularity ranker recommends only head items: it scores on head, never on tail
    scores = [deg] * 2
    positives = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 1], [0, 0, 3])), shape=(2, 5))
    es = EvalSet("test", positives, sp.csr_matrix((2, 5)), np.zeros(5, bool), np.zeros(2, bool))
    m = evaluate(FixedScorer(scores), es, [1], item_groups=g)
    assert m.groups["head"]["recall@1"] == 1.0 and m.groups["head"].users == 2
    assert m.groups["tail"]["recall@1"] == 0.0 and m.groups["tail"].users == 1
    assert "mid" not in m.groups  # no held-out positive there


def test_domain_groups_need_two_domains():
    g = domain_groups(["book", "music", "book", ""])
    assert {k: v.tolist() for k, v in g.items()} == {
        "domain book": [True, False, True, False], "domain music": [False, True, False, False]}
    with pytest.raises(ConfigError, match="two or more domains"):
        domain_groups(["music", "music"])


def test_floors_by_hand():
    from kgrec.evaluate import ContentKNNScorer, PopularityScorer, RandomScorer

    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0]], dtype=np.float32))
    pop = PopularityScorer(train)
    assert pop.score_users(np.array([0, 2])).tolist() == [[1, 3, 1, 0]] * 2
    assert pop.score_pairs(np.array([1]), np.array([2])).tolist() == [1.0]
    vec = np.array([[1, 0], [0, 1], [0.6, 0.8], [0, 0]], dtype=np.float32)
    knn = ContentKNNScorer(vec, train)
    # user 0: mean cosine to items 0 and 1
    want = [(vec[i] @ vec[0] + vec[i] @ vec[1]) / 2 for i in range(4)]
    assert np.allclose(knn.score_users(np.array([0]))[0].numpy(), want)
    assert np.allclose(knn.score_pairs(np.array([0]), np.array([2])), [want[2]])
    rnd = RandomScorer(4, seed=3)
    a = rnd.score_users(np.array([0, 1]))
    assert torch.equal(a, rnd.score_users(np.array([0, 1])))
    assert not torch.equal(a[0], a[1])
    assert np.allclose(rnd.score_pairs(np.array([1, 0]), np.array([2, 3])),
                       [a[1, 2].item(), a[0, 3].item()])


def test_nan_scores_are_an_error_naming_the_model():
    class Broken:
        name = "broken-model"

        def score_users(self, users):
            s = torch.zeros(len(users), 4)
            s[torch.as_tensor(users) == 1, 2] = float("nan")
            return s

        def score_pairs(self, users, items):
            return np.where(np.asarray(users) == 1, np.inf, 0.0)

    data = EvalSet("test", sp.csr_matrix(np.eye(3, 4, dtype=np.float32)),
                   sp.csr_matrix((3, 4), dtype=np.float32), np.zeros(4, bool), np.zeros(3, bool))
    with pytest.raises(kgrec.ModelError, match=r"'broken-model' gave NaN or infinite scores "
                                               r"to 1 of 3 users"):
        kgrec.evaluate(Broken(), data, k=[2])
    rows = CTRRows(np.array([0, 1, 2]), np.array([0, 1, 2]), np.array([1, 0, 1]))
    with pytest.raises(kgrec.ModelError, match="to 1 of 3 rows"):
        kgrec.evaluate_ctr(Broken(), rows, threshold=0.0)


def test_top_k_is_the_permuted_full_ranking_without_permuting():
    """The shared ranking (``top_k``, used by evaluation, ``recommend`` and the service)
    gives exactly what ranking every column in the fixed random tie order gives (the
    evaluation before it did that to every row), on tie-heavy scores, exclusions reaching
    the cut, and rows with fewer candidates than k."""
    import scipy.sparse as sp
    import torch

    from kgrec.evaluate.ranking import _tie_order, _topk

    def reference(scores, exclude, k):  # the former implementation, whole-matrix permute
        scores = scores.float().clone()
        r, c = exclude.nonzero()
        scores[torch.from_numpy(r), torch.from_numpy(c)] = -torch.inf
        perm = _tie_order(scores.shape[1], scores.device)
        return perm[torch.topk(scores[:, perm], k, dim=1).indices].numpy()

    rng = np.random.default_rng(0)
    for t in range(150):
        b, n = int(rng.integers(1, 40)), int(rng.integers(2, 300))
        levels = [2, 30, 10**9][t % 3]  # many ties, some, (almost) none
        scores = torch.from_numpy(rng.integers(0, levels, (b, n)).astype(np.float32))
        exclude = sp.random(b, n, density=rng.uniform(0, 0.97), format="csr", random_state=t)
        k = int(rng.integers(1, n + 1))
        np.testing.assert_array_equal(_topk(scores.clone(), exclude, k),
                                      reference(scores, exclude, k))
