"""Training on real data: it learns, it is repeatable, it saves, loads and resumes."""

import json

import numpy as np
import pytest
import torch

import kgrec
from kgrec.models import MODELS, GraphInputs, build_model
from kgrec.models.capabilities import Contrastive, has
from tests.conftest import planted_ratings, write_kgcn

pytestmark = pytest.mark.cost(49)  # seconds on 2 idle cores: scheduled by it


@pytest.fixture(scope="module")
def split(lastfm):
    return kgrec.split(lastfm, "random", valid=0.1, test=0.1, seed=0)


def quick(model: str, epochs: int = 10, **train) -> kgrec.Config:
    return kgrec.Config(model=model, train={"epochs": epochs, "eval_every": 5, "patience": 50,
                                            "device": "cpu", **train})


# every built-in model in the registry (a test file's own models aside); hgnn, whose text
# encoding makes it the slow one, learns in test_model.py on a budget of its own, and so do
# the contrastive models in test_simgcl.py (their contrast's gradients dominate the first few
# hundred steps at the default lr, and its loss does not halve: 15 epochs here are ~135)
BUILT_IN = [m for m in MODELS if MODELS.get(m).__module__.startswith("kgrec.")]


@pytest.mark.parametrize("model", [m for m in BUILT_IN if m != "hgnn"
                                   and not has(MODELS.get(m), Contrastive)])
def test_each_model_learns_far_above_chance(split, model):
    rec = kgrec.train(split, quick(model, epochs=15), progress=False)
    m = kgrec.evaluate(rec, split.test, k=20)
    # chance: 20 of ~3,800 candidates -> Recall@20 about 0.005
    assert m["recall@20"] > 0.15, m
    losses = [h["loss"] for h in rec.history]
    assert losses[-1] < 0.5 * losses[0]


def test_kggnn_sees_the_kg_and_only_training_edges(split):
    inputs = GraphInputs.from_split(split)
    model = build_model(kgrec.ModelConfig(name="kggnn"), inputs)
    assert model.has_kg and len(model.kg_head) == 2 * 15518
    assert model.adj._nnz() == 2 * len(np.unique(split.train_users * split.num_items
                                                 + split.train_items))


def test_same_seed_same_model(split):
    a = kgrec.train(split, quick("kggnn", epochs=3), progress=False)
    b = kgrec.train(split, quick("kggnn", epochs=3), progress=False)
    c = kgrec.train(split, quick("kggnn", epochs=3, seed=1), progress=False)
    assert torch.equal(a.user_embedding, b.user_embedding)
    assert not torch.equal(a.user_embedding, c.user_embedding)


def test_early_stopping_keeps_the_best_validation_epoch(split):
    cfg = kgrec.Config(model="mf", train={"epochs": 200, "eval_every": 1, "patience": 3,
                                          "lr": 0.05, "device": "cpu"})
    rec = kgrec.train(split, cfg, progress=False)
    evals = [h for h in rec.history if "valid" in h]
    best = max(evals, key=lambda h: h["valid"]["ndcg@20"])
    assert len(rec.history) < 200
    assert evals[-1]["epoch"] - best["epoch"] == 3
    again = kgrec.evaluate(rec, split.valid, k=20)
    assert again["ndcg@20"] == pytest.approx(best["valid"]["ndcg@20"], abs=1e-6)


def test_save_load_and_outputs(split, tmp_path):
    out = tmp_path / "run"
    rec = kgrec.train(split, quick("lightgcn", epochs=5), out_dir=out, logdir=tmp_path / "tb",
                      progress=False)
    for f in ("model.safetensors", "recommender.json", "curves.png", "history.json"):
        assert (out / f).is_file(), f
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    loaded = kgrec.Recommender.load(out)
    users = [rec.user_ids[int(u)] for u in split.test.users[:5]]
    assert [r.items for r in loaded.recommend(users, k=10)] == \
        [r.items for r in rec.recommend(users, k=10)]
    m1 = kgrec.evaluate(rec, split.test, k=20)
    m2 = kgrec.evaluate(loaded, split.test, k=20)
    assert m1["recall@20"] == m2["recall@20"]
    assert loaded.config.model.name == "lightgcn"
    assert json.loads((out / "recommender.json").read_text())["format"] == "kgrec-recommender/1"


def test_resume_continues_exactly(split, tmp_path):
    full = kgrec.train(split, quick("kggnn", epochs=6), progress=False)
    out = tmp_path / "resume"
    kgrec.train(split, quick("kggnn", epochs=3), out_dir=out, progress=False)
    # as if the 6-epoch run had been killed after epoch 3
    cfg = quick("kggnn", epochs=6)
    resumed = kgrec.train(split, cfg, out_dir=out, resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == list(range(1, 7))
    assert torch.equal(resumed.user_embedding, full.user_embedding)


def test_recommend_excludes_seen_filters_domain_and_rejects_unknown(split):
    rec = kgrec.train(split, quick("mf", epochs=2), progress=False)
    user = rec.user_ids[0]
    seen = set(rec.seen[0].indices.tolist())
    (top,) = rec.recommend([user], k=50)
    assert not seen & {rec._item_index[i] for i in top.items}
    (with_seen,) = rec.recommend([user], k=50, exclude_seen=False)
    assert seen & {rec._item_index[i] for i in with_seen.items}
    assert rec.recommend([user], k=5, domain="music")[0].items
    with pytest.raises(kgrec.UnknownIdError, match="unknown user id 'nobody'"):
        rec.recommend(["nobody"])
    with pytest.raises(kgrec.UnknownIdError, match="unknown domain"):
        rec.recommend([user], domain="books")


def test_explain_finds_kg_paths(split):
    rec = kgrec.train(split, quick("mf", epochs=1), progress=False)
    kg = rec.kg
    # find a user whose training item shares a KG neighbour with another item
    head_items = kg.head[kg.head < kg.num_items]
    for u in range(rec.num_users):
        seen = rec.seen[u].indices
        hit = [s for s in seen if s in set(head_items.tolist())]
        if hit:
            s = hit[0]
            ents = set(kg.tail[kg.head == s].tolist())
            others = [int(h) for h, t in zip(kg.head.tolist(), kg.tail.tolist(), strict=True)
                      if t in ents and h != s and h < kg.num_items]
            if others:
                paths = rec.explain(rec.user_ids[u], rec.item_ids[others[0]])
                assert paths and rec.item_names[s] in paths[0]
                # Last.FM's entities have no names: the path names them by the relation and
                # the artists that share it, never by a bare id
                assert "Entity:" not in paths[0] and paths[0].startswith("same "), paths[0]
                break
    else:
        pytest.fail("no user with a KG path found")
    # every recommended item gets a reason: a path, else the user's nearest items
    user = rec.user_ids[0]
    top = rec.recommend([user], k=10)[0]
    why = rec.explanations(user, top.items)
    assert [x.item for x in why] == top.items
    for x in why:
        assert x.paths or len(x.similar) == min(2, len(rec.seen[0].indices))
        assert x.text and "Entity:" not in x.text
    plain = next((x for x in why if not x.paths), None)
    if plain is not None:
        assert plain.text.startswith("no knowledge-graph path within two hops; like ")


def test_ctr_protocol_auc(lastfm):
    s = kgrec.split(lastfm, "ctr", valid=0.2, test=0.2, seed=0)
    rec = kgrec.train(s, quick("lightgcn", epochs=10), progress=False)
    from kgrec.evaluate import evaluation_report

    r = evaluation_report(rec, s, [20])
    assert 0.7 < r["auc"] <= 1.0 and 0.5 < r["f1"] <= 1.0
    # the CLI's old name for it still works, with a warning
    from kgrec.cli import test_report
    from kgrec.errors import KgrecDeprecationWarning

    with pytest.warns(KgrecDeprecationWarning, match="evaluation_report"):
        assert dict(test_report(rec, s, [20])) == dict(r)


def _cli(*args, env_extra=None, **popen):
    import os
    import subprocess
    import sys

    env = {**os.environ, "KGREC_PROGRESS_SECONDS": "0.5", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "kgrec.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _wait_for(path, proc, seconds=300):
    import time

    deadline = time.monotonic() + seconds
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.exists(), proc.communicate()[1][-2000:]


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_stopped_training_keeps_a_complete_run(tmp_path, sig):
    """Ctrl-C (or SIGTERM) used to leave no model; now training ends after the current step
    and the run holds the best validated epoch, or says none was validated yet."""
    import signal
    import time

    out = tmp_path / "run"
    recipe = write_kgcn(tmp_path / "planted", planted_ratings())
    proc = _cli("train", "--dataset", str(recipe), "--model", "mf", "--epochs", "100000",
                "--eval-every", "1", "--patience", "100000", "--out", str(out),
                "--device", "cpu")
    _wait_for(out / "best.safetensors", proc)
    time.sleep(1.0)  # past the first progress line (every 0.5 s here)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopped on request" in err and "Traceback" not in err
    assert "train mf: " in err and " epoch" in err  # progress lines, though not a terminal
    rec = kgrec.Recommender.load(out)
    best = max((h for h in rec.history if "valid" in h), key=lambda h: h["valid"]["ndcg@20"])
    split = kgrec.split(kgrec.load_recipe(recipe), "random", seed=0)
    assert kgrec.evaluate(rec, split.valid, k=20)["ndcg@20"] == pytest.approx(
        best["valid"]["ndcg@20"], abs=1e-6)


def test_stopped_before_any_validation_says_so(tmp_path):
    import signal

    out = tmp_path / "run"
    recipe = write_kgcn(tmp_path / "planted", planted_ratings())
    proc = _cli("train", "--dataset", str(recipe), "--model", "mf", "--epochs", "100000",
                "--eval-every", "50000", "--out", str(out), "--device", "cpu", "--quiet")
    _wait_for(out / "last.safetensors", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "before any epoch was validated" in err, err
    assert "--resume" in err and not (out / "model.safetensors").exists()


def test_a_run_names_the_data_it_was_trained_on(tmp_path, data_dir):
    """A config built in Python kept naming the default dataset while training on a recipe,
    so `kgrec evaluate RUN` looked for the wrong data."""
    import shutil
    import subprocess
    import sys

    recipe = tmp_path / "mine.yaml"
    shutil.copy(kgrec.ingest.recipe_path("lastfm-hetrec-kg"), recipe)
    recipe.write_text(recipe.read_text().replace("name: lastfm-hetrec-kg", "name: my-lastfm")
                      .replace("path: lastfm-hetrec-kg", f"path: {data_dir / 'lastfm-hetrec-kg'}"))
    split = kgrec.split(kgrec.load_recipe(recipe), "random", seed=3)
    cfg = kgrec.Config(model="mf", train={"epochs": 2, "eval_every": 1, "device": "cpu"})
    assert cfg.data.dataset == "lastfm-hetrec-kg" and cfg.data.seed == 0
    rec = kgrec.train(split, cfg, out_dir=tmp_path / "run", progress=False)
    assert cfg.data.dataset == "lastfm-hetrec-kg"  # the caller's config is left alone
    assert rec.config.data.dataset == str(recipe.resolve()) and rec.config.data.seed == 3
    assert rec.dataset == "my-lastfm"
    p = subprocess.run([sys.executable, "-m", "kgrec.cli", "evaluate", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "recall@20" in p.stdout, p.stderr
