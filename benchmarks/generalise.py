"""Generalisation benchmarks: the command line over four experiments, and their table.

- few-shot cold users and items (the default; ``generalise_fewshot.py``),
- cross-domain transfer (``--cross``; ``generalise_cross.py``),
- temporal shift (``--temporal``; ``generalise_temporal.py``),
- robustness to noise (``--robust``; ``generalise_robust.py``).

Each module's docstring (below) gives its protocol and the run files it writes; each run is
its own process (``benchmarks/generalise_<experiment>.py --one ... --out FILE``), and
finished runs are not redone. This script starts the missing runs, then rewrites every table
(``benchmarks/report.py``); the summary ``benchmarks/results/generalise.md`` (and
``generalise.png``) is :func:`tables`. It also makes one run of the old command lines
(``--one``, ``--one-cross``, ``--one-temporal``, ``--one-robust``, recorded in the
provenance of earlier runs and rerun by ``benchmarks/reproduce.py``).

    python benchmarks/generalise.py --datasets lastfm-hetrec-kg --sides user --seeds 0
    python benchmarks/generalise.py --cross --shots 5
    python benchmarks/generalise.py --temporal --datasets ml-latest-small
    python benchmarks/generalise.py --robust --noise none=0 inter=0.2 --seeds 0
    python benchmarks/generalise.py --summary
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import generalise_cross as cross
import generalise_fewshot as fewshot
import generalise_robust as robust
import generalise_temporal as temporal
from common import RUNS, Runs, run_missing
from generalise_common import plot

EXPERIMENTS = (fewshot, cross, temporal, robust)


def tables(all_runs: Runs) -> dict[str, str]:
    """``generalise.md`` (and ``generalise.png``) from the runs (see ``report.py``)."""
    every = [*all_runs.glob("generalise-*.json"),
             *(d for k in ("cross", "robust", "temporal") for d in all_runs.glob(f"{k}-*.json"))]
    all_runs = all_runs.scoped(every)
    lines = ["# Generalisation: few-shot cold start, cross-domain transfer, temporal shift, "
             "robustness to noise", "",
             "Reproduce: `python benchmarks/generalise.py --shots 3 --variants meta finetune "
             "lightgcn` (few-shot), `python benchmarks/generalise.py --cross --shots 5` "
             "(cross-domain), `python benchmarks/generalise.py --temporal --datasets "
             "ml-latest-small` (temporal shift), `python benchmarks/generalise.py --robust` "
             "(robustness); resumable, per-run JSON in `benchmarks/results/runs/`; then "
             "`python benchmarks/report.py`. One thread per run.", "",
             all_runs.header(every), "",
             *fewshot.intro(),
             *plot([*fewshot.panels(all_runs), *cross.panels(all_runs),
                    *robust.panels(all_runs)]),
             *fewshot.summarise(all_runs),
             *cross.summarise(all_runs),
             *temporal.summarise(all_runs),
             *robust.summarise(all_runs)]
    return {"generalise.md": "\n".join(lines)}


def _experiment(a: argparse.Namespace) -> ModuleType:
    """The experiment module a command asks for."""
    return cross if a.cross else temporal if a.temporal else robust if a.robust else fewshot


def _jobs(a: argparse.Namespace) -> list[tuple[Path, list[str], str]]:
    """The runs a command asks for: ``(out file, args of one run, label)``."""
    exp = _experiment(a)
    return [j for seed in a.seeds for dataset in a.datasets for j in exp.jobs(a, dataset, seed)]


def parser() -> argparse.ArgumentParser:
    from kgrec.models.losses import LOSSES  # the registry, not a copy of its names

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter,
        epilog="\n".join(f"--- {Path(m.__file__).name}\n\n{m.__doc__}" for m in EXPERIMENTS))
    p.add_argument("--datasets", nargs="+", default=fewshot.DATASETS)
    p.add_argument("--sides", nargs="+", default=["user", "item"], choices=["user", "item"])
    p.add_argument("--shots", nargs="+", type=int, default=fewshot.SHOTS)
    p.add_argument("--variants", nargs="+", choices=[*fewshot.VARIANTS, *cross.CROSS_VARIANTS],
                   help=f"few-shot: {list(fewshot.VARIANTS)} (default all); --cross: "
                   f"{list(cross.CROSS_VARIANTS)} (default all)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--robust", action="store_true", help="the robustness runs instead")
    p.add_argument("--summary", action="store_true", help="only rewrite the tables")
    p.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    p.add_argument("--temporal", action="store_true", help="the temporal-shift runs instead")
    p.add_argument("--cross", action="store_true", help="the cross-domain transfer runs "
                   f"instead (datasets {list(cross.CROSS)})")
    p.add_argument("--one-cross", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--loss", default="bpr", choices=LOSSES.names(),
                   help="--robust: the training loss (train.loss)")
    p.add_argument("--noise", nargs="+", metavar="KIND=SHARE",
                   help="--robust: only these, e.g. none=0 inter=0.2 (default all: "
                   + " ".join(f"{n}={s}" for n, s in robust.NOISE) + ")")
    p.add_argument("--adv", nargs="+", default=["plain", "adv"], choices=["plain", "adv"],
                   help="--robust: without and/or with adversarial training")
    p.add_argument("--adv-eps", nargs="+", type=float, default=[robust.ADV_EPS],
                   help=f"--robust: the adversarial radii to run (default {robust.ADV_EPS})")
    p.add_argument("--one-robust", nargs=6, help=argparse.SUPPRESS)
    p.add_argument("--one-temporal", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p


def main() -> None:
    a = parser().parse_args()
    if a.cross:
        a.shots = ([k for k in a.shots if k in cross.CROSS_SHOTS] if a.shots != fewshot.SHOTS
                   else cross.CROSS_SHOTS)
        a.datasets = [d for d in a.datasets if d in cross.CROSS] or list(cross.CROSS)
    a.variants = a.variants or list(cross.CROSS_VARIANTS if a.cross else fewshot.VARIANTS)
    a.noise = ([(n, float(s)) for n, _, s in (x.partition("=") for x in a.noise)]
               if a.noise else robust.NOISE)
    # one run, as earlier runs recorded it (their provenance's argv)
    for exp, args in ((cross, a.one_cross), (fewshot, a.one), (robust, a.one_robust),
                      (temporal, a.one_temporal)):
        if args:
            exp.one(args, Path(a.out))
            return
    RUNS.mkdir(parents=True, exist_ok=True)
    if not a.summary:
        run_missing(_experiment(a).__file__, _jobs(a))
    import report

    report.write_all()


if __name__ == "__main__":
    main()
