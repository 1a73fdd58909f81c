"""The KG message layer: kgrec's plain-torch :class:`RelationalMessages` against the same
aggregation written as PyTorch Geometric's ``MessagePassing``.

Both compute, for every node, the mean over its KG edges (each triple in both directions,
its own relation vector per direction) of ``x[tail] * r``. Per dataset's KG: random node
vectors ``[N, 64]`` and relation vectors, then ``reps`` timed passes of forward + backward
(a training step's use of the layer; no edge dropout), one thread, the median reported.
The two outputs and gradients are checked equal (to float tolerance) first. PyG's import
time is reported beside: every process that uses the layer pays it once.

    python benchmarks/kg_layer.py
    python benchmarks/kg_layer.py --datasets lastfm-hetrec-kg --reps 20

Runs write ``benchmarks/results/runs/kglayer-<dataset>.json``; table by
``python benchmarks/report.py`` (``kg_layer.md``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import RUNS, Runs, one_thread, run_missing, write_run

# the bundled datasets whose recipes load a KG (kgat-amazon-book's loads interactions only)
DATASETS = ["lastfm-hetrec-kg", "ml-100k-kb4rec", "book-crossing-kg"]
DIM = 64


def _pyg_layer():
    from torch_geometric.nn import MessagePassing

    class PyGRelational(MessagePassing):
        """``out[i] = mean_j x[j] * r`` over edges ``j -> i`` (PyG's convention)."""

        def __init__(self) -> None:
            super().__init__(aggr="mean")

        def forward(self, x, edge_index, r):
            return self.propagate(edge_index, x=x, r=r)

        def message(self, x_j, r):
            return x_j * r

    return PyGRelational()


def _time(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_one(dataset: str, out: Path, reps: int) -> None:
    import torch

    import kgrec
    from kgrec.models.layers import RelationalMessages

    one_thread()
    kg = kgrec.load_dataset(dataset).knowledge()
    n = kg.num_items + kg.num_entities
    ours = RelationalMessages(kg).eval()
    t0 = time.perf_counter()
    pyg = _pyg_layer().eval()
    import_s = time.perf_counter() - t0
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, DIM, generator=g, requires_grad=True)
    rel = torch.randn(2 * len(kg.relations), DIM, generator=g, requires_grad=True)
    edge_index = torch.stack([ours.tail, ours.head])  # j = tail -> i = head

    def step_ours() -> torch.Tensor:
        out = ours(x, rel)
        out.pow(2).sum().backward()
        return out

    def step_pyg() -> torch.Tensor:
        out = pyg(x, edge_index, rel.index_select(0, ours.rel))
        out.pow(2).sum().backward()
        return out

    a = step_ours()
    ga = (x.grad.clone(), rel.grad.clone())
    x.grad = rel.grad = None
    b = step_pyg()
    gb = (x.grad.clone(), rel.grad.clone())
    x.grad = rel.grad = None
    same = bool(torch.allclose(a, b, atol=1e-5) and torch.allclose(ga[0], gb[0], atol=1e-4)
                and torch.allclose(ga[1], gb[1], atol=1e-3))
    ours_s, pyg_s = _time(step_ours, reps), _time(step_pyg, reps)
    import_cmd = [sys.executable, "-c", "import time; t = time.perf_counter(); "
                  "import torch_geometric.nn; print(time.perf_counter() - t)"]
    pyg_import_s = float(subprocess.run(import_cmd, capture_output=True, text=True,
                                        check=True).stdout.strip())
    write_run(out, {"dataset": dataset, "nodes": n, "edges": len(ours), "dim": DIM,
                    "reps": reps, "same_output": same, "ours_ms": 1000 * ours_s,
                    "pyg_ms": 1000 * pyg_s, "pyg_vs_ours": pyg_s / ours_s,
                    "pyg_import_s": pyg_import_s, "pyg_import_in_process_s": import_s})


def tables(runs: Runs) -> dict[str, str]:
    docs = runs.glob("kglayer-*.json")
    if not docs:
        return {}
    runs = runs.scoped(docs)
    lines = ["# The KG message layer: plain torch vs PyG's MessagePassing", "",
             "Reproduce: `python benchmarks/kg_layer.py`, then `python benchmarks/report.py`.",
             "", runs.header(docs), "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| dataset | nodes | KG edges (both directions) | same output | kgrec ms | "
             "PyG MessagePassing ms | PyG / kgrec | importing torch_geometric.nn (s) |",
             "|---|---:|---:|:---:|---:|---:|---:|---:|"]
    for ds in DATASETS:
        for d in [d for d in docs if d["dataset"] == ds]:
            lines.append(f"| {ds}{runs.mark([d])} | {d['nodes']:,} | {d['edges']:,} | "
                         f"{'yes' if d['same_output'] else 'NO'} | {d['ours_ms']:.1f} | "
                         f"{d['pyg_ms']:.1f} | {d['pyg_vs_ours']:.2f}x | "
                         f"{d['pyg_import_s']:.1f} |")
    lines += ["", "Timings: median of the passes, forward + backward, one thread. Equal "
              "outputs are equal to float tolerance, not bit for bit: the two sum a node's "
              "messages in different orders. A ratio near 1 says the choice is about imports, "
              "dependencies and reproducing earlier runs exactly, not speed."]
    return {"kg_layer.md": "\n".join(lines)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=DATASETS)
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--one", nargs=1, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        run_one(args.one[0], Path(args.out), args.reps)
        return
    RUNS.mkdir(parents=True, exist_ok=True)
    run_missing(__file__, [(RUNS / f"kglayer-{ds}.json", ["--one", ds, "--reps",
                                                          str(args.reps)], f"kg layer {ds}")
                           for ds in args.datasets])
    import report
    report.write_all()


if __name__ == "__main__":
    main()
