"""The ``kgrec`` command line: a thin shell over the library (same names, same config).

Library code logs; this package prints tables. One module per command group:
:mod:`~kgrec.cli.data` (``data``, ``config``), :mod:`~kgrec.cli.train` (``quickstart``,
``train``, ``evaluate``, ``recommend``), :mod:`~kgrec.cli.tune`, :mod:`~kgrec.cli.serve`,
:mod:`~kgrec.cli.neo4j` (``neo4j``, ``schema``, ``load``, ``export``); :mod:`~kgrec.cli.common`
holds the printing and the config flags, :mod:`~kgrec.cli.plugins` the ``--plugin`` imports.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from kgrec.cli import data, neo4j, serve, textmodels, train, tune
from kgrec.cli.common import Parser, add_format, set_format
from kgrec.cli.plugins import PLUGINS_ENV, load_plugins, plugin_specs
from kgrec.errors import KgrecError, deprecated, moved_names

__all__ = ["build_parser", "main", "test_report"]

# the names kgrec.cli had as one module; test_report (below) is another
__getattr__ = moved_names({"QUICKSTART_MODEL": ("kgrec.cli.train", "QUICKSTART_MODEL")})

log = logging.getLogger("kgrec")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line (help texts that list the registries are built when shown)."""
    p = Parser(
        prog="kgrec", description="Knowledge-graph recommenders: load datasets, train, evaluate "
        "with full ranking, recommend. `kgrec quickstart` runs the whole path on Last.FM.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    add_format(p, argparse.SUPPRESS)
    p.add_argument("--plugin", action="append", metavar="MODULE_OR_FILE",
                   help="import a Python module or .py file first, e.g. one registering a "
                   "model with @MODELS.register(NAME) from kgrec.models (repeatable; also "
                   f"${PLUGINS_ENV}, comma-separated)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    train.add_quickstart(sub)
    data.add_parsers(sub)
    train.add_parsers(sub)
    tune.add_parsers(sub)
    neo4j.add_parsers(sub)
    serve.add_parsers(sub)
    textmodels.add_parsers(sub)
    return p


def _failed(exc: KgrecError) -> int:
    print(f"kgrec: error: {exc}", file=sys.stderr)
    return exc.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    argv = sys.argv[1:] if argv is None else list(argv)
    try:  # before the parser: what the plug-ins register, its help lists
        load_plugins(plugin_specs(argv))
    except KgrecError as exc:
        return _failed(exc)
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 \
        else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # the Neo4j driver logs its connection failures with tracebacks; kgrec turns them into one
    # line that says what to do (kgrec.store.neo4j.driver_errors); -vv shows the driver's own
    logging.getLogger("neo4j").setLevel(logging.DEBUG if args.verbose >= 2 else logging.CRITICAL)
    if not getattr(args, "func", None):
        if args.command in ("data", "neo4j", "schema"):
            parser.parse_args([args.command, "--help"])
        parser.print_help()
        return 0
    set_format(getattr(args, "format", None))
    try:
        return int(args.func(args) or 0)
    except KgrecError as exc:
        return _failed(exc)
    except KeyboardInterrupt:
        print("kgrec: interrupted", file=sys.stderr)
        return 130


def test_report(rec, split, ks, which="test", among_cold=False, by=()):
    """Deprecated: :func:`kgrec.evaluate.evaluation_report` (same arguments)."""
    deprecated("kgrec.cli.test_report", "kgrec.evaluate.evaluation_report")
    from kgrec.evaluate import evaluation_report

    return evaluation_report(rec, split, ks, which, among_cold, by)


test_report.__test__ = False  # type: ignore[attr-defined]  # not a test, for pytest
