"""Declarative graph schemas (``graph_schema/*.yaml``).

A :class:`GraphSchema` says which node labels and relationship types may exist, their typed
properties and each label's unique key. It validates every :class:`~kgrec.graph.RecGraph`
that enters or leaves a store, and it is the only source of names that reach Cypher.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kgrec.errors import SchemaError
from kgrec.paths import bundled_dir, read_yaml

# \A...\Z, not ^...$: "$" also matches before a trailing newline, so "name\n" passed here
# and failed inside Neo4j; anchored, .match on it still means the whole string
IDENTIFIER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
PropertyType = Literal["string", "int", "float"]
Role = Literal["interaction", "negative", "knowledge"]
_TYPES = ("string", "int", "float")
#: the node property that names the dataset a node belongs to in a database holding several;
#: part of every node's identity there, with the label's key
DATASET = "dataset"
_ROLES = ("interaction", "negative", "knowledge")


def check_identifier(name: str, what: str) -> str:
    """Return ``name`` if it is a safe identifier (``[A-Za-z_][A-Za-z0-9_]*``), else raise."""
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise SchemaError(f"{what} {name!r} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return name


def sanitize_relation(name: str) -> str:
    """Turn a dataset's relation name into a relationship type.

    ``music.artist.origin`` -> ``MUSIC_ARTIST_ORIGIN``;
    ``http://rdf.freebase.com/ns/type.object.type`` -> ``TYPE_OBJECT_TYPE`` (an IRI's local
    part, after the last ``/``, ``#`` or ``:``). The result always matches :data:`IDENTIFIER`.
    """
    local = name
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", name):
        local = re.split(r"[/#:]", name.rstrip("/#:"))[-1] or name
    out = re.sub(r"[^A-Za-z0-9]+", "_", local).strip("_").upper()
    if not out:
        out = "RELATED"
    if out[0].isdigit():
        out = "R_" + out
    return out


@dataclass(frozen=True)
class PropertySpec:
    """One typed property of a node label or relationship type."""

    name: str
    type: PropertyType
    required: bool = False
    values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class NodeSpec:
    """A node label, its unique key and its properties."""

    label: str
    key: str
    properties: dict[str, PropertySpec]
    extra_properties: bool = False


@dataclass(frozen=True)
class RelationshipSpec:
    """A relationship type (or, with ``types_from_data``, a family of them: the KG relations)."""

    name: str
    role: Role
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    properties: dict[str, PropertySpec] = field(default_factory=dict)
    types_from_data: bool = False


def _dtype_matches(ptype: str, arr: np.ndarray) -> bool:
    kind = arr.dtype.kind
    return {"string": kind == "U", "int": kind in "iu", "float": kind in "fiu"}[ptype]


class GraphSchema:
    """A validated graph schema.

    Load one with :meth:`load` (a path, or the name of a schema in ``graph_schema/``).
    """

    def __init__(self, name: str, nodes: dict[str, NodeSpec], rels: dict[str, RelationshipSpec],
                 version: int = 1, source: str | None = None) -> None:
        self.name = name
        self.version = version
        self.nodes = nodes
        self.relationships = rels
        self.source = source

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path_or_name: str | Path = "recsys") -> GraphSchema:
        """Load a schema from a YAML file, or by name from the bundled ``graph_schema/``."""
        path = Path(path_or_name)
        if not path.suffix:
            path = bundled_dir("graph_schema") / f"{path_or_name}.yaml"
        doc = read_yaml(path, "schema file", missing=SchemaError, invalid=SchemaError)
        return cls.from_dict(doc, source=str(path))

    @classmethod
    def from_dict(cls, doc: Any, source: str | None = None) -> GraphSchema:
        """Build and validate a schema from its YAML document (a dict)."""
        where = source or "<schema>"
        if not isinstance(doc, dict):
            raise SchemaError(f"{where}: a schema is a mapping with 'nodes' and 'relationships'")
        unknown = set(doc) - {"name", "version", "nodes", "relationships"}
        if unknown:
            raise SchemaError(f"{where}: unknown top-level field(s) {sorted(unknown)}")
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            raise SchemaError(f"{where}: field 'name' must be a non-empty string")
        nodes = {}
        for label, spec in (doc.get("nodes") or {}).items():
            nodes[label] = cls._node(label, spec, where)
        if not nodes:
            raise SchemaError(f"{where}: field 'nodes' must declare at least one label")
        rels = {}
        for rname, spec in (doc.get("relationships") or {}).items():
            rels[rname] = cls._rel(rname, spec, nodes, where)
        return cls(name, nodes, rels, int(doc.get("version", 1)), source)

    @staticmethod
    def _props(spec: Any, where: str) -> dict[str, PropertySpec]:
        out = {}
        for pname, p in (spec or {}).items():
            check_identifier(pname, f"{where}: property")
            if isinstance(p, str):
                p = {"type": p}
            if not isinstance(p, dict) or p.get("type") not in _TYPES:
                raise SchemaError(f"{where}: property {pname!r} needs type one of {_TYPES}")
            extra = set(p) - {"type", "required", "values"}
            if extra:
                raise SchemaError(f"{where}: property {pname!r} has unknown field(s) "
                                  f"{sorted(extra)}")
            values = tuple(p["values"]) if p.get("values") else None
            out[pname] = PropertySpec(pname, p["type"], bool(p.get("required", False)), values)
        return out

    @classmethod
    def _node(cls, label: str, spec: Any, where: str) -> NodeSpec:
        check_identifier(label, f"{where}: node label")
        if not isinstance(spec, dict):
            raise SchemaError(f"{where}: node {label!r} must be a mapping")
        props = cls._props(spec.get("properties"), f"{where}: node {label}")
        key = spec.get("key")
        if key not in props or props[key].type != "string" or not props[key].required:
            raise SchemaError(f"{where}: node {label!r}: key {key!r} must be a required string "
                              "property")
        return NodeSpec(label, key, props, bool(spec.get("extra_properties", False)))

    @classmethod
    def _rel(cls, name: str, spec: Any, nodes: dict[str, NodeSpec],
             where: str) -> RelationshipSpec:
        if not isinstance(spec, dict):
            raise SchemaError(f"{where}: relationship {name!r} must be a mapping")
        role = spec.get("role")
        if role not in _ROLES:
            raise SchemaError(f"{where}: relationship {name!r}: role must be one of {_ROLES}")
        from_data = bool(spec.get("types_from_data", False))
        if not from_data:
            check_identifier(name, f"{where}: relationship type")

        def labels(v: Any, end: str) -> tuple[str, ...]:
            vals = (v,) if isinstance(v, str) else tuple(v or ())
            if not vals:
                raise SchemaError(f"{where}: relationship {name!r} needs '{end}'")
            for lab in vals:
                if lab not in nodes:
                    raise SchemaError(f"{where}: relationship {name!r}: '{end}' names unknown "
                                      f"label {lab!r}")
            return vals

        props = cls._props(spec.get("properties"), f"{where}: relationship {name}")
        return RelationshipSpec(name, role, labels(spec.get("from"), "from"),
                                labels(spec.get("to"), "to"), props, from_data)

    # ------------------------------------------------------------------ lookups
    def role_of(self, src: str, rel: str, dst: str) -> Role:
        """Return the role of edge type ``(src, rel, dst)`` or raise :class:`SchemaError`."""
        return self.spec_of(src, rel, dst).role

    def spec_of(self, src: str, rel: str, dst: str) -> RelationshipSpec:
        """The relationship spec that admits edge type ``(src, rel, dst)``."""
        spec = self.relationships.get(rel)
        if spec is not None and not spec.types_from_data:
            if src in spec.sources and dst in spec.targets:
                return spec
            raise SchemaError(f"schema {self.name!r}: relationship {rel} may not go from {src} "
                              f"to {dst} (allowed: {spec.sources} -> {spec.targets})")
        for spec in self.relationships.values():
            if spec.types_from_data and src in spec.sources and dst in spec.targets:
                return spec
        raise SchemaError(f"schema {self.name!r} has no relationship type for "
                          f"({src})-[{rel}]->({dst})")

    def edge_type_for_role(self, role: Role) -> tuple[str, str, str]:
        """The single fixed edge type with this role, e.g. ``('User', 'INTERACTED', 'Item')``."""
        for spec in self.relationships.values():
            if spec.role == role and not spec.types_from_data:
                return (spec.sources[0], spec.name, spec.targets[0])
        raise SchemaError(f"schema {self.name!r} has no relationship with role {role!r}")

    # ------------------------------------------------------------------ validation
    def validate_properties(self, owner: str, props: dict[str, PropertySpec], extra: bool,
                            columns: dict[str, np.ndarray], n: int) -> None:
        """Check a table's columns against property specs; raise :class:`SchemaError`."""
        for pname, arr in columns.items():
            check_identifier(pname, f"{owner}: property")
            if len(arr) != n:
                raise SchemaError(f"{owner}: property {pname!r} has {len(arr)} values for {n} rows")
            spec = props.get(pname)
            if spec is None:
                if not extra:
                    raise SchemaError(f"{owner}: property {pname!r} is not in schema {self.name!r}")
                if arr.dtype.kind not in "Uiuf":
                    raise SchemaError(f"{owner}: property {pname!r} has unsupported dtype "
                                      f"{arr.dtype}")
                continue
            if not _dtype_matches(spec.type, arr):
                raise SchemaError(f"{owner}: property {pname!r} must be {spec.type}, "
                                  f"got dtype {arr.dtype}")
            if spec.values is not None and n:
                bad = set(np.unique(arr).tolist()) - set(spec.values) - {""}
                if bad:
                    raise SchemaError(f"{owner}: property {pname!r} has values {sorted(bad)[:5]} "
                                      f"outside {list(spec.values)}")
        for pname, spec in props.items():
            if not spec.required or pname in ("id",):
                continue
            if pname not in columns:
                raise SchemaError(f"{owner}: required property {pname!r} is missing")
            arr = columns[pname]
            if arr.dtype.kind == "U" and n and (arr == "").any():
                raise SchemaError(f"{owner}: required property {pname!r} is empty in row "
                                  f"{int(np.argmax(arr == ''))}")
            if arr.dtype.kind == "f" and n and np.isnan(arr).any():
                raise SchemaError(f"{owner}: required property {pname!r} is NaN in row "
                                  f"{int(np.argmax(np.isnan(arr)))}")

    # ------------------------------------------------------------------ Neo4j rendering
    def relationship_type(self, src: str, rel: str, dst: str) -> str:
        """The Neo4j relationship type of edge type ``(src, rel, dst)`` (an identifier)."""
        spec = self.spec_of(src, rel, dst)
        return sanitize_relation(rel) if spec.types_from_data else spec.name

    def cypher_constraints(self) -> list[str]:
        """Cypher statements (idempotent) for the uniqueness constraints and indexes."""
        out = []
        for label, node in self.nodes.items():
            # composite: one database holds several datasets whose ids overlap
            out.append(f"CREATE CONSTRAINT kgrec_{label.lower()}_{DATASET}_{node.key} IF NOT "
                       f"EXISTS FOR (n:`{label}`) REQUIRE (n.`{DATASET}`, n.`{node.key}`) "
                       "IS UNIQUE")
        for label in self.nodes:
            if "domain" in self.nodes[label].properties:
                out.append(f"CREATE INDEX kgrec_{label.lower()}_domain IF NOT EXISTS "
                           f"FOR (n:`{label}`) ON (n.`domain`)")
        for rel in self.relationships.values():
            if rel.types_from_data:
                continue
            for pname in ("behavior", "timestamp"):
                if pname in rel.properties:
                    out.append(f"CREATE INDEX kgrec_{rel.name.lower()}_{pname} IF NOT EXISTS "
                               f"FOR ()-[r:`{rel.name}`]-() ON (r.`{pname}`)")
        return out

    def to_dict(self) -> dict[str, Any]:
        """The schema as a YAML-ready dict."""
        def props(ps: dict[str, PropertySpec]) -> dict[str, Any]:
            out = {}
            for p in ps.values():
                d: dict[str, Any] = {"type": p.type}
                if p.required:
                    d["required"] = True
                if p.values:
                    d["values"] = list(p.values)
                out[p.name] = d
            return out
        return {
            "name": self.name, "version": self.version,
            "nodes": {n.label: {"key": n.key, "properties": props(n.properties),
                                "extra_properties": n.extra_properties}
                      for n in self.nodes.values()},
            "relationships": {r.name: {"role": r.role, "from": list(r.sources),
                                       "to": list(r.targets), "properties": props(r.properties),
                                       "types_from_data": r.types_from_data}
                              for r in self.relationships.values()},
        }

    def __repr__(self) -> str:
        return (f"GraphSchema({self.name!r}, nodes={list(self.nodes)}, "
                f"relationships={list(self.relationships)})")
