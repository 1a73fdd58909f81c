"""The house's layer order holds: every import in ``kgrec/`` (lazy ones in functions too)
points to the module's own layer or a lower one, and no two modules import each other.

The order is ``../shared/DESIGN.md``'s, bottom first; it lives here, in the test, so that
moving a module to another layer is a visible change. There are no exceptions: an arrow up
the chain fails the test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

KGREC = Path(__file__).resolve().parent.parent / "kgrec"

LAYERS = [
    {"errors", "paths", "plot", "progress", "registry"},
    {"config", "schema"},
    {"graph"},
    {"ingest", "store", "neo4j"},
    {"features"},
    {"data"},
    {"models"},
    {"evaluate"},
    {"recommender"},
    {"train"},
    {"serve"},
    {"tune"},
    {"cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    parts = path.relative_to(KGREC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every kgrec import in the file, anywhere in it."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "kgrec":
                out += [(node.lineno, f"kgrec.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, node.module))
                # `from kgrec.data import split` may name a module
                out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                        if (KGREC.parent / f"{node.module}.{a.name}".replace(".", "/")
                            ).with_suffix(".py").is_file()]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; kgrec spells "
                                 "imports absolutely")
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(line, m) for line, m in out if m == "kgrec" or m.startswith("kgrec.")]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


MODULES = {_module_name(p): p for p in sorted(KGREC.rglob("*.py"))}


def test_every_module_has_a_layer():
    missing = sorted({_layer(m) for m in MODULES} - set(RANK) - {None})
    assert not missing, f"kgrec/{missing[0]}: give it a layer in LAYERS"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m)))
def test_imports_only_point_down(module):
    me = _layer(module)
    up = [f"{MODULES[module].relative_to(KGREC.parent)}:{line}: {me} -> {_layer(target)} "
          f"({target})" for line, target in _imports(MODULES[module])
          if _layer(target) and RANK[_layer(target)] > RANK[me]]
    assert not up, "imports that run back up the layers:\n" + "\n".join(up)


def test_no_two_modules_import_each_other():
    graph = {m: {t for _, t in _imports(p) if t in MODULES and t != m}
             for m, p in MODULES.items()}
    # a package's __init__ re-exporting its modules is not a cycle with them
    pairs = sorted((a, b) for a, targets in graph.items() for b in targets
                   if a < b and a in graph.get(b, set())
                   and not (b.startswith(a + ".") or a.startswith(b + ".")))
    assert not pairs, f"modules that import each other: {pairs}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The parser finds lazy imports inside functions (a check that would pass anything is
    no check)."""
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from kgrec.serve import Recommender\n    import kgrec.cli\n")
    assert [m for _, m in _imports(f)] == ["kgrec.serve", "kgrec.cli"]
