"""RecBole atomic files: ``.inter``, ``.item``, ``.user``, ``.kg``, ``.link``.

Tab-separated, with a header of ``name:type`` fields. Linked items (``.link``: item ->
entity) stand for their entity in the KG; every other KG id becomes an ``Entity`` node.
"""

from __future__ import annotations

import numpy as np

from kgrec.errors import DataFormatError
from kgrec.graph import ENTITY, ITEM, MADE_BY, USER
from kgrec.ingest.builder import GraphBuilder
from kgrec.ingest.recipe import Recipe
from kgrec.ingest.tables import Table, read_table


def _read(path) -> Table:
    return read_table(path, sep="\t", header=True, strip_types=True)


def _made_by(recipe: Recipe, kg: Table, relations: list[str]) -> dict | None:
    """Who made each triple of the recipe's ``behavior_relations`` and when, from the
    ``.kg`` file's ``user_id`` and ``timestamp`` columns (``mapping.kg_user_field`` /
    ``kg_timestamp_field``); such a triple without a user names its line."""
    behavior = set(recipe.behavior_relations)
    if not behavior & set(relations):
        return None
    m = recipe.mapping
    ufield = m.get("kg_user_field", "user_id")
    users = kg.strings(ufield)
    for k, (r, u) in enumerate(zip(relations, users, strict=True)):
        if r in behavior and not u:
            raise DataFormatError(f"relation {r!r} is in behavior_relations, so each of its "
                                  "triples needs the user who made it", file=kg.path,
                                  line=kg.lines[k], field=ufield)
    tfield = m.get("kg_timestamp_field", "timestamp")
    when = np.full(len(users), np.nan)
    for k, x in enumerate(kg.strings(tfield) if tfield in kg.header else ()):
        try:
            when[k] = float(x) if x else np.nan
        except ValueError:
            raise DataFormatError(f"not a number: {x!r}", file=kg.path, line=kg.lines[k],
                                  field=tfield) from None
    return {"behavior": sorted(behavior), MADE_BY: np.asarray(users, dtype=str),
            "timestamp": when}


def read(recipe: Recipe) -> GraphBuilder:
    m = recipe.mapping
    uid, iid = m.get("user_field", "user_id"), m.get("item_field", "item_id")
    inter_path = recipe.file("inter")
    inter = _read(inter_path)

    b = GraphBuilder(recipe.name)
    # Items: from the .item file when present (with text), else those seen in .inter.
    item_path = recipe.file("item", required=False)
    if item_path is not None:
        items = _read(item_path)
        item_ids = items.strings(iid)
        rows = [dict(zip(items.header, r, strict=True)) for r in items.rows]
    else:
        item_ids = sorted(set(inter.strings(iid)))
        rows = [{iid: x} for x in item_ids]
    attrs: dict[str, np.ndarray] = {"domain": np.full(len(item_ids), str(m.get("domain",
                                                                            "default")))}
    name_field = m.get("item_name_field")
    if name_field:
        attrs["name"] = np.asarray([r.get(name_field, "") for r in rows], dtype=str)
    tpl = recipe.template("item_text")
    if tpl:
        attrs["text"] = np.asarray([recipe.render("item_text", tpl, r) for r in rows], dtype=str)
    for src, dst in (m.get("item_fields") or {}).items() if item_path is not None else ():
        attrs[dst] = np.asarray(items.strings(src), dtype=str)
    item_table = b.add_nodes(ITEM, item_ids, **attrs)
    if len(item_table.lookup) != len(item_ids):
        raise DataFormatError("duplicate item ids", file=item_path, field=iid)

    user_path = recipe.file("user", required=False)
    if user_path is not None:
        users = _read(user_path)
        user_ids = users.strings(uid)
        uattrs: dict[str, np.ndarray] = {}
        for src, spec in (m.get("user_fields") or {}).items():
            dst, typ = (spec, "string") if isinstance(spec, str) else (spec["name"], spec["type"])
            uattrs[dst] = users.ints(src) if typ == "int" else np.asarray(users.strings(src),
                                                                        dtype=str)
        utpl = recipe.template("user_text")
        if utpl:
            urows = [dict(zip(users.header, r, strict=True)) for r in users.rows]
            uattrs["text"] = np.asarray([recipe.render("user_text", utpl, r) for r in urows],
                                        dtype=str)
    else:
        user_ids = sorted(set(inter.strings(uid)), key=lambda s: (len(s), s))
        uattrs = {}
    user_table = b.add_nodes(USER, user_ids, **uattrs)

    u = inter.indices(uid, user_table.lookup, "user")
    i = inter.indices(iid, item_table.lookup, "item")
    wf, tf = m.get("weight_field"), m.get("timestamp_field")
    b.add_interactions(u, i, behavior=str(m.get("behavior", "interact")),
                       weight=inter.floats(wf) if wf else None,
                       timestamp=inter.floats(tf) if tf else None)

    kg_path = recipe.file("kg", required=False)
    if kg_path is not None:
        link_path = recipe.file("link")
        link = _read(link_path)
        ent_of_item = link.strings(m.get("link_entity_field", "entity_id"))
        linked_items = link.indices(iid, item_table.lookup, "item")
        item_of_ent = dict(zip(ent_of_item, linked_items.tolist(), strict=True))
        if len(item_of_ent) != len(ent_of_item):
            raise DataFormatError("an entity is linked to two items", file=link_path)
        kg = _read(kg_path)
        h_raw, r_raw, t_raw = (kg.strings(m.get(k, d)) for k, d in
                               (("kg_head_field", "head_id"), ("kg_relation_field", "relation_id"),
                                ("kg_tail_field", "tail_id")))
        ents = sorted({e for e in (*h_raw, *t_raw) if e not in item_of_ent})
        n_items = len(item_ids)
        joint = dict(item_of_ent)
        joint.update({e: n_items + k for k, e in enumerate(ents)})
        relations = sorted(set(r_raw))
        rid = {r: k for k, r in enumerate(relations)}
        b.add_nodes(ENTITY, ents)
        b.add_knowledge(np.asarray([joint[h] for h in h_raw], dtype=np.int64),
                        np.asarray([rid[r] for r in r_raw], dtype=np.int64),
                        np.asarray([joint[t] for t in t_raw], dtype=np.int64), relations, n_items,
                        made_by=_made_by(recipe, kg, r_raw))
    return b
