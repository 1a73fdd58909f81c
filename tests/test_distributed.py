"""Data-parallel training: ``kgrec train --nproc 2`` on loopback (gloo, two real processes)
trains the model one process trains, resumes from rank 0's checkpoint, and fails as one
command; and the shared-negatives loss that large batches use."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kgrec
from tests.conftest import planted_ratings, write_kgcn

pytestmark = pytest.mark.cost(70)  # seconds on 2 idle cores: scheduled by it

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


CASES = {
    # shared negatives: one draw per step, every process draws it
    "lightgcn-sampled_softmax": ["--model", "lightgcn", "--set", "train.loss=sampled_softmax",
                                 "--set", "train.batch_size=1024", "--set",
                                 "train.negatives=128"],
    # one negative per pair, KG messages with edge dropout: the same draws in each process
    "kggnn-bpr": ["--model", "kggnn", "--set", "train.batch_size=1024"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_train_what_one_trains_and_resume_from_rank0(tmp_path, case):
    """Every process draws the whole step and keeps its shard; the shards' losses sum to
    the step's and their gradients are summed, and the graph's rows are split between
    them: the same training as one process, up to the order of float sums. Stopped after
    two epochs and resumed (rank 0 reads the checkpoint and sends it), the two processes
    finish as one process does in one go."""
    recipe = _planted_kg(tmp_path / "data")
    one, two = tmp_path / "one", tmp_path / "two"
    r = _train(one, recipe, *CASES[case])
    assert r.returncode == 0, r.stderr[-3000:]
    r = _train(two, recipe, *CASES[case], nproc=2, epochs=EPOCHS - 1)
    assert r.returncode == 0, r.stderr[-3000:]
    r = _train(two, recipe, *CASES[case], "--resume", nproc=2)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    h1 = json.loads((one / "history.json").read_text())
    h2 = json.loads((two / "history.json").read_text())
    assert [h["epoch"] for h in h2] == list(range(1, EPOCHS + 1))
    for a, b in zip(h1, h2, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        for k in ("ndcg@20", "recall@20"):
            assert b["valid"][k] == pytest.approx(a["valid"][k], abs=1e-4), (a["epoch"], k)
    r1, r2 = kgrec.Recommender.load(one), kgrec.Recommender.load(two)
    assert torch.allclose(r1.item_embedding, r2.item_embedding, atol=1e-4)
    assert torch.allclose(r1.user_embedding, r2.user_embedding, atol=1e-4)
    # rank 0 alone wrote the run: one config, one history
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())


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
