"""Progress on long work, for a person at a terminal and for a log file alike.

On a terminal a tqdm bar; anywhere else (CI, ``nohup``, a notebook's captured output) a plain
line at a bounded rate, so a long job never sits silent for minutes::

    load ml-100k-kb4rec -> neo4j: 120,000/291,246 rows (41%), 12s, about 17s left

Every long job in kgrec (training, text encoding, Neo4j load and export) reports through
:func:`progress`.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from tqdm.auto import tqdm

#: seconds between two progress lines when the output is not a terminal
#: (``$KGREC_PROGRESS_SECONDS`` sets another)
LINE_EVERY = float(os.environ.get("KGREC_PROGRESS_SECONDS", "10"))


def _interactive(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


class LineProgress:
    """A tqdm-like counter that prints one line at most every ``every`` seconds (and one at
    the end), to ``stream``. ``postfix`` values appear after the counts."""

    def __init__(self, total: float | None, desc: str, unit: str, *, every: float = LINE_EVERY,
                 stream: TextIO | None = None) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.stream = stream or sys.stderr
        self.n = 0.0
        self.start = self._last = time.monotonic()
        self.postfix: dict[str, Any] = {}
        self._printed_at = -1.0

    # the part of tqdm's interface kgrec uses
    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._print()

    def set_postfix(self, refresh: bool = True, **kw: Any) -> None:
        self.postfix.update(kw)

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        self.postfix = {"": s}

    @property
    def format_dict(self) -> dict[str, float]:
        return {"elapsed": time.monotonic() - self.start, "n": self.n}

    def _print(self) -> None:
        elapsed = time.monotonic() - self.start
        done = f"{self.n:,.0f}" + (f"/{self.total:,.0f}" if self.total else "")
        share = f" ({self.n / self.total:.0%})" if self.total else ""
        left = ""
        if self.total and 0 < self.n < self.total:
            left = f", about {elapsed * (self.total - self.n) / self.n:,.0f}s left"
        extra = "".join(f", {k} {v}" if k else f", {v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {done} {self.unit}{share}, {elapsed:,.0f}s{left}{extra}",
              file=self.stream, flush=True)
        self._printed_at = self.n

    def close(self) -> None:
        if self._printed_at != self.n:
            self._print()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Silent(LineProgress):
    def _print(self) -> None:
        pass


def progress(total: float | None, desc: str, unit: str = "it", *, enabled: bool = True,
             initial: float = 0, stream: TextIO | None = None) -> Any:
    """A progress counter with tqdm's ``update`` / ``set_postfix`` / ``close``: a bar on a
    terminal, a line every :data:`LINE_EVERY` seconds elsewhere, nothing when not
    ``enabled``. Counts may be fractional (a share of an epoch). Use it as a context
    manager."""
    stream = stream or sys.stderr
    if not enabled:
        bar: Any = _Silent(total, desc, unit, stream=stream)
    elif _interactive(stream):
        return tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True,
                    initial=initial, bar_format="{l_bar}{bar}| {n:,.1f}/{total:,.0f} "
                    "{unit} [{elapsed}<{remaining}{postfix}]" if unit == "epoch" else None)
    else:
        bar = LineProgress(total, desc, unit, stream=stream)
    bar.n = float(initial)
    return bar
