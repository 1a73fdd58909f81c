"""Top-K ranking metrics from hit matrices, and AUC / F1 for the click-through protocol.

Per user, with ``hits[r] = 1`` when the item at rank ``r`` (1-based) is a held-out positive
and ``n`` held-out positives:

- Recall@K = sum(hits[:K]) / n
- Precision@K = sum(hits[:K]) / K
- NDCG@K = DCG / IDCG with DCG = sum_r hits[r] / log2(r + 1) and IDCG the DCG of
  min(n, K) hits at the top
- Hit@K = 1 if any hit in the top K
- F1@K = 2 P R / (P + R) (0 when both are 0), per user
- MRR@K = 1 / rank of the first hit within K (0 if none)

Each is averaged over users with at least one held-out positive.
"""

from __future__ import annotations

import numpy as np

METRICS = ("recall", "ndcg", "precision", "hit", "f1", "mrr")


def ranking_metrics(hits: np.ndarray, num_pos: np.ndarray, ks: list[int]) -> dict[str, np.ndarray]:
    """Per-user metrics.

    Args:
        hits: ``[N, Kmax]`` bool, the top ``Kmax`` ranked items' hit flags per user.
        num_pos: ``[N]`` held-out positives per user (>= 1).
        ks: cut-offs, each <= ``Kmax``.

    Returns:
        ``{"recall@10": [N], ...}`` per-user values.
    """
    hits = np.asarray(hits, dtype=np.float64)
    num_pos = np.asarray(num_pos, dtype=np.float64)
    kmax = hits.shape[1]
    discount = 1.0 / np.log2(np.arange(2, kmax + 2))
    dcg = np.cumsum(hits * discount, axis=1)
    ideal = np.cumsum(discount)
    cum_hits = np.cumsum(hits, axis=1)
    first = np.where(hits.any(1), hits.argmax(1) + 1, 0)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        if k > kmax:
            raise ValueError(f"k={k} exceeds the {kmax} ranked items")
        h = cum_hits[:, k - 1]
        rec = h / num_pos
        prec = h / k
        idcg = ideal[np.minimum(num_pos, k).astype(np.int64) - 1]
        out[f"recall@{k}"] = rec
        out[f"ndcg@{k}"] = dcg[:, k - 1] / idcg
        out[f"precision@{k}"] = prec
        out[f"hit@{k}"] = (h > 0).astype(np.float64)
        denom = prec + rec
        out[f"f1@{k}"] = np.divide(2 * prec * rec, denom, out=np.zeros_like(denom),
                                   where=denom > 0)
        out[f"mrr@{k}"] = np.where((first > 0) & (first <= k), 1.0 / np.maximum(first, 1), 0.0)
    return out


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (the Mann-Whitney statistic; tied scores count one half)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both positive and negative labels")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def f1_score(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Binary F1 of boolean predictions."""
    labels = np.asarray(labels).astype(bool)
    predicted = np.asarray(predicted).astype(bool)
    tp = float((labels & predicted).sum())
    fp = float((~labels & predicted).sum())
    fn = float((labels & ~predicted).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def best_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold that maximises F1 on these rows (chosen on validation rows)."""
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    s, lab = np.asarray(scores)[order], labels[order]
    tp = np.cumsum(lab)
    fp = np.cumsum(~lab)
    f1 = 2 * tp / (tp + fp + lab.sum())
    # only cut between distinct scores
    last_of_run = np.r_[s[1:] != s[:-1], True]
    k = int(np.argmax(np.where(last_of_run, f1, -1)))
    return float(s[k])
