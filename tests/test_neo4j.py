"""The Neo4j store against the real server `make test` starts (`kgrec neo4j start`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import kgrec
from kgrec.errors import SchemaError, StoreError
from kgrec.neo4j.server import Neo4jServer
from kgrec.schema import GraphSchema
from kgrec.store.neo4j import META_BATCH, Neo4jStore

pytestmark = pytest.mark.cost(45)  # seconds on 2 idle cores: scheduled by it

SCHEMA = GraphSchema.load("recsys")
# One server for the whole module: its tests must run one after another. pytest runs with
# --dist loadfile (pyproject.toml), which keeps a file's tests on one worker.


@pytest.fixture(scope="module")
def server():
    s = Neo4jServer()
    if s.running_pid() is None:
        pytest.fail(f"no Neo4j server at {s.home}: the suite runs against a real one; start it "
                    "with `kgrec neo4j start` (make test does)")
    return s.info()


@pytest.fixture
def store(server):
    with Neo4jStore(server.uri, server.user, server.password, batch_size=5000) as st:
        st.clear()
        yield st


def expected_counts(graph: kgrec.RecGraph) -> dict[str, int]:
    out: dict[str, int] = {t: len(v) for t, v in graph.nodes.items() if len(v)}
    for et, table in graph.edges.items():
        t = SCHEMA.relationship_type(*et)
        out[t] = out.get(t, 0) + len(table)
    return out


def test_round_trip_is_exact(store, ml100k):
    report = store.write(ml100k, SCHEMA, progress=False)
    assert report.mode == "create" and report.relationships_written == 191631
    assert store.counts() == expected_counts(ml100k)
    back = store.read(SCHEMA, progress=False)
    assert ml100k.differences(back) == []
    # analysts see readable types and properties
    rows = store.run("MATCH (u:User {id: '196'})-[r:INTERACTED]->(i:Item {id: '242'}) "
                     "RETURN r.behavior AS b, r.weight AS w, i.name AS name")
    assert rows == [{"b": "rate", "w": 3.0, "name": "Kolya"}]
    assert store.run("MATCH (:Item)-[r:FILM_FILM_ACTOR]->(:Entity) RETURN count(r) AS c")[0]["c"]


def test_user_made_edges_keep_who_and_when(store):
    from tests.test_leakage import TAG, tagged_graph

    g = tagged_graph()
    store.write(g, SCHEMA, progress=False)
    back = store.read(SCHEMA, progress=False)
    assert g.differences(back) == []
    assert back.behavior_edge_types() == [TAG]
    # merging the same graph again (the path of a changed graph) adds no duplicate tag
    store.write(g, SCHEMA, progress=False, force_merge=True)
    assert store.counts() == expected_counts(g)
    rows = store.run("MATCH (i:Item)-[r:HAS_TAG]->(t:Entity) WHERE r.user = '0' "
                     "RETURN count(r) AS c")
    assert rows[0]["c"] == int((g.edges[TAG].attrs["user"] == "0").sum()) > 0


def test_loading_twice_changes_nothing(store):
    from tests.test_leakage import tagged_graph

    g = tagged_graph(n_users=400, n_items=300)  # user-made edges too
    store.write(g, SCHEMA, progress=False)
    first = store.counts()
    again = store.write(g, SCHEMA, progress=False)
    assert again.mode == "skip" and store.counts() == first
    merged = store.write(g, SCHEMA, progress=False, force_merge=True)
    assert merged.mode == "merge" and store.counts() == first == expected_counts(g)


def test_kill_minus_9_then_rerun_gives_exact_counts(store, server, tmp_path):
    from tests.conftest import planted_ratings, write_kgcn

    recipe = write_kgcn(tmp_path / "planted", planted_ratings(n_users=1000))  # ~27,000 pairs
    graph = kgrec.load_recipe(recipe)
    env = dict(os.environ, KGREC_NEO4J_PASSWORD=server.password)
    cmd = [sys.executable, "-m", "kgrec.cli", "load", str(recipe), "--into", server.uri,
           "--batch-size", "500", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        committed = store.run(f"MATCH (b:{META_BATCH}) WHERE b.key STARTS WITH 'e:' "
                              "RETURN count(b) AS c")[0]["c"]
        if committed >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the load finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = store.counts()
    assert committed >= 5 and partial != expected_counts(graph)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert store.counts() == expected_counts(graph)
    assert graph.differences(store.read(SCHEMA, progress=False)) == []


def test_two_datasets_with_the_same_ids_stay_apart(store):
    """Loading a second dataset used to merge its users into the first's (same ids)."""
    from tests.test_leakage import tagged_graph

    a = tagged_graph(seed=0)
    b = tagged_graph(seed=1, n_users=40)
    b.name = "tagged-other"
    assert set(a.users.ids) & set(b.users.ids)
    for g in (a, b):
        assert store.write(g, SCHEMA, progress=False).mode == "create"
    assert store.datasets() == sorted([a.name, b.name])
    for g in (a, b):
        assert store.counts(g.name) == expected_counts(g)
        assert g.differences(store.read(SCHEMA, dataset=g.name, progress=False)) == []
    with pytest.raises(StoreError, match=r"holds 2 datasets \(\['tagged', 'tagged-other'\]\); "
                                         r"name one"):
        store.read(SCHEMA, progress=False)
    # the same graph again changes nothing; a changed one merges into its own dataset only
    assert store.write(a, SCHEMA, progress=False).mode == "skip"
    b2 = tagged_graph(seed=1, n_users=40)
    b2.name = "tagged-other"
    b2.users.attrs["text"] = np.asarray([f"reader {u}" for u in b2.users.ids])
    assert store.write(b2, SCHEMA, progress=False).mode == "merge"
    assert store.counts(a.name) == expected_counts(a)
    assert b2.differences(store.read(SCHEMA, dataset=b2.name, progress=False)) == []


def test_two_loads_at_once_are_one_load(store, server):
    """Two concurrent loads of one graph into an empty database used to both exit 0 with every
    relationship twice. Now the second waits for the first, then finds the work done."""
    from tests.test_leakage import tagged_graph

    g = tagged_graph(n_users=400, n_items=300)
    env = dict(os.environ, KGREC_NEO4J_PASSWORD=server.password, PYTHONPATH=os.getcwd())
    code = ("import sys, kgrec; from kgrec.store.neo4j import Neo4jStore; "
            "from tests.test_leakage import tagged_graph; "
            "g = tagged_graph(n_users=400, n_items=300); "
            f"s = Neo4jStore({server.uri!r}, batch_size=200); "
            "print(s.write(g, progress=False).mode)")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert sorted(o[0].split()[-1] for o in outs) == ["create", "skip"]
    assert store.counts() == expected_counts(g)
    assert store.run(f"MATCH (b:{META_BATCH}) RETURN count(b) AS c")[0]["c"] == 0


def test_an_id_too_long_to_index_is_refused_before_the_load(store):
    from tests.test_leakage import tagged_graph

    g = tagged_graph()
    ids = g.items.ids.astype(object)
    ids[3] = "m" * 1_000_000
    g.items.ids = np.asarray(ids, dtype=str)
    with pytest.raises(StoreError, match=r"Item node 'mmmm.*': its id takes 1,000,006 bytes "
                                         r"with the dataset name; Neo4j indexes at most 8,100"):
        store.write(g, SCHEMA, progress=False)
    assert store.counts() == {}


def test_injection_through_values_runs_nothing(store, lastfm):
    evil = "x'}) DETACH DELETE n //"
    from kgrec.graph import EdgeTable, NodeTable, RecGraph

    users = NodeTable(np.array([evil, "ok"]))
    items = NodeTable(np.array(["i1"]), {"domain": np.array([evil]), "name": np.array([evil])})
    inter = EdgeTable(np.array([0, 1]), np.array([0, 0]),
                      {"behavior": np.array([evil, "click"]), "weight": np.ones(2),
                       "timestamp": np.full(2, np.nan)})
    g = RecGraph({"User": users, "Item": items}, {("User", "INTERACTED", "Item"): inter}, "evil")
    store.write(g, SCHEMA, progress=False)
    assert store.counts() == {"User": 2, "Item": 1, "INTERACTED": 2}
    assert store.run("MATCH (u:User {id: $id}) RETURN count(u) AS c", id=evil)[0]["c"] == 1
    # a relation name cannot smuggle Cypher either: it becomes a safe identifier
    assert SCHEMA.relationship_type("Item", "http://x.org/a'}) DETACH DELETE n //",
                                    "Entity") == "A_DETACH_DELETE_N"


def test_injection_through_a_recipe_is_refused(store, tmp_path):
    from tests.conftest import write_kgcn

    recipe = write_kgcn(tmp_path / "inj", "0\t0\t1\n1\t1\t1\n")
    g = kgrec.load_recipe(recipe, cache=False)
    g.items.attrs["name`}) DETACH DELETE n //"] = np.array(["a", "b"])
    store.write(kgrec.load_recipe(recipe, cache=False), SCHEMA, progress=False)
    before = store.counts()
    with pytest.raises(SchemaError, match="not an identifier"):
        store.write(g, SCHEMA, progress=False)
    assert store.counts() == before


def test_wrong_password_and_dead_server_say_what_to_do(server):
    with pytest.raises(StoreError, match="refused the credentials") as err:
        Neo4jStore(server.uri, "neo4j", "definitely-wrong-pw")
    assert "definitely-wrong-pw" not in str(err.value)
    with pytest.raises(StoreError, match="kgrec neo4j start"):
        Neo4jStore("bolt://127.0.0.1:1", "neo4j", "whatever-pw")
    # the options the message names exist: --password asks (stdin here, no terminal)
    env = {k: v for k, v in os.environ.items() if k != "KGREC_NEO4J_PASSWORD"}
    cmd = [sys.executable, "-m", "kgrec.cli", "schema", "apply", "--uri", server.uri]
    ok = subprocess.run([*cmd, "--password"], input=server.password + "\n", env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([*cmd, "--password"], input="nope-nope-nope\n", env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--password (asks for it) or --password-file" in bad.stderr
    assert "nope-nope-nope" not in bad.stdout + bad.stderr


def test_missing_schema_constraints_are_reported(store, server):
    store.run("DROP CONSTRAINT kgrec_item_dataset_id IF EXISTS")
    with pytest.raises(SchemaError, match="kgrec schema apply"):
        store.read(SCHEMA, progress=False)
    store.apply_schema(SCHEMA)
    store.check_schema(SCHEMA)


def test_rdf_in_and_out(store, tmp_path, lastfm):
    ttl = tmp_path / "tiny.ttl"
    ttl.write_text("""
@prefix ex: <http://example.org/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
ex:queen a ex:Band ; rdfs:label "Queen"@en ; ex:genre ex:rock ; ex:origin ex:london .
ex:muse a ex:Band ; rdfs:label "Muse" ; ex:genre ex:rock .
ex:rock skos:prefLabel "rock music" .
ex:london rdfs:label "London"@en, "Londres"@fr .
""")
    recipe = {"name": "tiny-rdf", "format": "rdf", "path": str(tmp_path),
              "files": {"kg": "tiny.ttl"}, "mapping": {"item_class": "http://example.org/Band"}}
    g = kgrec.load_recipe(recipe, cache=False)
    assert sorted(g.items.ids.tolist()) == ["http://example.org/muse", "http://example.org/queen"]
    names = dict(zip(g.nodes["Entity"].ids.tolist(), g.nodes["Entity"].attrs["name"].tolist(),
                     strict=True))
    assert names == {"http://example.org/london": "London", "http://example.org/rock":
                     "rock music"}
    assert len(g.knowledge()) == 3
    store.write(g, SCHEMA, progress=False)
    assert store.counts() == {"Item": 2, "Entity": 2, "GENRE": 2, "ORIGIN": 1}

    # a whole dataset's KG to RDF and back
    from kgrec.store.rdf import export_rdf

    nt = tmp_path / "lastfm.nt"
    export_rdf(lastfm, nt)
    back = kgrec.load_recipe({"name": "lastfm-rdf", "format": "rdf", "path": str(tmp_path),
                              "files": {"kg": "lastfm.nt"},
                              "mapping": {"item_class": "urn:kgrec:Item"}}, cache=False)
    assert len(back.knowledge()) == len(lastfm.knowledge())
    assert back.num_items == lastfm.num_items
    assert sorted(back.knowledge().relations) == sorted(
        f"urn:kgrec:relation:{r}" for r in lastfm.knowledge().relations)


def test_bad_rdf_names_the_file(tmp_path):
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix ex: <http://example.org/> .\nex:a ex:b .\n")
    with pytest.raises(kgrec.DataFormatError, match=r"bad\.ttl"):
        kgrec.load_recipe({"name": "bad", "format": "rdf", "path": str(tmp_path),
                           "files": {"kg": "bad.ttl"}}, cache=False)


def test_train_straight_from_the_database(store, lastfm):
    store.write(lastfm, SCHEMA, progress=False)
    from kgrec.data.prepare import split_for

    cfg = kgrec.Config(data={"dataset": store.uri}, model="lightgcn",
                       train={"epochs": 5, "device": "cpu"})
    s = split_for(cfg.data)
    local = kgrec.split(lastfm, "random", seed=0)
    assert len(s.train_users) == len(local.train_users)
    rec = kgrec.train(s, cfg, progress=False)
    assert kgrec.evaluate(rec, s.test, k=20)["recall@20"] > 0.1


def test_cli_status_and_schema_show():
    out = subprocess.run([sys.executable, "-m", "kgrec.cli", "neo4j", "status"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "running: bolt://127.0.0.1" in out.stdout
    out = subprocess.run([sys.executable, "-m", "kgrec.cli", "schema", "show"],
                         capture_output=True, text=True)
    assert "REQUIRE (n.`dataset`, n.`id`) IS UNIQUE;" in out.stdout


def test_cli_load_and_export_graphml_local_store_and_rdf(store, server, tmp_path, lastfm):
    env = dict(os.environ, KGREC_NEO4J_PASSWORD=server.password)
    run = [sys.executable, "-m", "kgrec.cli"]
    out = subprocess.run([*run, "load", "lastfm-hetrec-kg", "--into", server.uri, "--quiet"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "INTERACTED" in out.stdout and "21173" in out.stdout
    gml, ttl, local = tmp_path / "g.graphml", tmp_path / "kg.ttl", tmp_path / "local"
    out = subprocess.run([*run, "export", "--from", server.uri, "--graphml", str(gml), "--rdf",
                          str(ttl), "--to", str(local), "--name", "lastfm-hetrec-kg", "--quiet"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    import networkx as nx

    g = nx.read_graphml(gml)
    assert g.number_of_edges() == 21173 * 2 + 15518
    assert kgrec.LocalStore(local).read().differences(lastfm) == []
    import rdflib

    kg = rdflib.Graph().parse(ttl)
    origin = rdflib.URIRef("urn:kgrec:relation:music.artist.origin")
    assert len(list(kg.triples((None, origin, None)))) == 2536


def test_recommendations_written_back_beside_the_graph_idempotent_per_run(store, server,
                                                                          tmp_path):
    """``kgrec recommend RUN --all --to URI``: every user's top K as RECOMMENDED
    relationships an analyst queries next to the graph; the same run again changes nothing;
    another run sits beside it, or replaces it with --replace; the graph reads back as it was
    loaded (RECOMMENDED is not part of it)."""
    from tests.conftest import planted_ratings, write_kgcn

    graph = kgrec.load_recipe(write_kgcn(tmp_path / "planted", planted_ratings(n_users=120)))
    store.write(graph, SCHEMA, progress=False)
    split = kgrec.split(graph, "random", seed=0)
    rec = kgrec.train(split, kgrec.Config(model="lightgcn", train={"epochs": 2,
                                                                   "device": "cpu"}),
                      progress=False)
    run = tmp_path / "run-a"
    rec.save(run)
    env = dict(os.environ, KGREC_NEO4J_PASSWORD=server.password)
    cmd = [sys.executable, "-m", "kgrec.cli", "recommend", str(run), "--all", "--k", "5",
           "--to", server.uri, "--quiet"]

    def rows() -> list[dict]:
        return store.run("MATCH (u:User)-[r:RECOMMENDED]->(i:Item) RETURN u.id AS u, "
                         "i.id AS i, r.rank AS rank, r.score AS score, r.run AS run "
                         "ORDER BY run, u, rank")

    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"{rec.num_users * 5} RECOMMENDED relationships created" in out.stdout
    got = rows()
    assert len(got) == rec.num_users * 5 and {r["rank"] for r in got} == {1, 2, 3, 4, 5}
    for lst in rec.recommend(rec.user_ids[:10], k=5):  # the library's lists, in the graph
        mine = [r for r in got if r["u"] == lst.user]
        assert [r["i"] for r in mine] == lst.items
        np.testing.assert_allclose([r["score"] for r in mine], lst.scores, rtol=1e-6)
    from kgrec.serve.batch import write_csv, write_neo4j

    again = write_neo4j(rec, store, f"run-a@{got[0]['run'].split('@')[1]}", 5)
    assert again["created"] == 0 and again["existing"] == len(got)  # the same run: no change
    assert rows() == got
    assert write_neo4j(rec, store, "run-b", 5)["created"] == len(got)
    assert {r["run"] for r in rows()} == {"run-b", got[0]["run"]}  # runs side by side
    assert len(rows()) == 2 * len(got)
    replaced = write_neo4j(rec, store, "run-c", 5, replace=True)
    assert replaced["deleted"] == 2 * len(got) and {r["run"] for r in rows()} == {"run-c"}
    assert store.read(SCHEMA, progress=False).differences(graph) == []
    # and to a file: user,rank,item,score,name
    assert write_csv(rec, tmp_path / "recs.csv", 3) == rec.num_users * 3
    lines = (tmp_path / "recs.csv").read_text().splitlines()
    assert lines[0] == "user,rank,item,score,name" and len(lines) == 1 + rec.num_users * 3
    bad = subprocess.run([*cmd[:6], "--out", str(tmp_path / "recs.parquet")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "FILE.csv" in bad.stderr
    assert not (tmp_path / "recs.parquet").exists()
