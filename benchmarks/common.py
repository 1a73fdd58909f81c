"""What the benchmark scripts share: the mean ± std cell and the resumable run loop."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path


def mean_std(xs: list[float]) -> str:
    """``mean ± std`` over seeds to 4 places; one value as is; none as a dash."""
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.4f}"
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}"


def run_missing(script: str, jobs: list[tuple[Path, list[str], str]]) -> None:
    """Run ``script`` once per job ``(out, args, label)`` whose ``out`` file does not exist
    yet, each in its own process (``script *args --out out``): a killed benchmark resumes
    where it stopped."""
    for out, args, label in jobs:
        if out.is_file():
            continue
        print(label, flush=True)
        subprocess.run([sys.executable, script, *args, "--out", str(out)], check=True)
