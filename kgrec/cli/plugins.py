"""Plug-ins: Python modules or ``.py`` files the command line imports before it reads the rest
of its arguments, so that what they register (a model, with ``@MODELS.register("name")``
from :mod:`kgrec.models`) can be named like a built-in one::

    kgrec --plugin my_models.py train --model popularity ...
    KGREC_PLUGINS=my_models.py kgrec recommend RUN --user 42
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from kgrec.errors import ConfigError

#: the environment variable naming plug-ins (comma- or ``os.pathsep``-separated), imported
#: before the ``--plugin`` ones
PLUGINS_ENV = "KGREC_PLUGINS"

# what ``kgrec`` puts before a plug-in file's stem to name its module (so that a file called,
# say, ``json.py`` shadows no module)
_FILE_MODULE_PREFIX = "kgrec_plugin_"


class _PrePassError(Exception):
    pass


class _PrePass(argparse.ArgumentParser):
    """The top-level options only, the command and its arguments left alone; errors are the
    full parser's to report."""

    def error(self, message: str):  # type: ignore[override]
        raise _PrePassError(message)


def plugin_specs(argv: Sequence[str], environ: dict[str, str] | None = None
                 ) -> list[tuple[str, str]]:
    """``(origin, plug-in)`` pairs to import, in order: ``$KGREC_PLUGINS``'s, then the
    ``--plugin`` options before the command (as the full parser reads them; after the
    command, ``--plugin`` is no option of any command, which that parser says)."""
    env = os.environ if environ is None else environ
    out = [(PLUGINS_ENV, s.strip()) for s in re.split(rf"[,{re.escape(os.pathsep)}]",
                                                      env.get(PLUGINS_ENV, "")) if s.strip()]
    pre = _PrePass(add_help=False, allow_abbrev=False)
    pre.add_argument("-v", "--verbose", action="count")
    pre.add_argument("--format")
    pre.add_argument("--plugin", action="append", default=[])
    pre.add_argument("rest", nargs=argparse.REMAINDER)
    try:
        ns, _ = pre.parse_known_args(list(argv))
    except _PrePassError:
        return out
    return out + [("--plugin", s) for s in ns.plugin]


def load_plugins(specs: Sequence[tuple[str, str]]) -> list[str]:
    """Import every plug-in once; returns the modules' names.

    Raises:
        ConfigError: a plug-in that cannot be imported (naming it, and why).
    """
    done: list[str] = []
    for origin, spec in specs:
        name = load_plugin(spec, origin)
        if name not in done:
            done.append(name)
    return done


def _is_file(spec: str) -> bool:
    return spec.endswith(".py") or any(sep and sep in spec for sep in (os.sep, os.altsep))


def load_plugin(spec: str, origin: str = "--plugin") -> str:
    """Import the module ``spec`` names (dotted, importable from ``sys.path``) or the ``.py``
    file it is; returns the module's name. A file is imported as module
    ``kgrec_plugin_<stem>``, once.

    Raises:
        ConfigError: it cannot be imported: a missing file or module, or an error raised
            while it ran (its class and first line).
    """
    if not _is_file(spec):
        try:
            return importlib.import_module(spec).__name__
        except Exception as exc:
            hint = (f" (a file? name it as one: {spec}.py)"
                    if isinstance(exc, ModuleNotFoundError) and Path(f"{spec}.py").is_file()
                    else "")
            raise _failed(origin, spec, exc, hint) from None
    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"{origin} {spec}: no such file")
    name = _FILE_MODULE_PREFIX + re.sub(r"\W", "_", path.stem)
    old = sys.modules.get(name)
    if old is not None:
        if Path(getattr(old, "__file__", "") or "").resolve() == path:
            return name
        raise ConfigError(f"{origin} {spec}: another plug-in file named {path.name} "
                          f"({old.__file__}) is loaded already; rename one")
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"{origin} {spec}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # before it runs: dataclasses look their module up
    try:
        module_spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        if isinstance(exc, Exception):
            raise _failed(origin, spec, exc) from None
        raise
    return name


def _failed(origin: str, spec: str, exc: Exception, hint: str = "") -> ConfigError:
    why = (str(exc).strip().splitlines() or [""])[0]
    return ConfigError(f"{origin} {spec}: cannot import it: {type(exc).__name__}"
                       + (f": {why}" if why else "") + hint)
