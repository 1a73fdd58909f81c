"""The service's durable event log: what it learned after training, one JSON object a line.

An event is acknowledged only after its line is written, flushed and ``fsync``-ed, so an
acknowledged event survives the process being killed (``kill -9``) or the machine losing
power after the answer left. A crash in the middle of a write leaves at most one partial last
line: it was never acknowledged, and opening the log cuts it off.

Events (every one has ``seq``, its 1-based position, ``type`` and ``received``)::

    {"type": "interaction", "user": "u1", "item": "i9", "behavior": "click", "time": 1.7e9}
    {"type": "item", "id": "new-1", "text": "a film about ...", "name": "...", "domain": ""}

The service replays the log over the run it serves when it starts or reloads, so a restart
loses nothing; :func:`read_events` is how a training script reads it.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kgrec.errors import DataFormatError


def read_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """The log's events in order (a partial last line, from a crash mid-write, skipped).

    Raises:
        DataFormatError: a complete line that is not a JSON object (naming file and line).
    """
    path = Path(path)
    if not path.is_file():
        return
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                return  # torn by a crash: never acknowledged
            try:
                doc = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataFormatError(f"{path}:{n}: not a JSON event ({exc})") from None
            if not isinstance(doc, dict) or "type" not in doc:
                raise DataFormatError(f"{path}:{n}: an event is an object with a 'type'")
            yield doc


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
