import numpy as np
import pytest

import kgrec
from kgrec.errors import ConfigError


def test_to_hetero_data_shapes(ml100k):
    data = ml100k.to_hetero_data()
    assert data["User"].num_nodes == 943 and data["Item"].num_nodes == 1682
    ei = data["User", "INTERACTED", "Item"].edge_index
    assert tuple(ei.shape) == (2, 100000)
    assert data["User", "INTERACTED", "Item"].weight.shape == (100000,)
    kg_edges = sum(data[et].edge_index.shape[1] for et in data.edge_types
                   if et[0] != "User")
    assert kg_edges == 91631
    data.validate()


def test_to_networkx(lastfm):
    sub = lastfm.subgraph_interactions(np.arange(len(lastfm.interactions)) < 200)
    g = sub.to_networkx()
    n_nodes = sum(len(t) for t in lastfm.nodes.values())
    assert g.number_of_nodes() == n_nodes
    assert g.number_of_edges() == 200 + 21173 + 15518  # interactions, negatives, KG
    assert g.nodes[("Item", "2")]["name"] == "Diary of Dreams"


def test_config_shorthand_dotted_access_and_errors(tmp_path):
    cfg = kgrec.Config(model="lightgcn")
    assert cfg.model.name == "lightgcn" and cfg.model.dim == 64
    cfg.set("train.lr", "0.01").set("model.dim", 32)
    assert cfg.get("train.lr") == 0.01 and cfg.model.dim == 32
    path = tmp_path / "c.yaml"
    cfg.to_yaml(path)
    assert kgrec.Config.load(path) == cfg
    with pytest.raises(ConfigError, match=r"unknown config field 'model\.dimm'"):
        cfg.set("model.dimm", 3)
    with pytest.raises(ConfigError, match=r"model\.name: 'gpt' is not one of"):
        kgrec.Config(model="gpt")
    with pytest.raises(ConfigError, match=r"unknown field.*train\.learning_rate"):
        kgrec.Config.from_dict({"train": {"learning_rate": 1}})
    with pytest.raises(ConfigError, match=r"train\.epochs: expected an integer"):
        kgrec.Config.from_dict({"train": {"epochs": "many"}})
    with pytest.raises(ConfigError, match=r"data\.valid"):
        kgrec.Config(data={"valid": 1.5})


def test_a_model_s_options_live_under_its_name_and_the_old_names_still_work(tmp_path):
    from kgrec.errors import KgrecDeprecationWarning

    cfg = kgrec.Config(model={"name": "hgnn", "dim": 16,
                              "hgnn": {"ranking": "joint", "kg_items": "cold"}})
    assert cfg.model.options.kg_items == "cold" and cfg.model.hgnn.id_dropout == 0.1
    assert cfg.to_dict()["model"]["hgnn"]["kg_items"] == "cold"
    assert "kg_items" not in cfg.to_dict()["model"]
    cfg.set("model.hgnn.id_dropout", 0.2)
    assert cfg.get("model.hgnn.id_dropout") == 0.2
    assert "model.hgnn.id_dropout" in kgrec.Config.fields()
    # another model: its own options (none for lightgcn), and hgnn's are refused by name
    cfg.set("model.name", "lightgcn")
    assert cfg.model.options is None and cfg.to_dict()["model"] == {
        "name": "lightgcn", "dim": 16, "layers": 2}
    with pytest.raises(ConfigError, match=r"it is an option of hgnn \(model\.hgnn\.kg_items"):
        cfg.set("model.kg_items", "cold")
    # the old flat layout: a saved run's config, --set; each old name warns once
    old = tmp_path / "old.yaml"
    old.write_text("model:\n  name: hgnn\n  kg_items: cold\n  id_dropout: 0.0\n")
    with pytest.warns(KgrecDeprecationWarning) as said:
        loaded = kgrec.Config.load(old)
    assert [str(w.message) for w in said] == [
        "model.kg_items is deprecated: use model.hgnn.kg_items",
        "model.id_dropout is deprecated: use model.hgnn.id_dropout"]
    assert loaded.model.options.kg_items == "cold" and loaded.model.options.id_dropout == 0.0
    with pytest.warns(KgrecDeprecationWarning, match="use model.hgnn.fusion"):
        loaded.set("model.fusion", "mean")
    assert loaded.model.options.fusion == "mean"
    # in Python the options are cfg.model.options (the flat attributes are gone)
    with pytest.raises(AttributeError, match=r"cfg\.model\.options\.fusion"):
        _ = loaded.model.fusion
    # a bad option is named with its new path and its line
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: hgnn\n  hgnn:\n    kg_items: warm\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*model\.hgnn\.kg_items: 'warm'"):
        kgrec.Config.load(bad)
