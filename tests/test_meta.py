"""Few-shot splits, meta-episodes and adaptation: nothing held out leaks, adaptation helps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import kgrec
from kgrec.errors import ConfigError, DataFormatError
from kgrec.graph import INTERACTED, ITEM, USER, EdgeTable, NodeTable, RecGraph
from kgrec.models import HGNN, GraphInputs
from kgrec.models.adaptation import MetaLearner
from kgrec.models.base import Isolation
from kgrec.train.meta import EpisodeSampler, episode_graph, fewshot_outputs

pytestmark = pytest.mark.cost(33)  # seconds on 2 idle cores: scheduled by it

# the joint GNN (model.hgnn.ranking: joint): meta-episodes and the adversary need it
JOINT_TEXT = {"ranking": "joint", "features": ["text"]}


def _pairs(users: np.ndarray, items: np.ndarray, n_items: int) -> set[int]:
    return set((users.astype(np.int64) * n_items + items).tolist())


@pytest.fixture(scope="module")
def fewshot(lastfm):
    return kgrec.split(lastfm, "cold_user", valid=0.1, test=0.1, seed=0, shots=3)


def test_fewshot_split_keeps_k_support_links_and_holds_out_the_rest(lastfm, fewshot):
    s, n = fewshot, lastfm.num_items
    held = s.test.heldout_users
    assert held.sum() == round(0.1 * lastfm.num_users) * 2
    deg = np.bincount(s.train_users, minlength=s.num_users)
    total = deg + np.diff(s.valid.positives.indptr) + np.diff(s.test.positives.indptr)
    assert (deg[held] == np.minimum(3, total[held] - 1)).all()  # K support links each
    # (a user with a single link keeps it held out and stays cold)
    assert (s.test.cold_users == held & (total == 1)).all()
    train = _pairs(s.train_users, s.train_items, n)
    for es in (s.valid, s.test):
        u, i = es.positives.nonzero()
        assert held[u].all()  # only held-out users are evaluated
        assert not train & _pairs(u, i, n)  # no held-out link is a training link
    # shots = 0 is the plain cold-user split: same users, no training link at all
    s0 = kgrec.split(lastfm, "cold_user", valid=0.1, test=0.1, seed=0)
    assert (s0.test.heldout_users == held).all() and (s0.test.cold_users == held).all()
    with pytest.raises(ConfigError, match="only the cold_item, cold_user and cross_domain"):
        kgrec.split(lastfm, "random", shots=3)


def test_episode_sampler_draws_disjoint_support_and_query_from_training_links(lastfm):
    s = kgrec.split(lastfm, "random", seed=0)
    train = _pairs(s.train_users, s.train_items, s.num_items)
    held = _pairs(*s.valid.positives.nonzero(), s.num_items) | _pairs(
        *s.test.positives.nonzero(), s.num_items)
    for side in ("user", "item"):
        sampler = EpisodeSampler(s.train_users, s.train_items, s.num_users, s.num_items,
                                 side=side, shots=[0, 1, 3, 5], query=10,
                                 rng=np.random.default_rng(0))
        ep = sampler.sample(200)
        assert len(set(ep.nodes.tolist())) == len(ep.nodes) == 200
        assert set(ep.shots.tolist()) <= {0, 1, 3, 5} and 0 in ep.shots
        sup = _pairs(*ep.pairs("support")[1:], s.num_items)
        qry = _pairs(*ep.pairs("query")[1:], s.num_items)
        assert sup <= train and qry <= train  # training links only
        assert not sup & held and not qry & held
        assert not sup & qry  # a query link is never a support link
        assert (np.bincount(ep.support[:, 0], minlength=200) == ep.shots).all()
        assert (np.bincount(ep.query[:, 0], minlength=200) >= 1).all()


def test_episode_graph_holds_the_support_links_and_no_query_link(lastfm):
    s = kgrec.split(lastfm, "random", seed=0)
    for side in ("user", "item"):
        ep = EpisodeSampler(s.train_users, s.train_items, s.num_users, s.num_items, side=side,
                            shots=[0, 3], query=5, rng=np.random.default_rng(1)).sample(100)
        gu, gi = episode_graph(s.train_users, s.train_items, ep, s.num_users, s.num_items)
        graph = _pairs(gu, gi, s.num_items)
        assert graph <= _pairs(s.train_users, s.train_items, s.num_items)
        assert not graph & _pairs(*ep.pairs("query")[1:], s.num_items)
        assert _pairs(*ep.pairs("support")[1:], s.num_items) <= graph
        node = gu if side == "user" else gi
        deg = np.bincount(node, minlength=s.num_users if side == "user" else s.num_items)
        assert (deg[ep.nodes] == ep.shots).all()  # a task node hears exactly its K shots


def test_isolated_node_ignores_its_id_embedding(lastfm):
    s = kgrec.split(lastfm, "random", seed=0)
    cfg = kgrec.Config(model={"name": "hgnn", "dim": 8, "hgnn": JOINT_TEXT})
    model = HGNN(GraphInputs.from_split(s), cfg.model, device="cpu", progress=False).eval()
    iso = Isolation(users=torch.tensor([0, 5, 17]))
    with torch.no_grad():
        before = model(isolate=iso)[0].clone()
        model.user.weight[[0, 5, 17]] += 10.0
        torch.testing.assert_close(model(isolate=iso)[0], before)
        assert not torch.allclose(model()[0][0], before[0])  # not isolated: the id counts


def test_meta_learner_adaptation_lowers_the_support_loss():
    torch.manual_seed(0)
    learner = MetaLearner(8, steps=3, lr=0.5)
    start = torch.randn(4, 8)
    task = torch.tensor([0, 0, 1, 2])  # task 3 has no support: it must not move
    pos, neg = torch.randn(4, 8), torch.randn(4, 8)

    def support_loss(v):
        return -torch.nn.functional.logsigmoid(
            (v[task] * pos).sum(-1) - (v[task] * neg).sum(-1)).mean()

    adapted = learner.adapt(start, "user", task, pos, neg)
    assert support_loss(adapted) < support_loss(start)
    torch.testing.assert_close(adapted[3], start[3])
    # first order: the adapted vectors are differentiable w.r.t. the learned step sizes
    adapted.sum().backward()
    assert learner.log_lr.grad is not None and learner.log_lr.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def meta_rec(fewshot):
    cfg = kgrec.Config(model={"name": "hgnn", "dim": 32, "hgnn": JOINT_TEXT},
                       train={"epochs": 40, "eval_every": 10, "device": "cpu", "patience": 2},
                       meta={"mode": "meta", "tasks": 32})
    return kgrec.train(fewshot, cfg, progress=False)


def test_meta_training_runs_and_the_shots_place_held_out_users(fewshot, meta_rec):
    rec = meta_rec
    assert "meta_user" in rec.history[-1]["parts"]
    with_shots = kgrec.evaluate(rec, fewshot.test, k=[20])["recall@20"]
    # the same trained model with the held-out users' support links taken away (K = 0):
    # only the shots can tell these users apart, so without them they rank alike
    from kgrec.models.base import bipartite_adjacency
    from kgrec.train import model_from
    from kgrec.train.loop import EmbeddingScorer

    model = model_from(rec, fewshot)
    held = fewshot.test.heldout_users
    keep = ~held[fewshot.train_users]
    adj = bipartite_adjacency(fewshot.train_users[keep], fewshot.train_items[keep],
                              fewshot.num_users, fewshot.num_items)
    with torch.no_grad():
        users, items = model.eval()(isolate=Isolation(
            users=torch.from_numpy(np.flatnonzero(held)), adjacency=adj))

    without = kgrec.evaluate(EmbeddingScorer(users, items), fewshot.test, k=[20])["recall@20"]
    assert with_shots > 1.2 * without, (with_shots, without)
    t = torch.from_numpy(np.flatnonzero(held)[:2])
    torch.testing.assert_close(users[t[0]], users[t[1]])
    # the step sizes were learned
    assert not any(k.startswith("meta_learner.") for k in rec.state)  # the model's own
    lr = rec.adaptation.exp()
    assert not torch.allclose(lr, torch.full_like(lr, 0.5))


def test_fewshot_adaptation_lowers_support_loss_of_held_out_users(fewshot):
    cfg = kgrec.Config(model={"name": "hgnn", "dim": 16, "hgnn": JOINT_TEXT})
    model = HGNN(GraphInputs.from_split(fewshot), cfg.model, device="cpu", progress=False)
    held = np.flatnonzero(fewshot.test.heldout_users)
    base = fewshot_outputs(model, MetaLearner(16, steps=0), fewshot)
    adapted = fewshot_outputs(model, MetaLearner(16, steps=3, lr=0.5), fewshot)
    keep = fewshot.test.heldout_users[fewshot.train_users]
    su, si = fewshot.train_users[keep], fewshot.train_items[keep]

    def support_score(out):
        u, i = out
        return float((u[su] * i[si]).sum(-1).mean())

    assert support_score(adapted) > support_score(base)
    others = np.setdiff1d(np.arange(fewshot.num_users), held)
    torch.testing.assert_close(adapted[0][others], base[0][others])  # only held-out move


def test_meta_config_is_validated():
    with pytest.raises(ConfigError,
                       match=r"needs a model that encodes a node from content \(hgnn\)"):
        kgrec.Config(model="lightgcn", meta={"mode": "meta"})
    with pytest.raises(ConfigError, match=r"meta\.mode"):
        kgrec.Config(model="hgnn", meta={"mode": "maml"})
    with pytest.raises(ConfigError, match=r"meta\.shots"):
        kgrec.Config(model="hgnn", meta={"shots": []})


def test_add_users_builds_a_new_user_as_the_few_shot_evaluation_does(fewshot, meta_rec, tmp_path):
    """A held-out user of the few-shot split is a new user whose links are in the graph:
    rebuilt from its support items it gets exactly the model's vector (before adaptation);
    added as a brand-new user it ranks its test items about as well as the evaluation did."""
    from kgrec.recommender import Recommender
    from kgrec.train import model_from
    from kgrec.train.loop import EmbeddingScorer

    rec = meta_rec
    held = np.flatnonzero(fewshot.test.heldout_users)
    support = [fewshot.train_items[fewshot.train_users == u] for u in held]
    model = model_from(rec, fewshot)
    with torch.no_grad():
        users, _ = model(isolate=Isolation(users=torch.from_numpy(held)))
    rebuilt = torch.stack([rec.new_users.fold(s, rec.item_degree()) for s in support])
    torch.testing.assert_close(rebuilt, users[torch.from_numpy(held)], atol=1e-5, rtol=1e-4)

    rec.save(tmp_path / "rec")
    n_users, n_seen = rec.num_users, rec.seen.nnz
    new_ids = [f"new-{u}" for u in held]
    named = [[rec.item_ids[i] for i in s] for s in support]
    vecs = rec.add_users(new_ids, named)
    assert rec.num_users == n_users + len(held) and rec.seen.nnz == n_seen + sum(map(len, support))
    # the new users, in the held-out users' places, against the evaluation's own vectors
    placed = rec.user_embedding[:n_users].clone()
    placed[torch.from_numpy(held)] = vecs
    new_recall = kgrec.evaluate(EmbeddingScorer(placed, rec.item_embedding), fewshot.test,
                                k=[20])["recall@20"]
    evaluated = kgrec.evaluate(EmbeddingScorer(rec.user_embedding[:n_users],
                                               rec.item_embedding), fewshot.test,
                               k=[20])["recall@20"]
    assert abs(new_recall - evaluated) < 0.1 * evaluated, (new_recall, evaluated)
    # recommendable, and their own items are not recommended back
    top = rec.recommend([new_ids[0]], k=50)[0].items
    assert top and not set(top) & {rec.item_ids[i] for i in support[0]}
    # K = 0: the (meta-learned) starting vector, the same for every such user
    cold = rec.add_users(["k0-a", "k0-b"], [[], []])
    torch.testing.assert_close(cold[0], cold[1])
    # saved and loaded, the same users come out the same
    torch.testing.assert_close(Recommender.load(tmp_path / "rec").add_users(new_ids, named), vecs)
    # a run saved when the step sizes were among the model's weights loads the same
    t = load_file(str(tmp_path / "rec" / "model.safetensors"))
    t["state.meta_learner.log_lr"] = t.pop("adaptation.log_lr")
    save_file(t, str(tmp_path / "rec" / "model.safetensors"))
    old = Recommender.load(tmp_path / "rec")
    torch.testing.assert_close(old.adaptation, rec.adaptation)
    assert not any(k.startswith("meta_learner.") for k in old.state)
    model_from(old, fewshot)  # its state is the model's own weights
    torch.testing.assert_close(old.add_users(new_ids, named), vecs)
    assert rec.has_user(new_ids[0]) and not rec.has_user("nobody")
    assert rec.has_item(rec.item_ids[0]) and not rec.has_item("no-such-item")
    # a passer-by is ranked as the same user added is (one ranking path)
    passing = rec.recommend_new(named[0], 20)
    rec.add_users(["solo"], [named[0]])
    (solo,) = rec.recommend(["solo"], 20)
    assert (passing.items, passing.scores) == (solo.items, solo.scores)
    # bad input changes nothing
    before = (rec.num_users, rec.seen.nnz)
    with pytest.raises(kgrec.UnknownIdError, match="no-such-item"):
        rec.add_users(["x"], [["no-such-item"]])
    with pytest.raises(kgrec.UnknownIdError, match="already present"):
        rec.add_users([new_ids[0]], [[]])
    assert (rec.num_users, rec.seen.nnz) == before


def test_add_users_needs_a_propagation_model(lastfm):
    s = kgrec.split(lastfm, "random", seed=0)
    cfg = {"epochs": 1, "eval_every": 1, "device": "cpu"}
    mf = kgrec.train(s, kgrec.Config(model={"name": "mf", "dim": 8}, train=cfg), progress=False)
    with pytest.raises(ConfigError, match="cannot place users"):
        mf.add_users(["u"], [[mf.item_ids[0]]])
    lgcn = kgrec.train(s, kgrec.Config(model={"name": "lightgcn", "dim": 8}, train=cfg),
                       progress=False)
    with pytest.raises(ConfigError, match="no starting vector"):
        lgcn.add_users(["nothing-yet"], [[]])  # LightGCN has nothing to place them by
    (v,) = lgcn.add_users(["u"], [[lgcn.item_ids[0], lgcn.item_ids[1]]])
    # LightGCN: zero start, the two items' layer sums over sqrt(2 (deg + 1))
    deg = np.diff(lgcn.seen.tocsc().indptr)[:2]  # (the new user's links count already)
    expect = sum(lgcn.new_users.fold_in.items[i] / np.sqrt(2 * deg[i]) for i in range(2))
    torch.testing.assert_close(v, expect)


def test_add_users_reads_a_profile_as_training_does(ml100k, fewshot, meta_rec, tmp_path):
    """ml-100k's users have an age, a gender and an occupation, which hgnn fuses into their
    input: a held-out user rebuilt from its support items and its profile gets exactly the
    model's vector, and the profile is what sets it apart from a user without one."""
    from kgrec.recommender import Recommender
    from kgrec.train import model_from

    s = kgrec.split(ml100k, "cold_user", valid=0.1, test=0.1, seed=0, shots=3)
    cfg = kgrec.Config(model={"name": "hgnn", "dim": 16, "hgnn": {"ranking": "joint",
                              "features": ["categorical", "numeric"], "use_kg": False}},
                       train={"epochs": 2, "eval_every": 2, "device": "cpu"},
                       meta={"mode": "finetune"})  # held-out users encoded as few-shot users
    rec = kgrec.train(s, cfg, progress=False)
    held = np.flatnonzero(s.test.heldout_users)
    with torch.no_grad():
        users, _ = model_from(rec, s)(isolate=Isolation(users=torch.from_numpy(held)))
    attrs = ml100k.users.attrs
    profiles = [{"age": int(attrs["age"][u]), "gender": str(attrs["gender"][u]),
                 "occupation": str(attrs["occupation"][u]), "text": str(attrs["text"][u])}
                for u in held]  # text too: the training users had it, this model reads none
    support = [[rec.item_ids[i] for i in s.train_items[s.train_users == u]] for u in held]
    new_ids = [f"new-{u}" for u in held]
    # rebuilt in the graph the held-out users are in (their support links counted already)
    rebuilt = torch.stack([rec.new_users.fold(rec.item_index(its), rec.item_degree(), st)
                           for its, st in zip(support, rec.new_users.starts(new_ids, profiles),
                                              strict=True)])
    torch.testing.assert_close(rebuilt, users[torch.from_numpy(held)], atol=1e-5, rtol=1e-4)
    rec.save(tmp_path / "rec")
    vecs = rec.add_users(new_ids, support, profiles=profiles)
    # without the profile, the same items give another vector; with it, saved and loaded,
    # the same one
    plain = Recommender.load(tmp_path / "rec").add_users(new_ids, support)
    assert not torch.allclose(plain, vecs, atol=1e-4)
    loaded = Recommender.load(tmp_path / "rec")
    torch.testing.assert_close(loaded.add_users(new_ids, support, profiles=profiles), vecs)
    # a profile alone (K = 0) places a user (a partial one: the rest is missing), where
    # this model, which never saw a user without profile, has nothing for one without
    (alone,) = loaded.add_users(["p0"], [[]], profiles=[{"age": 30, "occupation": "writer"}])
    assert alone.abs().sum() > 0
    with pytest.raises(ConfigError, match="no starting vector"):
        loaded.add_users(["p1"], [[]])
    # bad profiles name the user, the field and the value, and add nothing
    before = (loaded.num_users, loaded.seen.nnz)
    for bad, match in [({"occupation": "astronaut"}, r"'x'.*occupation.*'astronaut'"),
                       ({"age": "old"}, r"'x'.*age.*numbers"),
                       ({"shoe_size": 44}, r"'x'.*unknown attribute 'shoe_size'")]:
        with pytest.raises(DataFormatError, match=match):
            loaded.add_users(["x"], [support[0]], profiles=[bad])
    assert (loaded.num_users, loaded.seen.nnz) == before
    # the recipe's template gives a new user the text a training user with that profile had
    u1 = ml100k.users.lookup["1"]
    one = {k: attrs[k][u1].item() for k in ("age", "gender", "occupation")}
    text = rec.new_users.profile_text(one)
    assert text == attrs["text"][u1] == "A 24 year old technician, gender M."
    assert rec.new_users.profile_text({"age": 24}) == ""  # the template needs every field
    # Last.FM's users have no attributes: that model reads no profile
    with pytest.raises(ConfigError, match="reads no user profiles"):
        meta_rec.add_users(["y"], [[meta_rec.item_ids[0]]], profiles=[{"age": 3}])


def _profiled_graph() -> RecGraph:
    """80 users with an age, an occupation, a text about them and a 4-d photo vector (none
    for every fifth user), 40 films, 8 links each."""
    rng = np.random.default_rng(0)
    ages = rng.integers(16, 70, 80)
    jobs = np.array(["artist", "doctor", "student", "writer"])[rng.integers(0, 4, 80)]
    photo = rng.normal(size=(80, 4)).astype(np.float32)
    photo[::5] = np.nan
    users = NodeTable(np.array([f"u{k}" for k in range(80)]), {
        "age": ages, "occupation": jobs, "photo": photo,
        "text": np.array([f"A {a} year old {j}." for a, j in zip(ages, jobs, strict=True)])})
    items = NodeTable(np.array([f"i{k}" for k in range(40)]),
                      {"name": np.array([f"Film number {k}" for k in range(40)])})
    dst = np.concatenate([rng.choice(40, 8, replace=False) for _ in range(80)])
    inter = EdgeTable(np.repeat(np.arange(80), 8), dst)
    return RecGraph({USER: users, ITEM: items}, {INTERACTED: inter}, "profiled")


def test_add_users_encodes_a_profile_text_and_vector_as_training_does():
    """Users whose text and precomputed vector are inputs: a new user's given text goes
    through the text encoder, its vector through the trained projection, and both through the
    trained fusion as a training user's do; a user without text in the same call is fused
    from the rest of its profile; a bad vector is refused, naming the user."""
    from kgrec.train import model_from

    g = _profiled_graph()
    s = kgrec.split(g, "cold_user", valid=0.1, test=0.1, seed=0, shots=3)
    cfg = kgrec.Config(model={"name": "hgnn", "dim": 8,
                              "hgnn": {"ranking": "joint", "use_kg": False}},
                       train={"epochs": 2, "eval_every": 2, "device": "cpu"},
                       meta={"mode": "finetune"})
    rec = kgrec.train(s, cfg, progress=False)
    assert rec.user_profile is not None and rec.user_profile.text
    assert rec.user_profile.vectors == "photo"
    held = np.flatnonzero(s.test.heldout_users)
    with torch.no_grad():
        users, _ = model_from(rec, s)(isolate=Isolation(users=torch.from_numpy(held)))
    a = g.users.attrs
    full = [{"age": int(a["age"][u]), "occupation": str(a["occupation"][u]),
             "text": str(a["text"][u])} for u in held]
    for p, u in zip(full, held, strict=True):  # as a caller would: no vector where none
        if not np.isnan(a["photo"][u]).any():
            p["photo"] = a["photo"][u].tolist()
    assert 0 < sum("photo" in p for p in full) < len(full)
    ids = [f"n{u}" for u in held]
    starts = rec.new_users.starts(ids, full)
    rebuilt = torch.stack([rec.new_users.fold(s.train_items[s.train_users == u],
                                              rec.item_degree(), st)
                           for u, st in zip(held, starts, strict=True)])
    torch.testing.assert_close(rebuilt, users[torch.from_numpy(held)], atol=1e-5, rtol=1e-4)
    with_photo = next(k for k, p in enumerate(full) if "photo" in p)
    no_photo = dict(full[with_photo])
    del no_photo["photo"]
    assert not torch.allclose(rec.new_users.starts(ids[:1], [no_photo]), starts[with_photo])
    as_text = {**full[with_photo], "photo": ",".join(map(str, full[with_photo]["photo"]))}
    torch.testing.assert_close(rec.new_users.starts(ids[:1], [as_text])[0], starts[with_photo])
    for bad, why in (([1.0, 2.0], "expected a vector of 4 numbers"),
                     ("blue", "expected a vector of 4 numbers"),
                     ([0.1, float("nan"), 0.2, 0.3], "NaN or infinite value at position 1")):
        with pytest.raises(DataFormatError, match=f"profile of 'n{held[0]}': photo: {why}"):
            rec.add_users([f"n{held[0]}"], [[]], profiles=[{**full[0], "photo": bad}])
    assert rec.num_users == g.num_users  # nothing was added
    # no text for the first user (no recipe names a template for this graph): its start
    # changes, the others' stay, whichever users share the call
    mixed = [{k: v for k, v in full[0].items() if k != "text"}, *full[1:]]
    assert rec.new_users.profile_text(mixed[0]) == ""
    mixed_starts = rec.new_users.starts(ids, mixed)
    torch.testing.assert_close(mixed_starts[1:], starts[1:])
    assert not torch.allclose(mixed_starts[0], starts[0])
    torch.testing.assert_close(rec.new_users.starts(ids[:1], mixed[:1]), mixed_starts[:1])
