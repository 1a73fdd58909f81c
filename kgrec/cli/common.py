"""What the commands share: the parser class (help built only when shown), table printing as
``--format`` says, and the config flags."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import yaml

from kgrec.errors import ConfigError


# ---------------------------------------------------------------------------- parser
class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose help texts and epilog may be callables,
    called only when the help is shown: the registries that list the models, splits and
    losses import torch, which ``kgrec --help`` and ``kgrec data list`` should not wait for."""

    def format_help(self) -> str:
        for action in self._actions:
            if callable(action.help):
                action.help = action.help()
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()


def _plain(text: str) -> str:
    """A docstring line as help text: no reST markup."""
    return text.replace("``", "")


def models_help() -> str:
    from kgrec.models import MODELS

    return MODELS.help()


def splits_help() -> str:
    from kgrec.data import SPLITS

    return SPLITS.help()


def losses_help() -> str:
    from kgrec.models.losses import LOSSES

    return LOSSES.help()


def registries_epilog() -> str:
    """Every registered model, split strategy and loss with its one-line summary (plug-ins'
    too: ``kgrec --plugin FILE train --help``)."""
    from kgrec.data import SPLITS
    from kgrec.models import MODELS
    from kgrec.models.losses import LOSSES

    parts = []
    for title, reg in (("models (--model NAME)", MODELS),
                       ("split strategies (--split NAME)", SPLITS),
                       ("losses (--set train.loss=NAME)", LOSSES)):
        width = max(len(n) for n in reg.names())
        parts.append(f"{title}:\n" + "\n".join(f"  {n.ljust(width)}  {_plain(reg.summary(n))}"
                                               for n in reg.names()))
    return "\n\n".join(parts)


def lazy(fn: Callable[[], str], template: str = "{}") -> Callable[[], str]:
    """Help text ``template`` with ``fn()`` filled in when the help is shown (``%`` escaped:
    argparse formats an option's help with ``%``)."""
    return lambda: template.format(_plain(fn()).replace("%", "%%"))


def add_format(p: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    p.add_argument("--format", choices=["table", "tsv", "json"], default=default,
                   help="how tables print: table (drawn on a terminal; plain full-width columns "
                   "when piped), tsv, or json (one object per table and line)")


# ---------------------------------------------------------------------------- printing
def console():
    from rich.console import Console

    return Console()


# How tables print: "table" (a drawn table on a terminal, plain full-width columns
# elsewhere), "tsv" (header and rows, a blank line between tables) or "json" (one object per
# table and line). Set from --format.
_FORMAT = "table"


def set_format(fmt: str | None) -> None:
    """How :func:`table` prints from now on (``--format``; ``None``: ``table``)."""
    global _FORMAT
    _FORMAT = fmt or "table"


def _cell(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a table as ``--format`` says; when the output is not a terminal, never cut a
    cell (rich would, at 80 columns)."""
    if _FORMAT == "json":
        print(json.dumps({"title": title, "columns": columns,
                          "rows": [[v if isinstance(v, int | float | str) else str(v)
                                    for v in r] for r in rows]}))
        return
    if _FORMAT == "tsv":
        for r in [columns, *rows]:
            print("\t".join(_cell(v).replace("\t", " ").replace("\n", " ") for v in r))
        print()
        return
    if not sys.stdout.isatty():
        cells = [columns, *[[_cell(v) for v in r] for r in rows]]
        width = [max(len(r[k]) for r in cells) for k in range(len(columns))]
        print(title)
        for n, r in enumerate(cells):
            print("  ".join(v.ljust(w) if k == 0 else v.rjust(w)
                            for k, (v, w) in enumerate(zip(r, width, strict=True))).rstrip())
            if n == 0:
                print("  ".join("-" * w for w in width))
        print()
        return
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[_cell(v) for v in r])
    console().print(t)


def print_metrics(metrics, title: str) -> None:
    """One row per metric, one column per evaluated group (all users, cold/warm items)."""
    from kgrec.evaluate import MetricTable

    if isinstance(metrics, MetricTable):
        groups = metrics.rows()
        columns = ["metric", *[f"{name} ({users} users)" for name, _, users in groups]]
        rows = [[k, *[vals.get(k, "") for _, vals, _ in groups]] for k in metrics]
        table(title, columns, rows)
    else:
        table(title, ["metric", "value"], [[k, v] for k, v in metrics.items()])


# ---------------------------------------------------------------------------- config
_FLAGS = (("dataset", "data.dataset"), ("split", "data.split"), ("data_dir", "data.data_dir"),
          ("model", "model.name"), ("epochs", "train.epochs"), ("device", "train.device"),
          ("seed", "train.seed"), ("shots", "data.shots"), ("target", "data.target"),
          ("target_only", "data.target_only"), ("warm", "data.warm"), ("noise", "data.noise"),
          ("events", "data.events"),
          ("eval_every", "train.eval_every"),
          ("eval_every_seconds", "train.eval_every_seconds"), ("patience", "train.patience"))


def config_from_args(args: argparse.Namespace) -> Any:
    """The config ``--config`` names (or the defaults), with the flags and ``--set`` on top."""
    import kgrec.models  # noqa: F401  (the models' options, which model.<name>.* address)
    from kgrec.config import Config

    cfg = Config.load(args.config) if getattr(args, "config", None) else Config()
    for flag, path in _FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            cfg.set(path, value)
    for item in getattr(args, "set", None) or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.lr=0.001")
        cfg.set(key.strip(), yaml.safe_load(raw))
    return cfg.check()


def add_config_args(p: argparse.ArgumentParser) -> None:
    """The config flags; the command's help ends with the registered models, splits and
    losses."""
    p.epilog = registries_epilog
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--config", help="YAML config file (see `kgrec config`)")
    p.add_argument("--dataset", help="dataset name or recipe path (data.dataset)")
    p.add_argument("--source", dest="dataset", help="a Neo4j URI to read the graph from: "
                   "bolt://host:7687#NAME reads dataset NAME (the #NAME may go when the "
                   "database holds one); credentials from $KGREC_NEO4J_*")
    p.add_argument("--split", help=lazy(splits_help, "{} (data.split)"))
    p.add_argument("--model", help=lazy(models_help, "{} (model.name)"))
    p.add_argument("--epochs", type=int, help="maximum epochs (train.epochs)")
    p.add_argument("--device", help="auto | cpu | cuda (train.device)")
    p.add_argument("--seed", type=int, help="training seed (train.seed)")
    p.add_argument("--shots", type=int, help="few-shot cold split: support links each "
                   "held-out user/item keeps; cross_domain: target links each held-out user "
                   "keeps (data.shots)")
    p.add_argument("--target", help="cross_domain split: the target item domain (data.target)")
    p.add_argument("--target-only", action="store_const", const=True, default=None,
                   help="cross_domain split: train without the source domains' links "
                   "(data.target_only)")
    p.add_argument("--warm", action="store_const", const=True, default=None,
                   help="cold_item/cold_user split: also hold out warm links, so the test "
                   "measures cold, warm and overall (data.warm)")
    p.add_argument("--noise", action="append", metavar="KIND=SHARE",
                   help="train on noisy data: inter=0.2 (20%% of training pairs random), "
                   "kg=0.2 (relations of 20%% of KG triples shuffled); repeatable (data.noise)")
    p.add_argument("--data-dir", help="folder with the datasets (default $KGREC_DATA_DIR)")
    p.add_argument("--events", metavar="LOG", help="also train on what `kgrec serve` logged "
                   "(its events.jsonl: clicks, new users and items) (data.events)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help=lazy(losses_help, "set any config field, e.g. --set model.dim=128 or "
                             "--set train.loss=NAME ({}) (repeatable)"))
