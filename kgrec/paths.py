"""Where kgrec finds recipes, schemas, source data and its own cache.

- Recipes (``loaders/``) and schemas (``graph_schema/``) sit at the repository root; an installed
  wheel carries copies under ``kgrec/_bundled/``.
- Source data: ``--data-dir``, else ``$KGREC_DATA_DIR``, else ``../shared/data`` next to the
  working directory or the repository, when it exists.
- kgrec's own files (local graph store, text-embedding cache): ``$KGREC_HOME``, default
  ``~/.cache/kgrec``. The text-embedding cache alone can live elsewhere
  (``$KGREC_TEXT_CACHE``): its entries are keyed by model and text, so one cache can serve
  many homes and processes.
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
        invalid: ``"<path>:<line>: not valid YAML: ..."`` with YAML's own line and column.
    """
    return read_yaml_lines(path, what, missing=missing, invalid=invalid)[0]


def read_yaml_lines(path: str | Path, what: str, *, missing: type[KgrecError] = ConfigError,
                    invalid: type[KgrecError] = ConfigError) -> tuple[Any, YamlLines]:
    """:func:`read_yaml`, and where each key sits (:class:`YamlLines`), so that an error about
    a field can name its line."""
    path = Path(path)
    if not path.is_file():
        raise missing(f"{what} not found: {path}")
    text = path.read_text()
    try:
        doc = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        reason = " ".join(str(getattr(exc, "problem", "") or exc).split())
        raise invalid(f"{at}: not valid YAML: {reason}") from None
    lines = YamlLines(str(path))
    lines.collect(node, "")
    return doc, lines


class YamlLines:
    """The 1-based line of every mapping key of a YAML file, by dotted path
    (``mapping.behavior``); :meth:`at` renders ``file:line`` for an error message."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[str, int] = {}

    def collect(self, node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                dotted = f"{prefix}.{key.value}" if prefix else str(key.value)
                self.lines[dotted] = key.start_mark.line + 1
                self.collect(value, dotted)

    def at(self, dotted: str | None) -> str:
        """``file:line`` of the key ``dotted`` (or of its nearest parent), else ``file``."""
        while dotted:
            if dotted in self.lines:
                return f"{self.source}:{self.lines[dotted]}"
            dotted = dotted.rpartition(".")[0]
        return self.source


def text_cache_dir() -> Path:
    """Where text embeddings are cached: ``$KGREC_TEXT_CACHE``, else ``$KGREC_HOME/text-cache``."""
    env = os.environ.get("KGREC_TEXT_CACHE")
    path = Path(env) if env else home_dir() / "text-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
