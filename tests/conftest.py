"""Shared fixtures: real datasets from $KGREC_DATA_DIR (or ../shared/data), a private
KGREC_HOME per test process, one text-embedding cache per test run (its entries are keyed by
model and text, so the parallel workers share it and each text is encoded once), and small
graphs that tests write themselves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# pytest-xdist runs one worker per core: each worker's torch gets its share of the cores, not
# all of them, or the workers' thread pools fight over the same cores (set before torch loads).
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))
    os.environ.setdefault("MKL_NUM_THREADS", str(_share))


@pytest.fixture(scope="session", autouse=True)
def kgrec_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each test session gets its own cache, so tests never read a stale local store."""
    home = tmp_path_factory.mktemp("kgrec_home")
    os.environ["KGREC_HOME"] = str(home)
    base = tmp_path_factory.getbasetemp()  # an xdist worker's is <the run's>/popen-gwN
    run = base.parent if "PYTEST_XDIST_WORKER" in os.environ else base
    os.environ["KGREC_TEXT_CACHE"] = str(run / "text-cache")
    return home


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets. Missing data is an error, not a skip: these tests are the point."""
    from kgrec.paths import data_dir as find

    return find()


@pytest.fixture(scope="session")
def lastfm(data_dir: Path):
    import kgrec

    return kgrec.load_dataset("lastfm-hetrec-kg", data_dir=data_dir)


@pytest.fixture(scope="session")
def ml100k(data_dir: Path):
    import kgrec

    return kgrec.load_dataset("ml-100k-kb4rec", data_dir=data_dir)


def write_kgcn(root: Path, ratings: str, kg: str | None = None, names: str | None = None,
               item_ids: str | None = None) -> Path:
    """A tiny KGCN-format dataset and its recipe under ``root``; returns the recipe path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ratings.txt").write_text(ratings)
    files = {"ratings": "ratings.txt"}
    if kg is not None:
        (root / "kg.txt").write_text(kg)
        files["kg"] = "kg.txt"
    if names is not None:
        (root / "names.tsv").write_text(names)
        files["item_names"] = "names.tsv"
    if item_ids is not None:
        (root / "item_ids.txt").write_text(item_ids)
        files["item_ids"] = "item_ids.txt"
    import yaml

    recipe = {"name": f"tiny-{root.name}", "format": "kgcn", "path": str(root), "files": files,
              "mapping": {"domain": "music", "behavior": "listen"}}
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def planted_ratings(n_users: int = 400, n_items: int = 300, tastes: int = 6,
                    per_user: int = 24, off_taste: float = 0.15, seed: int = 0) -> str:
    """KGCN ratings lines (``user item 1``) with a structure a recommender can learn: users
    and items fall into ``tastes`` groups and a user picks most of their items from their
    own group (``off_taste`` of them at random). Small enough for mechanics tests to train
    in seconds, structured enough that learning shows (and a bad learning rate shows too)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    item_taste = np.arange(n_items) % tastes
    lines = []
    for u in range(n_users):
        own = np.flatnonzero(item_taste == u % tastes)
        picks = set(rng.choice(own, size=min(per_user, len(own)), replace=False).tolist())
        picks |= set(rng.choice(n_items, size=int(off_taste * per_user), replace=False).tolist())
        lines += [f"{u}\t{i}\t1" for i in sorted(picks)]
    return "\n".join(lines) + "\n"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Heaviest modules first (their ``pytest.mark.cost(seconds)``, a measured total), so the
    parallel workers (``-n 2 --dist loadfile``, which hands out whole files in collection
    order) do not end with one long file running alone: longest-first scheduling."""
    def cost(item: pytest.Item) -> float:
        mark = item.get_closest_marker("cost")
        return mark.args[0] if mark else 0.0

    order = {id(item): n for n, item in enumerate(items)}
    items.sort(key=lambda item: (-cost(item), order[id(item)]))
