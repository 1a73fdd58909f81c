"""MovieLens CSV releases (``ratings.csv``, ``movies.csv``, optional ``tags.csv``).

Genres and free-text tags become a small knowledge graph: ``Item -[HAS_GENRE]-> Entity`` and
``Item -[HAS_TAG]-> Entity``, where each genre or (lower-cased) tag is an entity whose name is
its text. Genres are facts about a film; tags are behaviour (users write them about films they
watched), so every ``HAS_TAG`` edge keeps the user who wrote it and when (one edge per user,
film and tag), and a split keeps only the tags of its training interactions.
"""

from __future__ import annotations

import numpy as np

from kgrec.errors import DataFormatError
from kgrec.graph import ENTITY, ITEM, MADE_BY, USER
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
    t_item, t_ent, t_user, t_time = [], [], [], []
    tags_path = recipe.file("tags", required=False)
    if tags_path is not None:
        tags = read_table(tags_path, sep=",", quoted=True)
        t_items = tags.indices("movieId", items.lookup, "movie")
        taggers = [str(u) for u in tags.ints("userId").tolist()]
        when = tags.floats("timestamp")
        seen = set()
        for i, tag, u, t in zip(t_items.tolist(), tags.strings("tag"), taggers, when.tolist(),
                                strict=True):
            tag = " ".join(tag.lower().split())
            if tag and (u, i, tag) not in seen:
                seen.add((u, i, tag))
                t_item.append(i)
                t_ent.append(entity("tag", tag))
                t_user.append(u)
                t_time.append(t)
    if ent_names:
        b.add_nodes(ENTITY, list(ent_index), name=np.asarray(ent_names, dtype=str),
                    text=np.asarray(ent_names, dtype=str))
        if g_item:
            b.add_edges((ITEM, "HAS_GENRE", ENTITY), np.asarray(g_item), np.asarray(g_ent))
        if t_item:
            b.add_edges((ITEM, "HAS_TAG", ENTITY), np.asarray(t_item), np.asarray(t_ent),
                        **{MADE_BY: np.asarray(t_user, dtype=str),
                           "timestamp": np.asarray(t_time, dtype=np.float64)})
    return b
