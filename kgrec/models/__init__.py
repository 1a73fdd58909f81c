"""Recommender models: MF-BPR, LightGCN, the KG-aware GNN and the text-initialised
multi-task heterogeneous GNN."""

from __future__ import annotations

from kgrec.config import ModelConfig
from kgrec.models.base import GraphInputs, PairBatch, RecModel
from kgrec.models.hgnn import HGNN
from kgrec.models.kggnn import KGGNN
from kgrec.models.lightgcn import LightGCN
from kgrec.models.mf import MF

__all__ = ["HGNN", "KGGNN", "MF", "GraphInputs", "LightGCN", "PairBatch", "RecModel",
           "build_model"]


def build_model(cfg: ModelConfig, inputs: GraphInputs, *, device: str = "auto",
                progress: bool = True) -> RecModel:
    """The model ``cfg.name`` names, sized for ``inputs`` (``device``/``progress``: for the
    text encoder of ``hgnn``)."""
    if cfg.name == "mf":
        return MF(inputs, cfg.dim)
    if cfg.name == "lightgcn":
        return LightGCN(inputs, cfg.dim, cfg.layers)
    if cfg.name == "hgnn":
        return HGNN(inputs, cfg, device=device, progress=progress)
    return KGGNN(inputs, cfg.dim, cfg.layers, cfg.kg_layers, cfg.kg_dropout)
