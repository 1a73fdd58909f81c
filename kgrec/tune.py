"""Optuna studies over kgrec's :class:`~kgrec.config.Config`.

A search space is a YAML mapping from dotted config fields to distributions::

    model.dim: {int: [32, 256], log: true}
    train.lr: {float: [1.0e-4, 1.0e-1], log: true}
    model.layers: {choice: [1, 2, 3]}
    train.reg: {float: [1.0e-6, 1.0e-2], log: true}

Each trial trains with the sampled config on the validation split and reports the validation
metric at every evaluation, so the pruner can stop weak trials; the objective is the best
validation metric (never the test split). Trials get seed ``base seed + trial number`` (kept
in the trial's user attributes), so any trial can be re-run exactly.

Storage is a URL: ``sqlite:///study.db`` (default), any SQLAlchemy URL (PostgreSQL lets many
machines share a study) or ``journal:path.log`` (Optuna's journal file). Workers that share
a storage and a study name cooperate; a worker killed mid-trial leaves a trial that the
heartbeat marks FAIL (RDB storages), after which it is retried once.
"""

from __future__ import annotations

import copy
import logging
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgrec.config import Config
from kgrec.config.migrate import migrate_field
from kgrec.errors import ConfigError, ModelError
from kgrec.ingest.spec import nearest
from kgrec.paths import YamlLines, read_yaml_lines

log = logging.getLogger(__name__)

_KINDS = ("int", "float", "choice")


@dataclass(frozen=True)
class Param:
    """One dimension of a search space."""

    path: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        if self.kind == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        if self.kind == "float":
            return trial.suggest_float(self.path, self.low, self.high, log=self.log,
                                       step=self.step)
        return trial.suggest_categorical(self.path, list(self.choices))


class SearchSpace:
    """A validated search space over :class:`Config` fields."""

    def __init__(self, params: list[Param]) -> None:
        self.params = params

    @classmethod
    def load(cls, path: str | Path, model: str | None = None) -> SearchSpace:
        doc, lines = read_yaml_lines(path, "search space file")
        return cls.from_dict(doc, source=str(path), lines=lines, model=model)

    @classmethod
    def from_dict(cls, doc: Any, source: str = "search space",
                  lines: YamlLines | None = None, model: str | None = None) -> SearchSpace:
        """A validated space; every bad entry is reported (one line each, with its line in
        the file when ``lines`` are given), not only the first. An old field name is
        migrated (:func:`~kgrec.config.migrate.migrate_field`, with a warning): ``model``,
        the model the space is for, says whose option an old flat ``model.<option>`` is."""
        if not isinstance(doc, dict) or not doc:
            raise ConfigError(f"{source}: a search space maps config fields (e.g. train.lr) "
                              "to distributions")
        fields = Config.fields()
        params, problems = [], []
        for given, spec in doc.items():
            where = lines.at(str(given)) if lines is not None else source
            try:
                path = migrate_field(str(given), model)
            except ConfigError as exc:
                problems.append(f"{where}: {exc}")
                continue
            if path not in fields:
                problems.append(f"{where}: unknown config field {path!r}"
                                + nearest(str(path), list(fields)))
                continue
            try:
                params.append(_param(path, spec, fields[path], where))
            except ConfigError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError(f"{len(problems)} bad entr{'y' if len(problems) == 1 else 'ies'} "
                              "in the search space: " + "; ".join(problems))
        return cls(params)

    def sample(self, trial: Any, base: Config) -> Config:
        """A copy of ``base`` with every parameter set from ``trial``."""
        cfg = copy.deepcopy(base)
        for p in self.params:
            cfg.set(p.path, p.suggest(trial))
        return cfg.check()


def _param(path: str, spec: Any, hint: Any, source: str) -> Param:
    where = f"{source}: {path}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected e.g. {{float: [low, high], log: true}} or "
                          "{choice: [a, b]}")
    kinds = [k for k in _KINDS if k in spec]
    extra = set(spec) - {*_KINDS, "log", "step"}
    if len(kinds) != 1 or extra:
        raise ConfigError(f"{where}: give exactly one of int / float / choice (and optional "
                          f"log, step); got {sorted(spec)}")
    kind = kinds[0]
    base = {t for t in typing.get_args(hint) if t is not type(None)} or {hint}
    if kind == "choice":
        choices = spec["choice"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: choice needs a non-empty list")
        return Param(path, kind, choices=tuple(choices))
    bounds = spec[kind]
    if not (isinstance(bounds, list) and len(bounds) == 2
            and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)):
        raise ConfigError(f"{where}: {kind} needs [low, high] numbers")
    low, high = bounds
    if low >= high:
        raise ConfigError(f"{where}: low {low} must be below high {high}")
    log_scale = bool(spec.get("log", False))
    if log_scale and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0 (got {low})")
    if kind == "int" and int not in base:
        raise ConfigError(f"{where}: the field is {hint}, not an integer; use float or choice")
    if kind == "float" and float not in base:
        raise ConfigError(f"{where}: the field is {hint}, not a float; use int or choice")
    if kind == "int" and (low != int(low) or high != int(high)):
        raise ConfigError(f"{where}: int bounds must be integers")
    return Param(path, kind, float(low), float(high), log_scale, spec.get("step"))


# ---------------------------------------------------------------------------- storage
def make_storage(url: str | None, heartbeat: int = 10) -> Any:
    """An Optuna storage from a URL (``sqlite:///x.db``, ``postgresql://...``,
    ``journal:x.log``). RDB storages get a heartbeat, so a killed worker's trial becomes FAIL
    and is retried once."""
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = url or "sqlite:///kgrec-tune.db"
    if url.startswith("journal:"):
        return JournalStorage(JournalFileBackend(url[len("journal:"):]))
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(5):
        try:
            return RDBStorage(url, heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                                  max_retry=1),
                              engine_kwargs={"connect_args": {"timeout": 60}}
                              if url.startswith("sqlite") else None)
        except (OperationalError, IntegrityError) as exc:
            # Workers started together on a new database race to create its tables and its
            # version row; the loser sees "table ... already exists" (or a duplicate version
            # row, or a locked database) and, retried, finds the schema made.
            if attempt == 4:
                raise ConfigError(f"cannot open Optuna storage {url!r}: {exc}") from exc
            time.sleep(0.2 * (attempt + 1))
        except (optuna.exceptions.StorageInternalError, ValueError, ImportError) as exc:
            raise ConfigError(f"cannot open Optuna storage {url!r}: {exc}") from exc
    raise AssertionError("unreachable")


def make_pruner(name: str) -> Any:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}; use median, hyperband or none")


# ---------------------------------------------------------------------------- study
def tune(space: SearchSpace | str | Path | dict[str, Any], config: Config | None = None, *,
         n_trials: int = 20, study_name: str = "kgrec", storage: str | None = None,
         pruner: str = "median", seed: int = 0, timeout: float | None = None,
         split: Any = None, progress: bool = False, heartbeat: int = 10,
         on_trial: Callable[[Any, Any], None] | None = None) -> Any:
    """Run (or join, or resume) an Optuna study until it has ``n_trials`` finished trials.

    Args:
        space: a :class:`SearchSpace`, its YAML path or dict.
        config: the base config (dataset, split, model defaults) every trial starts from.
        n_trials: total finished trials (complete, pruned or failed) the study should have,
            counted across every worker sharing it.
        study_name, storage: the study and where it lives (see :func:`make_storage`).
        pruner: ``median``, ``hyperband`` or ``none``.
        seed: sampler seed; trial ``n`` trains with seed ``config.train.seed + n``.
        split: a prepared :class:`~kgrec.data.Split` (default: built from ``config.data``).
        heartbeat: seconds between a running trial's heartbeats (RDB storages); a trial
            silent for three of them is marked FAIL and retried once.

    Returns:
        the :class:`optuna.Study`.
    """
    import optuna
    from optuna.trial import TrialState

    from kgrec.data.prepare import split_for
    from kgrec.train import train

    base = config or Config()
    if not isinstance(space, SearchSpace):
        space = (SearchSpace.from_dict(space, model=base.model.name) if isinstance(space, dict)
                 else SearchSpace.load(space, model=base.model.name))
    data = split if split is not None else split_for(base.data)
    metric = "auc" if data.strategy == "ctr" else base.eval.metric
    study = optuna.create_study(study_name=study_name, storage=make_storage(storage, heartbeat),
                                direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=make_pruner(pruner))
    study.set_user_attr("metric", metric)
    study.set_user_attr("base_config", base.to_dict())

    def objective(trial: optuna.Trial) -> float:
        cfg = space.sample(trial, base)
        # a retry (its worker died) inherits the failed trial's user attributes: same seed
        inherited = trial.user_attrs.get("seed")
        cfg.train.seed = inherited if inherited is not None else base.train.seed + trial.number
        trial.set_user_attr("config", cfg.to_dict())
        trial.set_user_attr("seed", cfg.train.seed)

        def report(epoch: int, record: dict[str, Any]) -> None:
            trial.report(record["valid"][metric], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        rec = train(data, cfg, progress=progress, callbacks=[report])
        values = [h["valid"][metric] for h in rec.history if "valid" in h]
        if not values:
            raise ConfigError("the split has no validation set to tune on")
        return max(values)

    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    done = len(study.get_trials(deepcopy=False, states=finished))
    if done < n_trials:
        callbacks = [optuna.study.MaxTrialsCallback(n_trials, states=finished)]
        if on_trial is not None:
            callbacks.append(on_trial)
        study.optimize(objective, n_trials=n_trials - done, timeout=timeout,
                       callbacks=callbacks, gc_after_trial=True,
                       # a diverged trial (NaN scores) fails; the study goes on
                       catch=(RuntimeError, ModelError))
    return study


def best_config(study: Any) -> Config:
    """The best trial's full config (its seed included)."""
    return Config.from_dict(study.best_trial.user_attrs["config"])


def write_plots(study: Any, folder: str | Path) -> list[Path]:
    """Optuna's optimisation history, parameter importances and intermediate values as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    plots = {"optimization_history": ovm.plot_optimization_history,
             "intermediate_values": ovm.plot_intermediate_values,
             "param_importances": ovm.plot_param_importances}
    for name, fn in plots.items():
        try:
            ax = fn(study)
        except (ValueError, RuntimeError) as exc:  # e.g. importances need 2+ complete trials
            log.warning("plot %s skipped: %s", name, exc)
            continue
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.set_size_inches(8, 5)
        fig.tight_layout()
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        out.append(path)
    return out
