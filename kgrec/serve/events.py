"""The service's durable event log: what it learned after training, one JSON object a line.

An event is acknowledged only after its line is written, flushed and ``fsync``-ed, so an
acknowledged event survives the process being killed (``kill -9``) or the machine losing
power after the answer left. A crash in the middle of a write leaves at most one partial last
line: it was never acknowledged, and opening the log cuts it off.

Events (every one has ``seq``, its 1-based position, ``type`` and ``received``)::

    {"type": "interaction", "user": "u1", "item": "i9", "behavior": "click", "time": 1.7e9}
    {"type": "item", "id": "new-1", "text": "a film about ...", "name": "...", "domain": ""}

The service replays the log over the run it serves when it starts or reloads, so a restart
loses nothing; :func:`~kgrec.ingest.events.read_events` reads it, and ``data.events`` (``kgrec
train --events LOG``) adds its interactions and items to the graph the next run trains on.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kgrec.ingest.events import read_events

__all__ = ["EventLog", "read_events"]


class EventLog:
    """An append-only, fsync-ed JSON-lines log (see the module's docstring).

    Args:
        path: the log file (created with its folder; a torn last line is cut off).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.seq = 0
        good = 0
        if self.path.is_file():
            with self.path.open("rb") as f:
                for raw in f:
                    if not raw.endswith(b"\n"):
                        break
                    good += len(raw)
                    self.seq += 1
            if good != self.path.stat().st_size:
                with self.path.open("r+b") as f:
                    f.truncate(good)
        fresh = not self.path.exists()
        self._file = self.path.open("ab")
        if fresh:  # the new file's name must survive a crash too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def append(self, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write ``events`` durably, numbered and time-stamped; returns them as written."""
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        with self._lock:
            out = []
            for e in events:
                self.seq += 1
                out.append({"seq": self.seq, **e, "received": now})
            self._file.write(b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n"
                                      for e in out))
            self._file.flush()
            os.fsync(self._file.fileno())
        return out

    def close(self) -> None:
        self._file.close()
