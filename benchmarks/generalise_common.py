"""What the generalisation experiments share (``generalise_fewshot.py``,
``generalise_cross.py``, ``generalise_temporal.py``, ``generalise_robust.py``): the one-run
command line, the shots table, paired means over seeds and the summary plot
``benchmarks/results/generalise.png``."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

from common import RESULTS, Runs, mean_std

#: one panel of the summary plot: title, x label, and per line its name and
#: ``(x, mean, std)`` (see :func:`series`)
Panel = tuple[str, str, list[tuple[str, tuple[list, list[float], list[float]]]]]


def one_main(doc: str | None, metavar: tuple[str, ...],
             one: Callable[[list[str], Path], None]) -> None:
    """The command line of an experiment module: ``--one ARGS --out FILE`` makes one run
    (``one(ARGS, FILE)``), as the run loop (``generalise.py``) starts it."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter,
                                epilog="Run the experiments with benchmarks/generalise.py.")
    p.add_argument("--one", nargs=len(metavar), metavar=metavar, required=True,
                   help="make this one run")
    p.add_argument("--out", required=True, help="the run JSON to write")
    a = p.parse_args()
    one(a.one, Path(a.out))


def paired(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, int]:
    """The means of two by-seed results over the seeds both have, and how many (0: none), so
    that a one-seed run is never set against a three-seed mean."""
    both = a.keys() & b.keys()
    if not both:
        return 0.0, 0.0, 0
    return (statistics.mean(a[x] for x in both), statistics.mean(b[x] for x in both),
            len(both))


def shots_table(all_runs: Runs, runs: list[dict], variants: list[str], shots: list[int]
                ) -> list[str]:
    """Markdown rows: one per variant with runs, ``Recall@20 / NDCG@20`` (mean ± std over
    seeds) per K, and the number of seeds per K."""
    lines = ["| variant | " + " | ".join(f"K={k}" for k in shots) + " | seeds per K |",
             "|---|" + "---:|" * (len(shots) + 1)]
    for v in variants:
        cells, seeds = [], []
        for k in shots:
            sel = [r for r in runs if r["variant"] == v and r["shots"] == k]
            seeds.append(len({r["seed"] for r in sel}))
            cells.append(f"{mean_std([r['recall@20'] for r in sel])} / "
                         f"{mean_std([r['ndcg@20'] for r in sel])}" if sel else "–")
        if any(seeds):
            mark = all_runs.mark([r for r in runs if r["variant"] == v])
            lines.append(f"| {v}{mark} | " + " | ".join(cells) + " | "
                         + "/".join(map(str, seeds)) + " |")
    return lines


def series(rows: list[dict], key: str, xs: list) -> tuple[list, list[float], list[float]]:
    """Mean and std of Recall@20 over seeds at each ``x`` where ``key`` equals it."""
    out: tuple[list, list[float], list[float]] = ([], [], [])
    for x in xs:
        vals = [r["recall@20"] for r in rows if r[key] == x]
        if vals:
            out[0].append(x)
            out[1].append(statistics.mean(vals))
            out[2].append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
    return out


def plot(panels: list[Panel]) -> list[str]:
    """``generalise.png``: the panels (each experiment's ``panels(runs)``), Recall@20 mean ±
    std over seeds. Returns the markdown lines that show it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not panels:
        return []
    cols = 4
    rows_n = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.3 * rows_n), squeeze=False)
    for ax, (title, xlabel, lines) in zip(axes.flat, panels, strict=False):
        for name, (x, mean, std) in lines:
            if x:
                ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=name)
        if "shots" in xlabel:  # (radii 0, 0.05 and 0.1 would overprint)
            ax.set_xticks(sorted({v for _, (x, _, _) in lines for v in x}))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Recall@20")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(RESULTS / "generalise.png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return ["![Recall@20 against shots, noise and attack radius (mean ± std over seeds)]"
            "(generalise.png)", ""]
