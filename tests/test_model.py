"""The generalising model (issue 5): text features, fusion, tasks, and the HGNN itself."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import kgrec
from kgrec.errors import ConfigError
from kgrec.features import Modalities, TextEncoder, build_features, node_texts, readable
from kgrec.graph import ENTITY, INTERACTED, ITEM, USER, EdgeTable, NodeTable, RecGraph
from kgrec.models import HGNN, GraphInputs
from kgrec.models.fusion import Fusion
from kgrec.models.tasks import auto_tasks, resolve_tasks

pytestmark = pytest.mark.cost(81)  # seconds on 2 idle cores: scheduled by it


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(device="cpu")


def test_text_encoder_is_semantic_normalised_and_cached(encoder):
    texts = ["a loud rock band with electric guitars", "heavy metal group", "",
             "a recipe for lemon cake"]
    vec = encoder.encode(texts, progress=False)
    assert vec.shape == (4, 384) and vec.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vec[[0, 1, 3]], axis=1), 1.0, atol=1e-5)
    assert not vec[2].any()  # no text, no vector: not a fake embedding of ""
    assert vec[0] @ vec[1] > vec[0] @ vec[3] + 0.2
    # a fresh encoder reads the cache and never loads the model
    again = TextEncoder(device="cpu")
    np.testing.assert_array_equal(again.encode(texts, progress=False), vec)
    assert again._model is None


def test_text_encoder_needs_its_model_only_for_a_text_it_has_not_cached(encoder, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("KGREC_HOME", str(tmp_path))
    monkeypatch.setenv("KGREC_TEXT_CACHE", str(tmp_path / "text-cache"))
    missing = TextEncoder(str(tmp_path / "no-such-model"), device="cpu")  # no error yet
    with pytest.raises(ConfigError, match="cannot load text model"):
        missing.encode(["a text never seen"], progress=False)
    # a run whose texts are all cached never looks for the model (nor imports transformers)
    cached = TextEncoder(device="cpu")
    cached.encode(["a cached text"], progress=False)
    again = TextEncoder(device="cpu")
    again.encode(["a cached text"], progress=False)
    assert again.path is None and again._model is None


def test_processes_sharing_a_text_cache_lose_no_embedding(tmp_path, monkeypatch):
    """Two processes encode overlapping texts into one cache at once: afterwards every text
    of both is cached (a fresh encoder reads them all without loading the model)."""
    import subprocess
    import sys

    script = ("import sys; from kgrec.features import TextEncoder; "
              "TextEncoder(device='cpu').encode(sys.argv[1:], progress=False)")
    sets = [[f"shared text {i}" for i in range(20)] + [f"only {who} {i}" for i in range(20)]
            for who in ("a", "b")]
    env = dict(os.environ, KGREC_TEXT_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", script, *texts], env=env) for texts in sets]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    monkeypatch.setenv("KGREC_TEXT_CACHE", str(tmp_path / "cache"))
    fresh = TextEncoder(device="cpu")
    vec = fresh.encode(sets[0] + sets[1], progress=False)
    assert fresh._model is None and np.isclose(np.linalg.norm(vec, axis=1), 1.0).all()


def test_a_cache_in_the_older_two_file_layout_is_read(tmp_path, monkeypatch):
    from kgrec.features.text import _key

    monkeypatch.setenv("KGREC_TEXT_CACHE", str(tmp_path))
    enc = TextEncoder(device="cpu")
    enc.cache_dir.mkdir(parents=True)
    np.save(enc.cache_dir / "keys.npy", np.asarray([_key("old text")], dtype="<U40"))
    np.save(enc.cache_dir / "vectors.npy", np.ones((1, 384), dtype=np.float32))
    np.testing.assert_array_equal(enc.encode(["old text"], progress=False), np.ones((1, 384)))
    assert enc._model is None


def test_readable_relation_names():
    assert readable("film.film.actor") == "film film actor"
    assert readable("http://example.org/ns#hasGenre") == "has genre"
    assert readable("music_artist-origin") == "music artist origin"


def _tiny(two_domains: bool = False) -> RecGraph:
    items = NodeTable(np.array(["i0", "i1", "i2", "i3"]), {
        "name": np.array(["Queen", "Muse", "Abba", ""]),
        "domain": np.array(["music", "music", "book", "book"] if two_domains else ["music"] * 4),
        "year": np.array(["1970", "", "1972", "1999"])})
    users = NodeTable(np.array(["u0", "u1", "u2"]), {
        "gender": np.array(["F", "M", ""]), "age": np.array([20.0, np.nan, 40.0])})
    ents = NodeTable(np.array(["e0", "e1"]), {"name": np.array(["", "Pop"])})
    inter = EdgeTable(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 2, 1, 3, 0, 1]),
                      {"weight": np.array([5.0, 2.0, 4.0, 1.0, 3.0, 5.0]),
                       "behavior": np.array(["rate"] * 6)})
    kg = {(ITEM, "music.artist.origin", ENTITY): EdgeTable(np.array([0, 1]), np.array([0, 0])),
          (ITEM, "genre", ENTITY): EdgeTable(np.array([2]), np.array([1]))}
    return RecGraph({USER: users, ITEM: items, ENTITY: ents}, {INTERACTED: inter, **kg}, "tiny")


def test_node_texts_describe_unnamed_entities_by_their_items():
    t = node_texts(_tiny())
    assert t[ITEM] == ["Queen", "Muse", "Abba", ""]
    assert t[ENTITY] == ["music artist origin of: Queen, Muse", "Pop"]
    assert t[USER] == ["", "", ""]


def test_build_features_modalities_and_masks():
    f = build_features(_tiny(), modalities=("categorical", "numeric"), progress=False)
    u = f.users
    assert u.text is None and len(u.categorical) == 1  # gender; the empty value is code 0
    assert u.categorical[0].tolist()[2] == 0 and u.cardinalities == [3]
    assert u.numeric.shape == (3, 1) and u.numeric_mask[:, 0].tolist() == [True, False, True]
    assert f.items.numeric_mask[:, 0].tolist() == [True, False, True, True]  # year
    assert not torch.isnan(f.items.numeric).any()


def test_fusion_masks_missing_modalities():
    torch.manual_seed(0)
    m = Modalities(3, text=torch.randn(3, 8), text_mask=torch.tensor([True, False, False]),
                   categorical=[torch.tensor([1, 2, 0])], cardinalities=[3])
    fusion = Fusion(m, 4)
    out = fusion()
    # node 1 has only a category: its output is exactly that category's embedding
    torch.testing.assert_close(out[1], fusion.cat_emb[0].weight[2])
    # node 2 has nothing: the learned 'unknown' vector, not a zero-filled text projection
    torch.testing.assert_close(out[2], fusion.unknown)
    # node 0 mixes both with weights summing to one
    a, b = fusion.text_proj(m.text[0]), fusion.cat_emb[0].weight[1]
    w = torch.linalg.lstsq(torch.stack([a, b], 1), out[0].unsqueeze(1)).solution.squeeze()
    assert float(w.detach().sum()) == pytest.approx(1.0, abs=1e-4) and (w > 0).all()
    mean = Fusion(m, 4, mode="mean")
    mean.load_state_dict(fusion.state_dict())
    torch.testing.assert_close(mean()[0], (a + b) / 2)


def test_tasks_auto_and_masks():
    g = _tiny(two_domains=True)
    assert auto_tasks(g, use_kg=True) == ["all", "weight>=4", "domain=book", "domain=music",
                                          "kg"]
    users, items = np.array([0, 1, 2, 2]), np.array([2, 1, 0, 1])
    tasks = {t.name: t.mask for t in resolve_tasks(["auto"], g, users, items)}
    assert tasks["weight>=4"].tolist() == [False, True, False, True]  # ratings 2, 4, 3, 5
    assert tasks["domain=book"].tolist() == [True, False, False, False]
    assert tasks["kg"] is None and tasks["all"].all()
    assert [t.name for t in resolve_tasks(["weight>=5"], g, users, items)] == ["all",
                                                                                "weight>=5"]
    with pytest.raises(ConfigError, match="is not all, kg"):
        resolve_tasks(["likes"], g, users, items)
    with pytest.raises(ConfigError, match="selects no training pair"):
        resolve_tasks(["weight>=9"], g, users, items)


def test_ml100k_like_task_is_rating_at_least_4(ml100k):
    s = kgrec.split(ml100k, "random", seed=0)
    tasks = {t.name: t.mask for t in resolve_tasks(["auto"], ml100k, s.train_users,
                                                   s.train_items)}
    assert list(tasks) == ["all", "weight>=4", "kg"]
    inter = ml100k.interactions
    rating = {(u, i): w for u, i, w in zip(inter.src.tolist(), inter.dst.tolist(),
                                           inter.attrs["weight"].tolist(), strict=True)}
    expect = [rating[(u, i)] >= 4 for u, i in zip(s.train_users.tolist(),
                                                  s.train_items.tolist(), strict=True)]
    assert tasks["weight>=4"].tolist() == expect


def test_model_config_validation():
    with pytest.raises(ConfigError, match=r"model\.hgnn\.features"):
        kgrec.Config(model={"name": "hgnn", "hgnn": {"features": ["audio"]}})
    with pytest.raises(ConfigError, match=r"model\.hgnn\.fusion"):
        kgrec.Config(model={"name": "hgnn", "hgnn": {"fusion": "concat"}})
    s = kgrec.split(_tiny(), "random", valid=0.0, test=0.0, seed=0)
    bad = kgrec.Config(model={"name": "hgnn", "hgnn": {"features": [],
                                                          "task_weights": ["nope=1"]}})
    with pytest.raises(ConfigError, match="no task 'nope'"):
        HGNN(GraphInputs.from_split(s), bad.model, device="cpu", progress=False)


@pytest.fixture(scope="module")
def cold(lastfm):
    return kgrec.split(lastfm, "cold_item", valid=0.1, test=0.1, seed=0)


def _cold_recall(rec, split) -> float:
    assert split.test.cold_items[split.test.positives.indices].all()  # every test item cold
    # the item cold-start protocol: new items ranked among the new items
    return kgrec.evaluate(rec, split.test, k=[20], candidates=split.test.cold_items)[
        "recall@20"]


def test_hgnn_ranks_cold_items_from_content_and_ids_alone_cannot(cold):
    """On a cold-item split every test item is unseen: an id-only model is at chance level,
    the joint GNN with text+KG is far above it (the aligned default: tests/test_aligned.py)."""
    train = {"epochs": 20, "eval_every": 10, "device": "cpu", "patience": 2}
    content = kgrec.train(cold, kgrec.Config(model={"name": "hgnn", "dim": 32,
                                                    "hgnn": {"ranking": "joint"}}, train=train),
                          progress=False)
    ids = kgrec.train(cold, kgrec.Config(model={"name": "hgnn", "dim": 32, "hgnn": {
                                                "ranking": "joint", "features": [],
                                                "use_kg": False}}, train=train),
                      progress=False)
    chance = 20 / cold.test.cold_items.sum()
    r_content, r_ids = _cold_recall(content, cold), _cold_recall(ids, cold)
    assert r_content > 4 * chance and r_content > 3 * r_ids, (r_content, r_ids, chance)
    assert content.history[-1]["parts"].keys() == {"all", "kg"}


def test_hgnn_cold_item_ignores_its_id_embedding(cold):
    cfg = kgrec.Config(model={"name": "hgnn", "dim": 16})
    model = HGNN(GraphInputs.from_split(cold), cfg.model, device="cpu", progress=False).eval()
    c = int(np.flatnonzero(cold.test.cold_items)[0])
    with torch.no_grad():
        before = model()[1][c].clone()
        model.node.weight[c] += 10.0
        torch.testing.assert_close(model()[1][c], before)
        w = int(np.flatnonzero(~cold.test.cold_items)[0])
        before_w = model()[1][w].clone()
        model.node.weight[w] += 10.0
        assert not torch.allclose(model()[1][w], before_w)


def test_hgnn_kg_items_cold_sends_kg_messages_to_cold_items_only(cold):
    """Under ``kg_items: cold`` the KG reaches only items without an id: changing every
    relation vector moves the cold items and leaves warm items and users where they were;
    under the default it moves them all."""
    warm = torch.from_numpy(~cold.test.cold_items)
    moved = {}
    for mode in ("all", "cold"):
        cfg = kgrec.Config(model={"name": "hgnn", "dim": 16,
                                  "hgnn": {"ranking": "joint", "kg_items": mode}})
        torch.manual_seed(0)
        model = HGNN(GraphInputs.from_split(cold), cfg.model, device="cpu", progress=False).eval()
        with torch.no_grad():
            users, items = model()
            model.relation.weight.mul_(3.0)
            users2, items2 = model()
        moved[mode] = [bool((a - b).abs().amax(-1).gt(1e-6).any())
                       for a, b in ((users, users2), (items[warm], items2[warm]),
                                    (items[~warm], items2[~warm]))]
    assert moved == {"all": [True, True, True], "cold": [False, False, True]}
    with pytest.raises(ConfigError, match=r"model\.hgnn\.kg_items"):
        kgrec.Config(model={"name": "hgnn", "hgnn": {"kg_items": "warm"}})


def test_hgnn_multitask_on_ml100k_learns_and_weights_tasks(ml100k):
    s = kgrec.split(ml100k, "random", seed=0)
    cfg = kgrec.Config(model={"name": "hgnn", "dim": 32,
                                 "hgnn": {"ranking": "joint",
                                          "features": ["categorical", "numeric"]}},
                       train={"epochs": 3, "eval_every": 3, "device": "cpu",
                              "batch_size": 4096, "lr": 0.02})
    rec = kgrec.train(s, cfg, progress=False)
    last = rec.history[-1]
    assert last["parts"].keys() == {"all", "weight>=4", "kg"}
    pop = np.bincount(s.train_items, minlength=s.num_items).astype(np.float32)

    class Popularity:
        def score_users(self, users):
            return torch.from_numpy(np.tile(pop, (len(users), 1)))

    popular = kgrec.evaluate(Popularity(), s.valid, k=[20])["recall@20"]
    assert last["valid"]["recall@20"] > 1.2 * popular, (last["valid"]["recall@20"], popular)
    fixed = kgrec.Config(model={"name": "hgnn", "dim": 8, "hgnn": {
        "features": ["categorical"], "task_weighting": "fixed", "task_weights": ["kg=0.5"]}})
    m = HGNN(GraphInputs.from_split(s), fixed.model, device="cpu", progress=False)
    assert m.task_weights() == {"all": 1.0, "weight>=4": 1.0, "kg": 0.5}
    assert m.modalities["users"] == ["categorical"]  # the ablation switch holds


def test_add_items_places_new_items_exactly_as_the_model_encodes_unseen_ones(cold, lastfm):
    """A cold item's embedding inside the model (no KG here, so content is all it has)
    equals what ``add_items`` computes from its text alone, and it becomes recommendable."""
    cfg = kgrec.Config(model={"name": "hgnn", "dim": 16, "hgnn": {"use_kg": False}},
                       train={"epochs": 2, "eval_every": 2, "device": "cpu"})
    rec = kgrec.train(cold, cfg, progress=False)
    c = np.flatnonzero(cold.test.cold_items)[:3]
    texts = [str(t) for t in lastfm.items.attrs["text"][c]]
    emb = rec.add_items(["new-1", "new-2", "new-3"], texts, domain="music")
    torch.testing.assert_close(emb, rec.item_embedding[torch.from_numpy(c)])
    assert rec.num_items == lastfm.num_items + 3
    # the new item ranks right beside its twin (same text, same score) for every user
    top = rec.recommend([rec.user_ids[0]], k=rec.num_items)[0].items
    assert abs(top.index("new-1") - top.index(str(lastfm.items.ids[c[0]]))) == 1
    with pytest.raises(kgrec.UnknownIdError, match="already present"):
        rec.add_items(["new-1"], ["x"])
    ids_only = kgrec.train(cold, kgrec.Config(model={"name": "hgnn", "hgnn": {"features": []}},
                                              train=cfg.train), progress=False)
    with pytest.raises(ConfigError, match="trained with text"):
        ids_only.add_items(["n"], ["some text"])


def test_content_that_cannot_tell_nodes_apart_is_not_used(data_dir):
    """DisenCDR items carry only their domain (2 values for 34,500 items): hgnn places them by
    id; with the threshold at 0 the domain is their content, and every item unseen in
    training gets the same input."""
    from kgrec.models import build_model

    g = kgrec.load_dataset("amazon-cdr-phone-sport", data_dir=data_dir)
    feats = build_features(g, modalities=("categorical",), progress=False)
    assert feats.items.distinct_rows() == 2 and feats.users.distinct_rows() == 0
    s = kgrec.split(g, "cold_item", seed=0)
    m = build_model(kgrec.Config(model={"name": "hgnn", "dim": 8}).model, GraphInputs.from_split(s),
                    device="cpu", progress=False)
    assert m.modalities["items"] == []
    kept = build_model(kgrec.Config(model={"name": "hgnn", "dim": 8,
                                           "hgnn": {"ranking": "joint",
                                                    "content_min_distinct": 0.0}}).model,
                       GraphInputs.from_split(s), device="cpu", progress=False)
    assert kept.modalities["items"] == ["categorical"]
    kept.eval()
    with torch.no_grad():
        _, nodes = kept.embed()
    cold = torch.from_numpy(s.test.cold_items & (g.items.attrs["domain"] == "sport"))
    assert len(torch.unique(nodes[:g.num_items][cold], dim=0)) == 1
