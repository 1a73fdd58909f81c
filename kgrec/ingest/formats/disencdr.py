"""DisenCDR cross-domain pairs: one folder per domain with ``train.txt`` / ``test.txt`` rows
``user item 1``. Users are shared across the domains; item ids are per domain, so items
become ``<domain>:<item>`` with their ``domain`` property set. The dataset's own split is kept
in the interactions' ``fold`` property."""

from __future__ import annotations

import numpy as np

from kgrec.errors import ConfigError
from kgrec.graph import ITEM, USER
from kgrec.ingest.builder import GraphBuilder
from kgrec.ingest.recipe import Recipe
from kgrec.ingest.tables import read_int_matrix


def read(recipe: Recipe) -> GraphBuilder:
    domains = list(recipe.files)
    if len(domains) < 1:
        raise ConfigError(f"{recipe.source}: files must map each domain to its train/test files")
    parts = []  # (domain, fold, users, local items)
    for d in domains:
        for fold in ("train", "test"):
            path = recipe.file(d, fold, required=fold == "train")
            if path is not None:
                rows, _ = read_int_matrix(path, ("user", "item", "label"))
                parts.append((d, fold, rows[:, 0], rows[:, 1]))
    n_users = max(int(u.max()) + 1 for _, _, u, _ in parts if len(u))
    # Items: those that occur in the domain's files (ids need not be contiguous).
    local: dict[str, np.ndarray] = {}
    item_ids, item_domain = [], []
    for d in domains:
        seen = np.unique(np.concatenate([i for dd, _, _, i in parts if dd == d]))
        remap = np.full(int(seen.max()) + 1 if len(seen) else 0, -1, dtype=np.int64)
        remap[seen] = np.arange(len(seen)) + len(item_ids)
        local[d] = remap
        item_ids.extend(f"{d}:{k}" for k in seen.tolist())
        item_domain.extend([d] * len(seen))
    b = GraphBuilder(recipe.name)
    b.add_nodes(USER, [str(u) for u in range(n_users)])
    b.add_nodes(ITEM, item_ids, domain=np.asarray(item_domain, dtype=str))
    behavior = str(recipe.opt("behavior", "interact"))
    for d, fold, u, i in parts:
        b.add_interactions(u, local[d][i], behavior=behavior, fold=fold)
    return b
