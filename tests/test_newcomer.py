"""A newcomer's model, defined in this file alone, lives in the house like the built-ins: it
registers, trains, evaluates, saves, loads and serves through the public API and the CLI
without touching any file in ``kgrec/``.

The model is item popularity learned with BPR (one score per item, every user alike): the
smallest thing that has parameters to train. This file is also the plug-in the CLI imports
(``kgrec --plugin tests/test_newcomer.py ...``), so it imports nothing from the tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import kgrec
from kgrec.models import MODELS, GraphInputs, RecModel
from kgrec.models.capabilities import Attackable, has

pytestmark = pytest.mark.cost(34)  # seconds on 2 idle cores: scheduled by it


@MODELS.register("itempop", replace=True)
class ItemPopularity(RecModel):
    """Item popularity learned with BPR: one score per item, the same for every user."""

    def __init__(self, inputs: GraphInputs) -> None:
        super().__init__()
        self.num_users = inputs.num_users
        self.score = nn.Parameter(torch.zeros(inputs.num_items, 1))

    @classmethod
    def from_config(cls, cfg, inputs, **kw):
        return cls(inputs)

    def forward(self, trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        return self.score.new_ones(self.num_users, 1), self.score

    def ego(self, users: Tensor, items: Tensor) -> list[Tensor]:
        return [self.score[items]]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    from tests.conftest import planted_ratings, write_kgcn

    return write_kgcn(tmp_path_factory.mktemp("planted"), planted_ratings())


def test_it_registers_and_declares_what_it_cannot_do():
    assert "itempop" in MODELS and MODELS.summary("itempop").startswith("Item popularity")
    kgrec.Config(model="itempop")  # a known name now
    assert not has(ItemPopularity, Attackable)
    with pytest.raises(kgrec.ConfigError, match=r"train\.adv_eps: .*layer-0 inputs.*itempop"):
        kgrec.Config(model="itempop", train={"adv_eps": 0.1})
    with pytest.raises(kgrec.ConfigError, match=r"meta\.mode"):
        kgrec.Config(model="itempop", meta={"mode": "meta"})


def test_it_trains_evaluates_saves_loads_and_serves(planted, tmp_path):
    graph = kgrec.load_recipe(planted)
    split = kgrec.split(graph, "random", seed=0)
    cfg = kgrec.Config(model="itempop", train={"epochs": 6, "eval_every": 2, "lr": 0.05,
                                               "device": "cpu"})
    rec = kgrec.train(split, cfg, out_dir=tmp_path / "run", progress=False)
    # it learned popularity: its scores follow the items' training degrees
    degree = np.bincount(split.train_items, minlength=split.num_items)
    scores = rec.item_embedding[:, 0].numpy()
    assert np.corrcoef(scores, degree)[0, 1] > 0.5
    metrics = kgrec.evaluate(rec, split.test, k=[20])
    assert 0.0 < metrics["recall@20"] < 1.0
    loaded = kgrec.Recommender.load(tmp_path / "run")
    users = [graph.users.ids[0], graph.users.ids[1]]
    assert [r.items for r in loaded.recommend(users, k=5)] == \
        [r.items for r in rec.recommend(users, k=5)]
    assert loaded.name == "itempop"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    plugin = () if env else ("--plugin", __file__)
    return subprocess.run([sys.executable, "-m", "kgrec.cli", *plugin, *args],
                          capture_output=True, text=True, env=env or dict(os.environ),
                          timeout=300)


def test_the_cli_trains_evaluates_and_recommends_with_it(planted, tmp_path):
    run = tmp_path / "run"
    p = _cli("train", "--dataset", str(planted), "--model", "itempop", "--epochs", "4",
             "--quiet", "--set", "train.lr=0.05", "--set", "train.eval_every=2", "--device", "cpu",
             "--out", str(run))
    assert p.returncode == 0, p.stderr
    help_text = _cli("train", "--help").stdout  # the registries' help lists it, built-ins too
    assert re.search(r"itempop +Item popularity learned with BPR", help_text), help_text
    assert "hgnn" in help_text
    # $KGREC_PLUGINS does what --plugin does
    p = _cli("evaluate", str(run), "--k", "20", "--json", str(tmp_path / "m.json"),
             env={**os.environ, "KGREC_PLUGINS": __file__})
    assert p.returncode == 0, p.stderr
    groups = json.loads((tmp_path / "m.json").read_text())["groups"]
    assert 0.0 < groups["test"]["metrics"]["recall@20"] < 1.0
    p = _cli("recommend", str(run), "--user", "0", "--k", "3")
    assert p.returncode == 0, p.stderr
    # without the plug-in the saved run names a model nobody registered: one line, status 2
    p = subprocess.run([sys.executable, "-m", "kgrec.cli", "recommend", str(run), "--user",
                        "0"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "'itempop' is not one of" in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
