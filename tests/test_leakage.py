"""No leakage through knowledge edges that users made: tags, co-purchases, reviews.

A tag is behaviour: the user who wrote it watched the film. Every split must rebuild such
edges from its own training interactions (the tagger's training pairs, before the time cut),
on every strategy, or the held-out pairs reach the model through the KG.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import kgrec
from kgrec.graph import (
    ENTITY,
    INTERACTED,
    ITEM,
    MADE_BY,
    SAMPLED_NEGATIVE,
    USER,
    EdgeTable,
    NodeTable,
    RecGraph,
)
from kgrec.models import GraphInputs
from tests.conftest import write_kgcn

pytestmark = pytest.mark.cost(3)  # seconds on 2 idle cores: scheduled by it

TAG = (ITEM, "HAS_TAG", ENTITY)
GENRE = (ITEM, "HAS_GENRE", ENTITY)


def tagged_graph(seed: int = 0, n_users: int = 60, n_items: int = 80) -> RecGraph:
    """Users, items in two domains, timed interactions; about half the interactions come
    with a tag the user wrote (its own entity, so every tag edge has one maker), some tags
    come later than the interaction, a few from users who never interacted with the item;
    genres are facts. KGCN-style sampled negatives for the click-through split."""
    rng = np.random.default_rng(seed)
    pairs = {(u, i) for u in range(n_users)
             for i in rng.choice(n_items, size=int(rng.integers(6, 16)), replace=False)}
    pairs = sorted(pairs)
    u = np.asarray([p[0] for p in pairs])
    i = np.asarray([p[1] for p in pairs])
    ts = rng.uniform(0, 1000, len(pairs))
    tagged = np.flatnonzero(rng.random(len(pairs)) < 0.5)
    strangers = sorted({(int(rng.integers(n_users)), int(rng.integers(n_items)))
                        for _ in range(30)} - set(pairs))
    t_user = [str(u[k]) for k in tagged] + [str(a) for a, _ in strangers] + ["nobody"]
    t_item = [int(i[k]) for k in tagged] + [b for _, b in strangers] + [0]
    t_time = [ts[k] + rng.choice([1.0, 300.0]) for k in tagged] + [10.0] * (len(strangers) + 1)
    n_tags = len(t_user)
    entities = [f"tag{k}" for k in range(n_tags)] + ["genre:a", "genre:b"]
    neg = rng.integers(0, n_items, size=(200, 2))
    return RecGraph(
        {USER: NodeTable(np.asarray([str(x) for x in range(n_users)])),
         ITEM: NodeTable(np.asarray([f"m{x}" for x in range(n_items)]),
                         {"domain": np.where(np.arange(n_items) % 2, "book", "film"),
                          "name": np.asarray([f"Film {x}" for x in range(n_items)])}),
         ENTITY: NodeTable(np.asarray(entities), {"name": np.asarray(entities)})},
        {INTERACTED: EdgeTable(u, i, {"behavior": np.full(len(u), "rate"),
                                      "weight": np.ones(len(u)), "timestamp": ts,
                                      "fold": np.where(rng.random(len(u)) < 0.8, "train",
                                                       "test")}),
         TAG: EdgeTable(np.asarray(t_item), np.arange(n_tags),
                        {MADE_BY: np.asarray(t_user), "timestamp": np.asarray(t_time)}),
         GENRE: EdgeTable(np.arange(n_items), n_tags + np.arange(n_items) % 2),
         SAMPLED_NEGATIVE: EdgeTable(neg[:, 0] % n_users, neg[:, 1])},
        "tagged").validate(kgrec.GraphSchema.load())


def tag_rows(g: RecGraph) -> set[tuple[int, int]]:
    t = g.edges[TAG]
    return set(zip(t.src.tolist(), t.dst.tolist(), strict=True))


def held_out(s: kgrec.Split) -> set[tuple[int, int]]:
    out = set()
    for m in (s.valid.positives, s.test.positives):
        r, c = m.nonzero()
        out |= set(zip(r.tolist(), c.tolist(), strict=True))
    return out


STRATEGIES = [("random", {}), ("temporal", {}), ("user_temporal", {}), ("given", {}),
              ("cold_item", {}), ("cold_item", {"warm": True}), ("cold_user", {"shots": 2}),
              ("cold_item", {"shots": 1}), ("cross_domain", {"target": "book", "shots": 2}),
              ("cross_domain", {"target": "book", "shots": 2, "target_only": True}),
              ("ctr", {})]


@pytest.mark.parametrize(("strategy", "kw"), STRATEGIES,
                         ids=[f"{s}-{'-'.join(map(str, k.values()))}" for s, k in STRATEGIES])
def test_no_held_out_pair_tags_reach_training(strategy, kw):
    g = tagged_graph()
    s = kgrec.split(g, strategy, seed=1, **kw)
    train = set(zip(s.train_users.tolist(), s.train_items.tolist(), strict=True))
    held = held_out(s)
    assert held, "the split holds nothing out"
    raw = g.edges[TAG]
    maker = np.asarray([g.users.lookup.get(x, -1) for x in raw.attrs[MADE_BY]])
    # each tag entity has one maker, so every tag edge is one (user, item) pair's
    by_pair = {(int(m), int(it)): (int(e), float(t)) for m, it, e, t in
               zip(maker, raw.src, raw.dst, raw.attrs["timestamp"], strict=True)}
    kept = tag_rows(s.graph)
    leaked = {p for p in held if p in by_pair and (p[1], by_pair[p][0]) in kept}
    assert not leaked
    # nothing but training pairs' tags: no stranger's, no unknown maker's
    for (m, it), (e, _) in by_pair.items():
        if (it, e) in kept:
            assert (m, it) in train
    assert not any(str(x) == "nobody" for x in s.graph.edges[TAG].attrs[MADE_BY])
    # ... and the training pairs' tags are all there (on the time-ordered splits, the ones
    # made before the cut)
    if strategy in ("temporal", "user_temporal"):
        first = dict(zip(zip(g.interactions.src.tolist(), g.interactions.dst.tolist(),
                             strict=True),
                         g.interactions.attrs["timestamp"].tolist(), strict=True))
        mine = np.asarray(s.train_users)
        if strategy == "temporal":
            cut = {int(x): max(first[p] for p in train) for x in np.unique(mine)}
        else:
            cut = {int(x): max(first[p] for p in train if p[0] == x) for x in np.unique(mine)}
        expected = {(it, e) for (m, it), (e, t) in by_pair.items()
                    if (m, it) in train and t <= cut[m]}
        late = {(it, e) for (m, it), (e, t) in by_pair.items() if (m, it) in train
                and t > cut[m]}
        assert late, "the generated graph has no tag after the cut to test"
        assert not kept & late
    else:
        expected = {(it, e) for p, (e, _) in by_pair.items() for it in [p[1]] if p in train}
    assert kept == expected
    # facts pass unchanged, and the models read exactly this graph's KG
    assert len(s.graph.edges[GENRE]) == len(g.edges[GENRE])
    kg = GraphInputs.from_split(s).kg
    n_items = g.num_items
    model_tags = {(int(h), int(t) - n_items) for h, r, t in zip(kg.head, kg.relation, kg.tail,
                                                                strict=True)
                  if kg.relations[r] == "HAS_TAG"}
    assert model_tags == kept


def test_a_noisy_split_keeps_the_tags_of_its_clean_training_pairs():
    from kgrec.data.noise import interaction_noise, kg_noise

    s = kgrec.split(tagged_graph(), "random", seed=0)
    noisy = kg_noise(interaction_noise(s, 0.3, seed=0), 0.3, seed=0)
    assert tag_rows(noisy.graph) == tag_rows(s.graph)
    kg = GraphInputs.from_split(noisy).kg
    assert len(kg) == len(s.graph.knowledge())


def test_ml_latest_small_cold_items_carry_no_held_out_tag(data_dir):
    g = kgrec.load_dataset("ml-latest-small", data_dir=data_dir)
    assert g.behavior_edge_types() == [TAG]
    for warm in (False, True):
        s = kgrec.split(g, "cold_item", seed=0, warm=warm)
        cold = np.flatnonzero(s.test.heldout_items)
        raw = np.isin(g.edges[TAG].src, cold).sum()
        assert raw > 300  # the source tags do describe held-out films ...
        assert not np.isin(s.graph.edges[TAG].src, cold).any()  # ... and none reaches training
        # every tag that stays was written on one of its writer's training films
        t = s.graph.edges[TAG]
        writer = np.asarray([g.users.lookup[x] for x in t.attrs[MADE_BY]])
        train = set(zip(s.train_users.tolist(), s.train_items.tolist(), strict=True))
        assert all(p in train for p in zip(writer.tolist(), t.src.tolist(), strict=True))
    s = kgrec.split(g, "temporal", seed=0)
    test_items = np.unique(s.test.positives.nonzero()[1])
    first_seen = s.test.cold_items[test_items]
    assert first_seen.any()
    new = test_items[first_seen]
    assert not np.isin(s.graph.edges[TAG].src, new).any()
    cut = g.interactions.attrs["timestamp"][
        np.isin(g.interactions.src * g.num_items + g.interactions.dst,
                s.train_users * g.num_items + s.train_items)].max()
    assert s.graph.edges[TAG].attrs["timestamp"].max() <= cut


def _atomic(tmp_path, kg_rows: str, behavior: list[str] | None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "d.inter").write_text("user_id:token\titem_id:token\n1\ta\n1\tb\n2\ta\n")
    (tmp_path / "d.link").write_text("item_id:token\tentity_id:token\na\tea\nb\teb\n")
    (tmp_path / "d.kg").write_text(kg_rows)
    recipe = {"name": "tiny-atomic", "format": "recbole-atomic", "path": str(tmp_path),
              "files": {"inter": "d.inter", "kg": "d.kg", "link": "d.link"}}
    if behavior is not None:
        recipe["behavior_relations"] = behavior
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    return tmp_path / "r.yaml"


KG = ("head_id:token\trelation_id:token\ttail_id:token\tuser_id:token\ttimestamp:float\n"
      "ea\tgenre\tx\t\t\n"
      "ea\ttagged\tfunny\t1\t5\n"
      "eb\ttagged\tlong\t2\t7\n")


def test_a_recipe_declares_the_relations_users_made(tmp_path):
    g = kgrec.load_recipe(_atomic(tmp_path, KG, ["tagged"]), cache=False)
    [et] = g.behavior_edge_types()
    assert et[1] == "tagged"
    assert g.edges[et].attrs[MADE_BY].tolist() == ["1", "2"]
    assert g.edges[et].attrs["timestamp"].tolist() == [5.0, 7.0]
    assert not any(MADE_BY in g.edges[e].attrs for e in g.knowledge_edge_types() if e != et)
    # user 2's tag is on item b, which user 2 never had: no split keeps it
    s = kgrec.split(g, "random", valid=0.0, test=0.0, seed=0)
    assert s.graph.edges[et].attrs[MADE_BY].tolist() == ["1"]


def test_undeclared_or_unattributed_behaviour_is_refused(tmp_path):
    with pytest.raises(kgrec.ConfigError, match="behavior_relations: the data has no relation"):
        kgrec.load_recipe(_atomic(tmp_path / "a", KG, ["tagged", "liked"]), cache=False)
    with pytest.raises(kgrec.DataFormatError, match=r"d\.kg:4, field 'user_id'"):
        kgrec.load_recipe(_atomic(tmp_path / "b", KG.replace("\t2\t7", "\t\t7"), ["tagged"]),
                          cache=False)
    no_users = "head_id:token\trelation_id:token\ttail_id:token\nea\ttagged\tx\n"
    with pytest.raises(kgrec.DataFormatError, match=r"d\.kg:1, field 'user_id': missing column"):
        kgrec.load_recipe(_atomic(tmp_path / "c", no_users, ["tagged"]), cache=False)
    # a format whose files cannot say who made an edge cannot hold user-made relations
    recipe = write_kgcn(tmp_path / "d", "0\t0\t1\n1\t1\t1\n", kg="0\t0\t3\n1\t0\t3\n")
    doc = yaml.safe_load(recipe.read_text())
    recipe.write_text(yaml.safe_dump({**doc, "behavior_relations": ["relation_0"]}))
    with pytest.raises(kgrec.ConfigError, match="do not say which user made them"):
        kgrec.load_recipe(recipe, cache=False)


def test_movielens_tags_must_be_declared(tmp_path, data_dir):
    doc = yaml.safe_load(kgrec.ingest.recipe_path("ml-latest-small").read_text())
    doc.pop("behavior_relations")
    doc["path"] = str(data_dir / doc["path"])
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(kgrec.ConfigError, match=r"\['HAS_TAG'\] are made by users"):
        kgrec.load_recipe(tmp_path / "r.yaml", cache=False)


def test_tag_counts_no_longer_find_the_held_out_films(data_dir):
    """The leak as a recommender would exploit it: rank the cold films by their number of
    tags, no user information at all. With the source graph's tags that finds the films
    people watched in the test period; with the split's own graph it is chance."""
    import torch

    from kgrec.evaluate import RandomScorer

    class TagCount:
        name = "tag-count"

        def __init__(self, graph):
            self.count = torch.from_numpy(np.bincount(graph.edges[TAG].src,
                                                      minlength=graph.num_items).astype("f4"))

        def score_users(self, users):
            return self.count.expand(len(users), -1)

    g = kgrec.load_dataset("ml-latest-small", data_dir=data_dir)
    s = kgrec.split(g, "cold_item", seed=0)
    cold = s.test.cold_items

    def recall(scorer):
        return kgrec.evaluate(scorer, s.test, k=[20], candidates=cold)["recall@20"]

    chance = recall(RandomScorer(g.num_items, seed=0))
    assert recall(TagCount(g)) > 5 * chance
    assert recall(TagCount(s.graph)) < 2 * chance
