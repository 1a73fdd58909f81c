"""Recommender models: MF-BPR, LightGCN and the KG-aware heterogeneous GNN."""

from __future__ import annotations

from kgrec.config import ModelConfig
from kgrec.models.base import GraphInputs, RecModel
from kgrec.models.kggnn import KGGNN
from kgrec.models.lightgcn import LightGCN
from kgrec.models.mf import MF

__all__ = ["KGGNN", "MF", "GraphInputs", "LightGCN", "RecModel", "build_model"]


def build_model(cfg: ModelConfig, inputs: GraphInputs) -> RecModel:
    """The model ``cfg.name`` names, sized for ``inputs``."""
    if cfg.name == "mf":
        return MF(inputs, cfg.dim)
    if cfg.name == "lightgcn":
        return LightGCN(inputs, cfg.dim, cfg.layers)
    return KGGNN(inputs, cfg.dim, cfg.layers, cfg.kg_layers, cfg.kg_dropout)
