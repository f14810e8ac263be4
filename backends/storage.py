"""Host file I/O with NumPy: ``.npz`` archives (never unpickled) and atomic writes.

Model files are plain ``.npz`` archives: one array per parameter plus a ``__meta__`` entry holding
UTF-8 JSON as a uint8 array. They are read with ``allow_pickle=False``, so loading a file can never
run code. Every write goes to a temporary file in the target's directory, is flushed and fsynced,
then renamed over the target with ``os.replace``: an interrupted save leaves the old file intact.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

META_KEY = "__meta__"


def _write_error(path: Path, exc: OSError) -> OSError:
    """An OSError (same errno) whose message says what failed, why, and that the old file is intact."""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = f"the directory {path.parent} is read-only or not yours ({exc.strerror}); choose another place"
    elif exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        why = f"the disk is full ({exc.strerror}); free some space"
    else:
        why = exc.strerror or str(exc)
    kept = "the previous file is unchanged" if path.exists() else "nothing was written"
    error = OSError(f"cannot write {path}: {why}; {kept}")
    error.errno = exc.errno
    return error


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success fsync it and rename it onto ``path``.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ValueError(f"cannot write {path}: the directory {directory} does not exist; create it first")
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a directory; give a file name")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_text_atomic(path: str | os.PathLike, write: Callable[[IO[str]], None]) -> None:
    """Call ``write(file)`` on a temporary text file, then atomically move it to ``path``."""
    with atomic_writer(path, "w") as f:
        write(f)


def encode_json(meta: dict[str, Any]) -> np.ndarray:
    """A JSON-able dict as a uint8 array (UTF-8 bytes), storable in an ``.npz`` without pickle."""
    return np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8).copy()


def decode_json(array: np.ndarray, path: Any) -> dict[str, Any]:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise ValueError(f"{path} is not a dlcore model file: its {META_KEY} entry is not JSON bytes")
    try:
        meta = json.loads(array.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is corrupt: its metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a dlcore model file: its metadata is not a JSON object")
    return meta


def save_npz(path: str | os.PathLike, arrays: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
    """Write ``arrays`` (host arrays) and optional JSON ``meta`` to an ``.npz`` at ``path``, atomically."""
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    if meta is not None:
        payload[META_KEY] = encode_json(meta)
    buffer = io.BytesIO()
    np.savez(buffer, **payload)
    with atomic_writer(path) as f:
        f.write(buffer.getbuffer())


def check_readable(path: str | os.PathLike, what: str = "file") -> None:
    """A ValueError naming ``path`` unless it is an existing file (not a directory)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no such {what}: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a {what}")


def load_npz(path: str | os.PathLike, what: str = "file") -> dict[str, np.ndarray]:
    """Every array in the ``.npz`` at ``path``, read eagerly with ``allow_pickle=False``.

    Raises:
        ValueError: missing file, not an ``.npz`` archive, truncated or corrupt (CRC) archive, or an
            entry holding Python objects (which would need pickle). The message names the path.
    """
    path = Path(path)
    check_readable(path, what)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a {what} in .npz format (not a zip archive, or truncated)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ValueError(f"{path} holds Python objects, which dlcore never unpickles") from None
        raise ValueError(f"{path} is corrupt or truncated ({exc})") from None
    except Exception as exc:  # zipfile/zlib/struct/header parsing of damaged bytes: any failure means corrupt
        raise ValueError(f"{path} is corrupt or truncated ({type(exc).__name__}: {exc})") from None


def load_npz_with_meta(
    path: str | os.PathLike, what: str = "file"
) -> tuple[dict[str, np.ndarray], dict | None]:
    """``(arrays, meta)`` from an ``.npz`` written by :func:`save_npz`; ``meta`` is None when absent."""
    arrays = load_npz(path, what)
    raw = arrays.pop(META_KEY, None)
    return arrays, (None if raw is None else decode_json(raw, path))
