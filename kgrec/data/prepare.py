"""A config's data, ready to train on: loaded (:func:`kgrec.ingest.load_source`), split
(:func:`kgrec.data.split`) and, if the config says so, noised (:mod:`kgrec.data.noise`)."""

from __future__ import annotations

from kgrec.config import DataConfig
from kgrec.data.folds import Split
from kgrec.data.noise import interaction_noise, kg_noise
from kgrec.data.strategies import split
from kgrec.graph import RecGraph
from kgrec.ingest import load_source
from kgrec.ingest.events import with_events


def split_for(cfg: DataConfig, graph: RecGraph | None = None) -> Split:
    """Load ``cfg.dataset`` (unless ``graph`` is given) and split it as ``cfg`` says.

    The same config always gives the same split, which is how a saved model is evaluated
    on exactly the test set it never saw.
    """
    if graph is None:
        graph = load_source(cfg.dataset, cfg.data_dir)
    if cfg.events:
        graph = with_events(graph, cfg.events)
    s = split(graph, cfg.split, valid=cfg.valid, test=cfg.test, seed=cfg.seed, shots=cfg.shots,
              target=cfg.target, target_only=cfg.target_only, warm=cfg.warm)
    for kind, share in cfg.noise_levels():
        s = (interaction_noise if kind == "inter" else kg_noise)(s, share, seed=cfg.seed)
    return s
