"""Rerun recorded runs with today's code and check they give exactly the same figures.

A results table names the commit its runs came from. When the code they read has changed
since (a refactoring, progress lines in the training loop), its figures are results of the
current code only if the current code reproduces them. This script reruns, for every kind
of run (baseline model, cold-start variant, few-shot variant, ...), the cheapest recorded
run of that kind, with the same arguments, and compares every figure it wrote (timings
aside) for exact equality: training is deterministic on the CPU (same seed, bit-equal
weights). Each comparison is written to ``benchmarks/results/repro/<run file>`` with the
provenance of the rerun; ``benchmarks/report.py`` accepts a kind's runs as current when all
its reproductions at today's code matched, and marks them otherwise.

    python benchmarks/reproduce.py                      # one run per kind (about an hour)
    python benchmarks/reproduce.py --runs cold-ml-100k-kb4rec-hgnn-0.json
    python benchmarks/reproduce.py --list               # what it would rerun
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import HERE, RESULTS, RUNS, Runs, run_kind

REPRO = RESULTS / "repro"
# kinds whose figures are timings (Neo4j, the KG layer), come from another program (RecBole)
# or are made at the current commit anyway (explanations): not rerun here
NOT_RERUN = {"neo4j-io", "recbole", "explain", "robust", "text", "kglayer", "serve",
             "scale"}
# what a rerun may change: how long it took, where and when
TIMING = {"wall_s", "train_s", "sec_per_epoch", "peak_rss_mb", "seconds", "provenance",
          "_file", "load_s", "read_s", "floor_s", "import_own_s", "import_wall_s",
          "load_vs_import", "load_vs_import_wall", "read_vs_floor", "texts_per_s",
          "cached_s"}


def command(doc: dict[str, Any]) -> list[str] | None:
    """The script and arguments that made ``doc`` (``--out`` left off), from its
    provenance, or rebuilt from its fields for runs recorded before argv was."""
    kind, variant = run_kind(doc)
    if kind in NOT_RERUN:
        return None
    argv = doc["provenance"].get("argv")
    if argv:
        out = argv.index("--out") if "--out" in argv else len(argv)
        return [str(HERE / argv[0]), *argv[1:out], *argv[out + 2:]]
    ds, seed = doc.get("dataset"), str(doc.get("seed"))
    if kind in ("baseline", "ctr"):
        return [str(HERE / "run.py"), "--one", ds, doc["model"], seed, "--protocol",
                doc["protocol"]]
    if kind == "cold":
        return [str(HERE / "model.py"), "--one", ds, variant, seed, "cold"]
    if kind in ("model-random", "model-longtail"):
        return [str(HERE / "model.py"), "--one", ds, variant, seed, "random"]
    if kind == "generalise":
        return [str(HERE / "generalise.py"), "--one", ds, doc["side"], str(doc["shots"]),
                variant, seed]
    if kind == "temporal":
        return [str(HERE / "generalise.py"), "--one-temporal", ds, doc["split"], doc["model"],
                seed]
    if kind == "cross":
        return [str(HERE / "generalise.py"), "--one-cross", ds, str(doc["shots"]), variant,
                seed]
    return None


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Where two recorded documents differ, timings aside (exact equality)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            if k in TIMING:
                continue
            if k not in old or k not in new:
                out.append(f"{where}{k}: only in the {'rerun' if k in new else 'record'}")
            else:
                out += differences(old[k], new[k], f"{where}{k}.")
        return out
    if old != new:
        return [f"{where.rstrip('.')}: {old!r} -> {new!r}"]
    return []


def reproduce(doc: dict[str, Any]) -> dict[str, Any]:
    cmd = command(doc)
    assert cmd is not None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / doc["_file"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, *cmd, "--out", str(out)], env=env)
        if done.returncode != 0 or not out.is_file():  # a failed rerun vouches for nothing
            return {"of": doc["_file"], "kind": list(run_kind(doc)), "matched": False,
                    "differences": [f"the rerun failed (exit status {done.returncode})"],
                    "provenance": {"commit_of_run": doc["provenance"]["commit"]}}
        fresh = json.loads(out.read_text())
    # the figures, and the split they come from; the config may have gained fields whose
    # defaults change nothing (the rerun's config is in its provenance)
    keep = lambda d: {k: v for k, v in d.items() if k not in ("_file", "config")}  # noqa: E731
    diffs = differences(keep(doc), keep(fresh))
    diffs += differences({"split": doc["provenance"].get("split")},
                         {"split": fresh["provenance"].get("split")})
    prov = {**fresh["provenance"], "commit_of_run": doc["provenance"]["commit"]}
    return {"of": doc["_file"], "kind": list(run_kind(doc)), "matched": not diffs,
            "differences": diffs[:20], "provenance": prov}


def cheapest_per_kind(runs: Runs) -> list[dict[str, Any]]:
    """One run per (kind, variant): the one that took least time, of the commit most runs
    of that kind carry."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for d in runs.docs:
        if "provenance" not in d or command(d) is None:
            continue
        key = run_kind(d)
        if key not in best or d.get("wall_s", 1e9) < best[key].get("wall_s", 1e9):
            best[key] = d
    return [best[k] for k in sorted(best)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", nargs="+", help="run files to rerun (default: one per kind)")
    p.add_argument("--list", action="store_true", help="say what would be rerun, rerun nothing")
    args = p.parse_args()
    runs = Runs(RUNS)
    todo = ([d for d in runs.docs if d["_file"] in set(args.runs)] if args.runs
            else cheapest_per_kind(runs))
    for d in todo:
        print(f"{d['_file']}  ({'/'.join(run_kind(d))}, {d.get('wall_s', 0) / 60:.1f} min when "
              "recorded)", flush=True)
    if args.list:
        return 0
    REPRO.mkdir(parents=True, exist_ok=True)
    failed = 0
    for d in todo:
        result = reproduce(d)
        (REPRO / d["_file"]).write_text(json.dumps(result, indent=1))
        failed += not result["matched"]
        print(f"{d['_file']}: {'same figures' if result['matched'] else 'DIFFERENT'}"
              + "".join(f"\n    {x}" for x in result["differences"]), flush=True)
    import report

    report.write_all()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
