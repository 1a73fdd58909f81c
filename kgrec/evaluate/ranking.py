"""Full-ranking evaluation, chunked over users so memory stays bounded."""

from __future__ import annotations

import functools
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from kgrec.data.folds import CTRRows, EvalSet
from kgrec.errors import ModelError
from kgrec.evaluate.metrics import METRICS, auc, best_threshold, f1_score, ranking_metrics


class Scorer(Protocol):
    """Anything that scores every item for a batch of users (a :class:`Recommender`)."""

    def score_users(self, users: np.ndarray) -> Tensor:
        """``[B]`` user indices -> ``[B, I]`` scores. The ranking masks excluded items in
        the returned tensor, so return a fresh one (a matmul's result, an indexed copy); a
        view (``expand``, a slice) or another dtype is copied first (:func:`writable`)."""
        ...

    def score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``[N]`` users and items -> ``[N]`` scores."""
        ...


class EmbeddingScorer:
    """Scores from user ``[U, d]`` and item ``[I, d]`` vectors (validation, and anything
    :func:`kgrec.evaluate` should rank from vectors that are not a saved recommender's)."""

    def __init__(self, users: Tensor, items: Tensor) -> None:
        self.users, self.items = users, items

    def score_users(self, users: np.ndarray) -> Tensor:
        return self.users[torch.as_tensor(users, device=self.users.device)] @ self.items.T

    def score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        u = self.users[torch.as_tensor(users, device=self.users.device)]
        i = self.items[torch.as_tensor(items, device=self.items.device)]
        return (u * i).sum(-1).cpu().numpy()


def scorer_name(scorer: Scorer) -> str:
    """What to call a scorer in a message: its ``name`` (a Recommender's model), else its
    class."""
    return str(getattr(scorer, "name", "") or type(scorer).__name__)


def _check_finite(scorer: Scorer, bad: int, total: int, what: str = "users") -> None:
    if bad:
        raise ModelError(f"model {scorer_name(scorer)!r} gave NaN or infinite scores to "
                         f"{bad} of {total} {what}; they cannot be ranked (a diverged "
                         "training? try a lower train.lr)")


class MetricTable(dict):
    """``{"recall@20": 0.31, ...}`` plus per-group tables in :attr:`groups` and the number of
    users evaluated; ``str()`` renders a table."""

    def __init__(self, values: dict[str, float], users: int, groups: dict[str, MetricTable]
                 | None = None, name: str = "") -> None:
        super().__init__(values)
        self.users = users
        self.groups = groups or {}
        self.name = name

    def rows(self) -> list[tuple[str, dict[str, float], int]]:
        return [(self.name or "all", dict(self), self.users)] + [
            (g, dict(t), t.users) for g, t in self.groups.items()]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{group: {"users": n, "metrics": {...}}}``, the whole first (JSON-ready)."""
        return {name: {"users": users, "metrics": vals} for name, vals, users in self.rows()}

    def to_markdown(self) -> str:
        keys = list(self)
        lines = ["| group | users | " + " | ".join(keys) + " |",
                 "|---|---:|" + "---:|" * len(keys)]
        for name, vals, users in self.rows():
            lines.append(f"| {name} | {users} | " + " | ".join(
                f"{vals.get(k, float('nan')):.4f}" for k in keys) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()


@functools.lru_cache(maxsize=8)
def _tie_order(n: int, device: torch.device) -> Tensor:
    """A fixed random permutation of ``n`` items that breaks exact score ties.

    ``topk`` resolves ties by position, and item indices follow the source files' order,
    which often follows popularity: a model that gives a group of items one constant score
    (an id-only model on unseen items) would otherwise be credited with a popularity ranking.
    """
    g = torch.Generator().manual_seed(0)
    return torch.randperm(n, generator=g).to(device)


def writable(scores: Tensor) -> Tensor:
    """``scores`` as a float32 tensor the ranking may overwrite: a scorer's fresh result as
    it is (no copy), a view of something else (``expand``, a slice) or another dtype copied."""
    if scores.dtype != torch.float32:
        return scores.float()
    if scores._base is not None or not scores.is_contiguous():
        return scores.clone()
    return scores


def mask_rows(scores: Tensor, pairs: sp.csr_matrix, rows: np.ndarray) -> None:
    """Set ``scores[b, j] = -inf`` for every stored ``(rows[b], j)`` of ``pairs``, in place.

    Reads the CSR arrays directly (no scipy row slicing, no dense copy): ``scores`` is
    ``[B, I]`` for the ``[B]`` row indices ``rows``.
    """
    indptr = pairs.indptr
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 1:  # one user (serving): a slice, no index arithmetic
        lo, hi = indptr[rows[0]], indptr[rows[0] + 1]
        if hi > lo:
            cols = torch.from_numpy(pairs.indices[lo:hi].astype(np.int64)).to(scores.device)
            scores[0, cols] = -torch.inf
        return
    starts, ends = indptr[rows], indptr[rows + 1]
    lens = ends - starts
    total = int(lens.sum())
    if not total:
        return
    # the flat positions starts[b] .. ends[b] of every row, concatenated
    offsets = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(total)
    cols = torch.from_numpy(pairs.indices[offsets].astype(np.int64)).to(scores.device)
    r = torch.from_numpy(np.repeat(np.arange(len(rows)), lens)).to(scores.device)
    scores[r, cols] = -torch.inf


def top_k(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` best of each row of ``[B, I]`` scores: values and indices ``[B, k]``, best
    first, exact ties in a fixed random order (:func:`_tie_order`).

    One ``topk`` of ``k + 1`` per row; only rows whose ``k + 1`` best hold an exact tie
    (a constant-scoring group of items, ``-inf`` exclusions reaching the cut) are ranked
    again over the permuted columns, so ties cost nothing where there are none and no row
    is ever reordered as a whole. Either way a row's result is the one ranking all columns
    in the permuted order gives. ``scores`` is read, not changed.
    """
    n = scores.shape[1]
    k = min(k, n)
    vals, idx = torch.topk(scores, min(k + 1, n), dim=1)
    same = vals[:, 1:] == vals[:, :-1]
    vals, idx = vals[:, :k], idx[:, :k]
    if bool(same.any()):
        rows = same.any(1).nonzero().squeeze(1)
        perm = _tie_order(n, scores.device)
        v, i = torch.topk(scores[rows][:, perm], k, dim=1)
        vals, idx = vals.clone(), idx.clone()
        vals[rows], idx[rows] = v, perm[i]
    return vals, idx


def _topk(scores: Tensor, exclude: sp.csr_matrix, kmax: int,
          rows: np.ndarray | None = None) -> np.ndarray:
    """Indices ``[B, kmax]`` of the best-scored items, the pairs of ``exclude`` (its rows
    ``rows``, default all) removed in place, exact ties in a fixed random order."""
    mask_rows(scores, exclude, np.arange(exclude.shape[0]) if rows is None else rows)
    return top_k(scores, kmax)[1].cpu().numpy()


def _non_finite_rows(scores: Tensor) -> int:
    """How many rows of ``scores`` hold a NaN or an infinity. A row's sum is finite when all
    its values are (``isfinite`` over every score costs a third of an evaluation); a row
    whose sum is not (a non-finite value, or finite ones overflowing) is checked value by
    value."""
    suspect = ~torch.isfinite(scores.sum(dim=1))
    if not bool(suspect.any()):
        return 0
    return int((~torch.isfinite(scores[suspect]).all(dim=1)).sum())


def _member(sorted_keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``query`` (any shape) membership in the sorted key array."""
    if not len(sorted_keys):
        return np.zeros(query.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, query), len(sorted_keys) - 1)
    return sorted_keys[pos] == query


@torch.no_grad()
def evaluate(scorer: Scorer, data: EvalSet, k: int | list[int] = (10, 20), *,
             batch_users: int = 1024, item_groups: dict[str, np.ndarray] | None = None,
             by_cold: bool = True, candidates: np.ndarray | None = None) -> MetricTable:
    """Rank all items for every user with held-out positives and score the top K.

    The user's ``data.exclude`` items (training, and for the test set validation, items) are
    removed from the ranking; everything else, cold items included, is a candidate.

    Args:
        scorer: a :class:`~kgrec.recommender.Recommender` (anything with ``score_users``).
        data: ``split.valid`` or ``split.test``.
        k: cut-off(s).
        batch_users: users scored per chunk (memory is ``batch_users * num_items`` floats).
        item_groups: optional named ``[I]`` bool masks; each gets its own table, computed on
            the positives inside the group (the ranking is still over all items).
        by_cold: add ``cold_items`` / ``warm_items`` groups when the set has cold items.
        candidates: optional ``[I]`` bool mask: rank only these items and count only the
            positives among them (the item cold-start protocol ranks new items among the new
            items: ``candidates=split.test.cold_items``). Default: ``data.candidates`` (the
            cross-domain split's target items), else all items.

    Returns:
        a :class:`MetricTable` with Recall, NDCG, Precision, Hit, F1, MRR at each K and
        Coverage at the largest K.
    """
    ks = sorted({k} if isinstance(k, int) else set(k))
    kmax = min(max(ks), data.num_items)
    ks = [min(x, kmax) for x in ks]
    groups = dict(item_groups or {})
    if candidates is None:
        candidates = data.candidates
    if by_cold and candidates is None and data.cold_items.any():
        has_cold = data.positives[:, data.cold_items].nnz > 0
        if has_cold:
            groups.setdefault("cold_items", data.cold_items)
            groups.setdefault("warm_items", ~data.cold_items)
    pos, excl = data.positives, data.exclude
    banned = None
    if candidates is not None:
        candidates = np.asarray(candidates, dtype=bool)
        pos = (pos @ sp.diags(candidates.astype(np.float32))).tocsr()
        pos.eliminate_zeros()
        banned = torch.from_numpy(~candidates)
        kmax = min(kmax, int(candidates.sum()))
        ks = [min(x, kmax) for x in ks]
    users = np.flatnonzero(np.diff(pos.indptr) > 0)
    n_items = data.num_items
    pr, pc = pos.nonzero()
    pos_keys = np.sort(pr.astype(np.int64) * n_items + pc)
    per_user: dict[str, list[np.ndarray]] = {}
    per_group: dict[str, dict[str, list[np.ndarray]]] = {g: {} for g in groups}
    recommended = np.zeros(data.num_items, dtype=bool)
    non_finite = 0
    for start in range(0, len(users), batch_users):
        batch = users[start:start + batch_users]
        scores = scorer.score_users(batch)
        # topk ranks NaN first: a broken model would otherwise be scored, silently
        non_finite += _non_finite_rows(scores)
        if non_finite:
            continue
        scores = writable(scores)
        if banned is not None:
            scores[:, banned.to(scores.device)] = -torch.inf
        top = _topk(scores, excl, kmax, batch)
        recommended[top[:, :max(ks)].ravel()] = True
        pos_b = pos[batch]
        hits = _member(pos_keys, batch[:, None] * n_items + top)
        num_pos = np.diff(pos_b.indptr)
        for name, v in ranking_metrics(hits, num_pos, ks).items():
            per_user.setdefault(name, []).append(v)
        for g, mask in groups.items():
            in_group = mask[top]
            n_g = np.asarray(pos_b[:, mask].sum(1)).ravel().astype(np.int64)
            keep = n_g > 0
            if not keep.any():
                continue
            ghits = (hits & in_group)[keep]
            for name, v in ranking_metrics(ghits, n_g[keep], ks).items():
                per_group[g].setdefault(name, []).append(v)

    _check_finite(scorer, non_finite, len(users))

    def table(d: dict[str, list[np.ndarray]], name: str) -> MetricTable:
        if not d:
            return MetricTable({}, 0, name=name)
        vals = {m: float(np.concatenate(v).mean()) for m, v in d.items()}
        order = [f"{m}@{k}" for k in ks for m in METRICS]
        return MetricTable({m: vals[m] for m in order}, len(np.concatenate(next(iter(d.values())))),
                           name=name)

    out = table(per_user, data.name)
    out[f"coverage@{max(ks)}"] = float(recommended.mean())
    out.groups = {g: table(d, g) for g, d in per_group.items() if d}
    return out


@torch.no_grad()
def evaluate_ctr(scorer: Scorer, rows: CTRRows, *, threshold: float | None = None,
                 threshold_rows: CTRRows | None = None) -> dict[str, float]:
    """AUC and F1 on labelled rows (the RippleNet/KGCN/MCCLK click-through protocol).

    F1 needs a threshold on the scores: pass one, or pass ``threshold_rows`` (the validation
    rows) to choose the F1-maximising threshold there, never on the rows being scored.
    """
    scores = scorer.score_pairs(rows.users, rows.items)
    _check_finite(scorer, int((~np.isfinite(scores)).sum()), len(scores), "rows")
    if threshold is None:
        if threshold_rows is None:
            raise ValueError("give a threshold or the validation rows to choose one on")
        threshold = best_threshold(threshold_rows.labels,
                                   scorer.score_pairs(threshold_rows.users, threshold_rows.items))
    return {"auc": auc(rows.labels, scores), "f1": f1_score(rows.labels, scores >= threshold),
            "threshold": float(threshold), "rows": len(rows)}
