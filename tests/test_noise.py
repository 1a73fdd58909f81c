"""Noisy training data for robustness runs: the noise lands in training only."""

from __future__ import annotations

import numpy as np
import pytest

import kgrec
from kgrec.data.noise import interaction_noise, kg_noise
from kgrec.errors import ConfigError
from kgrec.models import GraphInputs


def test_interaction_noise_replaces_a_share_and_never_adds_a_held_out_pair(lastfm):
    s = kgrec.split(lastfm, "random", seed=0)
    noisy = interaction_noise(s, 0.2, seed=1)
    assert (noisy.train_users == s.train_users).all()
    changed = noisy.train_items != s.train_items
    assert abs(changed.mean() - 0.2) < 0.005
    n = s.num_items
    held = set()
    for m in (s.valid.positives, s.test.positives):
        u, i = m.nonzero()
        held |= set((u.astype(np.int64) * n + i).tolist())
    new = set((noisy.train_users[changed].astype(np.int64) * n
               + noisy.train_items[changed]).tolist())
    assert not new & held
    assert len(set((noisy.train_users.astype(np.int64) * n + noisy.train_items).tolist())) \
        == len(noisy.train_users)  # no duplicate pair created
    assert noisy.test is s.test and noisy.valid is s.valid  # evaluation stays clean
    with pytest.raises(ConfigError, match="noise share"):
        interaction_noise(s, 1.5)


def test_kg_noise_shuffles_relations_of_a_share_of_triples(lastfm):
    s = kgrec.split(lastfm, "random", seed=0)
    clean = lastfm.knowledge()
    noisy = kg_noise(s, 0.3, seed=2)
    kg = GraphInputs.from_split(noisy).kg
    assert kg is noisy.kg
    assert (kg.head == clean.head).all() and (kg.tail == clean.tail).all()
    assert sorted(kg.relation.tolist()) == sorted(clean.relation.tolist())
    changed = (kg.relation != clean.relation).mean()
    assert 0.15 < changed <= 0.3  # a shuffled triple may draw its own relation back
    # the original is intact
    assert GraphInputs.from_split(s).kg.relation.tolist() == clean.relation.tolist()


def test_noise_in_the_config_rebuilds_the_same_noisy_split(lastfm):
    from kgrec.config import DataConfig
    from kgrec.data.folds import fingerprint
    from kgrec.data.prepare import split_for

    cfg = DataConfig(dataset="lastfm-hetrec-kg", noise=["inter=0.1", "kg=0.2"])
    a, b = split_for(cfg, lastfm), split_for(cfg, lastfm)
    clean = split_for(DataConfig(dataset="lastfm-hetrec-kg"), lastfm)
    assert fingerprint(a) == fingerprint(b) != fingerprint(clean)  # evaluate can rebuild it
    assert (a.kg.relation == b.kg.relation).all() and a.kg is not None
    with pytest.raises(ConfigError, match=r"data\.noise"):
        kgrec.Config(data={"noise": ["edges=0.1"]})
    with pytest.raises(ConfigError, match=r"data\.noise"):
        kgrec.Config(data={"noise": ["inter=2"]})
