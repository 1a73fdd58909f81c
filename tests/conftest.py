"""Shared fixtures: real datasets from $KGREC_DATA_DIR (or ../shared/data), a private
KGREC_HOME per test session, and small graphs that tests write themselves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session", autouse=True)
def kgrec_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each test session gets its own cache, so tests never read a stale local store."""
    home = tmp_path_factory.mktemp("kgrec_home")
    os.environ["KGREC_HOME"] = str(home)
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
