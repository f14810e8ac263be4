"""CSV parsing on the host: NumPy's C parser (``np.loadtxt``) for files that are well formed, and a
cell-by-cell pass with Python's ``csv`` module only to name the file, line and column of the first bad
cell when the fast parse fails. A file is held as one float64 array (8 bytes per value), not as Python
lists of floats (~115 bytes per value).

The layout (:mod:`dlcore.data`): one example per row, an optional first line of column names, commas
between cells (a space after a comma is no part of the cell). A file whose first data line has no comma
but semicolons, tabs or spaces is refused with the delimiter it uses; so are rows ending in a comma.

Which first line is a header (``header=None``, the default): one with no number in it; or, in a labeled
file, one whose label cell is text above labels that are all numbers (pandas' ``0,1,2,label``). A first
line of column numbers (``0,1,2,3``, as pandas writes a frame's default names) is read as data with a
warning. ``header=True`` or ``False`` says it.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import IO, Any

import numpy as np
from dlcore.backends import storage

DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _float(text: str) -> float:
    """``float(text)``, refusing what NumPy's reader (the fast path) refuses too: Python reads '1_0' as 10."""
    if "_" in text:
        raise ValueError(f"not a number: {text!r}")
    return float(text)


def _is_number(text: str) -> bool:
    try:
        _float(text)
    except ValueError:
        return False
    return True


class _Label(float):
    """A numeric cell of the label column that keeps its text: class names that look like numbers
    (``007``, ``1234567``) stay themselves, never ``7`` or ``1.23457e+06``."""

    text: str


def _open(path: Path) -> IO[str]:
    return open(path, newline="", encoding="utf-8-sig")


def _decode_error(path: Path, exc: UnicodeDecodeError) -> ValueError:
    return ValueError(f"{path} is not a UTF-8 text CSV file ({exc.reason} at byte {exc.start})")


def _check_delimiter(path: Path, line_number: int, line: str, cell: str | None = None) -> None:
    """A line without commas, or a ``cell`` of numbers joined by another delimiter (a file with decimal
    commas: '1,5;2,3;0' splits into '1', '5;2', '3;0'), is another delimiter's file: say which."""
    if cell is None and "," in line:
        return
    text = line if cell is None else cell
    seen = [d for d in DELIMITERS if d in text]
    words = text.split()
    if seen and (cell is None or all(_is_number(part.strip()) for part in cell.split(seen[0]))):
        separated = DELIMITERS[seen[0]]
    elif len(words) > 1 and all(_is_number(word) for word in words):  # np.savetxt's default: spaces
        separated = "spaces"
    else:
        return
    sample = line.strip()
    sample = sample if len(sample) <= 40 else sample[:37] + "..."
    how = "and the decimals by commas" if "," in line else "not commas"
    raise ValueError(
        f"{path}, line {line_number}: the cells are separated by {separated} {how} ({sample!r}); "
        "dlcore reads comma-separated files: save it as CSV with commas (and '.' decimals)"
    )


def _is_header(cells: list[str], header: bool | None) -> bool:
    """Whether a first line of ``cells`` names the columns: ``header`` if given, else if none is a number."""
    return header if header is not None else not any(_is_number(c.strip()) for c in cells)


def _warn_if_column_numbers(first: Any, path: Path) -> None:
    """A first data row 0, 1, ..., n-1 (n >= 3) is most likely pandas' default column names: say so."""
    n = len(first)
    if n >= 3 and list(first) == list(range(n)):
        warnings.warn(
            f"{path}: line 1 holds the column numbers {first[0]:g} .. {first[-1]:g}, read as data; pass "
            "header=True if it names the columns (header=False to keep it as data)",
            UserWarning,
            stacklevel=4,
        )


#: how spreadsheets, R and pandas write a missing value: never a class name
MISSING = frozenset({"na", "n/a", "#n/a", "null", "none", "nil", "?", "-", "missing"})


def _header_hint(first_line: bool) -> str:
    return ", or pass header=True if the first line names the columns" if first_line else ""


def read_csv_rows(
    path: str | Path, text_last: bool = False, header: bool | None = None, label_header: bool = False
) -> tuple[list[list[Any]], list[str] | None]:
    """The numeric rows of a comma-separated file and its header (``None`` if it has none), parsed cell
    by cell: the slow path that names the file, line and column of the first bad cell. With
    ``text_last`` a last cell that is not a number (a class name) is kept as its text. ``header``: see
    the module's docstring; ``label_header``: a first line whose text label stands above two or more
    numeric labels is the header (not when a model's class names may look like numbers).

    Raises:
        ValueError: naming the file, line and column of the first bad cell.
    """
    storage.check_readable(path, "CSV file")  # before Path(): Path("") is "."
    path = Path(path)
    rows: list[list[float]] = []
    names: list[str] | None = None
    first: list[str] | None = None  # line 1's cells as written, while it may still be a header
    width = None
    try:
        with _open(path) as f:
            reader = csv.reader(f, skipinitialspace=True)  # '1, "yes"': the quotes are CSV's, not the name's
            for cells in reader:
                line = reader.line_num
                cells = [c.strip() for c in cells]
                if not any(cells):
                    continue
                if width is None and len(cells) == 1:
                    _check_delimiter(path, line, cells[0])
                if width is None and names is None and _is_header(cells, header):
                    names, width, header_line = cells, len(cells), line
                    continue
                if len(cells) > 1 and not cells[-1] and (not rows or len(cells) == width + 1):
                    raise ValueError(
                        f"{path}, line {line}: the row ends with an empty cell; remove the trailing commas "
                        "(or fill in the missing value)"
                    )
                if width is None:
                    width = len(cells)
                    first = cells if header is None and label_header else None
                elif len(cells) != width and not rows and names is not None:  # no data row above yet
                    fix = (
                        "name every column (the label's too) or delete the header line"
                        if width < len(cells)
                        else "remove the extra names (or a trailing comma), or add the missing columns"
                    )
                    raise ValueError(
                        f"{path}, line {line}: the header on line {header_line} names {width} column"
                        f"{'s' if width > 1 else ''} but this row has {len(cells)}; {fix}"
                    )
                elif len(cells) != width:
                    raise ValueError(
                        f"{path}, line {line}: expected {width} columns like the rows above, got {len(cells)}"
                    )
                row = []
                for col, cell in enumerate(cells, start=1):
                    try:
                        value = _float(cell)
                    except ValueError:
                        _check_delimiter(path, line, ",".join(cells), cell)
                        if text_last and col == len(cells) > 1 and cell.lower() in MISSING:
                            raise ValueError(
                                f"{path}, line {line}, column {col} (the label): {cell!r} is a missing "
                                "value, not a class; drop the row or fill in its label"
                            ) from None
                        if text_last and col == len(cells) > 1 and cell:
                            row.append(cell)
                            continue
                        if col == 1 and len(cells) == 1:
                            _check_delimiter(path, line, cell)
                        hint = _header_hint(not rows and names is None and header is None)
                        raise ValueError(
                            f"{path}, line {line}, column {col}: {cell!r} is not a number (every cell but "
                            f"an optional first-line header must be numeric{hint})"
                        ) from None
                    if not math.isfinite(value):
                        raise ValueError(
                            f"{path}, line {line}, column {col}: {cell!r} is not finite; clean or impute it"
                        )
                    if text_last and col == len(cells) > 1:
                        value = _Label(value)
                        value.text = cell
                    row.append(value)
                rows.append(row)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from None
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed CSV ({exc})") from None
    if (
        first is not None
        and len(rows) > 2
        and isinstance(rows[0][-1], str)
        and all(not isinstance(r[-1], str) for r in rows[1:])
    ):
        names, rows = first, rows[1:]  # a text label above numeric ones: "label", the column's name
        warnings.warn(
            f"{path}: line 1 is read as column names, its label {first[-1]!r} being text above numeric "
            "labels; pass header=False if it is data",
            UserWarning,
            stacklevel=3,
        )
    if not rows:
        raise ValueError(f"{path} holds no data rows; expected one example per row, its label or target last")
    if header is None and names is None:
        _warn_if_column_numbers(rows[0], path)
    return rows, names


def _fast(path: Path, header: bool | None = None) -> tuple[np.ndarray, list[str] | None] | None:
    """The whole file through ``np.loadtxt``; ``None`` whenever anything is unusual (then the slow path
    parses it, or names the bad cell)."""
    try:
        with _open(path) as f:
            names = None
            while True:
                start = f.tell()
                line = f.readline()
                if not line:
                    return None
                if line.strip():
                    break
            cells = next(csv.reader([line], skipinitialspace=True))
            if _is_header(cells, header):
                names = [c.strip() for c in cells]
            else:
                if len(cells) == 1:
                    return None  # one column, or another delimiter: the slow path says which
                f.seek(start)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "input contained no data": handled below
                data = np.loadtxt(f, delimiter=",", dtype=np.float64, comments=None, ndmin=2, quotechar='"')
    except (ValueError, csv.Error, UnicodeDecodeError, OSError):
        return None
    if data.size == 0 or not np.isfinite(data).all():
        return None
    if names is not None and len(names) != data.shape[1]:
        return None
    if header is None and names is None:
        _warn_if_column_numbers(data[0].tolist(), path)
    return data, names


def read_csv(path: str | Path, header: bool | None = None) -> tuple[np.ndarray, list[str] | None]:
    """``(data, header)``: the file's numbers as one float64 array (m rows, one per example) and its
    column names (``None`` without a header line; ``header``: whether line 1 is one, see the module).

    Raises:
        ValueError: the file, line and column of the first bad cell; rows of different lengths; a file
            separated by semicolons or tabs (named); no data; not UTF-8.
    """
    storage.check_readable(path, "CSV file")  # before Path(): Path("") is "."
    path = Path(path)
    fast = _fast(path, header)
    if fast is not None:
        return fast
    rows, names = read_csv_rows(path, header=header)  # raises with the place, or parses what loadtxt won't
    return np.asarray(rows, dtype=np.float64), names


def check_no_index_column(data: np.ndarray, names: list[str] | None, path: object) -> None:
    """A ValueError for a row index written as the first column (pandas' ``to_csv()``, R's ``write.csv``:
    an unnamed first column holding 0, 1, 2, ... or 1, 2, 3, ...): read as a feature, it was trained on,
    and the row order can give the label away (planar: 100% test accuracy)."""
    if not names or names[0] or data.shape[0] < 2:
        return
    first = data[:, 0]
    if np.array_equal(first, np.arange(len(first))) or np.array_equal(first, np.arange(1, len(first) + 1)):
        raise ValueError(
            f"{path}: the first column, unnamed and counting {first[0]:g}, {first[1]:g}, ..., is a row "
            "index, not a feature; write the file without it (pandas: to_csv(index=False); R: write.csv("
            "row.names=FALSE))"
        )


def read_labeled_csv(
    path: str | Path,
    classes: list[str] | None = None,
    n_features: int | None = None,
    header: bool | None = None,
) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """``(data, header, classes)`` for a CSV whose last column holds numeric labels or class names.

    Numeric labels: as :func:`read_csv`, ``classes`` is ``None``. Class names (any text, e.g. ``cat``;
    as soon as one label is not a number, every label is a name, kept as written: ``007`` is not ``7``):
    ``classes`` lists the distinct names sorted, and the last column of ``data`` holds each row's index
    into it. With a model's ``classes`` every label is one of its names, even one that looks like a
    number (an unknown name is a ValueError). ``n_features`` (a model's): a file of exactly that many
    columns has no label column, and its last column must hold numbers. ``header``: whether line 1 names
    the columns (see the module's docstring).
    """
    storage.check_readable(path, "CSV file")  # before Path(): Path("") is "."
    path = Path(path)
    fast = _fast(path, header)
    if fast is not None:
        check_width(path, fast[0].shape[1], n_features)
        if not (classes and fast[0].shape[1] != n_features):  # a model's names: its labels are read as text
            return fast[0], fast[1], None
    rows, header = read_csv_rows(path, text_last=True, header=header, label_header=not classes)
    check_width(path, len(rows[0]), n_features)
    labeled = len(rows[0]) != n_features
    text = next((i for i, row in enumerate(rows) if isinstance(row[-1], str)), None)
    if labeled and (classes or text is not None):
        return _encode_names(rows, header, classes, path)
    if text is not None:
        raise ValueError(
            f"{path}: data row {text + 1}, column {len(rows[0])} is {rows[text][-1]!r}, not a number (the "
            f"model's {n_features} features fill every column; a label would be one more column)"
        )
    return np.asarray(rows, dtype=np.float64), header, None


def check_width(path: object, width: int, n_features: int | None) -> None:
    """A file for a model of ``n_features`` inputs has that many columns, or one more (the label)."""
    if n_features is not None and width not in (n_features, n_features + 1):
        raise ValueError(
            f"{path} has {width} columns but the model expects {n_features} features "
            f"(or {n_features + 1} columns with the label, or a single target, last)"
        )


def _encode_names(
    rows: list[list[Any]], header: list[str] | None, classes: list[str] | None, path: object
) -> tuple[np.ndarray, Any, list[str]]:
    def name(v: Any) -> str:
        return v if isinstance(v, str) else v.text

    names = [name(row[-1]) for row in rows]
    classes = list(classes) if classes else sorted(set(names))
    codes = encode_labels(names, classes, path)
    data = np.asarray([row[:-1] for row in rows], dtype=np.float64)
    return np.concatenate([data, codes[:, None]], axis=1), header, classes


def encode_labels(names: list[str], classes: list[str], path: object) -> np.ndarray:
    """The indices of ``names`` in a model's ``classes``; a ValueError names the first unknown one."""
    index = {c: i for i, c in enumerate(classes)}
    for row, n in enumerate(names, start=1):
        if n not in index:
            raise ValueError(
                f"{path}: data row {row} has the label {n!r}, which is not one of the model's classes "
                f"({', '.join(classes)})"
            )
    return np.asarray([index[n] for n in names], dtype=np.float64)


def first_outside(column: np.ndarray, allowed: tuple[float, ...]) -> int | None:
    """The index of the first value of ``column`` not in ``allowed``, or ``None``."""
    bad = ~np.isin(column, allowed)
    return int(np.argmax(bad)) if bad.any() else None


def check_range(data: np.ndarray, dtype: str, path: object) -> None:
    """A ValueError when a value of the float64 ``data`` cannot be represented in ``dtype`` (overflows to
    inf in float32), naming one such value and the dtype that holds it."""
    limit = float(np.finfo(np.dtype(dtype)).max)
    if float(np.finfo(data.dtype).max) <= limit:  # float16 data for float32: every finite value fits
        return
    with np.errstate(invalid="ignore"):
        beyond = np.isfinite(data) & (np.abs(data) > limit)  # NaN and inf are refused as such elsewhere
    if not beyond.any():
        return
    index = np.unravel_index(int(np.argmax(beyond)), data.shape)
    where = f"data row {index[0] + 1}, column {index[1] + 1}" if data.ndim == 2 else f"entry {index}"
    # a long double beyond float64's: no wider dtype to offer, and its value as written (:g gave inf)
    value = data[index]
    wider = np.dtype(dtype) != np.float64 and abs(value) <= np.finfo(np.float64).max
    fix = "use dtype='float64', or rescale the feature" if wider else "rescale the feature"
    raise ValueError(
        f"{path}: {where} is {np.format_float_scientific(value, 6, trim='-')}, beyond {dtype}'s range "
        f"(+-{limit:.3g}); {fix}"
    )
