"""Optuna studies: validated spaces, pruning on validation, shared storage, resumable.

The mechanics run on a small generated dataset with a learnable structure (tests/conftest.py's
``planted_ratings``): what is tested is the study, not the model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.trial import TrialState

import kgrec
from kgrec.errors import ConfigError
from kgrec.tune import SearchSpace, best_config, tune, write_plots
from tests.conftest import planted_ratings, write_kgcn

pytestmark = pytest.mark.cost(50)  # seconds on 2 idle cores: scheduled by it

SPACE = {"train.lr": {"float": [1e-3, 3e-2], "log": True},
         "model.dim": {"int": [8, 32], "log": True},
         "train.reg": {"choice": [0.0, 1e-4]}}


@pytest.mark.parametrize("doc,match", [
    ({"model.dimm": {"int": [8, 16]}}, "unknown config field 'model.dimm'"),
    ({"train.lr": {"float": [0.1, 0.01]}}, "low 0.1 must be below high 0.01"),
    ({"train.lr": {"float": [0, 0.1], "log": True}}, "log scale needs low > 0"),
    ({"train.lr": {"int": [1, 3]}}, "not an integer"),
    ({"model.dim": {"float": [8, 32]}}, "not a float"),
    ({"model.layers": {"choice": []}}, "non-empty list"),
    ({"model.layers": {"int": [1, 3], "choice": [1]}}, "exactly one of"),
    ({"train.lr": [1, 2]}, "expected e.g."),
])
def test_bad_search_spaces_name_the_field(doc, match):
    with pytest.raises(ConfigError, match=match):
        SearchSpace.from_dict(doc)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> str:
    return str(write_kgcn(tmp_path_factory.mktemp("planted"), planted_ratings()))


def base(recipe: str) -> kgrec.Config:
    return kgrec.Config(data={"dataset": recipe}, model="mf",
                        train={"epochs": 8, "eval_every": 2, "patience": 10, "device": "cpu"})


@pytest.fixture(scope="module")
def split(recipe):
    return kgrec.split(kgrec.load_recipe(recipe), "random", seed=0)


def test_study_tunes_on_validation_and_best_trial_reruns_exactly(recipe, split, tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = tune(SPACE, base(recipe), n_trials=6, study_name="t", storage=storage, split=split)
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(trials) == 6
    seeds = [t.user_attrs["seed"] for t in trials]
    assert len(set(seeds)) == 6
    for t in trials:
        assert t.intermediate_values  # the validation metric was reported every evaluation
        if t.state == TrialState.COMPLETE:
            assert t.value == max(t.intermediate_values.values())
    cfg = best_config(study)
    path = tmp_path / "best.yaml"
    cfg.to_yaml(path)
    again = kgrec.train(split, kgrec.Config.load(path), progress=False)
    best_valid = max(h["valid"]["ndcg@20"] for h in again.history if "valid" in h)
    assert best_valid == pytest.approx(study.best_value, abs=1e-12)
    plots = write_plots(study, tmp_path / "plots")
    assert {p.name for p in plots} == {"optimization_history.png", "intermediate_values.png",
                                       "param_importances.png"}


def test_pruner_stops_weak_trials(recipe, split, tmp_path):
    space = {"train.lr": {"float": [1e-5, 3e-2], "log": True}}
    cfg = base(recipe)
    cfg.train.epochs, cfg.train.eval_every = 12, 1
    study = tune(space, cfg, n_trials=10, study_name="p", storage=f"sqlite:///{tmp_path / 'p.db'}",
                 split=split, seed=3)
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states


def cli_tune(tmp_path, storage, trials, *extra, wait=True):
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(SPACE))
    recipe = write_kgcn(tmp_path / "planted", planted_ratings())
    cmd = [sys.executable, "-m", "kgrec.cli", "tune", "--space", str(tmp_path / "space.yaml"),
           "--dataset", str(recipe), "--model", "mf", "--epochs", "6", "--set",
           "train.eval_every=2", "--device", "cpu", "--trials", str(trials), "--study", "w",
           "--storage", storage, "--best-config", str(tmp_path / "best.yaml"), "--quiet", *extra]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_two_workers_share_one_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    workers = [cli_tune(tmp_path, storage, 8, wait=False) for _ in range(2)]
    outs = [w.communicate(timeout=600) for w in workers]
    for w, (_, err) in zip(workers, outs, strict=True):
        assert w.returncode == 0, err
    study = optuna.load_study(study_name="w", storage=storage)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(len(numbers)))  # none lost
    finished = [t for t in study.trials if t.state.is_finished()]
    assert 8 <= len(finished) <= 9  # MaxTrialsCallback: a worker may start one more
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    assert len({t.datetime_start for t in study.trials}) == len(numbers)
    assert kgrec.Config.load(tmp_path / "best.yaml").model.name == "mf"


def test_killed_worker_trial_fails_and_the_study_resumes(tmp_path):
    storage = f"sqlite:///{tmp_path / 'kill.db'}"
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(SPACE))
    # a trial that runs until it is killed (no epoch limit or early stop to end it first)
    slow = cli_tune(tmp_path, storage, 3, "--epochs", "1000000", "--set",
                    "train.patience=1000000", "--heartbeat", "1", wait=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            # a trial that has reported is past its first heartbeat: Optuna can only tell a
            # killed worker's trial is stale once it has beaten (killed earlier, it stays
            # RUNNING, which CI once hit)
            running = [t for t in optuna.load_study(study_name="w", storage=storage).trials
                       if t.state == TrialState.RUNNING and t.intermediate_values]
        except KeyError:
            running = []
        if running:
            break
        time.sleep(0.5)
    assert running, "no trial started"
    os.kill(slow.pid, signal.SIGKILL)
    slow.wait()
    time.sleep(4)  # three missed heartbeats
    out = cli_tune(tmp_path, storage, 3, "--heartbeat", "1")
    assert out.returncode == 0, out.stderr
    trials = optuna.load_study(study_name="w", storage=storage).trials
    assert trials[0].state == TrialState.FAIL
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == trials[0].number]
    assert retry and retry[0].params == trials[0].params
    assert retry[0].user_attrs["seed"] == trials[0].user_attrs["seed"]
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) >= 2


def _open_storage(url: str, q) -> None:
    from kgrec.tune import make_storage

    try:
        make_storage(url)
        q.put("ok")
    except Exception as exc:  # reported to the parent, which asserts
        q.put(repr(exc))


def test_workers_opening_a_new_storage_together_all_succeed(tmp_path):
    """Workers started at once on a new SQLite file race to create Optuna's schema (a
    duplicate table or version row); every one of them must still open the storage."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    results = []
    for r in range(6):
        url = f"sqlite:///{tmp_path / f'race{r}.db'}"
        q = ctx.Queue()
        procs = [ctx.Process(target=_open_storage, args=(url, q)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
        results += [q.get(timeout=10) for _ in procs]
    assert results == ["ok"] * len(results), results
