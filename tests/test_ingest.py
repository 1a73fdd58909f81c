"""Every bundled recipe loads its real dataset with the published counts."""

import numpy as np
import pytest

import kgrec
from kgrec.graph import INTERACTED, SAMPLED_NEGATIVE

pytestmark = pytest.mark.cost(4)  # seconds on 2 idle cores: scheduled by it


def test_lastfm_matches_kgcn_counts_and_has_names(lastfm):
    st = lastfm.stats()
    assert st["nodes"]["User"] == 1872 and st["nodes"]["Item"] == 3846
    assert st["interactions"] == 21173 and st["sampled_negatives"] == 21173
    assert st["kg_triples"] == 15518 and st["kg_relations"] == 60
    assert st["nodes"]["Item"] + st["nodes"]["Entity"] == 9366
    names = dict(zip(lastfm.items.ids.tolist(), lastfm.items.attrs["name"].tolist(),
                     strict=True))
    assert names["2"] == "Diary of Dreams"  # HetRec artist id 2
    assert "music.artist.origin" in lastfm.knowledge().relations


def test_ml100k_recbole_atomic(ml100k):
    st = ml100k.stats()
    assert (st["nodes"]["User"], st["nodes"]["Item"], st["interactions"]) == (943, 1682, 100000)
    assert st["kg_triples"] == 91631 and st["kg_relations"] == 24
    items = ml100k.items
    i = items.lookup["1"]
    assert items.attrs["text"][i] == "Toy Story (1995). Genres: Animation Children's Comedy"
    u = ml100k.users.lookup["1"]
    assert ml100k.users.attrs["age"][u] == 24
    assert ml100k.users.attrs["occupation"][u] == "technician"
    inter = ml100k.interactions
    assert not np.isnan(inter.attrs["timestamp"]).any()
    assert set(np.unique(inter.attrs["weight"])) == {1.0, 2.0, 3.0, 4.0, 5.0}
    # 1,598 linked movies stand for their Freebase entity in the KG
    kg = ml100k.knowledge()
    items_in_kg = np.unique(np.concatenate([kg.head, kg.tail]))
    assert (items_in_kg < kg.num_items).sum() == 1598


def test_book_crossing_npy(data_dir):
    g = kgrec.load_dataset("book-crossing-kg", data_dir=data_dir)
    st = g.stats()
    assert (st["nodes"]["User"], st["nodes"]["Item"], st["interactions"]) == (17860, 14967,
                                                                              69873)
    assert st["kg_triples"] == 151500 and st["kg_relations"] == 25
    assert st["nodes"]["Item"] + st["nodes"]["Entity"] == 77903
    assert g.items.ids[0] == "0002005018"  # ISBN


def test_ml_latest_small_with_genre_and_tag_kg(data_dir):
    g = kgrec.load_dataset("ml-latest-small", data_dir=data_dir)
    st = g.stats()
    assert st["nodes"]["User"] == 610 and st["nodes"]["Item"] == 9742
    assert st["interactions"] == 100836 and st["items_with_interactions"] == 9724
    assert {e[1] for e in g.knowledge_edge_types()} == {"HAS_GENRE", "HAS_TAG"}
    assert g.items.attrs["name"][g.items.lookup["1"]] == "Toy Story (1995)"


def test_kgat_amazon_book_loads_without_kg(data_dir):
    g = kgrec.load_dataset("kgat-amazon-book", data_dir=data_dir)
    st = g.stats()
    assert (st["nodes"]["User"], st["nodes"]["Item"], st["interactions"]) == (70679, 24915,
                                                                              846434)
    assert st["kg_triples"] == 0
    fold = g.interactions.attrs["fold"]
    assert (fold == "train").sum() == 652514 and (fold == "test").sum() == 193920


def test_disencdr_two_domains_shared_users(data_dir):
    g = kgrec.load_dataset("amazon-cdr-sport-cloth", data_dir=data_dir)
    st = g.stats()
    assert st["nodes"]["User"] == 9928
    assert st["items_per_domain"] == {"cloth": 39008, "sport": 30796}
    dom = g.items.attrs["domain"][g.interactions.dst]
    users_sport = set(g.interactions.src[dom == "sport"].tolist())
    users_cloth = set(g.interactions.src[dom == "cloth"].tolist())
    assert users_sport == users_cloth  # 100% overlap, as published
    fold = g.interactions.attrs["fold"]
    assert ((fold == "train") & (dom == "sport")).sum() == 92612


def test_second_load_reads_the_store_without_parsing(data_dir, monkeypatch):
    import kgrec.ingest as ingest

    first = kgrec.load_dataset("lastfm-hetrec-kg", data_dir=data_dir)

    def refuse(*_a, **_k):
        raise AssertionError("parsed again")

    monkeypatch.setattr(ingest, "parse_recipe", refuse)
    second = kgrec.load_dataset("lastfm-hetrec-kg", data_dir=data_dir)
    assert np.array_equal(first.interactions.src, second.interactions.src)
    assert np.array_equal(first.items.attrs["name"], second.items.attrs["name"])
    assert len(second.edges[SAMPLED_NEGATIVE]) == len(first.edges[SAMPLED_NEGATIVE])
    assert second.edges.keys() == first.edges.keys()
    assert INTERACTED in second.edges


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(kgrec.DatasetNotFoundError, match="lastfm-hetrec-kg"):
        kgrec.load_dataset("no-such-data")
