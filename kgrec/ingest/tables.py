"""Reading delimited source files with errors that name the file, line and field."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kgrec.errors import DataFormatError


def read_text(path: Path) -> str:
    """The whole file as UTF-8 text; a decoding error names the line."""
    if not path.is_file():
        raise DataFormatError("file not found", file=path)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFormatError(f"not UTF-8 text ({exc.reason})", file=path, line=line) from exc


@dataclass
class Table:
    """Rows of one delimited file, each remembered with its 1-based line number.

    Attributes:
        path: the source file.
        header: column names.
        rows: list of field lists (all of ``len(header)``).
        lines: line number of each row.
    """

    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.rows)

    def col_index(self, name: str) -> int:
        try:
            return self.header.index(name)
        except ValueError:
            raise DataFormatError(f"missing column (has {self.header})", file=self.path,
                                  line=1, field=name) from None

    def strings(self, name: str) -> list[str]:
        j = self.col_index(name)
        return [r[j] for r in self.rows]

    def ints(self, name: str, *, min_value: int | None = 0) -> np.ndarray:
        """Column ``name`` as int64; a non-integer or negative value names its line."""
        j = self.col_index(name)
        vals = [r[j] for r in self.rows]
        try:
            arr = np.asarray(vals, dtype=np.int64)
        except (ValueError, OverflowError):
            for k, v in enumerate(vals):
                try:
                    int(v)
                except ValueError:
                    raise DataFormatError(f"not an integer: {v!r}", file=self.path,
                                          line=self.lines[k], field=name) from None
            raise
        if min_value is not None and len(arr) and arr.min() < min_value:
            k = int(np.argmax(arr < min_value))
            raise DataFormatError(f"value {arr[k]} is below {min_value}", file=self.path,
                                  line=self.lines[k], field=name)
        return arr

    def floats(self, name: str, *, allow_nan: bool = False) -> np.ndarray:
        """Column ``name`` as float64; a non-number (or NaN, unless allowed) names its line."""
        j = self.col_index(name)
        vals = [r[j] for r in self.rows]
        try:
            arr = np.asarray(vals, dtype=np.float64)
        except ValueError:
            for k, v in enumerate(vals):
                try:
                    float(v)
                except ValueError:
                    raise DataFormatError(f"not a number: {v!r}", file=self.path,
                                          line=self.lines[k], field=name) from None
            raise
        bad = ~np.isfinite(arr) if not allow_nan else np.isinf(arr)
        if bad.any():
            k = int(np.argmax(bad))
            raise DataFormatError(f"value {vals[k]!r} is not a finite number", file=self.path,
                                  line=self.lines[k], field=name)
        return arr

    def indices(self, name: str, vocab: dict[str, int], what: str) -> np.ndarray:
        """Column ``name`` mapped through ``vocab`` (id -> index); an unknown id names its line."""
        vals = self.strings(name)
        out = np.empty(len(vals), dtype=np.int64)
        for k, v in enumerate(vals):
            i = vocab.get(v)
            if i is None:
                raise DataFormatError(f"unknown {what} id {v!r}", file=self.path,
                                      line=self.lines[k], field=name)
            out[k] = i
        return out


def read_table(path: Path, *, sep: str | None = "\t", header: bool | Sequence[str] = True,
               quoted: bool = False, strip_types: bool = False,
               min_fields: int | None = None) -> Table:
    """Read a delimited file.

    Args:
        path: the file.
        sep: field separator; ``None`` splits on any whitespace.
        header: ``True`` if the first line names the columns, else the column names.
        quoted: parse with :mod:`csv` (fields may be quoted and hold the separator).
        strip_types: drop RecBole-style ``:type`` suffixes from header names.
        min_fields: rows may have more fields than the header (extra fields are kept joined
            in the last column); by default every row must match the header exactly.
    """
    text = read_text(path)
    if quoted:
        raw_rows = list(csv.reader(io.StringIO(text), delimiter=sep or ","))
    else:
        raw_rows = [ln.split(sep) if sep is not None else ln.split()
                    for ln in text.splitlines()]
    lines = list(range(1, len(raw_rows) + 1))
    if header is True:
        if not raw_rows:
            raise DataFormatError("empty file (no header line)", file=path, line=1)
        names = [h.strip() for h in raw_rows[0]]
        raw_rows, lines = raw_rows[1:], lines[1:]
    else:
        names = list(header)
    if strip_types:
        names = [h.split(":", 1)[0] for h in names]
    width = len(names)
    rows, out_lines = [], []
    for ln, fields in zip(lines, raw_rows, strict=True):
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line
        fields = [f.strip() for f in fields]
        if len(fields) != width:
            if min_fields is None or len(fields) < min_fields:
                raise DataFormatError(f"expected {width} fields ({', '.join(names)}), "
                                      f"found {len(fields)}", file=path, line=ln)
            fields = [*fields[: width - 1], sep.join(fields[width - 1:]) if sep else
                      " ".join(fields[width - 1:])] if len(fields) > width else \
                [*fields, *[""] * (width - len(fields))]
        rows.append(fields)
        out_lines.append(ln)
    return Table(path, names, rows, out_lines)


def read_int_matrix(path: Path, columns: Sequence[str]) -> tuple[np.ndarray, list[int] | None]:
    """An integer matrix ``[R, len(columns)]`` from a whitespace-separated ``.txt`` or a
    ``.npy`` file (loaded without pickle). Returns the matrix and line numbers (``None`` for
    ``.npy``, whose rows are reported 1-based as 'row N')."""
    if path.suffix == ".npy":
        if not path.is_file():
            raise DataFormatError("file not found", file=path)
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise DataFormatError(f"not a numpy array file: {exc}", file=path) from exc
        if arr.ndim != 2 or arr.shape[1] != len(columns) or arr.dtype.kind not in "iu":
            raise DataFormatError(f"expected an integer array of shape [N, {len(columns)}], got "
                                  f"{arr.dtype} {arr.shape}", file=path)
        arr = arr.astype(np.int64)
        if len(arr) and arr.min() < 0:
            r, c = np.argwhere(arr < 0)[0]
            raise DataFormatError(f"negative value {arr[r, c]}", file=path, line=int(r) + 1,
                                  field=columns[c])
        return arr, None
    table = read_table(path, sep=None, header=list(columns))
    if not len(table):
        return np.zeros((0, len(columns)), dtype=np.int64), []
    return np.stack([table.ints(c) for c in columns], axis=1), table.lines
