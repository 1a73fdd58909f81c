"""SimGCL and XSimGCL: the noise, the contrast, the objective's term, and training."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

import kgrec
from kgrec.errors import ConfigError
from kgrec.evaluate import PopularityScorer
from kgrec.models import MODELS, GraphInputs, LightGCN, SimGCL, XSimGCL, build_model
from kgrec.models.capabilities import Contrastive, Propagates, has
from kgrec.models.simgcl import info_nce, perturb
from kgrec.train.objectives import ContrastiveTerm, L2Term, RankingTerm, build_objective
from tests.conftest import planted_ratings, write_kgcn

pytestmark = pytest.mark.cost(17)  # seconds on 2 idle cores: scheduled by it


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    # many small tastes: a batch's users then rarely share one, so the contrast's pushing
    # apart of the batch's users does not fight the ranking as it does with 6 big tastes
    return write_kgcn(tmp_path_factory.mktemp("planted"),
                      planted_ratings(n_users=600, n_items=600, tastes=30, per_user=12))


@pytest.fixture(scope="module")
def split(recipe):
    return kgrec.split(kgrec.load_recipe(recipe), "random", valid=0.1, test=0.1, seed=0)


def config(model: str, options: dict | None = None, **train) -> kgrec.Config:
    spec = {"name": model, model: options} if options else model
    return kgrec.Config(model=spec, train={"epochs": 15, "eval_every": 5, "patience": 50,
                                           "device": "cpu", "batch_size": 512, **train})


# ------------------------------------------------------------- the parts


def test_each_perturbation_row_has_norm_eps_and_keeps_the_sign():
    torch.manual_seed(0)
    x = torch.randn(50, 16)
    for eps in (0.1, 0.2, 1.5):
        noise = perturb(x, eps)
        torch.testing.assert_close(noise.norm(dim=-1), torch.full((50,), eps))
        # the noise stays in x's orthant: it never flips a coordinate's sign
        assert ((noise * x) >= 0).all() and (torch.sign(x + noise) == torch.sign(x)).all()
    assert not perturb(x, 0.0).any()
    assert not torch.equal(perturb(x, 0.1), perturb(x, 0.1))  # fresh noise each call


def test_info_nce_is_the_formula():
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8], [-1.0, 2.0]])
    b = torch.tensor([[2.0, 0.1], [0.0, 1.0], [1.0, 1.0]])
    t = 0.3

    def cos(u, v):
        return float(u @ v) / (float(u.norm()) * float(v.norm()))

    direct = sum(-math.log(math.exp(cos(a[i], b[i]) / t)
                           / sum(math.exp(cos(a[i], b[j]) / t) for j in range(3)))
                 for i in range(3)) / 3
    assert float(info_nce(a, b, t)) == pytest.approx(direct, rel=1e-6)
    # scaling a view's rows changes nothing (cosine)
    assert float(info_nce(5 * a, b, t)) == pytest.approx(direct, rel=1e-6)


def test_options_defaults_and_checks():
    s = kgrec.Config(model="simgcl").model.options
    x = kgrec.Config(model="xsimgcl").model.options
    assert (s.eps, s.cl_weight, s.temperature, s.input_layer) == (0.1, 0.5, 0.2, False)
    assert (x.eps, x.cl_weight, x.temperature, x.cl_layer) == (0.2, 0.2, 0.2, 1)
    assert kgrec.Config(model={"name": "xsimgcl", "xsimgcl": {"cl_layer": 2}}).model \
        .options.cl_layer == 2
    with pytest.raises(ConfigError, match=r"model\.xsimgcl\.cl_layer"):
        kgrec.Config(model={"name": "xsimgcl", "layers": 2, "xsimgcl": {"cl_layer": 3}}).check()
    with pytest.raises(ConfigError, match=r"model\.simgcl\.eps"):
        kgrec.Config(model={"name": "simgcl", "simgcl": {"eps": -1}}).check()
    with pytest.raises(ConfigError, match=r"model\.layers"):
        kgrec.Config(model={"name": "simgcl", "layers": 0}).check()


def test_capabilities_and_the_objective_term(split):
    inputs = GraphInputs.from_split(split)
    for name in ("simgcl", "xsimgcl"):
        cls = MODELS.get(name)
        assert has(cls, Contrastive) and has(cls, Propagates)
        model = build_model(kgrec.ModelConfig(name=name), inputs)
        assert isinstance(model, Contrastive) and isinstance(model, LightGCN)
        terms = build_objective(model, kgrec.Config(model=name), split, None, None).terms
        assert [type(t) for t in terms] == [RankingTerm, ContrastiveTerm, L2Term]
    light = build_model(kgrec.ModelConfig(name="lightgcn"), inputs)
    assert not has(type(light), Contrastive)
    terms = build_objective(light, kgrec.Config(model="lightgcn"), split, None, None).terms
    assert [type(t) for t in terms] == [RankingTerm, L2Term]


@pytest.mark.parametrize("cls", [SimGCL, XSimGCL])
def test_no_noise_at_evaluation_and_fresh_noise_in_training(split, cls):
    torch.manual_seed(0)
    model = cls(GraphInputs.from_split(split), 16, 2)
    model.eval()
    a, b = model(), model()
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    enc = model.encode_batch()  # outside training: the clean pass, no views
    assert enc.private is None
    assert all(torch.equal(x, y) for x, y in zip(enc.propagated, a, strict=True))
    model.train()
    one, two = model.encode_batch(), model.encode_batch()
    assert not torch.equal(one.private.first, two.private.first)
    assert not torch.equal(one.private.first, one.private.second)
    if cls is SimGCL:  # it ranks with the clean pass
        assert all(torch.equal(x, y) for x, y in zip(one.propagated, a, strict=True))
    else:  # XSimGCL ranks with its noisy pass, whose final vectors are the first view
        assert not torch.equal(one.propagated[0], a[0])
        torch.testing.assert_close(torch.cat(one.propagated), one.private.first)


def test_the_final_vector_leaves_layer_0_out_and_the_trace_folds_a_user_in(split):
    """Without layer 0 a user's vector is the mean of its L propagated layers; the trace is
    scaled so that the recommender's fold-in (the trace's sum / (L + 1), the LightGCN mean)
    gives it."""
    torch.manual_seed(0)
    model = SimGCL(GraphInputs.from_split(split), 8, 2).eval()
    x = model.embedding.weight
    a1 = torch.sparse.mm(model.adj, x)
    a2 = torch.sparse.mm(model.adj, a1)
    trace: list[torch.Tensor] = []
    users, items = model(trace=trace)
    U = model.num_users
    torch.testing.assert_close(torch.cat([users, items]), (a1 + a2) / 2)
    folded = torch.stack(trace).sum(0) / (len(trace) + 1)  # kgrec.recommender's fold-in
    user_rows = model.adj.to_dense()[:U, U:]  # 1 / sqrt(deg(u) deg(i))
    torch.testing.assert_close(user_rows @ folded, users, atol=1e-6, rtol=1e-5)
    with_input = SimGCL(GraphInputs.from_split(split), 8, 2, input_layer=True).eval()
    with_input.embedding.weight.data.copy_(x)
    torch.testing.assert_close(torch.cat(with_input()), (x + a1 + a2) / 3)


def test_simgcl_without_noise_or_contrast_trains_exactly_as_lightgcn(split):
    opts = {"eps": 0.0, "cl_weight": 0.0, "input_layer": True}
    a = kgrec.train(split, config("simgcl", opts, epochs=3, eval_every=3), progress=False)
    b = kgrec.train(split, config("lightgcn", epochs=3, eval_every=3), progress=False)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert a.history[-1]["parts"]["cl"] == 0.0
    for k, v in b.state.items():
        assert torch.equal(a.state[k], v), k


# ------------------------------------------------------------- training


@pytest.mark.parametrize("loss", ["bpr", "sampled_softmax"])
@pytest.mark.parametrize("model", ["simgcl", "xsimgcl"])
def test_trains_logs_its_contrast_and_beats_popularity(split, model, loss):
    # lr 0.02: the contrast's gradients (on cosine, of small vectors) dominate the first
    # few hundred steps at the default lr, and this budget is 195 steps
    rec = kgrec.train(split, config(model, loss=loss, negatives=64, lr=0.02), progress=False)
    h = rec.history
    assert all("cl" in e["parts"] and loss in e["parts"] for e in h)
    assert h[-1]["loss"] < h[0]["loss"]
    assert h[-1]["parts"]["cl"] < h[0]["parts"]["cl"]
    valid = max(e["valid"]["recall@20"] for e in h if "valid" in e)
    pop = kgrec.evaluate(PopularityScorer.from_split(split), split.valid, k=20)["recall@20"]
    assert valid > pop + 0.2, (valid, pop)
    # the saved ranking is the clean pass: evaluating it again gives the best epoch's figure
    best = max((e for e in h if "valid" in e), key=lambda e: e["valid"]["ndcg@20"])
    assert kgrec.evaluate(rec, split.valid, k=20)["ndcg@20"] == pytest.approx(
        best["valid"]["ndcg@20"], abs=1e-6)


def test_kgrec_train_model_xsimgcl_through_the_cli(recipe, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "kgrec.cli", "train", "--dataset", str(recipe),
                           "--model", "xsimgcl", "--epochs", "2", "--eval-every", "1",
                           "--out", str(out), "--device", "cpu", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = kgrec.Recommender.load(out)
    assert rec.config.model.name == "xsimgcl" and rec.config.model.options.cl_layer == 1
    assert all("cl" in e["parts"] for e in rec.history)


def test_a_resumed_run_draws_the_same_noise(split, tmp_path):
    """The noise comes from torch's generator, whose state the checkpoint keeps: a run
    stopped after epoch 2 and resumed ends where the uninterrupted run ends."""
    full = kgrec.train(split, config("simgcl", epochs=4, eval_every=2), progress=False)
    out = tmp_path / "resume"
    kgrec.train(split, config("simgcl", epochs=2, eval_every=2), out_dir=out, progress=False)
    resumed = kgrec.train(split, config("simgcl", epochs=4, eval_every=2), out_dir=out,
                          resume=True, progress=False)
    assert [h["parts"] for h in resumed.history] == [h["parts"] for h in full.history]
    for k, v in full.state.items():
        assert torch.equal(resumed.state[k], v), k
