"""Data-parallel training: ``kgrec train --nproc 2`` on loopback (gloo, two real processes)
trains the model one process trains, resumes from rank 0's checkpoint, and fails as one
command; and the shared-negatives loss that large batches use."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kgrec
from tests.conftest import planted_ratings, write_kgcn

pytestmark = pytest.mark.cost(55)  # seconds on 2 idle cores: scheduled by it

EPOCHS = 3


def _train(out, recipe, *extra, nproc=1, epochs=EPOCHS):
    cmd = [sys.executable, "-m", "kgrec.cli", "train", "--dataset", str(recipe), "--epochs",
           str(epochs), "--eval-every", "1", "--device", "cpu", "--quiet", "--out", str(out),
           "--nproc", str(nproc), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _planted_kg(root):
    rng = np.random.default_rng(1)
    kg = [f"{i}\t{i % 3}\t{300 + i % 6}" for i in range(300)]  # the item's taste, as entity
    kg += [f"{i}\t3\t{306 + int(rng.integers(0, 20))}" for i in range(300)]  # noise
    return write_kgcn(root, planted_ratings(), kg="\n".join(kg) + "\n")


def _one_process(recipe, cfg_sets, epochs):
    """The same training in this process (the reference)."""
    from kgrec.config import Config

    cfg = Config().set("data.dataset", str(recipe)).set("train.epochs", epochs).set(
        "train.eval_every", 1).set("train.device", "cpu")
    for key, value in cfg_sets.items():
        cfg = cfg.set(key, value)
    split = kgrec.split(kgrec.load_recipe(recipe), "random", seed=0)
    return kgrec.train(split, cfg, progress=False)


def _same_training(rec, run):
    h2 = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in h2] == [h["epoch"] for h in rec.history]
    for a, b in zip(rec.history, h2, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        for k in ("ndcg@20", "recall@20"):
            assert b["valid"][k] == pytest.approx(a["valid"][k], abs=1e-4), (a["epoch"], k)
    two = kgrec.Recommender.load(run)
    assert torch.allclose(rec.item_embedding, two.item_embedding, atol=1e-4)
    assert torch.allclose(rec.user_embedding, two.user_embedding, atol=1e-4)


def _args(sets):
    return [a for k, v in sets.items()
            for a in (("--model", v) if k == "model.name" else ("--set", f"{k}={v}"))]


def test_two_processes_train_what_one_trains_and_resume_from_rank0(tmp_path):
    """kggnn (KG messages with edge dropout) under the shared-negatives loss: every process
    draws the whole step and keeps its shard, the shards' losses sum to the step's, their
    gradients are summed and the graph's rows are split between them: the same training as
    one process, up to the order of float sums. Stopped after two epochs and resumed (rank 0
    reads the checkpoint and sends it), the two processes end where one process does."""
    recipe = _planted_kg(tmp_path / "data")
    sets = {"model.name": "kggnn", "train.loss": "sampled_softmax", "train.batch_size": 1024,
            "train.negatives": 128}
    run = tmp_path / "two"
    r = _train(run, recipe, *_args(sets), nproc=2, epochs=EPOCHS - 1)
    assert r.returncode == 0, r.stderr[-3000:]
    r = _train(run, recipe, *_args(sets), "--resume", nproc=2)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    _same_training(_one_process(recipe, sets, EPOCHS), run)
    # rank 0 alone wrote the run
    assert len(list(run.glob("config.yaml"))) == 1 and (run / "model.safetensors").is_file()


def test_two_processes_with_a_negative_per_pair(tmp_path):
    """BPR: each process keeps its shard of the step's per-pair negatives."""
    recipe = _planted_kg(tmp_path / "data")
    sets = {"model.name": "lightgcn", "train.batch_size": 1024}
    r = _train(tmp_path / "two", recipe, *_args(sets), nproc=2, epochs=2)
    assert r.returncode == 0, r.stderr[-3000:]
    _same_training(_one_process(recipe, sets, 2), tmp_path / "two")


def test_a_failing_process_fails_the_command(tmp_path):
    """A bad dataset fails in every process: the command exits 2 with the one-line error,
    no traceback, nothing written."""
    (tmp_path / "bad.txt").write_text("0\t0\t1\nnot a line\n")
    import yaml

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"name": "bad", "format": "kgcn", "path": str(tmp_path),
                                      "files": {"ratings": "bad.txt"}}))
    r = _train(tmp_path / "run", recipe, nproc=2)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "bad.txt" in r.stderr
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_launch_flags_are_checked(tmp_path):
    r = _train(tmp_path / "run", "lastfm-hetrec-kg", "--nnodes", "2", "--node-rank", "2")
    assert r.returncode == 2 and "--node-rank" in r.stderr and "Traceback" not in r.stderr


def _reference_loss(u, pos, neg, t, pid, nid):
    un = F.normalize(u, dim=-1)
    lp = (un * F.normalize(pos, dim=-1)).sum(-1, keepdim=True) / t
    ln = (un @ F.normalize(neg, dim=-1).T / t).masked_fill(pid[:, None] == nid[None, :],
                                                          float("-inf"))
    return (torch.logsumexp(torch.cat([lp, ln], 1), 1) - lp[:, 0]).mean()


def test_shared_softmax_is_the_softmax_over_positive_and_shared_negatives():
    """Its fused forward and backward give the plain formula's value and gradients, the
    accidental hits left out (negatives drawn twice included)."""
    from kgrec.models.losses import _accidental_hits, shared_softmax_loss

    g = torch.Generator().manual_seed(0)
    u = torch.randn(64, 8, generator=g, requires_grad=True)
    pos = torch.randn(64, 8, generator=g, requires_grad=True)
    neg = torch.randn(40, 8, generator=g, requires_grad=True)
    pid, nid = torch.randint(0, 25, (64,), generator=g), torch.randint(0, 25, (40,), generator=g)
    ours = shared_softmax_loss(u, pos, neg, 0.3, pid, nid)
    ref = _reference_loss(u, pos, neg, 0.3, pid, nid)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    for a, b in zip(torch.autograd.grad(ours, (u, pos, neg)),
                    torch.autograd.grad(ref, (u, pos, neg)), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    rows, cols = _accidental_hits(pid, nid)
    assert len(rows) == int((pid[:, None] == nid[None, :]).sum()) > len(set(nid.tolist())) - 40
    assert bool((pid[rows] == nid[cols]).all())


def test_the_shared_loss_refuses_what_samples_per_pair():
    import kgrec.models  # noqa: F401  (installs the models' config checks)
    from kgrec.config import Config
    from kgrec.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train\.loss: sampled_softmax"):
        Config(model="hgnn").set("train.loss", "sampled_softmax").check()
    Config(model="kggnn").set("train.loss", "sampled_softmax").check()


def test_two_processes_partition_hgnns_graph(tmp_path):
    """hgnn as it ships (aligned: its id model propagates, the adjacency is not its own)
    hands its adjacency to data-parallel training through its capability: each of two
    processes holds its own contiguous rows, together every edge once, and the run trains
    to a servable model (its aligned stages on rank 0 alone)."""
    recipe = write_kgcn(tmp_path / "data", planted_ratings(n_users=120, n_items=90))
    cmd = [sys.executable, "-m", "kgrec.cli", "-v", "train", "--dataset", str(recipe),
           "--epochs", "1", "--eval-every", "1", "--device", "cpu", "--quiet", "--out",
           str(tmp_path / "run"), "--nproc", "2", "--model", "hgnn",
           "--set", "model.hgnn.align_epochs=1"]
    r = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    held = sorted(tuple(int(x) for x in m) for m in re.findall(
        r"rank \d of 2 holds rows (\d+)-(\d+) of the graph \((\d+) of (\d+) edges\)", r.stderr))
    assert len(held) == 2, r.stderr[-3000:]
    (a0, b0, e0, total), (a1, b1, e1, total1) = held
    assert a0 == 0 and b0 == a1 and b1 == 120 + 90  # users and items, cut once
    assert total == total1 and e0 + e1 == total and 0 < e0 < total
    assert kgrec.Recommender.load(tmp_path / "run").name == "hgnn"
