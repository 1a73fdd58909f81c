"""Adversarial feature perturbation: inside the ball, in the loss-increasing direction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kgrec
from kgrec.errors import ConfigError
from kgrec.models import KGGNN, GraphInputs
from kgrec.models.losses import bpr_loss
from kgrec.train.adversarial import perturbation

pytestmark = pytest.mark.cost(7)  # seconds on 2 idle cores: scheduled by it

# the joint GNN (model.hgnn.ranking: joint): meta-episodes and the adversary need it
JOINT_TEXT = {"ranking": "joint", "features": ["text"]}


@pytest.fixture(scope="module")
def setup(lastfm):
    s = kgrec.split(lastfm, "random", seed=0)
    torch.manual_seed(0)
    model = KGGNN(GraphInputs.from_split(s), dim=16, layers=2, kg_dropout=0.0)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(s.train_users), 512, replace=False)
    users = torch.from_numpy(s.train_users[idx])
    pos = torch.from_numpy(s.train_items[idx])
    neg = torch.from_numpy(rng.integers(0, s.num_items, 512))

    def rank(u, i):
        return bpr_loss(u[users], i[pos], i[neg])

    return model, rank


@pytest.mark.parametrize("steps", [1, 3])
def test_perturbation_stays_in_the_ball_and_raises_the_loss(setup, steps):
    model, rank = setup
    u0, n0 = model.embed()
    clean = rank(*model.encode(u0, n0))
    du, dn = perturbation(model.encode, rank, (u0, n0), eps=0.1, steps=steps,
                          clean=clean if steps == 1 else None)
    assert du.shape == u0.shape and dn.shape == n0.shape
    assert float(du.norm(dim=1).max()) <= 0.1 + 1e-5 and float(dn.norm(dim=1).max()) <= 0.1 + 1e-5
    worse = float(rank(*model.encode(u0 + du, n0 + dn)).detach())
    base = float(clean.detach())
    assert worse > base + 1e-3
    # a random perturbation of the same size hurts far less than the adversarial one
    ru, rn = torch.randn_like(u0), torch.randn_like(n0)
    ru = 0.1 * ru / ru.norm(dim=1, keepdim=True)
    rn = 0.1 * rn / rn.norm(dim=1, keepdim=True)
    rand = float(rank(*model.encode(u0 + ru, n0 + rn)).detach())
    assert worse - base > 5 * abs(rand - base)


def test_adversarial_training_runs_for_kggnn_and_hgnn(lastfm):
    s = kgrec.split(lastfm, "random", seed=0)
    for model in ({"name": "kggnn", "dim": 16}, {"name": "hgnn", "dim": 16,
                                                  "hgnn": JOINT_TEXT}):
        cfg = kgrec.Config(model=model, train={"epochs": 2, "eval_every": 2, "device": "cpu",
                                               "adv_eps": 0.1, "adv_steps": 2})
        rec = kgrec.train(s, cfg, progress=False)
        assert rec.history[-1]["parts"]["adv"] > 0
    with pytest.raises(ConfigError,
                       match=r"needs a model with layer-0 inputs to perturb \(kggnn or hgnn\)"):
        kgrec.Config(model="lightgcn", train={"adv_eps": 0.1})
    with pytest.raises(ConfigError, match="adv_eps"):
        kgrec.Config(model="hgnn", train={"adv_eps": -1.0})


def test_test_time_attack_rebuilds_the_model_and_lowers_test_recall(lastfm, tmp_path, capsys):
    from kgrec.cli import main
    from kgrec.train import model_from
    from kgrec.train.adversarial import attacked_outputs
    from kgrec.train.loop import EmbeddingScorer as Scores

    s = kgrec.split(lastfm, "random", seed=0)
    cfg = kgrec.Config(data={"dataset": "lastfm-hetrec-kg"},
                       model={"name": "kggnn", "dim": 16},
                       train={"epochs": 10, "eval_every": 5, "device": "cpu"})
    rec = kgrec.train(s, cfg, out_dir=tmp_path / "run", progress=False)
    model = model_from(rec, s)
    with torch.no_grad():
        users, items = model()
    torch.testing.assert_close(users, rec.user_embedding)  # the very model that was saved
    torch.testing.assert_close(items, rec.item_embedding)

    clean = kgrec.evaluate(rec, s.test, k=[20])["recall@20"]
    same = kgrec.evaluate(Scores(*attacked_outputs(model, s, 0.0)), s.test, k=[20])
    assert same["recall@20"] == pytest.approx(clean)
    attacked = kgrec.evaluate(Scores(*attacked_outputs(model, s, 0.5)), s.test, k=[20])
    assert attacked["recall@20"] < 0.9 * clean, (attacked["recall@20"], clean)
    assert main(["evaluate", str(tmp_path / "run"), "--perturb", "0.5", "--k", "20"]) == 0
    assert "inputs attacked" in capsys.readouterr().out
