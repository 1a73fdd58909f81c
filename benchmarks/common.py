"""What the benchmark scripts share: each run's provenance, the resumable run loop, and the
runs a report reads.

Every run JSON carries where it came from (:func:`provenance`): the commit and whether the
tree was dirty, the full resolved config, the split's hash, the package versions, the device
and thread count, and a hash of every project file the run read (the kgrec modules it
imported, the benchmark scripts, the recipes and schema). ``benchmarks/report.py`` builds
every table from these files and marks any row whose runs come from another commit than the
table's, or whose files have changed since (:class:`Runs`).
"""

from __future__ import annotations

import copy
import datetime
import fnmatch
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
RUNS = RESULTS / "runs"
# Files every run depends on beside the modules it imports.
_ALWAYS = ["requirements.lock", "graph_schema/recsys.yaml", "benchmarks/common.py"]


def mean_std(xs: list[float]) -> str:
    """``mean ± std`` over seeds to 4 places; one value as is; none as a dash."""
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.4f}"
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}"


def model_section(flat: dict[str, Any]) -> dict[str, Any]:
    """A model section from a flat dict (``name``, ``dim``, ``layers`` and the model's own
    options side by side, as the variants are written): the options moved under the model's
    name, as the config keeps them (``{"name": "hgnn", "hgnn": {"kg_items": "cold"}}``)."""
    fixed = {k: v for k, v in flat.items() if k in ("name", "dim", "layers")}
    options = {k: v for k, v in flat.items() if k not in fixed}
    return {**fixed, **({fixed["name"]: options} if options else {})}


def one_thread() -> None:
    """One thread per run, so two runs share the 2-core machine without stepping on each
    other (the run loop also sets ``OMP_NUM_THREADS=1`` for its child processes)."""
    import torch

    torch.set_num_threads(1)


def run_missing(script: str, jobs: list[tuple[Path, list[str], str]]) -> None:
    """Run ``script`` once per job ``(out, args, label)`` whose ``out`` file does not exist
    yet, each in its own process (``script *args --out out``) on one thread: a killed
    benchmark resumes where it stopped."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    todo = [j for j in jobs if not j[0].is_file()]
    for k, (out, args, label) in enumerate(todo, 1):
        print(f"[{k}/{len(todo)}] {label}", flush=True)
        subprocess.run([sys.executable, script, *args, "--out", str(out)], check=True, env=env)


# ------------------------------------------------------------------------------ provenance
def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                          check=False).stdout.strip()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def code_files(datasets: tuple[str, ...] = ()) -> list[str]:
    """The project files this process has read as code: imported kgrec and benchmark modules,
    the recipes of ``datasets`` (bundled names; all recipes when none is given), the schema
    and the pinned dependencies (paths relative to the repository)."""
    files = set(_ALWAYS)
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if not f:
            continue
        p = Path(f).resolve()
        if p.is_relative_to(REPO / "kgrec") or p.is_relative_to(HERE):
            files.add(str(p.relative_to(REPO)))
    recipes = [REPO / "loaders" / f"{d}.yaml" for d in datasets] or sorted(
        (REPO / "loaders").glob("*.yaml"))
    files.update(str(p.relative_to(REPO)) for p in recipes)
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main and Path(main).resolve().is_relative_to(REPO):
        files.add(str(Path(main).resolve().relative_to(REPO)))
    return sorted(f for f in files if (REPO / f).is_file())


def provenance(cfg: Any = None, split: Any = None) -> dict[str, Any]:
    """Where a run came from: commit, dirty tree, resolved config, split hash, versions,
    device, threads, and the hash of every project file it read (of the recipes, the one of
    the split's dataset)."""
    import numpy as np
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "numpy": np.__version__}
    for name in ("torch_geometric", "transformers", "kgrec"):
        mod = sys.modules.get(name)
        if mod is not None:
            versions[name] = getattr(mod, "__version__", "?")
    dirty = _git("status", "--porcelain", "--", "kgrec", "benchmarks", "loaders",
                 "graph_schema", "requirements.lock", ":!benchmarks/results")
    doc: dict[str, Any] = {
        "commit": _git("rev-parse", "HEAD"), "dirty": bool(dirty),
        "argv": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": versions, "device": "cuda" if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "code": {f: file_hash(REPO / f)
                 for f in code_files((split.graph.name,) if split is not None else ())}}
    if cfg is not None:
        doc["config"] = cfg.to_dict()
    if split is not None:
        from kgrec.data.folds import fingerprint

        doc["split"] = {"hash": fingerprint(split), **split.summary()}
    return doc


def write_run(out: Path, doc: dict[str, Any], cfg: Any = None, split: Any = None) -> None:
    """Write one run's JSON with its :func:`provenance`, atomically."""
    doc = {**doc, "provenance": provenance(cfg, split)}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out)


# ------------------------------------------------------------------------------ reading runs
#: files a run reads that change no figure it writes: this module (provenance, the run loop,
#: one thread per run) only says where a run came from and starts it
INFRASTRUCTURE = {"benchmarks/common.py"}
#: file-name prefixes of the run kinds (a baseline run's name starts with its dataset)
KINDS = ("ctr-", "cold-", "generalise-", "temporal-", "cross-", "model-random-",
         "model-longtail-", "robust-", "neo4j-io-", "explain-", "text-", "recbole-",
         "kglayer-", "serve-", "scale-", "select-")


def run_kind(doc: dict[str, Any]) -> tuple[str, str]:
    """``(kind, model or variant)`` of a run: what one reproduction stands for."""
    name = doc["_file"] if "_file" in doc else doc.get("of", "")
    kind = next((k.rstrip("-") for k in KINDS if name.startswith(k)), "baseline")
    return kind, str(doc.get("variant", doc.get("model", "")))


def _load_docs(folder: Path) -> list[dict[str, Any]]:
    docs = []
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        doc = json.loads(p.read_text())
        if isinstance(doc, dict):
            doc["_file"] = p.name
            docs.append(doc)
    return docs


class Runs:
    """Every run JSON under ``folder``, with each one's standing against the commit of the
    table it is shown in.

    Args:
        folder: the run files (reproductions, ``benchmarks/reproduce.py``, in its sibling
            ``repro/``).
        commit: the commit every table describes (default: per table, the one most of its
            runs carry; see :meth:`scoped`).

    A run is *current* when it carries the table's commit, came from a clean tree, and every
    file it read is unchanged in the working tree now, or, where files changed, when runs of
    its kind were reproduced bit-exactly by the code as it is now. :meth:`mark` says in a few
    words why a run is not current; a table puts that beside the row.
    """

    def __init__(self, folder: Path = RUNS, commit: str | None = None) -> None:
        self.docs = _load_docs(folder)
        self.repros = _load_docs(folder.parent / "repro")
        self.forced = commit
        carried = Counter(d["provenance"]["commit"] for d in self.docs if "provenance" in d)
        self.commit = commit or (carried.most_common(1)[0][0] if carried else "")
        self._hash: dict[str, str | None] = {}

    def scoped(self, docs: list[dict[str, Any]]) -> Runs:
        """This set of runs judged against the commit most of ``docs`` carry: one table's."""
        view = copy.copy(self)
        carried = Counter(d["provenance"]["commit"] for d in docs if "provenance" in d)
        if not self.forced and carried:
            view.commit = carried.most_common(1)[0][0]
        return view

    def glob(self, pattern: str) -> list[dict[str, Any]]:
        """The runs whose file name matches ``pattern`` (fnmatch), in name order."""
        return [d for d in self.docs if fnmatch.fnmatch(d["_file"], pattern)]

    def _now(self, f: str) -> str | None:
        if f not in self._hash:
            p = REPO / f
            self._hash[f] = file_hash(p) if p.is_file() else None
        return self._hash[f]

    def _changed(self, prov: dict[str, Any]) -> list[str]:
        return [f for f, h in prov.get("code", {}).items()
                if f not in INFRASTRUCTURE and self._now(f) != h]

    def reproduced(self, doc: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The reproductions that vouch for ``doc``'s kind at today's code, all bit-exact
        (``None``: none, or one that did not match)."""
        mine = [r for r in self.repros if tuple(r["kind"]) == run_kind(doc)
                and r["provenance"]["commit_of_run"] == doc["provenance"]["commit"]
                and not self._changed(r["provenance"])]
        if not mine or not all(r["matched"] for r in mine):
            return None
        return mine

    def problem(self, doc: dict[str, Any]) -> str:
        """Why ``doc`` is not a run of :attr:`commit` with today's code (``""``: it is)."""
        prov = doc.get("provenance")
        if prov is None:
            return "no provenance"
        if prov["commit"] != self.commit:
            return f"commit {prov['commit'][:7]}"
        if prov.get("dirty"):
            return "dirty tree"
        changed = self._changed(prov)
        if changed and self.reproduced(doc) is None:
            return "changed since: " + ", ".join(changed[:3]) + (" ..." if len(changed) > 3
                                                                  else "")
        return ""

    def mark(self, docs: list[dict[str, Any]]) -> str:
        """``""`` when all ``docs`` are current, else `` ⚠ (why)`` to put beside the row."""
        why = sorted({p for d in docs if (p := self.problem(d))})
        return f" ⚠ ({'; '.join(why)})" if why else ""

    def header(self, docs: list[dict[str, Any]]) -> str:
        """One line on the provenance of ``docs``: commit, dates, machine, versions."""
        current = [d for d in docs if not self.problem(d)]
        if not docs:
            return "No runs yet."
        if not current:
            return f"⚠ None of these {len(docs)} runs is a run of commit {self.commit[:7]}."
        prov = [d["provenance"] for d in current]
        days = sorted({p["date"][:10] for p in prov})
        v = prov[0]["versions"]
        threads = sorted({p["threads"] for p in prov})
        span = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
        vouched = {id(r): r for d in current if self._changed(d["provenance"])
                   for r in self.reproduced(d) or []}
        since = ("every file they read unchanged since" if not vouched else
                 "the code they read has changed since, and a rerun of each of their kinds "
                 f"with today's code ({len(vouched)} runs by `benchmarks/reproduce.py`, at "
                 + ", ".join(sorted({f"`{r['provenance']['commit'][:7]}`"
                                     for r in vouched.values()}))
                 + ") gave exactly the same figures")
        text = (f"Runs: commit `{self.commit[:7]}`, clean tree, {since}; {span}; "
                f"{prov[0]['cpus']} CPUs ({prov[0]['machine']}), "
                f"{'/'.join(map(str, threads))} thread(s) per run, {prov[0]['device']}; "
                f"torch {v['torch']}, PyG {v.get('torch_geometric', '–')}, "
                f"transformers {v.get('transformers', '–')}, Python {v['python']}.")
        stale = len(docs) - len(current)
        if stale:
            text += f" ⚠ {stale} of {len(docs)} runs are not (marked in the rows)."
        return text
