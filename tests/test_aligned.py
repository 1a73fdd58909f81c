"""hgnn's default ranking (issue 21): ids where there is behaviour, aligned content where there
is none (:mod:`kgrec.models.aligned`, :mod:`kgrec.train.align`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import kgrec
from kgrec.errors import ConfigError
from kgrec.evaluate import RandomScorer
from kgrec.models import HGNN
from kgrec.models.aligned import AlignedHGNN
from kgrec.train import model_from
from kgrec.train.align import GATE_K, OFFSETS

pytestmark = pytest.mark.cost(40)


@pytest.fixture(scope="module")
def cold(lastfm):
    return kgrec.split(lastfm, "cold_item", seed=0, warm=True)


def _cfg(model: dict, epochs: int = 6, **train) -> kgrec.Config:
    return kgrec.Config(model={"dim": 16, **model},
                        train={"epochs": epochs, "eval_every": 2, "device": "cpu", "seed": 3,
                               "lr": 5e-3, **train})


def test_a_warm_item_ranks_exactly_as_the_id_model_ranks_it(cold):
    """Stage 1 is the id model alone: with the gate off, the warm items' and the users'
    vectors are LightGCN's, bit for bit, under the same seed (warm accuracy cannot fall below
    the id model's); an item without training links gets the student's vector instead."""
    ids = kgrec.train(cold, _cfg({"name": "lightgcn"}), progress=False)
    cfg = _cfg({"name": "hgnn", "hgnn": {"gate": "off", "align_epochs": 1}})
    rec = kgrec.train(cold, cfg, progress=False)
    warm = torch.from_numpy(~cold.test.cold_items)
    d = ids.item_embedding.shape[1]
    assert rec.item_embedding.shape[1] == d + 1
    torch.testing.assert_close(rec.item_embedding[warm, :d], ids.item_embedding[warm],
                               rtol=0, atol=0)
    torch.testing.assert_close(rec.user_embedding[:, :d], ids.user_embedding, rtol=0, atol=0)
    assert (rec.user_embedding[:, d] == 1).all() and (rec.item_embedding[:, d] == 0).all()
    # the teacher's training history is LightGCN's
    assert [h.get("valid") for h in rec.history] == [h.get("valid") for h in ids.history]
    model = model_from(rec, cold)
    student = model.student().detach()
    coldi = torch.from_numpy(cold.test.cold_items)
    torch.testing.assert_close(rec.item_embedding[coldi, :d], student[coldi])


TASTES = ["a loud rock band with electric guitars", "a jazz trio with saxophone and piano",
          "a string quartet playing baroque music", "a rapper with heavy beats",
          "a folk singer with an acoustic guitar", "a techno DJ playing club music"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A planted graph whose items' names say their taste group (users pick mostly from their
    own group): content can place an item no one has linked to yet."""
    from tests.conftest import planted_ratings, write_kgcn

    names = "id\tname\n" + "".join(f"{i}\t{TASTES[i % 6]}, act {i}\n" for i in range(300))
    recipe = write_kgcn(tmp_path_factory.mktemp("aligned") / "planted",
                        planted_ratings(n_users=300), names=names)
    return kgrec.split(kgrec.load_recipe(recipe), "cold_item", seed=0, warm=True)


def test_the_student_places_new_items_and_the_gate_is_chosen_on_validation(planted, tmp_path):
    """The student, trained against the frozen teacher, ranks the held-out items far above
    chance among the new items; the gate's k and the new items' offset come from the grid,
    chosen by validation NDCG@20, are saved with the run and rebuild the same vectors; a
    held-out item added from its text alone gets the vector (so the rank) evaluation gave it."""
    split = planted
    cfg = _cfg({"name": "hgnn", "hgnn": {"align_epochs": 10}}, epochs=20, batch_size=512)
    rec = kgrec.train(split, cfg, out_dir=tmp_path / "run", progress=False)
    align = rec.history[-1]["align"]
    gate = align["gate"]
    assert gate["gate_k"] in GATE_K and gate["cold_offset"] in OFFSETS
    assert gate["ndcg@20"] == max(t["ndcg@20"] for t in gate["tried"])
    assert align["student"]["epochs"] >= 1 and align["student"]["score_scale"] > 0
    coldm = split.test.cold_items
    student = kgrec.evaluate(rec, split.test, k=[20], candidates=coldm)["recall@20"]
    chance = kgrec.evaluate(RandomScorer(split.num_items, seed=0), split.test, k=[20],
                            candidates=coldm)["recall@20"]
    assert student > 2 * chance, (student, chance)
    again = kgrec.Recommender.load(tmp_path / "run")
    model = model_from(again, split)
    assert isinstance(model, AlignedHGNN)
    assert float(model.gate_k) == gate["gate_k"]
    assert float(model.cold_offset) == gate["cold_offset"]
    users, items = model()
    torch.testing.assert_close(items, rec.item_embedding)
    torch.testing.assert_close(users, rec.user_embedding)
    c = np.flatnonzero(coldm)[:2]
    texts = [str(t) for t in split.graph.items.attrs["text"][c]]
    # the model says from its own weights whether they place items from text
    assert HGNN.places_items(again.config.model, again.state)
    assert not HGNN.places_items(again.config.model, {})
    emb = again.add_items(["new-a", "new-b"], texts)
    torch.testing.assert_close(emb, rec.item_embedding[torch.from_numpy(c)])
    (top,) = again.recommend([again.user_ids[0]], k=again.num_items)
    twin = str(split.graph.items.ids[c[0]])
    assert abs(top.items.index("new-a") - top.items.index(twin)) == 1  # ranks beside its twin


def test_what_needs_the_joint_gnn_is_refused_with_the_aligned_default():
    for section, field in [({"meta": {"mode": "meta"}}, "meta.mode"),
                           ({"train": {"adv_eps": 0.1}}, "train.adv_eps"),
                           ({"model": {"name": "hgnn", "hgnn": {"tasks": ["all", "kg"]}}},
                            "model.hgnn.tasks")]:
        doc = {"model": "hgnn", **section}
        with pytest.raises(ConfigError, match=rf"{field}.*\(model\.hgnn\.ranking: joint\)"):
            kgrec.Config(**doc)
    kgrec.Config(model={"name": "hgnn", "hgnn": {"ranking": "joint"}}, meta={"mode": "meta"})
    with pytest.raises(ConfigError, match="align_losses"):
        kgrec.Config(model={"name": "hgnn", "hgnn": {"align_losses": ["l2", "bpr"]}})
    with pytest.raises(ConfigError, match="backbone"):
        kgrec.Config(model={"name": "hgnn", "hgnn": {"backbone": "hgnn"}})


def test_a_run_saved_before_the_aligned_default_loads_as_the_joint_gnn(cold, tmp_path):
    cfg = _cfg({"name": "hgnn", "hgnn": {"ranking": "joint", "features": ["text"],
                                         "use_kg": False}}, epochs=2)
    kgrec.train(cold, cfg, out_dir=tmp_path / "old", progress=False)
    doc_path = tmp_path / "old" / "recommender.json"
    doc = json.loads(doc_path.read_text())
    del doc["config"]["model"]["hgnn"]["ranking"]  # as every run saved before it
    doc_path.write_text(json.dumps(doc))
    rec = kgrec.Recommender.load(tmp_path / "old")
    assert rec.config.model.options.ranking == "joint"
    assert HGNN.places_items(rec.config.model, rec.state)  # the joint GNN's text projection
    model = model_from(rec, cold)
    assert not isinstance(model, AlignedHGNN)
