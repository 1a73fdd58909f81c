"""What a split is: its folds (:class:`Split`, :class:`EvalSet`, :class:`CTRRows`), and how a
strategy's per-pair fold assignment becomes one (:class:`Pairs`).

Every split works on unique (user, item) pairs: a pair lives in exactly one fold, so no
validation or test pair can appear among the training positives or in the message-passing
graph (which is built from :attr:`Split.train_users` / :attr:`Split.train_items` only).

Knowledge edges that users made (tags, "also bought", reviews: their edges carry
:data:`~kgrec.graph.MADE_BY`) are behaviour too. Each split rebuilds them after it has cut
the folds, from its training interactions only: an edge survives when every item it touches
is a training item *of the user who made it*, and, on the time-ordered splits, when it was
made no later than that user's last training interaction before the cut. :attr:`Split.graph`
is the graph so rebuilt; facts about items (genres, Freebase, Satori) pass unchanged.

The strategies themselves are in :mod:`kgrec.data.strategies`; this module imports nothing
else of :mod:`kgrec.data`, so any module may import these types.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from kgrec.graph import ITEM, MADE_BY, KnowledgeTriples, RecGraph

log = logging.getLogger(__name__)

#: the fold of a pair, in the ``[P]`` arrays strategies return
TRAIN, VALID, TEST = 0, 1, 2


@dataclass
class EvalSet:
    """Held-out positives to rank, and the items each user must not be offered.

    Attributes:
        name: ``valid`` or ``test``.
        positives: ``[U, I]`` CSR, 1 where the pair is a held-out positive.
        exclude: ``[U, I]`` CSR of pairs removed from the ranking (the user's training items,
            and for the test set also the validation items).
        cold_items: ``[I]`` bool, items with no training interaction (for breakdowns).
        cold_users: ``[U]`` bool, users with no training interaction.
        heldout_items, heldout_users: ``[I]`` / ``[U]`` bool, the nodes a cold split held
            out. With ``shots = 0`` these equal the cold ones; with ``shots = K`` each held-out
            node keeps its K support links in training, so it is no longer cold but still
            held out (the few-shot protocol ranks and adapts exactly these).
        candidates: ``[I]`` bool, the items this set ranks (``None``: all). The cross-domain
            split ranks the target domain's items only.
    """

    name: str
    positives: sp.csr_matrix
    exclude: sp.csr_matrix
    cold_items: np.ndarray
    cold_users: np.ndarray
    heldout_items: np.ndarray | None = None
    heldout_users: np.ndarray | None = None
    candidates: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.heldout_items is None:
            self.heldout_items = self.cold_items
        if self.heldout_users is None:
            self.heldout_users = self.cold_users

    @property
    def users(self) -> np.ndarray:
        """Users with at least one held-out positive, ``[N]``."""
        return np.flatnonzero(np.diff(self.positives.indptr))

    @property
    def num_items(self) -> int:
        return self.positives.shape[1]

    def __len__(self) -> int:
        return int(self.positives.nnz)

    def __repr__(self) -> str:
        return f"EvalSet({self.name!r}, users={len(self.users)}, positives={len(self)})"


@dataclass
class CTRRows:
    """Labelled rows of the click-through protocol: ``label`` 1 = positive, 0 = negative."""

    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class Split:
    """A split of ``graph``'s interactions.

    Attributes:
        graph: what every model and feature may read: all nodes, all interactions (only the
            evaluation reads the held-out ones), the KG's facts, and of the knowledge edges
            that users made only those built from this split's training interactions (see
            the module docstring).
        strategy: how it was split.
        train_users, train_items: the unique training positives ``[P]``; the only
            interactions a model may learn from or propagate over.
        valid, test: :class:`EvalSet` for model selection and for the final report.
        ctr: for the click-through protocol, labelled rows per fold.
        shots: support links each held-out node keeps in training (few-shot cold splits).
        kg: the KG models see, when it is not the graph's own (a noisy copy,
            :func:`kgrec.data.noise.kg_noise`).
    """

    graph: RecGraph
    strategy: str
    train_users: np.ndarray
    train_items: np.ndarray
    valid: EvalSet
    test: EvalSet
    seed: int = 0
    ctr: dict[str, CTRRows] = field(default_factory=dict)
    shots: int = 0
    kg: KnowledgeTriples | None = None

    @property
    def num_users(self) -> int:
        return self.graph.num_users

    @property
    def num_items(self) -> int:
        return self.graph.num_items

    def train_matrix(self) -> sp.csr_matrix:
        """``[U, I]`` CSR of the training positives."""
        return pair_matrix(self.train_users, self.train_items, self.num_users, self.num_items)

    def summary(self) -> dict[str, int | str]:
        return {"strategy": self.strategy, "train": len(self.train_users),
                "valid": len(self.valid), "test": len(self.test),
                "test_users": len(self.test.users),
                "cold_test_items": int(self.test.cold_items.sum()),
                **({"shots": self.shots} if self.shots else {})}

    def __repr__(self) -> str:
        return f"Split({self.graph.name!r}, {self.summary()})"


def pair_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
                ) -> sp.csr_matrix:
    """``[n_users, n_items]`` CSR, 1 at each (user, item) pair (duplicates count once)."""
    m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)),
                      shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def per_group_fold(groups: np.ndarray, order_key: np.ndarray, valid: float, test: float
                   ) -> np.ndarray:
    """Within each group, the last ``test`` share (by ``order_key``) -> TEST, the share before
    it -> VALID, the rest TRAIN; every group keeps at least one TRAIN row."""
    order = np.lexsort((order_key, groups))
    g = groups[order]
    counts = np.bincount(g)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n = counts[g]
    pos_from_end = n - 1 - (np.arange(len(g)) - starts[g])
    n_test = np.minimum(np.round(n * test).astype(np.int64), n - 1)
    n_valid = np.minimum(np.round(n * valid).astype(np.int64), n - 1 - n_test)
    fold = np.full(len(g), TRAIN, dtype=np.int8)
    fold[pos_from_end < n_test] = TEST
    fold[(pos_from_end >= n_test) & (pos_from_end < n_test + n_valid)] = VALID
    out = np.empty_like(fold)
    out[order] = fold
    return out


class Pairs:
    """What a split strategy cuts: ``graph``'s unique (user, item) pairs, each of which it puts
    in one fold.

    A strategy (:data:`kgrec.data.SPLITS`) gets one and returns a ``[P]`` int8 array of
    :data:`TRAIN` / :data:`VALID` / :data:`TEST` per pair (assembled with :meth:`assemble`),
    or a finished :class:`Split`.

    Attributes:
        graph: the graph being split.
        strategy: the registered name it is split by.
        seed: the split's seed.
        rng: the split's random generator, seeded with ``seed``: a strategy draws from it, in
            a fixed order, everything random it does.
        users, items: ``[P]`` each unique pair, sorted by (user, item); computed on first use.
        inverse: ``[R]`` per interaction row, the index of its pair.
    """

    def __init__(self, graph: RecGraph, strategy: str, seed: int = 0) -> None:
        self.graph, self.strategy, self.seed = graph, strategy, seed
        self.rng = np.random.default_rng(seed)

    @cached_property
    def _unique(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        graph = self.graph
        inter = graph.interactions
        keys = inter.src * max(1, graph.num_items) + inter.dst
        uniq, inverse = np.unique(keys, return_inverse=True)
        return uniq // max(1, graph.num_items), uniq % max(1, graph.num_items), inverse

    @property
    def users(self) -> np.ndarray:
        return self._unique[0]

    @property
    def items(self) -> np.ndarray:
        return self._unique[1]

    @property
    def inverse(self) -> np.ndarray:
        return self._unique[2]

    def __len__(self) -> int:
        return len(self.users)

    def assemble(self, fold: np.ndarray, *, cut: np.ndarray | None = None,
                 keep: np.ndarray | None = None) -> Split:
        """The :class:`Split` of these pairs by ``fold`` (``[P]``). ``cut``: ``[U]`` times
        no user-made edge may pass (:func:`made_from_training`); ``keep``: ``[P]`` bool, the
        pairs that take part at all (the others are in no fold)."""
        users, items, fold = self.users, self.items, np.asarray(fold)
        if keep is not None:
            users, items, fold = users[keep], items[keep], fold[keep]
        return assemble(self.graph, self.strategy, users, items, fold, self.seed, cut=cut)

    def __repr__(self) -> str:
        return f"Pairs({self.graph.name!r}, {self.strategy!r}, seed={self.seed})"


def made_from_training(graph: RecGraph, train_users: np.ndarray, train_items: np.ndarray,
                       cut: np.ndarray | None = None) -> RecGraph:
    """``graph`` with its user-made knowledge edges rebuilt from training interactions only.

    An edge made by user ``u`` survives when every item it touches is one of ``u``'s
    training items and, given ``cut`` (``[U]`` times), when it was made no later than
    ``cut[u]`` (an edge without a time does not survive a cut). Edges whose maker the graph
    does not know never survive. Several users' copies of one edge become one edge, as the
    facts are. Facts and interactions are shared with ``graph``, unchanged.
    """
    types = graph.behavior_edge_types()
    if not types:
        return graph
    n_items = max(1, graph.num_items)
    train_keys = np.unique(np.asarray(train_users, np.int64) * n_items + train_items)
    lookup = graph.users.lookup
    rebuilt = {}
    for et in types:
        table = graph.edges[et]
        maker = np.fromiter((lookup.get(u, -1) for u in table.attrs[MADE_BY].tolist()),
                            dtype=np.int64, count=len(table))
        keep = maker >= 0
        for end, idx in ((et[0], table.src), (et[2], table.dst)):
            if end == ITEM:
                keep &= np.isin(maker * n_items + idx, train_keys)
        if cut is not None:
            when = table.attrs.get("timestamp", np.full(len(table), np.nan))
            with np.errstate(invalid="ignore"):
                keep &= when <= cut[np.maximum(maker, 0)]
        kept = table.take(keep)
        width = int(kept.dst.max()) + 1 if len(kept) else 1
        _, first = np.unique(kept.src * width + kept.dst, return_index=True)
        rebuilt[et] = kept.take(np.sort(first))
        log.info("%s: %d of %d user-made edges come from training interactions", et[1],
                 len(rebuilt[et]), len(table))
    return graph.with_edges(rebuilt)


def assemble(graph: RecGraph, strategy: str, users: np.ndarray, items: np.ndarray,
             fold: np.ndarray, seed: int, cut: np.ndarray | None = None) -> Split:
    """The :class:`Split` of the pairs ``users[P]``, ``items[P]`` by ``fold[P]``, with the
    user-made edges rebuilt from its training pairs (before ``cut``, see
    :func:`made_from_training`)."""
    U, I = graph.num_users, graph.num_items
    tr, va, te = fold == TRAIN, fold == VALID, fold == TEST
    graph = made_from_training(graph, users[tr], items[tr], cut)
    train = pair_matrix(users[tr], items[tr], U, I)
    valid_m = pair_matrix(users[va], items[va], U, I)
    test_m = pair_matrix(users[te], items[te], U, I)
    cold_items = np.bincount(items[tr], minlength=I) == 0
    cold_users = np.bincount(users[tr], minlength=U) == 0
    valid = EvalSet("valid", valid_m, train, cold_items, cold_users)
    test = EvalSet("test", test_m, (train + valid_m).tocsr(), cold_items, cold_users)
    s = Split(graph, strategy, users[tr], items[tr], valid, test, seed)
    log.info("split %s/%s: %s", graph.name, strategy, s.summary())
    return s


def fingerprint(s: Split) -> str:
    """A short hash of the training pairs: proves a reloaded split is the one trained on
    (saved with a model as ``split_fingerprint``, checked by ``kgrec evaluate``)."""
    h = hashlib.sha256(np.ascontiguousarray(s.train_users).tobytes())
    h.update(np.ascontiguousarray(s.train_items).tobytes())
    return h.hexdigest()[:16]
