"""Turning source files into a :class:`~kgrec.graph.RecGraph` via recipes.

``load_dataset("lastfm-hetrec-kg")`` finds ``loaders/lastfm-hetrec-kg.yaml``, parses the files
it names once, and keeps the result in the local store (``$KGREC_HOME/graphs/<name>``); later
loads read the store and parse nothing, unless the recipe or a source file changed.
:func:`load_source` loads whatever a config's ``data.dataset`` names: a bundled dataset, a
recipe file or a Neo4j database.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.errors import ConfigError
from kgrec.graph import RecGraph
from kgrec.ingest.formats import readers
from kgrec.ingest.recipe import Recipe, list_recipes, recipe_path
from kgrec.paths import home_dir
from kgrec.schema import GraphSchema
from kgrec.store.local import LocalStore

log = logging.getLogger(__name__)

__all__ = ["NEO4J_SCHEMES", "Recipe", "is_neo4j_uri", "list_datasets", "load_dataset",
           "load_recipe", "load_source", "parse_recipe"]

#: the URI schemes of a graph read from Neo4j (``data.dataset: bolt://host:7687#NAME``)
NEO4J_SCHEMES = ("bolt://", "bolt+s://", "neo4j://", "neo4j+s://")


def list_datasets() -> list[str]:
    """Names of the bundled dataset recipes (``loaders/*.yaml``)."""
    return list_recipes()


def parse_recipe(recipe: Recipe) -> RecGraph:
    """Parse a resolved recipe's source files into a validated RecGraph (no cache)."""
    reader = readers().get(recipe.format)
    if reader is None:
        raise ConfigError(f"{recipe.source}: unknown format {recipe.format!r}; "
                          f"known: {sorted(readers())}")
    schema = GraphSchema.load(recipe.schema)
    start = time.perf_counter()
    builder = reader(recipe)
    graph = builder.build(meta={"recipe": recipe.name, "format": recipe.format,
                                "description": recipe.description, "protocol": recipe.protocol,
                                "source": str(recipe.root), "recipe_file": recipe.source,
                                "attributes": recipe.attributes}, source=recipe.source)
    graph.validate(schema)
    recipe.check_behavior(graph)
    recipe.check_attributes(graph)
    if recipe.drop_items_without_interactions:
        used = np.bincount(graph.interactions.dst, minlength=graph.num_items) > 0
        log.info("%s: dropping %d catalogue items nobody interacted with", recipe.name,
                 int((~used).sum()))
        graph = graph.keep_items(used)
    log.info("parsed %s in %.1fs: %r", recipe.name, time.perf_counter() - start, graph)
    return graph


def load_recipe(recipe: str | Path | Recipe | dict[str, Any], *, data_dir: str | Path | None = None,
                cache: bool = True) -> RecGraph:
    """Load the graph a recipe describes.

    Args:
        recipe: a recipe file, a parsed :class:`Recipe` or its dict.
        data_dir: the folder holding the datasets (default: ``$KGREC_DATA_DIR``).
        cache: read from / write to the local store under ``$KGREC_HOME/graphs``.
    """
    if isinstance(recipe, dict):
        recipe = Recipe.from_dict(recipe)
    elif not isinstance(recipe, Recipe):
        recipe = Recipe.load(recipe)
    recipe.resolve(data_dir)
    if not cache:
        return parse_recipe(recipe)
    store = LocalStore(home_dir() / "graphs" / recipe.name)
    fingerprint = recipe.fingerprint(_code_fingerprint(recipe.format))
    if store.exists() and store.manifest().get("fingerprint") == fingerprint:
        log.info("loading %s from the local store %s", recipe.name, store.root)
        return store.read()
    graph = parse_recipe(recipe)
    graph.meta["fingerprint"] = fingerprint
    store.write(graph, GraphSchema.load(recipe.schema), extra={"fingerprint": fingerprint})
    return graph


def _code_fingerprint(fmt: str) -> str:
    """A hash of the code that turns source files into a graph, so a changed reader re-parses."""
    here = Path(__file__).parent
    name = fmt.replace("recbole-", "").replace("movielens-csv", "movielens")
    files = [here / "builder.py", here / "tables.py", here / "formats" / f"{name}.py",
             here.parent / "graph.py"]
    h = hashlib.sha256()
    for f in files:
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()


def load_dataset(name: str, *, data_dir: str | Path | None = None, cache: bool = True) -> RecGraph:
    """Load a bundled dataset by name, e.g. ``"ml-100k-kb4rec"`` (see :func:`list_datasets`)."""
    return load_recipe(recipe_path(name), data_dir=data_dir, cache=cache)


def is_neo4j_uri(source: str | Path) -> bool:
    """Whether ``source`` names a Neo4j database (:data:`NEO4J_SCHEMES`) rather than a file."""
    return str(source).startswith(NEO4J_SCHEMES)


def load_source(dataset: str | Path, data_dir: str | Path | None = None, *,
                cache: bool = True) -> RecGraph:
    """Load the graph ``dataset`` names, as ``data.dataset`` does.

    Args:
        dataset: a bundled dataset's name (:func:`list_datasets`), a recipe file
            (``.yaml`` / ``.yml``), or a Neo4j URI (:data:`NEO4J_SCHEMES`):
            ``bolt://host:7687#NAME`` reads dataset ``NAME`` of a database holding several,
            ``bolt://host:7687`` the one it holds.
        data_dir: the folder holding the datasets (default: ``$KGREC_DATA_DIR``); a
            database ignores it.
        cache: for the recipes: read from / write to the local store (:func:`load_recipe`).
    """
    source = str(dataset)
    if is_neo4j_uri(source):
        from kgrec.store.neo4j import Neo4jStore  # the driver loads only when needed

        uri, _, name = source.partition("#")
        with Neo4jStore(uri) as store:
            return store.read(dataset=name or None)
    if source.endswith((".yaml", ".yml")):
        return load_recipe(source, data_dir=data_dir, cache=cache)
    return load_dataset(source, data_dir=data_dir, cache=cache)
