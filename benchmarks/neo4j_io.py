"""Neo4j load and export throughput: kgrec's Neo4jStore against the driver's naive loop.

For each dataset, three times: empty the database, ``Neo4jStore.write`` the whole graph
(relationships/s over the whole load, nodes included in the time), then
``Neo4jStore.read`` it back into a RecGraph (relationships/s). The peer, in the same script
against the same server: the Neo4j driver used the obvious way, one auto-commit query per
relationship (``MATCH`` both ends by id, ``CREATE`` the relationship) for a sample of the
interactions, and a plain streamed ``MATCH (a)-[r]->(b) RETURN a.id, b.id, r.*`` consumed
record by record for the export. Medians of the three runs.

Needs a running server (``kgrec neo4j start``); writes ``benchmarks/results/neo4j.md``.

    python benchmarks/neo4j_io.py
    python benchmarks/neo4j_io.py --datasets book-crossing-kg --runs 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import kgrec
from kgrec.schema import GraphSchema
from kgrec.store.neo4j import Neo4jStore

RESULTS = Path(__file__).resolve().parent / "results"


def naive_load(store: Neo4jStore, graph: kgrec.RecGraph, n: int) -> float:
    """Relationships/s of one auto-commit query per relationship (a sample of ``n``)."""
    inter = graph.interactions
    users, items = graph.users.ids, graph.items.ids
    q = ("MATCH (a:User {id: $s}) MATCH (b:Item {id: $d}) "
         "CREATE (a)-[:NAIVE {behavior: $b, weight: $w}]->(b)")
    start = time.perf_counter()
    with store._driver.session(database=store.database) as session:
        for k in range(min(n, len(inter))):
            session.run(q, s=str(users[inter.src[k]]), d=str(items[inter.dst[k]]),
                        b=str(inter.attrs["behavior"][k]),
                        w=float(inter.attrs["weight"][k])).consume()
    rate = min(n, len(inter)) / (time.perf_counter() - start)
    store.run("MATCH ()-[r:NAIVE]->() DELETE r")
    return rate


def naive_export(store: Neo4jStore) -> tuple[float, int]:
    """Relationships/s of streaming every relationship record by record."""
    start = time.perf_counter()
    n = 0
    with store._driver.session(database=store.database) as session:
        result = session.run("MATCH (a)-[r]->(b) WHERE NOT a:KgrecLoad "
                             "RETURN a.id AS s, b.id AS d, properties(r) AS p")
        for record in result:
            _ = (record["s"], record["d"], record["p"])
            n += 1
    return n / (time.perf_counter() - start), n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["book-crossing-kg", "kgat-amazon-book"])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--naive-sample", type=int, default=5000,
                   help="relationships the naive loop writes (it is slow)")
    args = p.parse_args()
    schema = GraphSchema.load("recsys")
    lines = ["# Neo4j load and export throughput", "",
             f"Reproduce: `kgrec neo4j start && python benchmarks/neo4j_io.py` "
             f"({args.runs} runs, medians).", "",
             "kgrec: `Neo4jStore.write` (columnar `UNWIND` batches of 20,000 in explicit "
             "transactions with the commit journal, endpoints by node id) and "
             "`Neo4jStore.read` (paged, column lists). Peer, same script and server: the "
             "driver's naive loop, one auto-commit `MATCH ... CREATE` per relationship "
             f"(a sample of {args.naive_sample:,}), and a record-by-record streamed export.", "",
             f"Server: Neo4j 5.26.30 community started by `kgrec neo4j start` (heap 1g, page "
             f"cache 512m) on the same {os.cpu_count()}-core machine "
             f"({platform.machine()}) as the client; {time.strftime('%Y-%m-%d')}.", "",
             "| dataset | relationships | nodes | load rel/s (kgrec) | load rel/s (naive) | "
             "load ratio | export rel/s (kgrec) | export rel/s (naive) | export ratio |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    with Neo4jStore() as store:
        for ds in args.datasets:
            graph = kgrec.load_dataset(ds)
            n_rel = sum(len(t) for t in graph.edges.values())
            n_nodes = sum(len(t) for t in graph.nodes.values())
            loads, exports, naive_l, naive_e = [], [], [], []
            for run in range(args.runs):
                store.clear()
                t = time.perf_counter()
                report = store.write(graph, schema, progress=False)
                loads.append(report.relationships_written / (time.perf_counter() - t))
                t = time.perf_counter()
                back = store.read(schema, progress=False)
                exports.append(sum(len(e) for e in back.edges.values())
                               / (time.perf_counter() - t))
                assert graph.differences(back) == [], graph.differences(back)
                naive_l.append(naive_load(store, graph, args.naive_sample))
                naive_e.append(naive_export(store)[0])
                print(f"{ds} run {run + 1}: load {loads[-1]:,.0f}/s (naive {naive_l[-1]:,.0f}), "
                      f"export {exports[-1]:,.0f}/s (naive {naive_e[-1]:,.0f})", flush=True)
            ml, me = statistics.median(loads), statistics.median(exports)
            nl, ne = statistics.median(naive_l), statistics.median(naive_e)
            lines.append(f"| {ds} | {n_rel:,} | {n_nodes:,} | {ml:,.0f} | {nl:,.0f} | "
                         f"{ml / nl:.0f}x | {me:,.0f} | {ne:,.0f} | {me / ne:.1f}x |")
        store.clear()
    lines += ["", "Goals from the issue: load >= 100,000 relationships/s, export >= 500,000 "
              "relationships/s. Every export was checked equal to the graph it came from."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "neo4j.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
