"""kgrec: recommenders that generalise, from users, items and a knowledge graph in one
heterogeneous graph.

The whole path in five calls::

    import kgrec
    graph = kgrec.load_dataset("ml-100k-kb4rec")
    split = kgrec.split(graph, "random", valid=0.1, test=0.1, seed=0)
    rec = kgrec.train(split, kgrec.Config(model="lightgcn"))
    print(kgrec.evaluate(rec, split.test, k=[10, 20]))
    rec.recommend(["196"], k=10)

``import kgrec`` is cheap: each name below is imported from its module on first use, so a
command that only reads a recipe never loads torch, PyTorch Geometric or transformers.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import TYPE_CHECKING, Any

# PyG's import triggers torch.jit deprecation noise, and CSR propagation a 'beta' notice;
# neither is actionable for kgrec's users.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
warnings.filterwarnings("ignore", message=r"Sparse CSR tensor support is in beta.*")
warnings.filterwarnings("ignore", message=r"Sparse invariant checks are implicitly disabled.*")

from kgrec.errors import (  # noqa: E402  (light: the error classes only)
    ConfigError,
    DataFormatError,
    DatasetNotFoundError,
    KgrecError,
    ModelError,
    SchemaError,
    StoreError,
    UnknownIdError,
)

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "Config": "kgrec.config", "DataConfig": "kgrec.config", "EvalConfig": "kgrec.config",
    "ModelConfig": "kgrec.config", "TrainConfig": "kgrec.config",
    "EvalSet": "kgrec.data", "Split": "kgrec.data", "ctr_split": "kgrec.data",
    "split": "kgrec.data",
    "MetricTable": "kgrec.evaluate", "evaluate": "kgrec.evaluate",
    "evaluate_ctr": "kgrec.evaluate",
    "RecGraph": "kgrec.graph",
    "list_datasets": "kgrec.ingest", "load_dataset": "kgrec.ingest",
    "load_recipe": "kgrec.ingest",
    "GraphSchema": "kgrec.schema",
    "Recommendations": "kgrec.recommender", "Recommender": "kgrec.recommender",
    "LocalStore": "kgrec.store",
    "train": "kgrec.train",  # the trainer wrapped in a Recommender (kgrec.train.api)
}
# subpackages reachable as attributes (kgrec.ingest.recipe_path, ...)
_SUBMODULES = {"config", "data", "evaluate", "features", "graph", "ingest", "models", "neo4j",
               "paths", "plot", "progress", "recommender", "schema", "serve", "store", "train",
               "tune"}

__all__ = [
    "Config", "ConfigError", "DataConfig", "DataFormatError", "DatasetNotFoundError", "EvalConfig",
    "EvalSet", "GraphSchema", "KgrecError", "LocalStore", "MetricTable", "ModelConfig",
    "ModelError", "RecGraph", "Recommendations", "Recommender", "SchemaError", "Split",
    "StoreError", "TrainConfig", "UnknownIdError", "__version__", "ctr_split", "evaluate",
    "evaluate_ctr", "list_datasets", "load_dataset", "load_recipe", "split", "train",
]


class _Package(types.ModuleType):
    """kgrec's module type: importing the subpackages ``kgrec.train`` and
    ``kgrec.evaluate`` must not shadow the functions of the same names (``kgrec.train(...)``
    trains), as Python's import system would by setting the attribute on the package."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("train", "evaluate") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


# The config's checks of names (models, losses, split strategies, metrics) belong to the
# layers that hold those registries (kgrec.config.add_check); the package's Config is the
# one with all of them installed.
_CHECKING_LAYERS = ("kgrec.data", "kgrec.models", "kgrec.evaluate")


def __getattr__(name: str) -> Any:
    if _LAZY.get(name) == "kgrec.config":
        for layer in _CHECKING_LAYERS:
            importlib.import_module(layer)
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"kgrec.{name}")
    else:
        raise AttributeError(f"module 'kgrec' has no attribute {name!r}")
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBMODULES})


if TYPE_CHECKING:  # for type checkers and IDEs: the names as if imported eagerly
    from kgrec.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
    from kgrec.data import EvalSet, Split, ctr_split, split
    from kgrec.evaluate import MetricTable, evaluate, evaluate_ctr
    from kgrec.graph import RecGraph
    from kgrec.ingest import list_datasets, load_dataset, load_recipe
    from kgrec.recommender import Recommendations, Recommender
    from kgrec.schema import GraphSchema
    from kgrec.store import LocalStore
    from kgrec.train import train
