"""KGCN / RippleNet / MCCLK processed files.

``ratings_final`` holds ``user item label`` rows (label 1 = positive, 0 = a negative sampled
by the preprocessing); ``kg_final`` holds ``head relation tail`` with items as entities
``0..I-1``. Optional files give the raw item ids (``item_index2entity_id``), item names and
the readable relation names (the raw ``kg.txt``, row-aligned with ``kg_final``).
"""

from __future__ import annotations

import numpy as np

from kgrec.errors import DataFormatError
from kgrec.graph import ITEM, SAMPLED_NEGATIVE, USER
from kgrec.ingest.builder import GraphBuilder
from kgrec.ingest.recipe import Recipe
from kgrec.ingest.tables import read_int_matrix, read_table


def _where(lines: list[int] | None, row: int) -> int:
    return lines[row] if lines is not None else row + 1


def read(recipe: Recipe) -> GraphBuilder:
    ratings_path = recipe.file("ratings")
    assert ratings_path is not None
    ratings, r_lines = read_int_matrix(ratings_path, ("user", "item", "label"))
    bad = ~np.isin(ratings[:, 2], (0, 1))
    if bad.any():
        k = int(np.argmax(bad))
        raise DataFormatError(f"label must be 0 or 1, got {ratings[k, 2]}", file=ratings_path,
                              line=_where(r_lines, k), field="label")

    # Items: their raw ids (artist id, ISBN) when the recipe names the mapping file.
    item_ids_path = recipe.file("item_ids", required=False)
    if item_ids_path is not None:
        t = read_table(item_ids_path, sep=None, header=["raw_id", "index"])
        index = t.ints("index")
        order = np.argsort(index)
        if not np.array_equal(index[order], np.arange(len(index))):
            raise DataFormatError("item indices must be exactly 0..N-1", file=item_ids_path,
                                  field="index")
        raw_ids = np.asarray(t.strings("raw_id"), dtype=str)[order]
        n_items = len(raw_ids)
    else:
        n_items = int(ratings[:, 1].max()) + 1 if len(ratings) else 0
        raw_ids = np.asarray([str(i) for i in range(n_items)], dtype=str)
    out = ratings[:, 1] >= n_items
    if out.any():
        k = int(np.argmax(out))
        raise DataFormatError(f"item {ratings[k, 1]} out of range (the recipe's item file has "
                              f"{n_items} items)", file=ratings_path, line=_where(r_lines, k),
                              field="item")

    item_attrs = {"domain": np.full(n_items, str(recipe.opt("domain", "default")))}
    names_path = recipe.file("item_names", required=False)
    if names_path is not None:
        t = read_table(names_path, sep="\t", header=True, min_fields=2)
        id_col = recipe.opt("item_names_id_column", "id")
        name_col = recipe.opt("item_names_column", "name")
        by_id = dict(zip(t.strings(id_col), t.strings(name_col), strict=True))
        names = np.asarray([by_id.get(r, "") for r in raw_ids.tolist()], dtype=str)
        item_attrs["name"] = names
        tpl = recipe.template("item_text", "{name}")
        assert tpl is not None
        item_attrs["text"] = np.asarray(
            [recipe.render("item_text", tpl, {"name": n, "id": r}) if n else ""
             for n, r in zip(names.tolist(), raw_ids.tolist(), strict=True)], dtype=str)

    n_users = int(ratings[:, 0].max()) + 1 if len(ratings) else 0
    b = GraphBuilder(recipe.name)
    b.add_nodes(USER, [str(u) for u in range(n_users)])
    b.add_nodes(ITEM, raw_ids, **item_attrs)
    pos = ratings[:, 2] == 1
    b.add_interactions(ratings[pos, 0], ratings[pos, 1], behavior=str(recipe.opt("behavior",
                                                                                  "interact")))
    if (~pos).any():
        b.add_edges(SAMPLED_NEGATIVE, ratings[~pos, 0], ratings[~pos, 1])

    kg_path = recipe.file("kg", required=False)
    if kg_path is not None:
        kg, k_lines = read_int_matrix(kg_path, ("head", "relation", "tail"))
        names = _relation_names(recipe, kg, k_lines)
        n_ent = int(max(kg[:, 0].max(), kg[:, 2].max())) + 1 if len(kg) else n_items
        n_ent = max(n_ent, n_items)
        b.add_nodes("Entity", [str(e) for e in range(n_items, n_ent)])
        b.add_knowledge(kg[:, 0], kg[:, 1], kg[:, 2], names, n_items)
    return b


def _relation_names(recipe: Recipe, kg: np.ndarray, lines: list[int] | None) -> list[str]:
    n_rel = int(kg[:, 1].max()) + 1 if len(kg) else 0
    raw_path = recipe.file("relation_names", required=False)
    if raw_path is None:
        return [f"relation_{r}" for r in range(n_rel)]
    # The raw kg.txt lists the same triples in the same order, with names instead of ids.
    t = read_table(raw_path, sep=None, header=["head", "relation", "tail"])
    if len(t) != len(kg):
        raise DataFormatError(f"has {len(t)} triples but the KG file has {len(kg)}; they must be "
                              "row-aligned", file=raw_path)
    heads, tails, rels = t.ints("head"), t.ints("tail"), t.strings("relation")
    mismatch = (heads != kg[:, 0]) | (tails != kg[:, 2])
    if mismatch.any():
        k = int(np.argmax(mismatch))
        raise DataFormatError("head/tail differ from the KG file's row "
                              f"{_where(lines, k)}; the files are not row-aligned",
                              file=raw_path, line=t.lines[k])
    names: dict[int, str] = {}
    for k, (r, name) in enumerate(zip(kg[:, 1].tolist(), rels, strict=True)):
        if names.setdefault(r, name) != name:
            raise DataFormatError(f"relation id {r} has two names: {names[r]!r} and {name!r}",
                                  file=raw_path, line=t.lines[k], field="relation")
    return [names.get(r, f"relation_{r}") for r in range(n_rel)]
