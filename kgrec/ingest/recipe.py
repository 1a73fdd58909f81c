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
from kgrec.ingest.spec import ATTRIBUTE_KINDS, FORMATS, TOP_LEVEL, FormatSpec, nearest
from kgrec.paths import YamlLines, bundled_dir, data_dir, read_yaml_lines

if TYPE_CHECKING:
    from kgrec.graph import RecGraph

@dataclass
class Recipe:
    """A parsed recipe. Every field, file role and mapping key is documented in
    :mod:`kgrec.ingest.spec` (``kgrec data recipe`` prints it), and nothing else is accepted.

    Attributes:
        name: dataset name (the store key).
        format: reader name (``kgcn``, ``recbole-atomic``, ``movielens-csv``, ``kgat``,
            ``disencdr``, ``rdf``).
        path: the dataset's folder, relative to the data directory (or absolute).
        files: role -> file path relative to ``path`` (nested mappings allowed).
        mapping: reader options (domain, behavior, text templates, relation names).
        schema: schema name or path.
        protocol: evaluation defaults (e.g. ``split: given``).
        behavior_relations: KG relations that users made (tags, "also bought", reviews), not
            facts about items. Their edges must say who made them and when (the reader fills
            ``user`` and ``timestamp``), and a split rebuilds them from its training
            interactions only (:func:`kgrec.split`). Every other relation is a fact.
        attributes: node type -> attribute -> kind (``category``, ``number``, ``text``,
            ``vector``, ``ignore``): how an attribute becomes a model input, where the
            inference (numbers from number-like strings) is not what the data means.
        drop_items_without_interactions: drop catalogue items nobody interacted with.
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
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    drop_items_without_interactions: bool = False
    source: str = "<recipe>"
    root: Path | None = None

    @property
    def spec(self) -> FormatSpec:
        return FORMATS[self.format]

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<recipe>",
                  lines: YamlLines | None = None) -> Recipe:
        """Validate a recipe against :mod:`kgrec.ingest.spec`; every problem is named (with
        its line in the file when ``lines`` are given), all of them in one error."""
        def at(key: str) -> str:
            return lines.at(key) if lines is not None else source

        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: a recipe is a mapping")
        problems = [f"{at(k)}: unknown field {k!r}{nearest(str(k), list(TOP_LEVEL))}"
                    for k in doc if k not in TOP_LEVEL]
        problems += [f"{source}: missing field {k!r}" for k, v in TOP_LEVEL.items()
                     if v.required and k not in doc]
        fmt = str(doc.get("format", ""))
        spec = FORMATS.get(fmt)
        if "format" in doc and spec is None:
            problems.append(f"{at('format')}: unknown format {fmt!r}"
                            f"{nearest(fmt, list(FORMATS))}; known: {sorted(FORMATS)}")
        for key in ("files", "mapping", "protocol", "attributes"):
            if not isinstance(doc.get(key) or {}, dict):
                problems.append(f"{at(key)}: field {key!r} must be a mapping")
        files = doc.get("files") if isinstance(doc.get("files"), dict) else {}
        mapping = doc.get("mapping") if isinstance(doc.get("mapping"), dict) else {}
        if spec is not None:
            problems += _check_files(spec, files, at)
            problems += [f"{at(f'mapping.{k}')}: mapping: unknown key {k!r}"
                         f"{nearest(str(k), list(spec.mapping))} for format {fmt!r}"
                         for k in mapping if k not in spec.mapping]
        behavior = doc.get("behavior_relations") or []
        if not isinstance(behavior, list) or not all(isinstance(r, str) for r in behavior):
            problems.append(f"{at('behavior_relations')}: field 'behavior_relations' must be "
                            "a list of relation names")
            behavior = []
        attributes = doc.get("attributes") if isinstance(doc.get("attributes"), dict) else {}
        problems += _check_attributes(attributes, at)
        drop = doc.get("drop_items_without_interactions", False)
        if not isinstance(drop, bool):
            problems.append(f"{at('drop_items_without_interactions')}: expected true/false, "
                            f"got {drop!r}")
        if problems:
            raise ConfigError("; ".join(problems))
        return cls(name=str(doc["name"]), format=fmt, path=str(doc["path"]), files=files,
                   mapping=mapping, schema=str(doc.get("schema", "recsys")),
                   description=str(doc.get("description", "")).strip(),
                   protocol=doc.get("protocol") or {}, behavior_relations=list(behavior),
                   attributes={str(t): {str(a): str(k) for a, k in v.items()}
                               for t, v in attributes.items()},
                   drop_items_without_interactions=drop, source=source)

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        doc, lines = read_yaml_lines(path, "recipe", missing=DatasetNotFoundError)
        return cls.from_dict(doc, source=str(path), lines=lines)

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
        role = keys[-1]
        assert role in self.spec.files, f"format {self.format} reads undeclared file {role!r}"
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

    def check_attributes(self, graph: RecGraph) -> None:
        """Every attribute the recipe gives a kind exists, and a ``vector`` is 2-D."""
        for node, kinds in self.attributes.items():
            table = graph.nodes.get(node)
            have = sorted(table.attrs) if table is not None else []
            for attr, kind in kinds.items():
                if attr not in have:
                    raise ConfigError(f"{self.source}: attributes.{node}.{attr}: {node} nodes "
                                      f"have no attribute {attr!r}; they have {have}")
                if (kind == "vector") != (table.attrs[attr].ndim == 2):
                    raise ConfigError(f"{self.source}: attributes.{node}.{attr}: kind {kind!r} "
                                      f"does not fit a {table.attrs[attr].ndim}-D column")

    def opt(self, key: str, default: Any = None) -> Any:
        """``mapping.<key>``; a reader may only read keys its format declares."""
        assert key in self.spec.mapping, f"format {self.format} reads undeclared key {key!r}"
        return self.mapping.get(key, default)

    def template(self, key: str, default: str | None = None) -> str | None:
        """A ``str.format`` template from ``mapping.<key>``, checked for syntax."""
        tpl = self.opt(key, default)
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
               "behavior_relations": self.behavior_relations, "attributes": self.attributes,
               "drop": self.drop_items_without_interactions}
        h.update(json.dumps(doc, sort_keys=True, default=str).encode())
        assert self.root is not None
        for rel in sorted(_leaves(self.files)):
            p = self.root / rel
            st = p.stat() if p.exists() else None
            h.update(f"{rel}:{st.st_size if st else -1}:{st.st_mtime_ns if st else -1}".encode())
        return h.hexdigest()[:16]


def _check_files(spec: FormatSpec, files: dict[str, Any], at: Any) -> list[str]:
    """Unknown or missing file roles (a free-files format: each of its groups')."""
    groups = files.items() if spec.free_files else [("", files)]
    out = []
    if spec.free_files and not files:
        out.append(f"{at('files')}: files: name at least one group, each mapping "
                   f"{sorted(spec.files)} to files")
    for name, roles in groups:
        where = f"files.{name}" if name else "files"
        if not isinstance(roles, dict):
            out.append(f"{at(where)}: {where} must map roles {sorted(spec.files)} to files")
            continue
        out += [f"{at(f'{where}.{k}')}: {where}: unknown role {k!r}"
                f"{nearest(str(k), list(spec.files))} for format {spec.name!r}; roles: "
                f"{', '.join(spec.files)}" for k in roles if k not in spec.files]
        out += [f"{at(where)}: {where}: missing role {k!r} ({v.doc})"
                for k, v in spec.files.items() if v.required and k not in roles]
    return out


def _check_attributes(attributes: dict[str, Any], at: Any) -> list[str]:
    from kgrec.graph import ENTITY, ITEM, USER

    out = []
    for node, kinds in attributes.items():
        if node not in (USER, ITEM, ENTITY):
            out.append(f"{at(f'attributes.{node}')}: attributes: unknown node type {node!r}; "
                       f"known: {USER}, {ITEM}, {ENTITY}")
        elif not isinstance(kinds, dict):
            out.append(f"{at(f'attributes.{node}')}: attributes.{node} must map attributes "
                       "to kinds")
        else:
            out += [f"{at(f'attributes.{node}.{a}')}: attributes.{node}.{a}: unknown kind "
                    f"{k!r}; kinds: {', '.join(ATTRIBUTE_KINDS)}" for a, k in kinds.items()
                    if k not in ATTRIBUTE_KINDS]
    return out


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
