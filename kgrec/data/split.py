"""Train / validation / test splits of a RecGraph's interactions, built so nothing leaks.

Every split works on unique (user, item) pairs: a pair lives in exactly one fold, so no
validation or test pair can appear among the training positives or in the message-passing
graph (which is built from :attr:`Split.train_users` / :attr:`Split.train_items` only).

Knowledge edges that users made (tags, "also bought", reviews: their edges carry
:data:`~kgrec.graph.MADE_BY`) are behaviour too. Each split rebuilds them after it has cut
the folds, from its training interactions only: an edge survives when every item it touches
is a training item *of the user who made it*, and, on the time-ordered splits, when it was
made no later than that user's last training interaction before the cut. :attr:`Split.graph`
is the graph so rebuilt; facts about items (genres, Freebase, Satori) pass unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from kgrec.config import DataConfig
from kgrec.errors import ConfigError
from kgrec.graph import ITEM, MADE_BY, SAMPLED_NEGATIVE, KnowledgeTriples, RecGraph

log = logging.getLogger(__name__)

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
        return _csr(self.train_users, self.train_items, self.num_users, self.num_items)

    def summary(self) -> dict[str, int | str]:
        return {"strategy": self.strategy, "train": len(self.train_users),
                "valid": len(self.valid), "test": len(self.test),
                "test_users": len(self.test.users),
                "cold_test_items": int(self.test.cold_items.sum()),
                **({"shots": self.shots} if self.shots else {})}

    def __repr__(self) -> str:
        return f"Split({self.graph.name!r}, {self.summary()})"


def _csr(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)),
                      shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _unique_pairs(graph: RecGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (user, item) pairs and, per interaction row, the index of its pair."""
    inter = graph.interactions
    keys = inter.src * max(1, graph.num_items) + inter.dst
    uniq, inverse = np.unique(keys, return_inverse=True)
    return uniq // max(1, graph.num_items), uniq % max(1, graph.num_items), inverse


def _per_group_fold(groups: np.ndarray, order_key: np.ndarray, valid: float, test: float
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


def split(graph: RecGraph, strategy: str = "random", *, valid: float = 0.1, test: float = 0.1,
          seed: int = 0, shots: int = 0, target: str = "", target_only: bool = False,
          warm: bool = False) -> Split:
    """Split ``graph``'s interactions.

    Args:
        graph: the graph.
        strategy: ``given`` (the dataset's own train/test, validation carved per user from
            train), ``random`` (per user), ``temporal`` (one global time cut: train on the past,
            test on the future), ``user_temporal`` (each user's latest interactions),
            ``cold_item`` / ``cold_user`` (held-out items/users have no training edge at all),
            ``cross_domain`` (see below), ``ctr`` (see :func:`ctr_split`).
        valid, test: fractions (of each user's pairs, of the time range's pairs, or of the
            items/users for the cold splits). ``given`` ignores ``test``.
        seed: random seed.
        shots: for ``cold_item`` / ``cold_user``, the few-shot protocol: each held-out node
            keeps ``shots`` of its links, drawn at random, in training (its support set); the
            rest are its validation/test links. A node with no more than ``shots`` links keeps
            one link fewer, so every held-out node has something to rank.
        warm: for ``cold_item`` / ``cold_user``, also hold out a share ``valid`` / ``test``
            of each user's links to the other (warm) nodes, per user at random, while every
            warm node keeps at least one training link. One split then measures the three
            settings of the cold-start literature: *cold* (links to held-out nodes, ranked
            among the untrained items), *warm* (links to trained items, ranked among them)
            and *overall* (every held-out link, all items ranked together).
        target, target_only: for ``cross_domain``, the transfer protocol on items with a
            ``domain``: a share ``valid`` / ``test`` of the users with links in domain
            ``target`` is held out there and keeps only ``shots`` of its target links in
            training; every other link (all source-domain links, the other users' target
            links) is training. Validation and test rank the target domain's items only.
            ``target_only`` drops the source-domain training links (the single-domain peer,
            on exactly the same held-out links).
    """
    if shots < 0:
        raise ConfigError(f"shots={shots}: must be >= 0")
    if shots and strategy not in ("cold_item", "cold_user", "cross_domain"):
        raise ConfigError(f"shots={shots}: only the cold_item, cold_user and cross_domain "
                          f"splits take shots, not {strategy!r}")
    if (target or target_only) and strategy != "cross_domain":
        raise ConfigError(f"target={target!r}: only the cross_domain split takes a target domain")
    if warm and strategy not in ("cold_item", "cold_user"):
        raise ConfigError(f"warm=True: only the cold_item and cold_user splits hold out warm "
                          f"links beside the cold ones, not {strategy!r}")
    if not 0 <= valid < 1 or not 0 <= test < 1 or valid + test >= 1:
        raise ConfigError(f"valid={valid}, test={test}: each in [0, 1) and together below 1")
    if strategy == "ctr":
        return ctr_split(graph, seed=seed, ratios=(1 - valid - test, valid, test))
    rng = np.random.default_rng(seed)
    users, items, inverse = _unique_pairs(graph)
    n_pairs = len(users)
    inter = graph.interactions

    if strategy == "random":
        fold = _per_group_fold(users, rng.random(n_pairs), valid, test)
    elif strategy in ("temporal", "user_temporal"):
        ts = inter.attrs.get("timestamp")
        if ts is None or np.isnan(ts).all():
            raise ConfigError(f"split {strategy!r} needs timestamps; {graph.name} has none")
        first = np.full(n_pairs, np.inf)
        np.minimum.at(first, inverse, np.nan_to_num(ts, nan=np.inf))
        tiebreak = rng.random(n_pairs) * 1e-3  # random order among equal timestamps
        if strategy == "user_temporal":
            fold = _per_group_fold(users, first + tiebreak, valid, test)
        else:
            rank = np.argsort(np.argsort(first + tiebreak, kind="stable"), kind="stable")
            q = rank / max(1, n_pairs)
            fold = np.where(q >= 1 - test, TEST, np.where(q >= 1 - test - valid, VALID, TRAIN))
        # the time cut each user's behaviour-made edges must not pass: one global cut, or each
        # user's own last training interaction
        tr = fold == TRAIN
        known = np.where(np.isfinite(first), first, -np.inf)  # an untimed pair moves no cut
        cut = np.full(graph.num_users, -np.inf)
        if strategy == "user_temporal":
            np.maximum.at(cut, users[tr], known[tr])
        elif tr.any():
            cut[:] = known[tr].max()
        return _assemble(graph, strategy, users, items, fold, seed, cut=cut)
    elif strategy in ("cold_item", "cold_user"):
        ids = items if strategy == "cold_item" else users
        node_fold = _hold_out(np.unique(ids), graph.num_items if strategy == "cold_item"
                              else graph.num_users, valid, test, rng)
        fold = node_fold[ids]
        heldout = node_fold != TRAIN
        _keep_support(fold, ids, heldout, shots, rng)
        if warm:
            _hold_out_warm(fold, users, ids, heldout, valid, test, rng)
        split_ = _assemble(graph, strategy, users, items, fold, seed)
        kind = "heldout_items" if strategy == "cold_item" else "heldout_users"
        for es in (split_.valid, split_.test):
            setattr(es, kind, heldout.copy())
        split_.shots = shots
        return split_
    elif strategy == "cross_domain":
        return _cross_domain(graph, users, items, valid, test, seed, rng, shots, target,
                             target_only)
    elif strategy == "given":
        given = inter.attrs.get("fold")
        if given is None:
            raise ConfigError(f"split 'given': {graph.name} has no train/test fold of its own")
        is_test = np.zeros(n_pairs, dtype=bool)
        np.logical_or.at(is_test, inverse, given == "test")
        is_train = np.zeros(n_pairs, dtype=bool)
        np.logical_or.at(is_train, inverse, given == "train")
        both = is_test & is_train
        if both.any():
            log.warning("%s: %d pairs are in both the given train and test folds; kept in train",
                        graph.name, int(both.sum()))
        fold = np.where(is_train, TRAIN, TEST).astype(np.int8)
        tr = fold == TRAIN
        sub = _per_group_fold(users[tr], rng.random(int(tr.sum())), valid, 0.0)
        fold[np.flatnonzero(tr)[sub == VALID]] = VALID
    else:
        raise ConfigError(f"unknown split {strategy!r}; known: given, random, temporal, "
                          "user_temporal, cold_item, cold_user, ctr")
    return _assemble(graph, strategy, users, items, fold, seed)


def _hold_out(present: np.ndarray, n_nodes: int, valid: float, test: float,
              rng: np.random.Generator) -> np.ndarray:
    """``[n_nodes]`` fold per node: a random share ``test`` / ``valid`` of ``present``."""
    perm = rng.permutation(present)
    n_test, n_valid = round(len(present) * test), round(len(present) * valid)
    node_fold = np.full(n_nodes, TRAIN, dtype=np.int8)
    node_fold[perm[:n_test]] = TEST
    node_fold[perm[n_test:n_test + n_valid]] = VALID
    return node_fold


def _keep_support(fold: np.ndarray, ids: np.ndarray, heldout: np.ndarray, shots: int,
                  rng: np.random.Generator) -> None:
    """Put ``shots`` random pairs of each held-out node back into TRAIN, in place; a node
    with no more than ``shots`` pairs keeps one out. ``ids[P]``: each pair's node, -1 for
    pairs that are not in play."""
    if not shots:
        return
    key = rng.random(len(ids))
    play = np.flatnonzero(ids >= 0)
    order = play[np.lexsort((key[play], ids[play]))]
    g = ids[order]
    counts = np.bincount(g, minlength=len(heldout))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(g)) - starts[g]
    fold[order[(rank < np.minimum(shots, counts[g] - 1)) & heldout[g]]] = TRAIN


def _hold_out_warm(fold: np.ndarray, users: np.ndarray, ids: np.ndarray, heldout: np.ndarray,
                   valid: float, test: float, rng: np.random.Generator) -> None:
    """Cut the links of warm nodes (``~heldout[ids]``) per user into TRAIN / VALID / TEST, in
    place, then give every warm node that lost all its training links one of them back."""
    w = np.flatnonzero(~heldout[ids])
    sub = _per_group_fold(users[w], rng.random(len(w)), valid, test)
    node = ids[w]
    trained = np.zeros(len(heldout), dtype=bool)
    trained[node[sub == TRAIN]] = True
    lost = np.flatnonzero(~trained[node])
    order = lost[rng.permutation(len(lost))]
    _, first = np.unique(node[order], return_index=True)
    sub[order[first]] = TRAIN
    fold[w] = sub


def _cross_domain(graph: RecGraph, users: np.ndarray, items: np.ndarray, valid: float,
                  test: float, seed: int, rng: np.random.Generator, shots: int, target: str,
                  target_only: bool) -> Split:
    domain = graph.items.attrs.get("domain")
    known = [] if domain is None else np.unique(domain).tolist()
    if len(known) < 2:
        raise ConfigError(f"split 'cross_domain': {graph.name}'s items need a domain with at "
                          f"least two values (found {known})")
    if target not in known:
        raise ConfigError(f"split 'cross_domain': data.target {target!r} is not a domain of "
                          f"{graph.name}; domains: {known}")
    in_target = domain[items] == target
    # Users held out in the target domain; at least two target links, so one can be a shot
    # and one ranked.
    n_target = np.bincount(users[in_target], minlength=graph.num_users)
    node_fold = _hold_out(np.flatnonzero(n_target >= 2), graph.num_users, valid, test, rng)
    fold = np.where(in_target, node_fold[users], TRAIN).astype(np.int8)
    heldout = node_fold != TRAIN
    _keep_support(fold, np.where(in_target, users, -1), heldout, shots, rng)
    if target_only:
        users, items, fold = users[in_target], items[in_target], fold[in_target]
    split_ = _assemble(graph, "cross_domain", users, items, fold, seed)
    candidates = domain == target
    for es in (split_.valid, split_.test):
        es.heldout_users = heldout.copy()
        es.candidates = candidates
    split_.shots = shots
    return split_


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


def _assemble(graph: RecGraph, strategy: str, users: np.ndarray, items: np.ndarray,
              fold: np.ndarray, seed: int, cut: np.ndarray | None = None) -> Split:
    U, I = graph.num_users, graph.num_items
    tr, va, te = fold == TRAIN, fold == VALID, fold == TEST
    graph = made_from_training(graph, users[tr], items[tr], cut)
    train = _csr(users[tr], items[tr], U, I)
    valid_m = _csr(users[va], items[va], U, I)
    test_m = _csr(users[te], items[te], U, I)
    cold_items = np.bincount(items[tr], minlength=I) == 0
    cold_users = np.bincount(users[tr], minlength=U) == 0
    valid = EvalSet("valid", valid_m, train, cold_items, cold_users)
    test = EvalSet("test", test_m, (train + valid_m).tocsr(), cold_items, cold_users)
    s = Split(graph, strategy, users[tr], items[tr], valid, test, seed)
    log.info("split %s/%s: %s", graph.name, strategy, s.summary())
    return s


def ctr_split(graph: RecGraph, *, seed: int = 0,
              ratios: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> Split:
    """The click-through protocol of RippleNet/KGCN/MCCLK.

    The labelled rows (positives and the dataset's sampled negatives) are shuffled and cut
    6:2:2. Models learn from the training rows' positives only; AUC and F1 are measured on
    the test rows, early stopping uses the validation rows.
    """
    if SAMPLED_NEGATIVE not in graph.edges:
        raise ConfigError(f"{graph.name} ships no sampled negatives; the click-through protocol "
                          "needs them (KGCN-format datasets have them)")
    inter, neg = graph.interactions, graph.edges[SAMPLED_NEGATIVE]
    users = np.concatenate([inter.src, neg.src])
    items = np.concatenate([inter.dst, neg.dst])
    labels = np.concatenate([np.ones(len(inter), np.int8), np.zeros(len(neg), np.int8)])
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(users))
    n_tr, n_va = int(len(perm) * ratios[0]), int(len(perm) * ratios[1])
    parts = {"train": perm[:n_tr], "valid": perm[n_tr:n_tr + n_va], "test": perm[n_tr + n_va:]}
    rows = {k: CTRRows(users[v], items[v], labels[v]) for k, v in parts.items()}
    pos = {k: r.labels == 1 for k, r in rows.items()}
    U, I = graph.num_users, graph.num_items
    train = _csr(rows["train"].users[pos["train"]], rows["train"].items[pos["train"]], U, I)
    # A positive pair that is also a training positive is not held out (KGCN keeps such rows;
    # for ranking they would be excluded anyway).
    def held(k: str) -> sp.csr_matrix:
        m = _csr(rows[k].users[pos[k]], rows[k].items[pos[k]], U, I)
        return (m - m.multiply(train)).tocsr()
    valid_m, test_m = held("valid"), held("test")
    cold_items = np.asarray(train.sum(0)).ravel() == 0
    cold_users = np.asarray(train.sum(1)).ravel() == 0
    tu, ti = train.nonzero()
    graph = made_from_training(graph, tu, ti)
    s = Split(graph, "ctr", tu.astype(np.int64), ti.astype(np.int64),
              EvalSet("valid", valid_m, train, cold_items, cold_users),
              EvalSet("test", test_m, (train + valid_m).tocsr(), cold_items, cold_users), seed,
              ctr=rows)
    return s


def split_for(cfg: DataConfig, graph: RecGraph | None = None) -> Split:
    """Load ``cfg.dataset`` (unless ``graph`` is given) and split it as ``cfg`` says.

    The same config always gives the same split, which is how a saved model is evaluated
    on exactly the test set it never saw.
    """
    from kgrec.ingest import load_dataset, load_recipe

    if graph is None:
        ds = cfg.dataset
        if ds.startswith(("bolt://", "bolt+s://", "neo4j://", "neo4j+s://")):
            from kgrec.store.neo4j import Neo4jStore

            # bolt://host:7687#ml-100k-kb4rec: the dataset of that name in the database
            uri, _, name = ds.partition("#")
            with Neo4jStore(uri) as store:
                graph = store.read(dataset=name or None)
        elif ds.endswith((".yaml", ".yml")):
            graph = load_recipe(ds, data_dir=cfg.data_dir)
        else:
            graph = load_dataset(ds, data_dir=cfg.data_dir)
    s = split(graph, cfg.split, valid=cfg.valid, test=cfg.test, seed=cfg.seed, shots=cfg.shots,
              target=cfg.target, target_only=cfg.target_only, warm=cfg.warm)
    if cfg.noise:
        from kgrec.data.noise import interaction_noise, kg_noise

        for kind, share in cfg.noise_levels():
            s = (interaction_noise if kind == "inter" else kg_noise)(s, share, seed=cfg.seed)
    return s


def fingerprint(s: Split) -> str:
    """A short hash of the training pairs: proves a reloaded split is the one trained on."""
    import hashlib

    h = hashlib.sha256(np.ascontiguousarray(s.train_users).tobytes())
    h.update(np.ascontiguousarray(s.train_items).tobytes())
    return h.hexdigest()[:16]
