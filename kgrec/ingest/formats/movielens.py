"""MovieLens CSV releases (``ratings.csv``, ``movies.csv``, optional ``tags.csv``).

Genres and free-text tags become a small knowledge graph: ``Item -[HAS_GENRE]-> Entity`` and
``Item -[HAS_TAG]-> Entity``, where each genre or (lower-cased) tag is an entity whose name is
its text.
"""

from __future__ import annotations

import numpy as np

from kgrec.errors import DataFormatError
from kgrec.graph import ENTITY, ITEM, USER
from kgrec.ingest.builder import GraphBuilder
from kgrec.ingest.recipe import Recipe
from kgrec.ingest.tables import read_table


def read(recipe: Recipe) -> GraphBuilder:
    m = recipe.mapping
    movies = read_table(recipe.file("movies"), sep=",", quoted=True)
    ratings = read_table(recipe.file("ratings"), sep=",", quoted=True)
    titles, genres = movies.strings("title"), movies.strings("genres")
    movie_ids = movies.strings("movieId")
    no_genre = m.get("no_genre", "(no genres listed)")
    genre_lists = [[g for g in gs.split("|") if g and g != no_genre] for gs in genres]
    tpl = recipe.template("item_text", "{title}. Genres: {genres}")
    assert tpl is not None
    text = [recipe.render("item_text", tpl, {"title": t, "genres": ", ".join(g), "id": i})
            for t, g, i in zip(titles, genre_lists, movie_ids, strict=True)]

    b = GraphBuilder(recipe.name)
    items = b.add_nodes(ITEM, movie_ids, name=np.asarray(titles, dtype=str),
                        text=np.asarray(text, dtype=str),
                        domain=np.full(len(movie_ids), str(m.get("domain", "movie"))))
    if len(items.lookup) != len(movie_ids):
        raise DataFormatError("duplicate movieId", file=movies.path, field="movieId")
    user_raw = ratings.ints("userId")  # validates the column
    user_ids = [str(u) for u in np.unique(user_raw)]
    users = b.add_nodes(USER, user_ids)
    b.add_interactions(ratings.indices("userId", users.lookup, "user"),
                       ratings.indices("movieId", items.lookup, "movie"),
                       behavior=str(m.get("behavior", "rate")),
                       weight=ratings.floats("rating"), timestamp=ratings.floats("timestamp"))

    # The small KG: genres, then tags.
    ent_names: list[str] = []
    ent_index: dict[str, int] = {}

    def entity(kind: str, name: str) -> int:
        key = f"{kind}:{name}"
        if key not in ent_index:
            ent_index[key] = len(ent_names)
            ent_names.append(name)
        return ent_index[key]

    g_item, g_ent = [], []
    for i, gl in enumerate(genre_lists):
        for g in gl:
            g_item.append(i)
            g_ent.append(entity("genre", g))
    t_item, t_ent = [], []
    tags_path = recipe.file("tags", required=False)
    if tags_path is not None:
        tags = read_table(tags_path, sep=",", quoted=True)
        t_items = tags.indices("movieId", items.lookup, "movie")
        seen = set()
        for i, tag in zip(t_items.tolist(), tags.strings("tag"), strict=True):
            tag = " ".join(tag.lower().split())
            if tag and (i, tag) not in seen:
                seen.add((i, tag))
                t_item.append(i)
                t_ent.append(entity("tag", tag))
    if ent_names:
        b.add_nodes(ENTITY, list(ent_index), name=np.asarray(ent_names, dtype=str),
                    text=np.asarray(ent_names, dtype=str))
        for rel, src, dst in (("HAS_GENRE", g_item, g_ent), ("HAS_TAG", t_item, t_ent)):
            if src:
                b.add_edges((ITEM, rel, ENTITY), np.asarray(src), np.asarray(dst))
    return b
