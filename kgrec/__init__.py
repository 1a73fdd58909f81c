"""kgrec: recommenders that generalise, from users, items and a knowledge graph in one
heterogeneous graph.

The whole path in five calls::

    import kgrec
    graph = kgrec.load_dataset("ml-100k-kb4rec")
    split = kgrec.split(graph, "random", valid=0.1, test=0.1, seed=0)
    rec = kgrec.train(split, kgrec.Config(model="lightgcn"))
    print(kgrec.evaluate(rec, split.test, k=[10, 20]))
    rec.recommend(["196"], k=10)
"""

import warnings

# PyG's import triggers torch.jit deprecation noise, and CSR propagation a 'beta' notice;
# neither is actionable for kgrec's users.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
warnings.filterwarnings("ignore", message=r"Sparse CSR tensor support is in beta.*")
warnings.filterwarnings("ignore", message=r"Sparse invariant checks are implicitly disabled.*")

from kgrec.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig  # noqa: E402
from kgrec.data import EvalSet, Split, ctr_split, split  # noqa: E402
from kgrec.errors import (  # noqa: E402
    ConfigError,
    DataFormatError,
    DatasetNotFoundError,
    KgrecError,
    ModelError,
    SchemaError,
    StoreError,
    UnknownIdError,
)
from kgrec.evaluate import MetricTable, evaluate, evaluate_ctr  # noqa: E402
from kgrec.graph import RecGraph  # noqa: E402
from kgrec.ingest import list_datasets, load_dataset, load_recipe  # noqa: E402
from kgrec.schema import GraphSchema  # noqa: E402
from kgrec.serve import Recommendations, Recommender  # noqa: E402
from kgrec.store import LocalStore  # noqa: E402
from kgrec.train import train  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Config", "ConfigError", "DataConfig", "DataFormatError", "DatasetNotFoundError", "EvalConfig",
    "EvalSet", "GraphSchema", "KgrecError", "LocalStore", "MetricTable", "ModelConfig",
    "ModelError", "RecGraph", "Recommendations", "Recommender", "SchemaError", "Split",
    "StoreError",
    "TrainConfig", "UnknownIdError", "__version__", "ctr_split", "evaluate", "evaluate_ctr",
    "list_datasets", "load_dataset", "load_recipe", "split", "train",
]
