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
