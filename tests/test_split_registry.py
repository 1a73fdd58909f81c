"""The split strategies are a registry: each built-in is found by its name, a strategy
registered anywhere works through ``kgrec.split`` and the config, and the one parameter check
(:func:`kgrec.data.check_split_params`) says the same through both."""

import numpy as np
import pytest

import kgrec
from kgrec.data import SPLITS, TEST, TRAIN, Pairs, check_split_params, split_for
from kgrec.errors import KgrecDeprecationWarning
from tests.conftest import planted_ratings, write_kgcn

BUILT_IN = ["given", "random", "temporal", "user_temporal", "cold_item", "cold_user",
            "cross_domain", "ctr"]


@SPLITS.register("every_third")
def every_third(pairs: Pairs, *, test: float) -> np.ndarray:
    """Every third pair (by user, then item) is a test pair; no validation."""
    fold = np.full(len(pairs), TRAIN, dtype=np.int8)
    fold[2::3] = TEST
    return fold


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    return write_kgcn(root, planted_ratings(n_users=40, n_items=30, per_user=6))


@pytest.fixture(scope="module")
def small(recipe):
    return kgrec.load_recipe(recipe, cache=False)


def test_the_registry_lists_the_built_in_strategies():
    assert SPLITS.names()[:8] == BUILT_IN
    assert kgrec.data.SPLITS is SPLITS
    for name in BUILT_IN:
        assert SPLITS.summary(name), f"{name} has no one-line summary for --help"
    assert SPLITS.help().startswith(" | ".join(BUILT_IN))
    # the config's tuple, kept for old importers, names the same built-ins (and warns)
    with pytest.warns(KgrecDeprecationWarning, match=r"use kgrec\.data\.SPLITS"):
        from kgrec.config import SPLITS as OLD

    assert list(OLD) == BUILT_IN


def test_an_unknown_strategy_is_refused_naming_every_one(small):
    for raise_it in (lambda: kgrec.split(small, "sideways"),
                     lambda: kgrec.Config(data={"split": "sideways"})):
        with pytest.raises(kgrec.ConfigError) as exc:
            raise_it()
        assert str(exc.value).startswith("data.split: 'sideways' is not one of")
        assert all(repr(name) in str(exc.value) for name in BUILT_IN)
        assert exc.value.field == "data.split"


def test_a_strategy_registered_here_splits_through_kgrec_split(small, recipe):
    s = kgrec.split(small, "every_third", seed=4)
    keys = np.unique(small.interactions.src * small.num_items + small.interactions.dst)
    train = s.train_users * small.num_items + s.train_items
    u, i = s.test.positives.nonzero()
    assert np.array_equal(np.sort(u * small.num_items + i), keys[2::3])
    assert np.array_equal(np.sort(train), np.delete(keys, np.s_[2::3]))
    assert len(s.valid) == 0 and s.strategy == "every_third" and s.seed == 4
    # the config accepts it, and split_for loads the recipe and splits it the same way
    cfg = kgrec.Config(data={"dataset": str(recipe), "split": "every_third"}, model="mf")
    again = split_for(cfg.data)
    assert np.array_equal(again.train_items, s.train_items)
    assert np.array_equal(again.train_users, s.train_users)
    # it takes none of the options: they are refused by its name
    with pytest.raises(kgrec.ConfigError, match=r"data\.shots: only the cold_item, cold_user "
                       r"and cross_domain splits take shots \(split is 'every_third'\)"):
        kgrec.split(small, "every_third", shots=2)


BAD = [
    ("cross_domain", {}, "data.target: the cross_domain split needs a target domain"),
    ("random", {"target": "sport"},
     "data.target: only the cross_domain split takes a target (split is 'random')"),
    ("cold_item", {"target_only": True},
     "data.target_only: only the cross_domain split takes target_only (split is 'cold_item')"),
    ("random", {"warm": True}, "data.warm: only the cold_item and cold_user splits hold out "
     "warm links beside the cold ones (split is 'random')"),
    ("cross_domain", {"target": "sport", "warm": True}, "data.warm: only the cold_item and "
     "cold_user splits hold out warm links beside the cold ones (split is 'cross_domain')"),
    ("temporal", {"shots": 3}, "data.shots: only the cold_item, cold_user and cross_domain "
     "splits take shots (split is 'temporal')"),
    ("cold_user", {"shots": -1}, "data.shots: -1 must be >= 0"),
    ("random", {"valid": 0.6, "test": 0.5}, "data.valid + data.test must be below 1"),
    ("random", {"test": 1.0}, "data.test: 1.0 must be in [0, 1)"),
]


@pytest.mark.parametrize(("strategy", "kw", "message"), BAD,
                         ids=[f"{s}-{'-'.join(k)}" for s, k, _ in BAD])
def test_parameter_checks_say_the_same_through_split_and_config(small, strategy, kw, message):
    raised = []
    for raise_it in (lambda: kgrec.split(small, strategy, **kw),
                     lambda: kgrec.Config(data={"split": strategy, **kw}),
                     lambda: kgrec.Config.from_dict({"data": {"split": strategy, **kw}}),
                     lambda: check_split_params(strategy, **kw)):
        with pytest.raises(kgrec.ConfigError) as exc:
            raise_it()
        raised.append(str(exc.value))
    # (a config read from a dict or file puts its source first)
    assert raised == [message, message, f"config: {message}", message]


def test_good_parameters_pass_both(small):
    for strategy, kw in [("cross_domain", {"target": "sport", "shots": 3, "target_only": True}),
                         ("cold_item", {"shots": 2, "warm": True}), ("ctr", {}),
                         ("every_third", {})]:
        assert check_split_params(strategy, **kw) is SPLITS.get(strategy)
        assert kgrec.Config(data={"split": strategy, **kw}).data.split == strategy


def test_load_source_reads_what_data_dataset_names(recipe, small):
    from kgrec.ingest import is_neo4j_uri, load_source

    g = load_source(str(recipe), cache=False)
    assert (g.num_users, g.num_items, len(g.interactions)) == (
        small.num_users, small.num_items, len(small.interactions))
    assert is_neo4j_uri("bolt://127.0.0.1:7687#ml-100k-kb4rec") and not is_neo4j_uri(recipe)
    with pytest.raises(kgrec.DatasetNotFoundError):
        load_source("no-such-dataset")
