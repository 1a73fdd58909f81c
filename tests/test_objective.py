"""The ranking losses: BPR and sampled softmax, and how a softmax-trained model ranks."""

import math

import pytest
import torch
import torch.nn.functional as F

import kgrec
from kgrec.errors import ConfigError, KgrecDeprecationWarning
from kgrec.models.losses import BPR, LOSSES, SampledSoftmax, bpr_loss

pytestmark = pytest.mark.cost(11)  # seconds on 2 idle cores: scheduled by it


def _by_hand(u, pos, neg, tau, pos_ids, neg_ids):
    """Row by row: -log softmax of the own positive among the candidates that are not the
    same item as that positive (the positive itself kept)."""
    cand = torch.cat([pos, neg])
    ids = torch.cat([pos_ids, neg_ids]).tolist()
    total = 0.0
    for b in range(len(u)):
        scores = []
        for c in range(len(cand)):
            if c != b and ids[c] == int(pos_ids[b]):
                continue
            scores.append(float(F.cosine_similarity(u[b], cand[c], dim=0)) / tau)
        target = float(F.cosine_similarity(u[b], pos[b], dim=0)) / tau
        total += -(target - math.log(sum(math.exp(s) for s in scores)))
    return total / len(u)


def test_softmax_matches_the_definition_and_skips_duplicate_positives():
    g = torch.Generator().manual_seed(0)
    u, pos, neg = (torch.randn(6, 4, generator=g) for _ in range(3))
    pos_ids = torch.tensor([3, 7, 3, 1, 9, 7])  # rows 0/2 and 1/5 share their positive
    neg_ids = torch.tensor([5, 3, 8, 2, 0, 4])  # row 1's negative is rows 0/2's positive
    pos[2], pos[5] = pos[0], pos[1]
    neg[1] = pos[0]
    got = SampledSoftmax(0.3)(u, pos, neg, pos_ids, neg_ids)
    assert float(got) == pytest.approx(_by_hand(u, pos, neg, 0.3, pos_ids, neg_ids), rel=1e-5)
    # without ids the duplicates count as negatives: a larger loss
    assert float(SampledSoftmax(0.3)(u, pos, neg)) > float(got)


def test_bpr_is_the_default_and_unchanged():
    g = torch.Generator().manual_seed(1)
    u, pos, neg = (torch.randn(5, 3, generator=g) for _ in range(3))
    assert LOSSES.names()[0] == "bpr" and kgrec.Config().train.loss == "bpr"
    assert torch.equal(BPR()(u, pos, neg), bpr_loss(u, pos, neg))
    # the old name still works, with a warning
    with pytest.warns(KgrecDeprecationWarning, match="LOSSES"):
        from kgrec.models.base import Objective
    assert torch.equal(Objective("softmax", 0.3)(u, pos, neg), SampledSoftmax(0.3)(u, pos, neg))


def test_softmax_is_blind_to_norms_bpr_is_not():
    g = torch.Generator().manual_seed(2)
    u, pos, neg = (torch.randn(8, 4, generator=g) for _ in range(3))
    soft = LOSSES.get("softmax")(0.5)
    assert torch.allclose(soft(u, pos, neg), soft(3 * u, 5 * pos, 0.2 * neg))
    assert not torch.allclose(bpr_loss(u, pos, neg), bpr_loss(u, 5 * pos, neg))


@pytest.mark.parametrize("train, field", [({"loss": "hinge"}, "train.loss"),
                                          ({"temperature": 0.0}, "train.temperature")])
def test_bad_loss_config_names_the_field(train, field):
    with pytest.raises(ConfigError, match=field):
        kgrec.Config(train=train).check()


def test_softmax_training_learns(lastfm):
    split = kgrec.split(lastfm, "random", valid=0.1, test=0.1, seed=0)
    cfg = kgrec.Config(model="lightgcn", train={"epochs": 5, "eval_every": 5, "lr": 0.01,
                                                "device": "cpu", "loss": "softmax"})
    rec = kgrec.train(split, cfg, progress=False)
    m = kgrec.evaluate(rec, split.test, k=20)
    assert m["recall@20"] > 0.15, m  # chance is about 0.005
    # a uniform guess among the 2 x 2048 candidates costs log(4095) = 8.3 (plus L2); BPR's
    # first epoch is below log 2 = 0.69, so this also says which loss ran
    losses = [h["loss"] for h in rec.history]
    assert losses[0] > 7.0 and losses[-1] < losses[0] - 0.3, losses
