"""The split strategies by name (:data:`SPLITS`), what each takes (:func:`check_split_params`),
and :func:`split`, which cuts a graph by one.

A strategy is a function registered under its name. It gets the graph's unique pairs
(:class:`~kgrec.data.folds.Pairs`) and returns a ``[P]`` fold per pair (``TRAIN``, ``VALID``,
``TEST``), which :func:`split` assembles, or a finished :class:`~kgrec.data.folds.Split`::

    @SPLITS.register("every_third")
    def every_third(pairs: Pairs, *, valid: float, test: float) -> np.ndarray:
        "Every third pair is a test pair."
        fold = np.full(len(pairs), TRAIN, dtype=np.int8)
        fold[2::3] = TEST
        return fold

Its keyword parameters say what it takes: ``valid`` and ``test`` (always passed; one it does
not name it ignores) and any of :data:`OPTIONS` (``shots``, ``target``, ``target_only``,
``warm``). An option it names without a default it needs (``cross_domain``'s ``target``); one
it does not name it refuses when set. :func:`check_split_params` checks that, and is what
both :func:`split` and :class:`kgrec.config.Config` (through :func:`kgrec.config.add_check`,
installed by :mod:`kgrec.data`) call, so they raise the same messages. The first line of a
strategy's docstring is its summary in ``--help``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from kgrec.config import DataConfig
from kgrec.data.folds import (
    TEST,
    TRAIN,
    VALID,
    CTRRows,
    EvalSet,
    Pairs,
    Split,
    made_from_training,
    pair_matrix,
    per_group_fold,
)
from kgrec.errors import ConfigError
from kgrec.graph import SAMPLED_NEGATIVE, RecGraph
from kgrec.registry import Registry

if TYPE_CHECKING:
    from kgrec.config import Config

log = logging.getLogger(__name__)

Strategy = Callable[..., "np.ndarray | Split"]

#: the split strategies, by the name ``data.split`` gives
SPLITS: Registry[Strategy] = Registry("split strategy", "data.split")

#: the options a strategy may take beside ``valid`` and ``test`` (each is off when falsy):
#: what a strategy that needs one lacks, and what one takes (one strategy, several)
OPTIONS = {
    "shots": ("shots", "takes shots", "take shots"),
    "target": ("a target domain", "takes a target", "take a target"),
    "target_only": ("target_only", "takes target_only", "take target_only"),
    "warm": ("warm links", "holds out warm links beside the cold ones",
             "hold out warm links beside the cold ones"),
}


@cache
def _params(fn: Strategy) -> dict[str, bool] | None:
    """The keyword parameters ``fn`` names -> whether it needs them (named without a
    default); ``None`` when it takes ``**kwargs`` (anything)."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name: p.default is p.empty for p in params}


def _options(fn: Strategy) -> dict[str, bool]:
    """The options (:data:`OPTIONS`) ``fn`` takes -> whether it needs them."""
    params = _params(fn)
    if params is None:
        return dict.fromkeys(OPTIONS, False)
    return {k: need for k, need in params.items() if k in OPTIONS}


def _takers(option: str) -> str:
    names = [n for n in SPLITS if option in _options(SPLITS.get(n))]
    if not names:
        return "no split"
    if len(names) == 1:
        return f"only the {names[0]} split"
    return f"only the {', '.join(names[:-1])} and {names[-1]} splits"


def check_split_params(strategy: str, *, valid: float = 0.1, test: float = 0.1, shots: int = 0,
                       target: str = "", target_only: bool = False,
                       warm: bool = False) -> Strategy:
    """Check a split's parameters; returns the strategy registered as ``strategy``.

    The one check of them, for :func:`split` and for the config: ``strategy`` is registered,
    ``valid`` / ``test`` / ``shots`` are in range (:meth:`DataConfig.check_ranges`), and the
    strategy takes the options that are set and has those it needs. Raises
    :class:`ConfigError` naming the ``data.`` field at fault.
    """
    fn = SPLITS.get(strategy)
    DataConfig.check_ranges(valid, test, shots)
    values = {"shots": shots, "target": target, "target_only": target_only, "warm": warm}
    takes = _options(fn)
    for option, value in values.items():
        lacks, one, several = OPTIONS[option]
        if takes.get(option) and not value:
            raise ConfigError(f"data.{option}: the {strategy} split needs {lacks}",
                              field=f"data.{option}")
        if value and option not in takes:
            who = _takers(option)
            verb = one if who.endswith(" split") else several
            raise ConfigError(f"data.{option}: {who} {verb} (split is {strategy!r})",
                              field=f"data.{option}")
    return fn


def check_config(cfg: Config) -> None:
    """:func:`check_split_params` of ``cfg.data`` (a whole-config check: the options depend
    on the strategy, so setting them one at a time must not trip half-way)."""
    d = cfg.data
    check_split_params(d.split, valid=d.valid, test=d.test, shots=d.shots, target=d.target,
                       target_only=d.target_only, warm=d.warm)


def split(graph: RecGraph, strategy: str = "random", *, valid: float = 0.1, test: float = 0.1,
          seed: int = 0, shots: int = 0, target: str = "", target_only: bool = False,
          warm: bool = False) -> Split:
    """Split ``graph``'s interactions.

    Args:
        graph: the graph.
        strategy: a name in :data:`SPLITS`: ``given`` (the dataset's own train/test,
            validation carved per user from train), ``random`` (per user), ``temporal`` (one
            global time cut: train on the past, test on the future), ``user_temporal`` (each
            user's latest interactions), ``cold_item`` / ``cold_user`` (held-out items/users
            have no training edge at all), ``cross_domain`` (see below), ``ctr`` (see
            :func:`ctr_split`), or one registered since.
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
    fn = check_split_params(strategy, valid=valid, test=test, shots=shots, target=target,
                            target_only=target_only, warm=warm)
    given = {"valid": valid, "test": test, "shots": shots, "target": target,
             "target_only": target_only, "warm": warm}
    params = _params(fn)
    if params is not None:  # pass what it names
        given = {k: v for k, v in given.items() if k in params}
    pairs = Pairs(graph, strategy, seed)
    out = fn(pairs, **given)
    return out if isinstance(out, Split) else pairs.assemble(out)


# ------------------------------------------------------------------ the built-in strategies
@SPLITS.register("given")
def given_split(p: Pairs, *, valid: float) -> np.ndarray:
    """The dataset's own train/test folds; validation carved per user from train."""
    given = p.graph.interactions.attrs.get("fold")
    if given is None:
        raise ConfigError(f"split 'given': {p.graph.name} has no train/test fold of its own")
    is_test = np.zeros(len(p), dtype=bool)
    np.logical_or.at(is_test, p.inverse, given == "test")
    is_train = np.zeros(len(p), dtype=bool)
    np.logical_or.at(is_train, p.inverse, given == "train")
    both = is_test & is_train
    if both.any():
        log.warning("%s: %d pairs are in both the given train and test folds; kept in train",
                    p.graph.name, int(both.sum()))
    fold = np.where(is_train, TRAIN, TEST).astype(np.int8)
    tr = fold == TRAIN
    sub = per_group_fold(p.users[tr], p.rng.random(int(tr.sum())), valid, 0.0)
    fold[np.flatnonzero(tr)[sub == VALID]] = VALID
    return fold


@SPLITS.register("random")
def random_split(p: Pairs, *, valid: float, test: float) -> np.ndarray:
    """Per user: a random share valid / test of each user's pairs."""
    return per_group_fold(p.users, p.rng.random(len(p)), valid, test)


@SPLITS.register("temporal")
def temporal_split(p: Pairs, *, valid: float, test: float) -> Split:
    """One global time cut: train on the past, validate and test on the future."""
    return _by_time(p, valid, test, per_user=False)


@SPLITS.register("user_temporal")
def user_temporal_split(p: Pairs, *, valid: float, test: float) -> Split:
    """Each user's latest pairs held out (a time cut per user)."""
    return _by_time(p, valid, test, per_user=True)


def _by_time(p: Pairs, valid: float, test: float, per_user: bool) -> Split:
    ts = p.graph.interactions.attrs.get("timestamp")
    if ts is None or np.isnan(ts).all():
        raise ConfigError(f"split {p.strategy!r} needs timestamps; {p.graph.name} has none")
    users, n_pairs = p.users, len(p)
    first = np.full(n_pairs, np.inf)
    np.minimum.at(first, p.inverse, np.nan_to_num(ts, nan=np.inf))
    tiebreak = p.rng.random(n_pairs) * 1e-3  # random order among equal timestamps
    if per_user:
        fold = per_group_fold(users, first + tiebreak, valid, test)
    else:
        rank = np.argsort(np.argsort(first + tiebreak, kind="stable"), kind="stable")
        q = rank / max(1, n_pairs)
        fold = np.where(q >= 1 - test, TEST, np.where(q >= 1 - test - valid, VALID, TRAIN))
    # the time cut each user's behaviour-made edges must not pass: one global cut, or each
    # user's own last training interaction
    tr = fold == TRAIN
    known = np.where(np.isfinite(first), first, -np.inf)  # an untimed pair moves no cut
    cut = np.full(p.graph.num_users, -np.inf)
    if per_user:
        np.maximum.at(cut, users[tr], known[tr])
    elif tr.any():
        cut[:] = known[tr].max()
    return p.assemble(fold, cut=cut)


@SPLITS.register("cold_item")
def cold_item_split(p: Pairs, *, valid: float, test: float, shots: int = 0,
                    warm: bool = False) -> Split:
    """Held-out items have no training link (shots: K support links each; warm: warm links too)."""
    return _cold(p, "item", valid, test, shots, warm)


@SPLITS.register("cold_user")
def cold_user_split(p: Pairs, *, valid: float, test: float, shots: int = 0,
                    warm: bool = False) -> Split:
    """Held-out users have no training link (shots: K support links each; warm: warm links too)."""
    return _cold(p, "user", valid, test, shots, warm)


def _cold(p: Pairs, side: str, valid: float, test: float, shots: int, warm: bool) -> Split:
    ids = p.items if side == "item" else p.users
    n_nodes = p.graph.num_items if side == "item" else p.graph.num_users
    node_fold = _hold_out(np.unique(ids), n_nodes, valid, test, p.rng)
    fold = node_fold[ids]
    heldout = node_fold != TRAIN
    _keep_support(fold, ids, heldout, shots, p.rng)
    if warm:
        _hold_out_warm(fold, p.users, ids, heldout, valid, test, p.rng)
    split_ = p.assemble(fold)
    for es in (split_.valid, split_.test):
        setattr(es, f"heldout_{side}s", heldout.copy())
    split_.shots = shots
    return split_


@SPLITS.register("cross_domain")
def cross_domain_split(p: Pairs, *, valid: float, test: float, target: str, shots: int = 0,
                       target_only: bool = False) -> Split:
    """Transfer to a target item domain: its held-out users keep only shots target links."""
    graph, users, items = p.graph, p.users, p.items
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
    node_fold = _hold_out(np.flatnonzero(n_target >= 2), graph.num_users, valid, test, p.rng)
    fold = np.where(in_target, node_fold[users], TRAIN).astype(np.int8)
    heldout = node_fold != TRAIN
    _keep_support(fold, np.where(in_target, users, -1), heldout, shots, p.rng)
    split_ = p.assemble(fold, keep=in_target if target_only else None)
    candidates = domain == target
    for es in (split_.valid, split_.test):
        es.heldout_users = heldout.copy()
        es.candidates = candidates
    split_.shots = shots
    return split_


@SPLITS.register("ctr")
def ctr_protocol_split(p: Pairs, *, valid: float, test: float) -> Split:
    """The RippleNet/KGCN click-through protocol: labelled rows with sampled negatives."""
    return ctr_split(p.graph, seed=p.seed, ratios=(1 - valid - test, valid, test))


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
    sub = per_group_fold(users[w], rng.random(len(w)), valid, test)
    node = ids[w]
    trained = np.zeros(len(heldout), dtype=bool)
    trained[node[sub == TRAIN]] = True
    lost = np.flatnonzero(~trained[node])
    order = lost[rng.permutation(len(lost))]
    _, first = np.unique(node[order], return_index=True)
    sub[order[first]] = TRAIN
    fold[w] = sub


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
    train = pair_matrix(rows["train"].users[pos["train"]], rows["train"].items[pos["train"]],
                        U, I)
    # A positive pair that is also a training positive is not held out (KGCN keeps such rows;
    # for ranking they would be excluded anyway).
    def held(k: str) -> sp.csr_matrix:
        m = pair_matrix(rows[k].users[pos[k]], rows[k].items[pos[k]], U, I)
        return (m - m.multiply(train)).tocsr()
    valid_m, test_m = held("valid"), held("test")
    cold_items = np.asarray(train.sum(0)).ravel() == 0
    cold_users = np.asarray(train.sum(1)).ravel() == 0
    tu, ti = train.nonzero()
    graph = made_from_training(graph, tu, ti)
    return Split(graph, "ctr", tu.astype(np.int64), ti.astype(np.int64),
                 EvalSet("valid", valid_m, train, cold_items, cold_users),
                 EvalSet("test", test_m, (train + valid_m).tocsr(), cold_items, cold_users),
                 seed, ctr=rows)
