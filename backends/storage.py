"""Host file I/O with NumPy: ``.npz`` archives (never unpickled) and atomic writes.

Model files are plain ``.npz`` archives: one array per parameter plus a ``__meta__`` entry holding
UTF-8 JSON as a uint8 array. They are read with ``allow_pickle=False``, so loading a file can never
run code. Before any array is read, every member's ``.npy`` header is checked against the size the
archive declares for it, and the total against the memory available (a small file that inflates to
gigabytes is refused in one sentence); a model's metadata is bounded and read first, so its shapes are
checked against the arrays actually present before anything is allocated.

Every write goes to a temporary file ``.NAME.<pid>.<random>.tmp`` in the target's directory, locked
while it is written, flushed and fsynced, then renamed over the target with ``os.replace``: an
interrupted save leaves the old file intact, and the next save of the same target removes temporaries
left by killed saves (unlocked, and from a dead process or older than a minute). A new file gets the
mode the umask gives (0644 under umask 022), an overwritten one keeps its mode and group. A device or a
FIFO (``/dev/null``) is written into directly, and a path naming an open descriptor (``/dev/stdout``)
into that descriptor.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import re
import stat
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows: stale temporaries are recognised by their dead writer's pid only
    fcntl = None  # type: ignore[assignment]

import numpy as np
from dlcore.backends.base import to_numpy

META_KEY = "__meta__"
#: a temporary file this old (seconds) whose writer holds no lock is stale even if its pid is alive again
STALE_AFTER = 60.0
#: metadata allowance: this much, plus META_BYTES_PER_DIM per array dimension in the archive (normalization)
META_BASE_BYTES = 1 << 20
META_BYTES_PER_DIM = 64
#: an archive may inflate to at most available memory / this (room for the float copies made on loading)
MEMORY_HEADROOM = 3


def available_host_memory() -> int | None:
    """The host's available memory in bytes, or ``None`` when unknown (see :mod:`.base`)."""
    from dlcore.backends.base import available_host_memory as available

    return available()


def _write_error(path: Path, exc: OSError, replaces: bool = True) -> OSError:
    """An OSError (same errno) whose message says what failed, why, and that the old file is intact
    (``replaces=False``: a device or a descriptor, written into as it is: no old file to speak of)."""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = f"the directory {path.parent} is read-only or not yours ({exc.strerror}); choose another place"
    elif exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        why = f"the disk is full ({exc.strerror}); free some space"
    else:
        why = exc.strerror or str(exc)
    kept = "; the previous file is unchanged" if path.exists() else "; nothing was written"
    kept = kept if replaces else ""
    error = OSError(f"cannot write {path}: {why}{kept}")
    error.errno = exc.errno
    return error


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no other way to read it: set and restore at once
    os.umask(mask)
    return mask


def _target_mode(path: Path) -> int:
    """The mode the written file gets: the overwritten file's own, else 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _keep_owner(fd: int, path: Path) -> None:
    """The written file (open as ``fd``) gets the group of the file it replaces (a group-shared model
    stays shared), and its owner too when root writes it; where that is not allowed, the writer's stay."""
    if not hasattr(os, "fchown"):
        return
    with contextlib.suppress(OSError):
        replaced = os.stat(path)
        os.fchown(fd, replaced.st_uid if os.geteuid() == 0 else -1, replaced.st_gid)


#: paths that name one of this process's open file descriptors (Linux, macOS): /dev/stdout, /dev/fd/3
_DESCRIPTOR_PATH = re.compile(r"/dev/std(in|out|err)|/(?:dev|proc/self)/fd/(\d+)")


def descriptor(path: str | os.PathLike) -> int | None:
    """The open file descriptor ``path`` names (``/dev/stdout``: 1, ``/dev/fd/3``: 3), else None. A save
    there writes into the descriptor as it is: opened anew, a file behind it (``>> log``) was truncated or
    replaced, and what the shell had written to it lost."""
    match = _DESCRIPTOR_PATH.fullmatch(os.path.abspath(os.fspath(path)))
    if match is None:
        return None
    return int(match[2]) if match[2] else ("in", "out", "err").index(match[1])


def _device(path: str | os.PathLike) -> bool:
    """An existing target that is no regular file or directory (``/dev/null``, ``/dev/stdout``, a FIFO):
    written into as it is, since renaming a file onto it would replace the device with that file."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _lock(fd: int) -> bool:
    """Take an exclusive, non-blocking lock on ``fd``; False if another writer holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove ``.NAME.PID.XXXXXXXX.tmp`` files next to ``path`` that a killed save left behind (no other
    file: one of yours named alike, ``.NAME.old.tmp`` or ``.NAME.20240101.tmp``, stays); returns them.

    A temporary is stale when no process holds its lock and its writer (the pid in its name) is dead,
    or it is older than :data:`STALE_AFTER` seconds. One that a live save is writing is never touched.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    removed = []
    stem = _temporary_stem(path.name)
    ours = re.compile(rf"\.{re.escape(stem)}\.(\d+)\.[a-z0-9_]{{8}}\.tmp")  # as atomic_writer names them
    try:
        candidates = [
            (tmp, int(match[1]))
            for tmp in directory.glob(f".{glob_escape(stem)}.*.tmp")
            if (match := ours.fullmatch(tmp.name))
        ]
    except OSError:
        return removed
    for tmp, pid in candidates:
        try:
            fd = os.open(tmp, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode) or not _lock(fd):
                continue  # a live writer holds it
            dead = not _pid_alive(pid)
            old = time.time() - os.fstat(fd).st_mtime > STALE_AFTER
            if dead or old:
                os.unlink(tmp)
                removed.append(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters matched literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def written_path(path: str | os.PathLike) -> Path:
    """The file a save of ``path`` replaces: a symbolic link's target (os.replace onto the link would make
    it a plain file), else ``path`` itself."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _not_a_directory(parent: Path) -> str:
    """Why files cannot be written into ``parent``, which is not a directory."""
    if parent.exists():
        return f"{parent} is a file, not a directory; choose another place"
    if str(parent).startswith("~"):  # --out=~/m.npz: the shell expands ~ only at the start of a word
        return f"the directory {parent} does not exist (nothing expanded that ~: write the full path)"
    return f"the directory {parent} does not exist; create it first"


#: why a path ending in a separator is refused: a directory that does not exist was meant
NOT_A_FILE_NAME = "it ends in a separator, as a directory would; give a file name"
READ_ONLY = "the file is read-only; make it writable (chmod u+w) or choose another name"


def _read_only(path: Path) -> bool:
    """An existing file this user may not write, or one without any write permission (one made read-only
    is not replaced, by root either, who may write any file)."""
    if not os.path.lexists(path):
        return False
    try:
        no_write_bits = not stat.S_IMODE(os.stat(path).st_mode) & 0o222
    except OSError:  # a link to nowhere: the save creates its target
        no_write_bits = False
    return no_write_bits or not os.access(path, os.W_OK)


def _no_file_to_write(path: str | os.PathLike) -> tuple[Path, Path, str | None]:
    """The file a save of ``path`` replaces (a link's target), its directory, and why ``path`` names no
    file that can be written there (None when it does): the checks a save and the check before it share."""
    target = written_path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if str(path).endswith(("/", os.sep)):
        return target, directory, NOT_A_FILE_NAME
    if not directory.is_dir():
        return target, directory, _not_a_directory(directory)
    if target.is_dir():
        return target, directory, "it is a directory; give a file name"
    return target, directory, None


def check_writable(path: str | os.PathLike | None, flag: str) -> None:
    """Refuse an output path (given as ``flag``) whose directory is missing or read-only, or that is no
    file name or a read-only file, before any long work is spent on what would be written there."""
    if path is None:
        return
    fd = descriptor(path)
    if fd is not None:
        if not _writable_descriptor(fd):
            raise ValueError(f"{flag} {path}: descriptor {fd} is not open for writing; choose another name")
        return
    if _device(path):
        if not os.access(path, os.W_OK):
            raise ValueError(f"{flag} {path}: it is not writable; choose another name")
        return
    target, directory, why = _no_file_to_write(path)
    if why is None and not os.access(directory, os.W_OK):
        why = f"the directory {directory} is not writable; choose another place"
    if why is None and _read_only(target):
        why = READ_ONLY
    if why is not None:
        raise ValueError(f"{flag} {path}: {why}")


def _writable_descriptor(fd: int) -> bool:
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL) if fcntl is not None else os.O_WRONLY
    except (OSError, OverflowError):  # not open; /dev/fd/99999999999 is none either
        return False
    return flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)


def _dup(fd: int) -> int:
    """``os.dup(fd)``, an OSError (EBADF) for a number no descriptor can have."""
    try:
        return os.dup(fd)
    except OverflowError:
        raise OSError(errno.EBADF, "Bad file descriptor") from None


def _temporary_stem(name: str) -> str:
    """The part of ``name`` a temporary's name ``.STEM.<pid>.<random>.tmp`` holds: ``name`` itself, or, for
    a name within 40 bytes of the file system's limit (255), its start and a digest of the rest (a legal
    name of 240 bytes failed to save, its temporary's name ~20 bytes longer)."""
    if len(name.encode()) <= 200:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    start = name.encode()[:150].decode(errors="ignore")
    return f"{start}~{digest}"


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success fsync it and rename it onto ``path``.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is untouched.
    Stale temporaries of earlier, killed saves of ``path`` are removed first. The new file keeps the mode
    of the one it replaces, or gets the umask's (not mkstemp's 0600). A symbolic link is written through:
    its target is replaced, the link stays. A device or a FIFO (``/dev/null``, ``/dev/stdout``) is written
    into directly, nothing renamed onto it.
    """
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    fd = descriptor(path)
    if fd is not None or _device(path):
        if fd is not None and fd in (1, 2):  # what this process printed there before comes first
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    stream.flush()
        try:
            with open(path, mode, **text) if fd is None else os.fdopen(_dup(fd), mode, **text) as f:
                yield f
        except OSError as exc:
            raise _write_error(Path(path), exc, replaces=False) from None
        return
    given = path
    path, directory, why = _no_file_to_write(given)
    if why is not None:
        raise ValueError(f"cannot write {given}: {why}")
    if _read_only(path):  # an OSError, as the write's own would be: the CLI rescues the model elsewhere
        error = OSError(f"cannot write {path}: {READ_ONLY}")
        error.errno = errno.EACCES
        raise error
    remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{_temporary_stem(path.name)}.{os.getpid()}.", suffix=".tmp", dir=directory
        )
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        _lock(fd)  # held until the file is closed: a concurrent save's cleanup leaves it alone
        with contextlib.suppress(OSError):
            os.fchmod(fd, _target_mode(path))
        _keep_owner(fd, path)
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)  # still locked: a cleanup can never take the file being renamed
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


def as_json(value: Any, name: str) -> Any:
    """``value`` as the JSON a file will hold: tuples as lists, any backend's scalars and arrays as numbers
    and lists (``np.int64(3)`` was json's TypeError; ``("cat", "dog")`` was refused as no list of class
    names), or a ValueError naming what JSON cannot hold or a key that is no string (``name``: the
    value's name in the message)."""

    def plain(item: Any) -> Any:
        if isinstance(item, np.generic) or hasattr(item, "__dlpack__"):  # any backend's array or scalar
            return to_numpy(item).tolist()
        raise TypeError(f"{name} holds {item!r} ({type(item).__name__}), which JSON cannot store")

    def check_keys(item: Any) -> None:  # json writes 1 as "1": info[1] was a KeyError once loaded
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise ValueError(f"{name} has the key {key!r}; JSON's keys are strings: use {str(key)!r}")
                check_keys(inner)
        elif isinstance(item, list | tuple):
            for inner in item:
                check_keys(inner)

    check_keys(value)
    try:
        return json.loads(json.dumps(value, default=plain))
    except TypeError as exc:  # plain's
        raise ValueError(f"{exc}; use numbers, strings, True/False/None and lists or dicts of them") from None


def encode_json(meta: dict[str, Any]) -> np.ndarray:
    """A JSON-able dict as a uint8 array (UTF-8 bytes), storable in an ``.npz`` without pickle."""
    return np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8).copy()


def decode_json(array: np.ndarray, path: Any) -> dict[str, Any]:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise ValueError(f"{path} is not a dlcore model file: its {META_KEY} entry is not JSON bytes")
    try:
        meta = json.loads(array.tobytes().decode("utf-8"))
    except ValueError as exc:  # bad UTF-8, bad JSON, an integer of more than 4300 digits
        raise ValueError(f"{path} is corrupt: its metadata is not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(f"{path} is corrupt: its metadata JSON is nested too deeply") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a dlcore model file: its metadata is not a JSON object")
    return meta


def meta_limit(shapes: Iterable[tuple[int, ...]]) -> int:
    """The most metadata bytes an archive of arrays of these shapes may carry: :data:`META_BASE_BYTES`
    plus :data:`META_BYTES_PER_DIM` per dimension of each non-empty array (an empty one of shape
    (0, 10**13) bought a file 10 TB of allowance)."""
    return META_BASE_BYTES + META_BYTES_PER_DIM * sum(sum(s) for s in shapes if math.prod(s))


def save_npz(path: str | os.PathLike, arrays: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
    """Write ``arrays`` (host arrays) and optional JSON ``meta`` to an ``.npz`` at ``path``, atomically;
    metadata beyond :func:`meta_limit`, which loading refuses, is refused here (``path`` untouched)."""
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    if meta is not None:
        payload[META_KEY] = encode_json(meta)
        limit = meta_limit(a.shape for a in payload.values() if a is not payload[META_KEY])
        if payload[META_KEY].nbytes > limit:
            raise ValueError(
                f"{path} not written: its metadata takes {_gib(payload[META_KEY].nbytes)}, more than a file "
                f"of these arrays may carry ({_gib(limit)}); keep large records (a cost history) in a file "
                "of their own"
            )
    buffer = io.BytesIO()
    np.savez(buffer, **payload)
    with atomic_writer(path) as f:
        f.write(buffer.getbuffer())


def check_readable(path: str | os.PathLike, what: str = "file") -> None:
    """A ValueError naming ``path`` unless it is an existing file (not a directory)."""
    if not os.fspath(path):  # as Path, "" is ".": it was ". is a directory, not a model file"
        raise ValueError(f"the {what}'s path is empty; give the path of one")
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no such {what}: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a {what}")
    try:
        open(path, "rb").close()  # zipfile.is_zipfile would call an unreadable file "not a zip archive"
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Member:
    """One array of an ``.npz`` as its header declares it, read without reading its data."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int  # the uncompressed size the archive declares

    @property
    def data_bytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _read_header(f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return tuple(int(n) for n in shape), dtype


@contextlib.contextmanager
def _opened(path: str | os.PathLike, what: str) -> Iterator[IO[bytes]]:
    """``path`` checked (:func:`check_readable`) and open for reading: every read of one load goes through
    this one open file, so a save that renames a new file onto ``path`` meanwhile is not mixed in (the
    headers of one model and the arrays of another)."""
    check_readable(path, what)  # before Path(): Path("") is "."
    try:
        file = open(path, "rb")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    with file:
        if not file.seekable():  # <(cat m.npz), a FIFO: it was called "not a zip archive, or truncated"
            raise ValueError(
                f"{path} is a pipe or a stream, and a {what} in .npz format is read by seeking in it; "
                "give the file itself"
            )
        yield file


def _inspect(file: IO[bytes], path: Path, what: str) -> dict[str, Member]:
    """Every member of the ``.npz`` open as ``file`` (from ``path``) as its ``.npy`` header declares it,
    reading only headers.

    Raises:
        ValueError: not a zip archive, a member that is not a ``.npy`` array, a header whose shape and
            dtype do not match the size the archive declares, Python objects (pickle), or a total size
            larger than the memory available (a small file that inflates to gigabytes).
    """
    if not zipfile.is_zipfile(file):
        raise ValueError(f"{path} is not a {what} in .npz format (not a zip archive, or truncated)")
    members: dict[str, Member] = {}
    try:
        with zipfile.ZipFile(file) as archive:
            for info in archive.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                with archive.open(info) as f:
                    shape, dtype = _read_header(f)
                    header = f.tell()
                if dtype.hasobject:
                    raise ValueError(f"{path} holds Python objects, which dlcore never unpickles")
                if name in members:  # "W1" and "W1.npy": NumPy would read one, the checks see the other
                    raise ValueError(f"{path} is corrupt: it holds two entries for the array {name!r}")
                member = Member(name, shape, dtype, info.file_size)
                if header + member.data_bytes != info.file_size:
                    raise ValueError(
                        f"{path} is corrupt: its array {name!r} declares shape {shape} of {dtype} "
                        f"({member.data_bytes} bytes) but the archive holds {info.file_size - header} bytes"
                    )
                members[name] = member
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path} is corrupt or truncated ({exc})") from None
    except Exception as exc:  # zipfile/zlib/struct/header parsing of damaged bytes: any failure means corrupt
        raise ValueError(f"{path} is corrupt or truncated ({type(exc).__name__}: {exc})") from None
    total = sum(m.nbytes for m in members.values())
    available = available_host_memory()
    if available is not None and total * MEMORY_HEADROOM > available:
        on_disk = os.fstat(file.fileno()).st_size
        raise ValueError(
            f"{path} inflates to {_gib(total)} of arrays ({on_disk} bytes on disk); with the "
            f"copies made while loading that is more than the {_gib(available)} of memory available: "
            "refused (use a smaller file, or a machine with more memory)"
        )
    return members


def _read_members(file: IO[bytes], path: Path, names: list[str]) -> dict[str, np.ndarray]:
    file.seek(0)
    try:
        with np.load(file, allow_pickle=False) as archive:
            return {name: archive[name] for name in names}
    except MemoryError:
        raise ValueError(f"{path} is too large to load into the memory available") from None
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ValueError(f"{path} holds Python objects, which dlcore never unpickles") from None
        raise ValueError(f"{path} is corrupt or truncated ({exc})") from None
    except Exception as exc:  # zipfile/zlib/struct/header parsing of damaged bytes: any failure means corrupt
        raise ValueError(f"{path} is corrupt or truncated ({type(exc).__name__}: {exc})") from None


def load_npz(path: str | os.PathLike, what: str = "file") -> dict[str, np.ndarray]:
    """Every array in the ``.npz`` at ``path``, read eagerly with ``allow_pickle=False``, after
    :func:`_inspect` has checked every header and the total size.

    Raises:
        ValueError: missing file, not an ``.npz`` archive, truncated or corrupt (CRC) archive, an
            entry holding Python objects (which would need pickle), or more than memory can hold.
            The message names the path.
    """
    with _opened(path, what) as file:
        members = _inspect(file, Path(path), what)
        return _read_members(file, Path(path), list(members))


def load_npz_with_meta(
    path: str | os.PathLike,
    what: str = "file",
    check: Callable[[dict | None, dict[str, Member]], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict | None]:
    """``(arrays, meta)`` from an ``.npz`` written by :func:`save_npz`; ``meta`` is None when absent.

    The metadata is read first, refused beyond :func:`meta_limit`, and handed with the declared members
    to ``check(meta, members)``, which may refuse the file (ValueError) before any array is read.
    """
    with _opened(path, what) as file:
        path = Path(path)
        members = _inspect(file, path, what)
        meta = None
        if META_KEY in members:
            limit = meta_limit(m.shape for m in members.values() if m.name != META_KEY)
            if members[META_KEY].nbytes > limit:
                raise ValueError(
                    f"{path} is corrupt: its metadata inflates to {_gib(members[META_KEY].nbytes)}, far more "
                    f"than a model of these arrays needs (at most {_gib(limit)})"
                )
            meta = decode_json(_read_members(file, path, [META_KEY])[META_KEY], path)
        if check is not None:
            check(meta, {k: v for k, v in members.items() if k != META_KEY})
        names = [k for k in members if k != META_KEY]
        return _read_members(file, path, names), meta


def all_finite(array: np.ndarray) -> bool:
    """True when a host array holds no NaN or inf."""
    return bool(np.isfinite(array).all())
