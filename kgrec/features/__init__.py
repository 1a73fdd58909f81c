"""Node input features: text embeddings from a BERT-family encoder, categorical, numeric and
precomputed vectors (see :func:`build_features`)."""

from __future__ import annotations

from kgrec.features.build import GraphFeatures, Modalities, build_features
from kgrec.features.nodetext import node_texts, readable, relation_texts
from kgrec.features.text import DEFAULT_MODEL, TextEncoder

__all__ = ["DEFAULT_MODEL", "GraphFeatures", "Modalities", "TextEncoder", "build_features",
           "node_texts", "readable", "relation_texts"]
