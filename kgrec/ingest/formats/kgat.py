"""KGAT / KGIN text format: ``train.txt`` / ``test.txt`` with one line per user
(``user item item ...``), an optional ``kg_final.txt`` (``head relation tail``, items are
entities ``0..I-1``) and optional ``*_list.txt`` files mapping remapped ids to original ones.
The dataset's own split is kept in the interactions' ``fold`` property."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from kgrec.errors import DataFormatError
from kgrec.graph import ENTITY, ITEM, USER
from kgrec.ingest.builder import GraphBuilder
from kgrec.ingest.recipe import Recipe
from kgrec.ingest.tables import read_int_matrix, read_table, read_text

log = logging.getLogger(__name__)


def _read_lists(path: Path) -> tuple[np.ndarray, np.ndarray]:
    users, items = [], []
    for ln, line in enumerate(read_text(path).splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            vals = [int(p) for p in parts]
        except ValueError:
            bad = next(p for p in parts if not p.lstrip("-").isdigit())
            raise DataFormatError(f"not an integer id: {bad!r}", file=path, line=ln,
                                  field="item" if parts[0] != bad else "user") from None
        if min(vals) < 0:
            raise DataFormatError("negative id", file=path, line=ln)
        users.extend([vals[0]] * (len(vals) - 1))
        items.extend(vals[1:])
    return np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)


def _ids(recipe: Recipe, key: str, n: int) -> np.ndarray:
    path = recipe.file(key, required=False)
    if path is None:
        return np.asarray([str(i) for i in range(n)], dtype=str)
    t = read_table(path, sep=None, header=True, min_fields=2)
    remap = t.ints("remap_id")
    org = np.asarray(t.strings("org_id"), dtype=str)
    if len(remap) < n or not np.array_equal(np.sort(remap)[:n], np.arange(n)):
        raise DataFormatError(f"must map remap ids 0..{n - 1}", file=path, field="remap_id")
    out = np.empty(len(remap), dtype=org.dtype)
    out[remap] = org
    return out


def read(recipe: Recipe) -> GraphBuilder:
    folds = []
    for fold in ("train", "test"):
        path = recipe.file(fold, required=fold == "train")
        if path is not None:
            folds.append((fold, path, *_read_lists(path)))
    n_users = max(int(u.max()) + 1 for *_, u, _ in folds if len(u))
    n_items = max(int(i.max()) + 1 for *_, i in folds if len(i))
    user_ids = _ids(recipe, "user_list", n_users)
    item_ids = _ids(recipe, "item_list", n_items)
    n_users, n_items = max(n_users, len(user_ids)), max(n_items, len(item_ids))

    b = GraphBuilder(recipe.name)
    b.add_nodes(USER, user_ids)
    b.add_nodes(ITEM, item_ids, domain=np.full(len(item_ids), str(recipe.opt("domain",
                                                                             "default"))))
    behavior = str(recipe.opt("behavior", "interact"))
    for fold, _path, u, i in folds:
        b.add_interactions(u, i, behavior=behavior, fold=fold)

    kg_path = recipe.file("kg", required=False)
    if kg_path is None:
        log.warning("%s: no KG file in the recipe; loading interactions only", recipe.name)
        return b
    kg, _ = read_int_matrix(kg_path, ("head", "relation", "tail"))
    n_ent = max(int(kg[:, [0, 2]].max()) + 1 if len(kg) else 0, len(item_ids))
    ent_ids = _ids(recipe, "entity_list", n_ent)
    n_rel = int(kg[:, 1].max()) + 1 if len(kg) else 0
    rel_ids = _ids(recipe, "relation_list", n_rel)
    b.add_nodes(ENTITY, ent_ids[len(item_ids):n_ent])
    b.add_knowledge(kg[:, 0], kg[:, 1], kg[:, 2], rel_ids[:n_rel].tolist(), len(item_ids))
    return b
