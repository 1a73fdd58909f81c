"""Neo4j load and export throughput, against Neo4j's own fastest paths on the same machine.

For each dataset, ``--runs`` times:

- **kgrec load**: empty the database, ``Neo4jStore.write`` the whole graph (relationships/s
  over the whole load, nodes and the commit journal included);
- **anchor: ``neo4j-admin database import full``**, Neo4j's offline bulk importer, on CSV
  files of the same graph (written beforehand, not timed) into a scratch database of its
  own: relationships/s by the tool's own timer ("IMPORT DONE in ..."), and end to end (its
  JVM start included);
- **kgrec export**: ``Neo4jStore.read`` of the dataset back into a RecGraph, checked equal to
  the graph loaded;
- **anchor: the columnar floor**: the same database read with one query per node label and
  one per relationship type, each returning column lists (``collect(...)``), decoded by the
  driver's Rust extension: what any reader must at least spend.

Ratios are taken within a run; the table gives medians over runs. Goals (the hardening
issue): load >= 1.0x the importer's own rate, export >= 0.9x the columnar floor.

Needs the running server (``kgrec neo4j start``) and the jars it fetched (the importer is
their ``org.neo4j.cli.AdminTool``). One JSON per dataset and run,
``benchmarks/results/runs/neo4j-io-<dataset>-<run>.json``; table by
``python benchmarks/report.py`` (``neo4j.md``).

    python benchmarks/neo4j_io.py
    python benchmarks/neo4j_io.py --datasets book-crossing-kg --runs 1
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import RUNS, Runs, write_run

DATASETS = ["book-crossing-kg", "kgat-amazon-book"]


def _column(col) -> list:
    """A column for the importer: a missing value (NaN, "") is an empty field, which the
    importer reads as no property (``--ignore-empty-strings``), as kgrec's store writes it."""
    if col.dtype.kind == "f":
        return ["" if v != v else repr(v) for v in col.tolist()]
    return col.tolist()


def write_csvs(graph, schema, folder: Path) -> list[str]:
    """The graph as neo4j-admin import CSV files; returns the importer's file arguments."""
    args = []
    for label, table in graph.nodes.items():
        if not len(table):
            continue
        cols = [k for k, v in table.attrs.items() if v.ndim == 1]
        path = folder / f"nodes-{label}.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            types = {"f": ":double", "i": ":long", "u": ":long"}
            w.writerow([f"id:ID({label})", *(f"{c}{types.get(table.attrs[c].dtype.kind, '')}"
                                             for c in cols)])
            w.writerows(zip(table.ids.tolist(), *(_column(table.attrs[c]) for c in cols),
                            strict=True))
        args.append(f"--nodes={label}={path}")
    for k, (et, table) in enumerate(graph.edges.items()):
        rtype = schema.relationship_type(*et)
        cols = list(table.attrs)
        path = folder / f"rels-{k}.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            types = {"f": ":double", "i": ":long", "u": ":long"}
            w.writerow([f":START_ID({et[0]})", f":END_ID({et[2]})",
                        *(f"{c}{types.get(table.attrs[c].dtype.kind, '')}" for c in cols)])
            s, d = graph.nodes[et[0]].ids[table.src], graph.nodes[et[2]].ids[table.dst]
            w.writerows(zip(s.tolist(), d.tolist(), *(_column(table.attrs[c]) for c in cols),
                            strict=True))
        args.append(f"--relationships={rtype}={path}")
    return args


def admin_import(files: list[str], scratch: Path) -> tuple[float, float]:
    """(own seconds, end-to-end seconds) of neo4j-admin's full import into a scratch home."""
    from kgrec.neo4j.server import Neo4jServer

    server = Neo4jServer(home=scratch / "home")
    (scratch / "home" / "conf").mkdir(parents=True, exist_ok=True)
    (scratch / "home" / "conf" / "neo4j.conf").write_text(
        f"server.directories.data={scratch / 'home' / 'data'}\n")
    env = dict(os.environ, NEO4J_HOME=str(scratch / "home"),
               NEO4J_CONF=str(scratch / "home" / "conf"))
    # the database name first: after them, it would read as one more file of the last group
    cmd = [server._java(), "-Xmx1g", "-cp", server._classpath(), "org.neo4j.cli.AdminTool",
           "database", "import", "full", "neo4j", "--overwrite-destination",
           "--ignore-empty-strings=true", "--skip-bad-relationships=false",
           f"--report-file={scratch / 'import.report'}", *files]
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"neo4j-admin import failed:\n{(out.stdout + out.stderr)[-3000:]}")
    m = re.search(r"IMPORT DONE in (?:(\d+)m )?(\d+)s (\d+)ms", out.stdout + out.stderr)
    if not m:
        raise SystemExit(f"no 'IMPORT DONE' in the importer's output:\n{out.stdout[-2000:]}")
    own = int(m.group(1) or 0) * 60 + int(m.group(2)) + int(m.group(3)) / 1000
    return own, wall


def columnar_floor(store) -> tuple[float, int]:
    """Seconds to read every node and relationship as column lists (one query per node label
    and per relationship type, one list per property, the records' lists taken as the
    driver decodes them), and the relationships read."""
    def q(query: str) -> list:
        return [r.values() for r in store._driver.execute_query(query, database_=store.database)[0]]

    t = time.perf_counter()
    n = 0
    labels = [r[0] for r in q("CALL db.labels() YIELD label RETURN label")
              if not r[0].startswith("Kgrec")]
    for label in labels:
        keys = [k[0] for k in q(f"MATCH (n:`{label}`) UNWIND keys(n) AS k RETURN DISTINCT k")]
        cols = "".join(f", collect(n.`{k}`)" for k in keys)
        q(f"MATCH (n:`{label}`) RETURN collect(id(n)){cols}")
    for (t_,) in q("CALL db.relationshipTypes() YIELD relationshipType AS t RETURN t"):
        keys = [k[0] for k in q(f"MATCH ()-[r:`{t_}`]->() WITH r LIMIT 1 "
                                "UNWIND keys(r) AS k RETURN k")]
        cols = "".join(f", collect(r.`{k}`)" for k in keys)
        (rec,) = q(f"MATCH (a)-[r:`{t_}`]->(b) RETURN collect(id(a)), collect(id(b)){cols}")
        n += len(rec[0])
    return time.perf_counter() - t, n


def run_dataset(dataset: str, run: int, out: Path) -> None:
    import kgrec
    from kgrec.schema import GraphSchema
    from kgrec.store.neo4j import Neo4jStore

    schema = GraphSchema.load("recsys")
    graph = kgrec.load_dataset(dataset)
    n_rel = sum(len(t) for t in graph.edges.values())
    with tempfile.TemporaryDirectory(prefix="kgrec-import-") as tmp:
        files = write_csvs(graph, schema, Path(tmp))
        own, wall = admin_import(files, Path(tmp))
    with Neo4jStore() as store:
        store.clear()
        t = time.perf_counter()
        report = store.write(graph, schema, progress=False)
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        back = store.read(schema, dataset=graph.name, progress=False)
        read_s = time.perf_counter() - t
        assert graph.differences(back) == [], graph.differences(back)
        floor_s, floor_n = columnar_floor(store)
        assert floor_n == n_rel, (floor_n, n_rel)
        store.clear()
    doc = {"dataset": dataset, "run": run, "relationships": n_rel,
           "nodes": sum(len(t) for t in graph.nodes.values()), "load_s": load_s,
           "load_mode": report.mode, "batch_size": store.batch_size, "import_own_s": own,
           "import_wall_s": wall, "read_s": read_s, "floor_s": floor_s,
           "load_vs_import": own / load_s, "load_vs_import_wall": wall / load_s,
           "read_vs_floor": floor_s / read_s}
    print(f"{dataset} run {run}: load {n_rel / load_s:,.0f} rel/s, import {n_rel / own:,.0f} "
          f"(own) / {n_rel / wall:,.0f} (end to end), read {n_rel / read_s:,.0f}, floor "
          f"{n_rel / floor_s:,.0f}", flush=True)
    write_run(out, doc)


def _ratio(xs: list[float]) -> str:
    """The median ratio, and the range over runs."""
    return f"**{statistics.median(xs):.2f}x** ({min(xs):.2f}-{max(xs):.2f})"


def tables(runs: Runs) -> dict[str, str]:
    docs = runs.glob("neo4j-io-*.json")
    if not docs:
        return {}
    runs = runs.scoped(docs)
    lines = ["# Neo4j load and export throughput, against Neo4j's own fastest paths", "",
             "Reproduce: `kgrec neo4j start && python benchmarks/neo4j_io.py`, then "
             "`python benchmarks/report.py`.", "", runs.header(docs), "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "Ratios per run (the anchors ran in the same run, on the same machine), medians "
             "over runs. Server: the one `kgrec neo4j start` runs (heap 1g, page cache 512m), "
             "client on the same machine; the importer with `-Xmx1g`.", "",
             "| dataset | relationships | runs | load rel/s | importer rel/s (own timer) | "
             "importer end to end | load / importer | export rel/s | floor rel/s | "
             "export / floor |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for ds in DATASETS:
        mine = [d for d in docs if d["dataset"] == ds]
        if not mine:
            continue
        n = mine[0]["relationships"]

        def med(key: str, rows=mine) -> float:
            return statistics.median(d[key] for d in rows)

        lines.append(f"| {ds}{runs.mark(mine)} | {n:,} | {len(mine)} | {n / med('load_s'):,.0f} | "
                     f"{n / med('import_own_s'):,.0f} | {n / med('import_wall_s'):,.0f} | "
                     f"{_ratio([d['load_vs_import'] for d in mine])} | "
                     f"{n / med('read_s'):,.0f} | {n / med('floor_s'):,.0f} | "
                     f"{_ratio([d['read_vs_floor'] for d in mine])} |")
    lines += ["", "Every export was checked equal to the graph loaded. Goals: load / importer "
              ">= 1.0, export / floor >= 0.9."]
    return {"neo4j.md": "\n".join(lines)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=DATASETS)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    for ds in args.datasets:
        for run in range(args.runs):
            out = RUNS / f"neo4j-io-{ds}-{run}.json"
            if not out.is_file():
                run_dataset(ds, run, out)
    import report

    report.write_all()


if __name__ == "__main__":
    main()
