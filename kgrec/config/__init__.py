"""The one configuration tree shared by the CLI, the library, checkpoints and Optuna spaces.

``Config(model="lightgcn")`` is shorthand for ``Config(model=ModelConfig(name="lightgcn"))``;
any section may also be given as a dict. Dotted paths (``"train.lr"``,
``"model.hgnn.id_dropout"``) address single fields (:meth:`Config.get` / :meth:`Config.set`),
which is how search spaces and ``--set`` work.

The sections are in :mod:`kgrec.config.sections` (data, train, eval, meta) and
:mod:`kgrec.config.model` (the model's, with the named model's options under its name).
Names the config holds (a model, a split strategy, a loss, a metric) are checked by the
layer that owns their registry (:func:`add_check`).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kgrec.config.fields import build as _build
from kgrec.config.fields import coerce as _coerce
from kgrec.config.migrate import migrate_config, migrate_field
from kgrec.config.model import ModelConfig, add_model_options, model_fields, model_options
from kgrec.config.sections import DataConfig, EvalConfig, MetaConfig, TrainConfig
from kgrec.errors import ConfigError, moved_names
from kgrec.paths import YamlLines, read_yaml_lines

__all__ = ["Config", "DataConfig", "EvalConfig", "MetaConfig", "ModelConfig", "TrainConfig",
           "add_check", "add_model_options", "migrate_config", "model_options"]

# The built-in names, for old importers only: what a name may be is what its registry holds,
# and those layers check the config against it (:func:`add_check`).
__getattr__ = moved_names(
    {"SPLITS": ("kgrec.data", "SPLITS"), "MODELS": ("kgrec.models", "MODELS"),
     "LOSSES": ("kgrec.models.losses", "LOSSES"),
     "MODALITIES": ("kgrec.models.options", "MODALITIES")},
    values={"SPLITS": ("given", "random", "temporal", "user_temporal", "cold_item", "cold_user",
                       "cross_domain", "ctr"),
            "MODELS": ("mf", "lightgcn", "kggnn", "hgnn"),
            "MODALITIES": ("text", "categorical", "numeric", "vectors"),
            "LOSSES": ("bpr", "softmax", "sampled_softmax")})

_CHECKS: list[Callable[[Config], None]] = []


def add_check(fn: Callable[[Config], None]) -> Callable[[Config], None]:
    """Register a whole-config check that an upper layer owns (the model registry checks
    ``model.name`` and what the named model can do; the data layer a split's parameters;
    the trainer its losses): :meth:`Config.check` runs every registered check after the
    sections' own, so the config stays the one tree without importing the layers above it.
    A check raises :class:`ConfigError` naming the field. Idempotent per function.

    A check runs once its layer is imported: ``kgrec.Config`` (the package's name) imports
    the layers that register checks; ``kgrec.config.Config`` alone checks the sections'
    own fields until they are."""
    if fn not in _CHECKS:
        _CHECKS.append(fn)
    return fn


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig,
             "meta": MetaConfig}


@dataclass
class Config:
    """The whole configuration: ``data``, ``model``, ``train``, ``eval``, ``meta``."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    meta: MetaConfig = field(default_factory=MetaConfig)

    def __post_init__(self) -> None:
        for name, cls in _SECTIONS.items():
            value = getattr(self, name)
            if isinstance(value, str) and name in ("model", "data"):
                value = cls(**{"name" if name == "model" else "dataset": value})
            elif isinstance(value, dict):
                value = _section(name, migrate_config({name: value})[name])
            elif not isinstance(value, cls):
                raise ConfigError(f"{name}: expected {cls.__name__}, a dict or a name")
            setattr(self, name, value)
        self.check()

    def check(self) -> Config:
        """Validate every section; raises :class:`ConfigError` naming the field."""
        for name in _SECTIONS:
            getattr(self, name).check()
        # Fields that depend on each other are checked here, on the whole tree, so that
        # setting them one at a time (CLI flags, --set, Optuna) never trips half-way.
        # what the layers above own: model names and capabilities, split parameters, losses
        for fn in _CHECKS:
            fn(self)
        metric_k = int(self.eval.metric.partition("@")[2])
        if metric_k not in self.eval.ks:
            self.eval.ks = sorted({*self.eval.ks, metric_k})
        return self

    # ------------------------------------------------------------- dotted access
    def get(self, path: str) -> Any:
        """The field at ``path`` (``train.lr``; an old name is migrated, with a warning)."""
        section, attr = _split_path(migrate_field(path, self.model.name))
        if section == "model":
            return self.model.get_path(attr)
        return getattr(getattr(self, section), attr)

    def set(self, path: str, value: Any) -> Config:
        """Set ``section.field`` (type-checked and coerced; an old name is migrated, with a
        warning); returns ``self``."""
        path = migrate_field(path, self.model.name)
        section, attr = _split_path(path)
        if section == "model":
            self.model.set_path(attr, value)
            return self
        obj = getattr(self, section)
        hint = typing.get_type_hints(type(obj))[attr]
        setattr(obj, attr, _coerce(value, hint, path))
        obj.check()
        return self

    @staticmethod
    def fields() -> dict[str, Any]:
        """Every dotted field and its type hint."""
        out = {}
        for name, cls in _SECTIONS.items():
            if name == "model":
                out.update(model_fields())
                continue
            for f, hint in typing.get_type_hints(cls).items():
                out[f"{name}.{f}"] = hint
        return out

    # ------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        return {name: (self.model.to_dict() if name == "model"
                       else dataclasses.asdict(getattr(self, name))) for name in _SECTIONS}

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "config",
                  lines: YamlLines | None = None) -> Config:
        """A config from its dict, in today's layout or an old one
        (:func:`~kgrec.config.migrate.migrate_config`); errors name ``source`` (and with
        ``lines``, the line of the field at fault)."""
        def at(field: str | None) -> str:
            return lines.at(field) if lines is not None else source

        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: a config is a mapping with sections {list(_SECTIONS)}")
        doc = migrate_config(doc)
        unknown = sorted(set(doc) - set(_SECTIONS))
        if unknown:
            raise ConfigError(f"{at(unknown[0])}: unknown section(s) {unknown}; "
                              f"known: {list(_SECTIONS)}", field=unknown[0])
        try:
            return cls(**{k: _section(k, v or {}) for k, v in doc.items()})
        except ConfigError as exc:
            raise ConfigError(f"{at(exc.field)}: {exc}", field=exc.field) from None

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Read a YAML or JSON config file; an error names its line and field."""
        doc, lines = read_yaml_lines(path, "config file")
        return cls.from_dict(doc or {}, source=str(path), lines=lines)


def _split_path(path: str) -> tuple[str, str]:
    section, _, attr = path.partition(".")
    if section not in _SECTIONS or not attr:
        raise ConfigError(f"unknown config field {path!r}; fields look like 'train.lr'")
    if section == "model":
        return section, attr  # the model section resolves its own paths (and options)
    if attr not in {f.name for f in dataclasses.fields(_SECTIONS[section])}:
        known = ", ".join(f"{section}.{f.name}" for f in dataclasses.fields(_SECTIONS[section]))
        raise ConfigError(f"unknown config field {path!r}; known: {known}")
    return section, attr


def _section(name: str, doc: Any) -> Any:
    if name == "model":
        section = ModelConfig.from_doc(doc)
        section.check()
        return section
    return _build(_SECTIONS[name], doc, name)
