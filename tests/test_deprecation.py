"""The old names still work, each with one warning naming the new one; old configs and saved
runs migrate to today's layout (kgrec.errors.deprecated / moved_names,
kgrec.config.migrate)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import torch

import kgrec
from kgrec.config.migrate import migrate_config, migrate_field, migrate_run
from kgrec.errors import ConfigError, KgrecDeprecationWarning, deprecated, moved_names

KGREC = Path(kgrec.__file__).resolve().parent


def _one_warning(record, new: str) -> str:
    said = [str(w.message) for w in record if issubclass(w.category, KgrecDeprecationWarning)]
    assert len(said) == 1, said
    assert said[0].endswith(f"is deprecated: use {new}"), said[0]
    return said[0]


def test_the_helper_warns_once_naming_the_new_name():
    def old_thing() -> None:
        deprecated("old.thing", "new.thing")

    with pytest.warns(KgrecDeprecationWarning) as said:
        old_thing()
    assert _one_warning(said, "new.thing") == "old.thing is deprecated: use new.thing"
    assert said[0].filename == __file__  # the old name's caller, not the helper's line


def test_moved_names_builds_a_module_getattr():
    getattr_ = moved_names({"old": ("kgrec.graph", "RecGraph"), "kept": ("kgrec.graph", "X")},
                           "some.module", values={"kept": 3})
    with pytest.warns(KgrecDeprecationWarning) as said:
        assert getattr_("old") is kgrec.RecGraph
    assert _one_warning(said, "kgrec.graph.RecGraph").startswith("some.module.old ")
    with pytest.warns(KgrecDeprecationWarning) as said:
        assert getattr_("kept") == 3  # its value, not the new name's (never imported)
    _one_warning(said, "kgrec.graph.X")
    with pytest.raises(AttributeError, match=r"some\.module.*'missing'"):
        getattr_("missing")
    # the owner defaults to the calling module
    inferred = moved_names({"x": ("kgrec.graph", "RecGraph")})
    with pytest.warns(KgrecDeprecationWarning, match=rf"^{__name__}\.x is deprecated"):
        inferred("x")


OLD_DATA = {"TEST": "kgrec.data.folds", "TRAIN": "kgrec.data.folds",
            "VALID": "kgrec.data.folds", "CTRRows": "kgrec.data.folds",
            "EvalSet": "kgrec.data.folds", "Pairs": "kgrec.data.folds",
            "Split": "kgrec.data.folds", "fingerprint": "kgrec.data.folds",
            "made_from_training": "kgrec.data.folds", "SPLITS": "kgrec.data.strategies",
            "check_split_params": "kgrec.data.strategies", "ctr_split": "kgrec.data.strategies",
            "split": "kgrec.data.strategies", "split_for": "kgrec.data.prepare"}


@pytest.mark.parametrize("name", sorted(OLD_DATA))
def test_the_old_split_module_s_names_warn_and_load(name):
    new = OLD_DATA[name]
    with pytest.warns(KgrecDeprecationWarning) as said:
        old = getattr(importlib.import_module("kgrec.data.split"), name)
    assert old is getattr(importlib.import_module(new), name)
    assert _one_warning(said, f"{new}.{name}").startswith(f"kgrec.data.split.{name} ")


MOVED_MODULES = {  # a module that moved: (old module, name) -> the module it lives in now
    ("kgrec.serve", "Recommender"): "kgrec.recommender",
    ("kgrec.serve", "train"): "kgrec.train.api",
    ("kgrec.serve", "UserFoldIn"): "kgrec.recommender",
    ("kgrec.serve.recommender", "Recommender"): "kgrec.recommender",
    ("kgrec.serve.recommender", "FORMAT"): "kgrec.recommender",
    ("kgrec.serve.training", "recommender_from"): "kgrec.train.api",
    ("kgrec.serve.newusers", "NewUserEncoder"): "kgrec.recommender.newusers",
    ("kgrec.serve.explain", "Explainer"): "kgrec.recommender.explain",
    ("kgrec.serve.explain", "seen_items"): "kgrec.recommender.catalogue",
    ("kgrec.serve.ann", "AnnIndex"): "kgrec.recommender.ann",
    ("kgrec.train.sampling", "NegativeSampler"): "kgrec.data.sampling",
}


@pytest.mark.parametrize(("old", "name"), sorted(MOVED_MODULES))
def test_a_moved_modules_names_warn_and_load(old, name):
    new = MOVED_MODULES[(old, name)]
    with pytest.warns(KgrecDeprecationWarning) as said:
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)
    assert _one_warning(said, f"{new}.{name}").startswith(f"{old}.{name} ")


def test_from_the_old_module_import_works_and_kgrec_data_split_stays_the_function():
    import kgrec.data

    with pytest.warns(KgrecDeprecationWarning) as said:
        from kgrec.data.split import Split
    assert Split is kgrec.data.Split
    _one_warning(said, "kgrec.data.folds.Split")
    from kgrec.data import split

    assert callable(split) and split is kgrec.data.strategies.split
    assert kgrec.split is split


@pytest.mark.parametrize("name, new, values", [
    ("SPLITS", "kgrec.data.SPLITS", "kgrec.data"),
    ("MODELS", "kgrec.models.MODELS", "kgrec.models"),
    ("LOSSES", "kgrec.models.losses.LOSSES", "kgrec.models.losses"),
    ("MODALITIES", "kgrec.models.options.MODALITIES", None),
])
def test_the_config_s_old_tuples_name_the_registries(name, new, values):
    import kgrec.config

    with pytest.warns(KgrecDeprecationWarning) as said:
        old = getattr(kgrec.config, name)
    _one_warning(said, new)
    assert isinstance(old, tuple)
    if values is not None:  # the built-ins come first in each registry
        registry = getattr(importlib.import_module(values), name)
        assert registry.names()[:len(old)] == list(old)
    else:
        from kgrec.models.options import MODALITIES

        assert old == MODALITIES


def test_the_old_loss_names_of_models_base():
    from kgrec.models import losses

    g = torch.Generator().manual_seed(0)
    u, pos, neg = (torch.randn(4, 3, generator=g) for _ in range(3))
    for name in ("bpr_loss", "softmax_loss"):
        with pytest.warns(KgrecDeprecationWarning) as said:
            fn = getattr(importlib.import_module("kgrec.models.base"), name)
        assert fn is getattr(losses, name)
        _one_warning(said, f"kgrec.models.losses.{name}")
    with pytest.warns(KgrecDeprecationWarning) as said:
        from kgrec.models.base import Objective
    _one_warning(said, "kgrec.models.losses.LOSSES")
    assert torch.equal(Objective("softmax", 0.3)(u, pos, neg),
                       losses.SampledSoftmax(0.3)(u, pos, neg))


def test_the_cli_s_old_report_name(monkeypatch):
    from kgrec.cli import test_report

    evaluate = importlib.import_module("kgrec.evaluate")  # kgrec.evaluate is the function
    monkeypatch.setattr(evaluate, "evaluation_report", lambda *a: ("report", a))
    with pytest.warns(KgrecDeprecationWarning) as said:
        got = test_report("rec", "split", [20])
    _one_warning(said, "kgrec.evaluate.evaluation_report")
    assert got == ("report", ("rec", "split", [20], "test", False, ()))


def test_the_cli_s_old_module_names():
    import kgrec.cli

    with pytest.warns(KgrecDeprecationWarning) as said:
        assert kgrec.cli.QUICKSTART_MODEL == importlib.import_module(
            "kgrec.cli.train").QUICKSTART_MODEL
    _one_warning(said, "kgrec.cli.train.QUICKSTART_MODEL")


def test_graph_inputs_is_gone_from_the_trainer():
    train = importlib.import_module("kgrec.train")  # kgrec.train is the function
    assert not hasattr(importlib.import_module("kgrec.train.loop"), "graph_inputs")
    assert "graph_inputs" not in train.__all__ and not hasattr(train, "graph_inputs")


# ----------------------------------------------------------------- configs and saved runs
FLAT = {"model": {"name": "hgnn", "dim": 16, "kg_items": "cold", "id_dropout": 0.0},
        "train": {"epochs": 3}}


def test_migrate_config_moves_the_flat_options_under_the_model_s_name():
    import kgrec.models  # registers the models' options

    with pytest.warns(KgrecDeprecationWarning) as said:
        new = migrate_config(FLAT)
    assert [str(w.message) for w in said] == [
        "model.kg_items is deprecated: use model.hgnn.kg_items",
        "model.id_dropout is deprecated: use model.hgnn.id_dropout"]
    # the flat layout predates the aligned ranking: hgnn's LEGACY fills it
    assert new == {"model": {"name": "hgnn", "dim": 16,
                             "hgnn": {"kg_items": "cold", "id_dropout": 0.0,
                                      "ranking": "joint"}},
                   "train": {"epochs": 3}}
    assert FLAT["model"]["kg_items"] == "cold"  # the input is left alone
    assert migrate_config(new) == new  # today's layout: unchanged, no warning
    cfg = kgrec.Config.from_dict(new)
    assert cfg.model.options.kg_items == "cold" and cfg.model.options.ranking == "joint"
    # an unknown field is left for the config to name
    assert migrate_config({"model": {"name": "hgnn", "nope": 1}})["model"]["nope"] == 1
    with pytest.raises(ConfigError, match=r"unknown config field 'model\.nope'"):
        kgrec.Config.from_dict({"model": {"name": "hgnn", "nope": 1}})


def test_config_written_in_python_with_a_flat_option_migrates_too():
    with pytest.warns(KgrecDeprecationWarning) as said:
        cfg = kgrec.Config(model={"name": "kggnn", "kg_dropout": 0.25})
    _one_warning(said, "model.kggnn.kg_dropout")
    assert cfg.model.options.kg_dropout == 0.25


def test_migrate_field_for_set_and_search_spaces():
    import kgrec.models

    assert migrate_field("train.lr") == "train.lr"
    assert migrate_field("model.hgnn.kg_items") == "model.hgnn.kg_items"
    with pytest.warns(KgrecDeprecationWarning) as said:
        assert migrate_field("model.kg_items") == "model.hgnn.kg_items"  # hgnn's alone
    _one_warning(said, "model.hgnn.kg_items")
    with pytest.warns(KgrecDeprecationWarning, match="use model.kggnn.kg_dropout"):
        assert migrate_field("model.kg_dropout", "kggnn") == "model.kggnn.kg_dropout"
    with pytest.raises(ConfigError, match=r"kggnn and hgnn: write model\.kggnn\.kg_dropout"):
        migrate_field("model.kg_dropout")
    cfg = kgrec.Config(model="kggnn")
    with pytest.warns(KgrecDeprecationWarning, match="use model.kggnn.kg_dropout"):
        cfg.set("model.kg_dropout", 0.3)
    with pytest.warns(KgrecDeprecationWarning, match="use model.kggnn.kg_dropout"):
        assert cfg.get("model.kg_dropout") == 0.3
    assert cfg.get("model.kggnn.kg_dropout") == 0.3
    assert "model.kg_dropout" not in kgrec.Config.fields()  # only today's names are listed


def test_a_search_space_with_an_old_field_name():
    from kgrec.tune import SearchSpace

    with pytest.warns(KgrecDeprecationWarning) as said:
        space = SearchSpace.from_dict({"model.kg_dropout": {"float": [0.0, 0.5]}},
                                      model="kggnn")
    _one_warning(said, "model.kggnn.kg_dropout")
    assert [p.path for p in space.params] == ["model.kggnn.kg_dropout"]
    with pytest.raises(ConfigError, match=r"model\.kg_dropout is an option of kggnn and hgnn"):
        SearchSpace.from_dict({"model.kg_dropout": {"float": [0.0, 0.5]}})


def test_migrate_run_on_an_old_saved_document():
    import kgrec.models

    # saved with the options under the model's name, but before `ranking` existed
    doc = {"format": 1, "user_ids": ["u"],
           "config": {"model": {"name": "hgnn", "dim": 8, "hgnn": {"kg_items": "cold"}}}}
    new = migrate_run(doc)
    assert new["config"]["model"]["hgnn"] == {"kg_items": "cold", "ranking": "joint"}
    assert new["user_ids"] == ["u"] and "ranking" not in doc["config"]["model"]["hgnn"]
    # saved in the flat layout: each old name warns, and the ranking is the joint one
    flat = {"format": 1, "config": FLAT}
    with pytest.warns(KgrecDeprecationWarning) as said:
        new = migrate_run(flat)
    assert len(said) == 2
    assert new["config"]["model"]["hgnn"]["ranking"] == "joint"
    assert kgrec.Config.from_dict(new["config"]).model.options.kg_items == "cold"
    # today's document: unchanged (an hgnn that says its ranking keeps it)
    today = {"format": 1, "config": kgrec.Config(model="hgnn").to_dict()}
    assert migrate_run(today) == today
    assert today["config"]["model"]["hgnn"]["ranking"] == "aligned"


def test_migrate_run_moves_the_tensors_older_versions_saved_elsewhere():
    """The adaptation's step sizes, once saved among the model's weights, move to the
    recommender's own key; today's tensors are left as they are."""
    doc = {"format": 1, "config": {"model": {"name": "hgnn", "hgnn": {"ranking": "joint"}}}}
    tensors = {"user_embedding": 1, "state.meta_learner.log_lr": 2, "state.user.weight": 3}
    _, moved = migrate_run(doc, tensors)
    assert moved == {"user_embedding": 1, "adaptation.log_lr": 2, "state.user.weight": 3}
    assert migrate_run(doc, dict(moved))[1] == moved
    from kgrec.config.migrate import MOVED_TENSORS
    from kgrec.recommender.persistence import ADAPTATION

    assert set(MOVED_TENSORS.values()) == {ADAPTATION}  # where the recommender reads them


# ----------------------------------------------------------------- no module uses a shim
# the deprecated modules and names, and where they are defined now
SHIMS = {"kgrec.data.split": None,  # the whole module
         "kgrec.config": {"SPLITS", "MODELS", "LOSSES", "MODALITIES"},
         "kgrec.models.base": {"bpr_loss", "softmax_loss", "Objective"},
         "kgrec.cli": {"test_report", "QUICKSTART_MODEL"},
         **{old: None for old, _ in MOVED_MODULES if old != "kgrec.serve"},
         "kgrec.serve": {name for old, name in MOVED_MODULES if old == "kgrec.serve"}}


def test_no_kgrec_module_imports_through_a_shim():
    bad = []
    for path in sorted(KGREC.rglob("*.py")):
        rel = str(path.relative_to(KGREC.parent))
        if rel == "kgrec/data/__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.ImportFrom) and node.module in SHIMS:
                names = SHIMS[node.module]
                hit = [a.name for a in node.names if names is None or a.name in names]
                if hit:
                    bad.append(f"{rel}:{node.lineno}: {node.module} {hit}")
    assert not bad, "imports through a deprecated name:\n" + "\n".join(bad)


def test_a_plugin_that_places_items_without_places_items_still_does_with_a_warning():
    from kgrec.models.capabilities import can_place_items

    class Old:
        @classmethod
        def items_from_text(cls, cfg, state, texts, device="cpu"):
            return torch.zeros(len(texts), 2)

    with pytest.warns(KgrecDeprecationWarning) as said:
        assert can_place_items(Old, None, {})
    _one_warning(said, "a classmethod places_items(cfg, state) -> bool beside items_from_text")

    class New(Old):
        @classmethod
        def places_items(cls, cfg, state):
            return "w" in state

    assert not can_place_items(New, None, {}) and can_place_items(New, None, {"w": 1})
