"""Where kgrec finds recipes, schemas, source data and its own cache.

- Recipes (``loaders/``) and schemas (``graph_schema/``) sit at the repository root; an installed
  wheel carries copies under ``kgrec/_bundled/``.
- Source data: ``--data-dir``, else ``$KGREC_DATA_DIR``, else ``../shared/data`` next to the
  working directory or the repository, when it exists.
- kgrec's own files (local graph store, text-embedding cache): ``$KGREC_HOME``, default
  ``~/.cache/kgrec``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from kgrec.errors import ConfigError, DatasetNotFoundError, KgrecError

_PKG = Path(__file__).resolve().parent
REPO_ROOT = _PKG.parent


def bundled_dir(name: str) -> Path:
    """``loaders`` or ``graph_schema``: from the source tree, or the copy inside a wheel."""
    for candidate in (REPO_ROOT / name, _PKG / "_bundled" / name):
        if candidate.is_dir():
            return candidate
    raise DatasetNotFoundError(f"cannot find the {name}/ folder (looked in {REPO_ROOT} and "
                               f"{_PKG / '_bundled'})")


def data_dir(explicit: str | Path | None = None) -> Path:
    """The folder that holds the source datasets (one subfolder per dataset)."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_dir():
            raise DatasetNotFoundError(f"data directory {path} does not exist")
        return path
    env = os.environ.get("KGREC_DATA_DIR")
    if env:
        path = Path(env)
        if not path.is_dir():
            raise DatasetNotFoundError(f"KGREC_DATA_DIR={env} is not a directory")
        return path
    for base in (Path.cwd(), REPO_ROOT):
        path = base.parent / "shared" / "data"
        if path.is_dir():
            return path.resolve()
    raise DatasetNotFoundError("no data directory: set KGREC_DATA_DIR or pass --data-dir "
                               "(a folder with one subfolder per dataset, e.g. lastfm-hetrec-kg/)")


def home_dir() -> Path:
    """kgrec's own cache folder (``$KGREC_HOME`` or ``~/.cache/kgrec``), created on demand."""
    path = Path(os.environ.get("KGREC_HOME") or Path.home() / ".cache" / "kgrec")
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_yaml(path: str | Path, what: str, *, missing: type[KgrecError] = ConfigError,
              invalid: type[KgrecError] = ConfigError) -> Any:
    """The YAML document in file ``path`` (a recipe, schema, config or search space).

    Raises:
        missing: ``"<what> not found: <path>"``.
        invalid: ``"<path>: not valid YAML: ..."`` with YAML's own line and column.
    """
    path = Path(path)
    if not path.is_file():
        raise missing(f"{what} not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise invalid(f"{path}: not valid YAML: {exc}") from exc
