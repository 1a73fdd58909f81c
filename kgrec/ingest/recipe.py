"""Dataset recipes (``loaders/<dataset>.yaml``): which files, which format, how they map onto a
schema."""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgrec.errors import ConfigError, DataFormatError, DatasetNotFoundError
from kgrec.paths import bundled_dir, data_dir, read_yaml

if TYPE_CHECKING:
    from kgrec.graph import RecGraph

_FIELDS = {"name", "description", "format", "path", "schema", "files", "mapping", "protocol",
           "behavior_relations"}


@dataclass
class Recipe:
    """A parsed recipe.

    Attributes:
        name: dataset name (the store key).
        format: reader name (``kgcn``, ``recbole-atomic``, ``movielens-csv``, ``kgat``,
            ``disencdr``).
        path: the dataset's folder, relative to the data directory (or absolute).
        files: role -> file path relative to ``path`` (nested mappings allowed).
        mapping: reader options (domain, behavior, text templates, relation names).
        schema: schema name or path.
        protocol: evaluation defaults (e.g. ``split: given``).
        behavior_relations: KG relations that users made (tags, "also bought", reviews), not
            facts about items. Their edges must say who made them and when (the reader fills
            ``user`` and ``timestamp``), and a split rebuilds them from its training
            interactions only (:func:`kgrec.split`). Every other relation is a fact.
        source: the recipe file, for error messages.
    """

    name: str
    format: str
    path: str
    files: dict[str, Any]
    mapping: dict[str, Any] = field(default_factory=dict)
    schema: str = "recsys"
    description: str = ""
    protocol: dict[str, Any] = field(default_factory=dict)
    behavior_relations: list[str] = field(default_factory=list)
    source: str = "<recipe>"
    root: Path | None = None

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<recipe>") -> Recipe:
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: a recipe is a mapping")
        unknown = set(doc) - _FIELDS
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {sorted(unknown)}; "
                              f"allowed: {sorted(_FIELDS)}")
        for req in ("name", "format", "path", "files"):
            if req not in doc:
                raise ConfigError(f"{source}: missing field {req!r}")
        if not isinstance(doc["files"], dict):
            raise ConfigError(f"{source}: field 'files' must be a mapping of role -> file")
        for key in ("mapping", "protocol"):
            if not isinstance(doc.get(key) or {}, dict):
                raise ConfigError(f"{source}: field {key!r} must be a mapping")
        behavior = doc.get("behavior_relations") or []
        if not isinstance(behavior, list) or not all(isinstance(r, str) for r in behavior):
            raise ConfigError(f"{source}: field 'behavior_relations' must be a list of "
                              "relation names")
        return cls(name=str(doc["name"]), format=str(doc["format"]), path=str(doc["path"]),
                   files=doc["files"], mapping=doc.get("mapping") or {},
                   schema=str(doc.get("schema", "recsys")),
                   description=str(doc.get("description", "")).strip(),
                   protocol=doc.get("protocol") or {}, behavior_relations=list(behavior),
                   source=source)

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        doc = read_yaml(path, "recipe", missing=DatasetNotFoundError)
        return cls.from_dict(doc, source=str(path))

    def resolve(self, data: str | Path | None = None) -> Recipe:
        """Fix the dataset folder against the data directory; returns ``self``."""
        p = Path(self.path)
        self.root = p if p.is_absolute() else data_dir(data) / p
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"{self.source}: dataset folder {self.root} does not exist "
                                       "(set KGREC_DATA_DIR or --data-dir)")
        return self

    def file(self, *keys: str, required: bool = True) -> Path | None:
        """The file at ``files.<keys...>``, resolved; a missing one names the recipe field."""
        node: Any = self.files
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        dotted = "files." + ".".join(keys)
        if node is None:
            if required:
                raise ConfigError(f"{self.source}: missing field {dotted!r}")
            return None
        assert self.root is not None, "call resolve() first"
        path = self.root / str(node)
        if not path.is_file():
            raise DataFormatError(f"file not found (recipe field {dotted})", file=path)
        return path

    def check_behavior(self, graph: RecGraph) -> None:
        """The relations the recipe calls behaviour and those whose edges say who made them
        must be the same: a declared relation without its makers could not be rebuilt from
        training interactions, and an undeclared one would hide from the audit."""
        made = {et[1] for et in graph.behavior_edge_types()}
        relations = {et[1] for et in graph.knowledge_edge_types()}
        for rel in self.behavior_relations:
            if rel not in relations:
                raise ConfigError(f"{self.source}: behavior_relations: the data has no relation "
                                  f"{rel!r}; its relations: {sorted(relations)}")
            if rel not in made:
                raise ConfigError(f"{self.source}: behavior_relations: the {rel} edges do not "
                                  f"say which user made them (format {self.format!r} reads no "
                                  "user for them), so they cannot be rebuilt from training "
                                  "interactions")
        undeclared = sorted(made - set(self.behavior_relations))
        if undeclared:
            raise ConfigError(f"{self.source}: relation(s) {undeclared} are made by users (each "
                              "edge says who and when); list them under behavior_relations")

    def opt(self, key: str, default: Any = None) -> Any:
        return self.mapping.get(key, default)

    def template(self, key: str, default: str | None = None) -> str | None:
        """A ``str.format`` template from ``mapping.<key>``, checked for syntax."""
        tpl = self.mapping.get(key, default)
        if tpl is None:
            return None
        try:
            list(string.Formatter().parse(tpl))
        except ValueError as exc:
            raise ConfigError(f"{self.source}: mapping.{key}: bad template {tpl!r}: {exc}") from exc
        return str(tpl)

    def render(self, key: str, tpl: str, row: dict[str, str]) -> str:
        try:
            return " ".join(tpl.format(**row).split())
        except KeyError as exc:
            raise ConfigError(f"{self.source}: mapping.{key} uses field {exc.args[0]!r}; "
                              f"available: {sorted(row)}") from None

    def fingerprint(self, code: str = "") -> str:
        """Hash of the recipe, the size/mtime of every file it names and ``code`` (the reader's
        own fingerprint): the local store's cache key."""
        h = hashlib.sha256(code.encode())
        doc = {"name": self.name, "format": self.format, "files": self.files,
               "mapping": self.mapping, "schema": self.schema,
               "behavior_relations": self.behavior_relations}
        h.update(json.dumps(doc, sort_keys=True, default=str).encode())
        assert self.root is not None
        for rel in sorted(_leaves(self.files)):
            p = self.root / rel
            st = p.stat() if p.exists() else None
            h.update(f"{rel}:{st.st_size if st else -1}:{st.st_mtime_ns if st else -1}".encode())
        return h.hexdigest()[:16]


def _leaves(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [x for v in node.values() for x in _leaves(v)]
    return [str(node)]


def recipe_path(name: str) -> Path:
    """The bundled recipe for a dataset name."""
    path = bundled_dir("loaders") / f"{name}.yaml"
    if not path.is_file():
        raise DatasetNotFoundError(f"unknown dataset {name!r}; known: {', '.join(list_recipes())}")
    return path


def list_recipes() -> list[str]:
    """Names of the bundled recipes."""
    return sorted(p.stem for p in bundled_dir("loaders").glob("*.yaml"))
