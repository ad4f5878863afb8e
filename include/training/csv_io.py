"""Finding and reading the CSV files a job was given, with errors that name the file and the fix.

Every script reads its data through these helpers so an empty upload, a ';'-delimited export or a
header with a repeated name fails the same way everywhere, before pandas guesses around it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from failure import InputError

CSV_SUFFIXES = (".csv", ".csv.gz")
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True)
class CsvFile:
    path: Path
    columns: list[str]
    has_rows: bool

    @property
    def problem(self) -> str | None:
        if not self.columns:
            return "empty file"
        if not self.has_rows:
            return "header only, no data rows"
        return None


def find_csv_files(directory: str | Path) -> list[Path]:
    """Every ``*.csv`` / ``*.csv.gz`` under ``directory`` (recursively), in a stable order."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"input directory {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(CSV_SUFFIXES))
    if not files:
        raise InputError(f"no .csv or .csv.gz files under {root}")
    return files


def open_text(path: Path) -> io.TextIOBase:
    """The file as text; a UTF-8 byte-order mark (Excel's "CSV UTF-8") is skipped, as pandas does."""
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def inspect_csv(path: Path) -> CsvFile:
    """Read the header (and whether a data row follows) and reject headers pandas would mangle."""
    try:
        with open_text(path) as handle:
            header_line = handle.readline()
            next_line = handle.readline()
            while next_line and not next_line.strip():
                next_line = handle.readline()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(f"{path.name}: cannot read file ({exc}); expected UTF-8 CSV, optionally gzip") from exc
    if not header_line.strip():
        return CsvFile(path, [], False)
    columns = [c.strip() for c in next(csv.reader([header_line]))]
    if len(columns) == 1:
        for delim, name in OTHER_DELIMITERS.items():
            if delim in header_line:
                raise InputError(
                    f"{path.name}: header has a single column but contains {name}s; "
                    f"the file looks {name}-delimited, expected comma-separated CSV"
                )
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise InputError(f"{path.name}: duplicate column name(s) in header: {', '.join(duplicates)}")
    if any(c == "" for c in columns):
        raise InputError(f"{path.name}: header has an empty column name (column {columns.index('') + 1})")
    return CsvFile(path, columns, bool(next_line.strip()))


def inspect_all(paths: Iterable[Path]) -> list[CsvFile]:
    """Inspect every file and require one shared header among the files that have one."""
    files = [inspect_csv(p) for p in paths]
    with_header = [f for f in files if f.columns]
    for f in with_header[1:]:
        if f.columns != with_header[0].columns:
            raise InputError(
                f"{f.path.name}: header {f.columns} differs from {with_header[0].path.name}'s "
                f"{with_header[0].columns}; all input files must share one header"
            )
    return files


def data_files(files: list[CsvFile], directory: str | Path) -> list[CsvFile]:
    """The files that hold data rows; an error naming each unusable file when none does."""
    usable = [f for f in files if f.problem is None]
    if not usable:
        details = "; ".join(f"{f.path.name}: {f.problem}" for f in files)
        raise InputError(f"no data rows in {directory} ({details})")
    return usable


def ragged_row(path: Path) -> tuple[int, int, int] | None:
    """(line number, fields, header fields) of the first row whose field count differs from the
    header's, None when every row matches. Quoted fields may span lines; blank lines are skipped as
    the reader skips them. Python's csv module: exact, and only run when a read looks ragged."""
    with open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        start = reader.line_num + 1
        for row in reader:
            if row and len(row) != len(header):
                return start, len(row), len(header)
            start = reader.line_num + 1
    return None


def _raise_if_ragged(path: Path) -> None:
    found = ragged_row(path)
    if found:
        line, fields, expected = found
        raise InputError(f"{path.name}: line {line} is ragged: it has {fields} fields, the header has "
                         f"{expected}; fix that row (a missing or extra comma, or an unquoted comma "
                         "inside a value)")


def _looks_ragged(frame: pd.DataFrame) -> bool:
    """A row with more fields than the header turns the first column into an index; one with fewer
    leaves the last cells empty. Either way only then is it worth reading the file again."""
    if not isinstance(frame.index, pd.RangeIndex):
        return True
    if not len(frame.columns):
        return False
    last = frame.iloc[:, -1]
    return bool(last.isna().any() or (last.dtype == object and (last == "").any()))


def _read_csv(path: Path, **options: object) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, keep_default_na=False, skipinitialspace=True, **options)
    except pd.errors.ParserError as exc:
        _raise_if_ragged(path)
        raise InputError(f"{path.name}: not a valid CSV ({' '.join(str(exc).split())})") from exc
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(f"{path.name}: not a valid CSV ({' '.join(str(exc).split())})") from exc
    if "usecols" not in options and _looks_ragged(frame):
        _raise_if_ragged(path)
    return frame


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_as_text(files: list[CsvFile]) -> pd.DataFrame:
    """All rows as strings, so validation (not pandas' type guessing) decides what is numeric."""
    return _concat([_read_csv(f.path, dtype=str) for f in files])


def is_number_column(values: pd.Series) -> bool:
    """Numbers already (int or float), not text still to be parsed."""
    return pd.api.types.is_float_dtype(values) or (
        pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values))


def read_typed(files: list[CsvFile], *, text_columns: Iterable[str] = (),
               na_values: Iterable[str] = ()) -> pd.DataFrame:
    """All rows, with the numbers parsed by the reader where every cell of a column is one.

    Such a column arrives as int or float (cells in ``na_values`` as NaN); any other column arrives
    as text, as :func:`read_as_text` gives it except that ``na_values`` cells are NaN (missing either
    way), so validation still decides about it. The reader's float parsing is the one
    ``pd.to_numeric`` applies to text, without a Python string per cell, which on large files is
    most of the cost. ``text_columns`` (labels, categories: their spelling matters) are never read
    as numbers; columns named like a number or an NA spelling are read again as exact text, so a
    header line repeated inside the data still reads as one.
    """
    text = set(text_columns)
    na = sorted(set(na_values))
    frames = [_read_csv(f.path, dtype=dict.fromkeys(text, str), na_values=na) for f in files]
    numbers = {c for c in frames[0].columns if all(is_number_column(frame[c]) for frame in frames)
               and not _names_a_value(c, na)}
    for f, frame in zip(files, frames, strict=True):
        exact = [c for c in frame.columns if c not in numbers and (
            is_number_column(frame[c]) or _names_a_value(c, na)
            or not pd.api.types.is_string_dtype(frame[c]))]
        if exact:
            frame[exact] = _read_csv(f.path, dtype=str, usecols=exact)[exact]
    return _concat(frames)


def _names_a_value(name: str, na_values: list[str]) -> bool:
    """A column name a cell could parse to (a number) or that means missing."""
    name = name.strip()
    return name in na_values or not pd.isna(pd.to_numeric(name, errors="coerce"))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """``frame.to_csv(path, index=False)``, byte for byte, about a quarter faster.

    pandas formats a float column with numpy's ``astype(str)``, the shortest round-trip text, which
    Python's ``repr`` gives too, in about half the time; the rows then go to the csv module, as
    pandas sends them. Frames with columns other than float64 and text are left to pandas.
    """
    if not all(frame[c].dtype == np.float64 or pd.api.types.is_string_dtype(frame[c])
               or pd.api.types.is_object_dtype(frame[c]) for c in frame.columns):
        frame.to_csv(path, index=False)
        return
    cells = [_csv_cells(frame[c]) for c in frame.columns]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator=os.linesep)
        writer.writerow([str(c) for c in frame.columns])
        writer.writerows(zip(*cells, strict=True))


def _csv_cells(values: pd.Series) -> list[object]:
    """One column's cells as to_csv writes them: floats in repr, missing cells empty."""
    missing = np.flatnonzero(values.isna().to_numpy())
    if values.dtype == np.float64:
        cells = [repr(v) for v in values.to_numpy(dtype=np.float64).tolist()]
    else:
        cells = values.to_numpy(dtype=object).tolist()
    for i in missing.tolist():
        cells[i] = ""
    return cells


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_files(paths: Iterable[Path]) -> str:
    """One digest over several files (name and content digest of each, in order)."""
    digest = hashlib.sha256()
    for p in paths:
        digest.update(f"{Path(p).name}:{sha256_file(Path(p))}\n".encode())
    return digest.hexdigest()
