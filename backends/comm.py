"""Communicators for data-parallel training: what the core needs from MPI or NCCL, and nothing else.

A communicator has a ``rank`` and a ``size`` and can, on arrays of the training backend:

- ``allreduce(x)``: the element-wise sum over all ranks (``x`` may be overwritten; use the result),
- ``broadcast(x, root=0)``: rank ``root``'s values on every rank,

and on small Python objects ``allgather(obj)`` (a list, one entry per rank), plus ``abort(message)``
(print and stop every rank, instead of leaving them waiting in a collective).

Implementations: :class:`SingleProcess` (size 1, no library), :class:`MPIComm` (mpi4py over any MPI:
the ``mpi`` extra brings MPICH's wheel; Open MPI, Intel MPI or a cluster's own MPI work too) and
:class:`NCCLComm` (CuPy's NCCL for CuPy arrays, one GPU per rank; the ranks meet through MPI).
:func:`get_communicator` picks one. The core's side is :mod:`dlcore.distributed`.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Any, NoReturn

import numpy as np
from dlcore.backends.base import BackendError, to_numpy

#: environment variables that MPI launchers set in every process they start, holding the process count
#: (MPICH/Hydra and Intel MPI: PMI_SIZE; Open MPI: OMPI_COMM_WORLD_SIZE; MVAPICH: MV2_COMM_WORLD_SIZE;
#: Slurm's srun: SLURM_STEP_NUM_TASKS)
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS")
LAUNCHER_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "SLURM_PROCID")

INSTALL_MPI = (
    "pip install 'dlcore[mpi]' (mpi4py with MPICH's wheel), or build mpi4py against your cluster's MPI "
    "(Open MPI, Intel MPI: pip install --no-binary mpi4py mpi4py)"
)


def _launcher_number(names: tuple[str, ...], environ: Any) -> int | None:
    """The first of ``names`` set to an integer in ``environ`` (default ``os.environ``), else None."""
    environ = os.environ if environ is None else environ
    for name in names:
        try:
            return int(environ[name])
        except (KeyError, ValueError):
            continue
    return None


def launcher_size(environ: Any = None) -> int | None:
    """The number of processes an MPI launcher (mpiexec, mpirun, srun) started, read from the
    environment without loading MPI; ``None`` when this process was not started by one."""
    return _launcher_number(LAUNCHER_SIZE_VARIABLES, environ)


def launcher_rank(environ: Any = None) -> int | None:
    """This process's rank as an MPI launcher numbered it, read without loading MPI; ``None`` when not
    started by one."""
    return _launcher_number(LAUNCHER_RANK_VARIABLES, environ)


def load_mpi() -> Any:
    """mpi4py's ``MPI`` module, or a :class:`BackendError` saying what is missing and how to fix it."""
    try:
        import mpi4py
    except ImportError:
        raise BackendError(f"distributed training needs mpi4py and an MPI library: {INSTALL_MPI}") from None
    try:
        mpi4py.rc.threads = False  # the training loop calls MPI from one thread
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as exc:  # e.g. libmpi.so.12: cannot open shared object
        lines = str(exc).splitlines() or [type(exc).__name__]
        reason = "; ".join(line.strip() for line in lines[:2])  # "cannot load MPI library; libmpi.so: ..."
        raise BackendError(
            f"mpi4py is installed but cannot load an MPI library ({reason}): pip install mpich, "
            f"or {INSTALL_MPI}"
        ) from None
    return MPI


def fingerprint(x: Any) -> str:
    """A digest of an array's shape, dtype and values (copied to the host once): equal arrays, equal
    digests; used to check that every rank loaded the same data."""
    host = np.ascontiguousarray(to_numpy(x))
    digest = hashlib.sha256(f"{host.shape}{host.dtype.str}".encode())
    digest.update(host.view(np.uint8).reshape(-1) if host.size else b"")
    return digest.hexdigest()


def _like(host: np.ndarray, x: Any) -> Any:
    """``host`` as an array of ``x``'s library and dtype, on ``x``'s device (torch's bfloat16 travels as
    float32: to_numpy's; it came back float32 without a word)."""
    if isinstance(x, np.ndarray):
        return host
    from array_api_compat import device

    from dlcore._namespace import namespace

    return namespace(x).asarray(host, dtype=x.dtype, device=device(x))


class Communicator:
    """The base: one process (``rank`` 0 of ``size`` 1); every collective returns its input."""

    name = "single"
    rank = 0
    size = 1
    #: whether the collectives run on device memory (then the loop reads the stop flag only at cost checks)
    device_buffers = False

    def allreduce(self, x: Any) -> Any:
        """The element-wise sum of ``x`` over all ranks (``x`` may be overwritten; use the result)."""
        return x

    def broadcast(self, x: Any, root: int = 0) -> Any:
        """Rank ``root``'s ``x`` on every rank (``x`` may be overwritten; use the result)."""
        return x

    def allgather(self, obj: Any) -> list[Any]:
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank (small Python objects)."""
        return [obj]

    def fingerprint(self, x: Any) -> str:
        return fingerprint(x)

    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Print ``message`` (naming this rank) and stop every rank with exit ``code``."""
        print(f"dlcore: error: {message}", file=sys.__stderr__, flush=True)
        raise SystemExit(code)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} rank {self.rank} of {self.size}>"


class SingleProcess(Communicator):
    """No other ranks: training as one process would, through the data-parallel code path."""


class MPIComm(Communicator):
    """Collectives through mpi4py (``comm``: an mpi4py communicator, default ``MPI.COMM_WORLD``).

    Arrays travel through host memory: NumPy arrays in place, others copied to the host and back
    (a CUDA-aware MPI could take device buffers; :class:`NCCLComm` is the GPU route)."""

    name = "mpi"

    def __init__(self, comm: Any = None) -> None:
        MPI = load_mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()

    @staticmethod
    def _host(x: Any) -> tuple[np.ndarray, bool]:
        """A writable C-contiguous host buffer holding x, and whether it is x itself (a NumPy array).

        One copy at most: to_numpy's array is used as it is when it is writable and C-contiguous (a
        device array's fresh host copy; for a torch CPU tensor or an array_api_strict array, a view of
        x's memory, which the collective then overwrites, as it does a NumPy x's)."""
        host = to_numpy(x)
        if not (host.flags.c_contiguous and host.flags.writeable):
            host = np.array(host, order="C", copy=True)
        return host, host is x

    def allreduce(self, x: Any) -> Any:
        host, own = self._host(x)
        self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
        return host if own else _like(host, x)

    def broadcast(self, x: Any, root: int = 0) -> Any:
        host, own = self._host(x)
        self.comm.Bcast(host, root=root)
        return host if own else _like(host, x)

    def allgather(self, obj: Any) -> list[Any]:
        return self.comm.allgather(obj)

    def abort(self, message: str, code: int = 1) -> NoReturn:
        print(
            f"dlcore: error on rank {self.rank} of {self.size}: {message}; stopping every rank",
            file=sys.__stderr__,  # a silenced rank's own failure still reaches the terminal
            flush=True,
        )
        self.comm.Abort(code)
        raise SystemExit(code)  # not reached: Abort ends the process


class NCCLComm(MPIComm):
    """Collectives on CuPy arrays through NCCL (``cupy.cuda.nccl``), one GPU per rank.

    The ranks meet through MPI: rank 0 makes NCCL's unique id and broadcasts it; each rank uses the GPU
    numbered by its rank among the ranks of its machine (``MPI.COMM_TYPE_SHARED``). NCCL refuses two
    ranks on one GPU: start at most as many ranks per machine as it has GPUs."""

    name = "nccl"
    device_buffers = True

    def __init__(self, comm: Any = None) -> None:
        super().__init__(comm)  # MPI first, on every rank: a rank's own problem below reaches the others
        local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)  # collective: before any rank can fail
        self.local_rank, local_size = local.Get_rank(), local.Get_size()
        local.Free()
        problem = None
        try:
            cupy, nccl = self._load_nccl(local_size)
        except BackendError as exc:
            problem = str(exc)
        except Exception as exc:  # e.g. CUDARuntimeError: no GPU or driver behind this rank's CuPy
            problem = f"CuPy cannot reach a GPU on this machine ({type(exc).__name__}: {exc})"
        # one machine without CuPy, NCCL or enough GPUs raised alone and left the other machines' ranks
        # waiting for NCCL's id for good: every rank learns of the first problem and raises it
        failed = [(rank, p) for rank, p in enumerate(self.comm.allgather(problem)) if p is not None]
        if failed:
            rank, problem = failed[0]
            raise BackendError(problem if rank == self.rank else f"on rank {rank}: {problem}")
        self.cupy, self.nccl = cupy, nccl
        self.device = cupy.cuda.Device(self.local_rank)
        self.device.use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = self.comm.bcast(uid, root=0)
        self.nccl_comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self.dtypes = {
            np.dtype("float16"): nccl.NCCL_FLOAT16,
            np.dtype("float32"): nccl.NCCL_FLOAT32,
            np.dtype("float64"): nccl.NCCL_FLOAT64,
        }

    def _load_nccl(self, local_size: int) -> tuple[Any, Any]:
        """CuPy and its NCCL bindings on this rank, checked to give each of ``local_size`` ranks on this
        machine a GPU of its own, else a :class:`BackendError` saying what is missing."""
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as exc:
            raise BackendError(
                f"NCCL needs CuPy with NCCL ({exc}); pip install 'dlcore[cuda13]' (or cuda12), "
                "or train on the CPU with the MPI communicator"
            ) from None
        if not getattr(nccl, "available", True):  # the import succeeds without libnccl, bindings missing
            major = cupy.cuda.runtime.runtimeGetVersion() // 1000
            raise BackendError(
                f"CuPy cannot load NCCL (libnccl.so.2); pip install nvidia-nccl-cu{major} (the CUDA of this "
                "CuPy), or train on the CPU with the MPI communicator"
            )
        gpus = cupy.cuda.runtime.getDeviceCount()
        if local_size > gpus:
            raise BackendError(
                f"{local_size} ranks on this machine but {gpus} GPU(s): NCCL needs one GPU per rank; "
                f"start at most {gpus} ranks per machine (mpiexec -n {gpus} ...), or train on the CPUs over "
                "MPI (--backend numpy)"
            )
        return cupy, nccl

    def _nccl_dtype(self, x: Any) -> Any:
        try:
            return self.dtypes[np.dtype(x.dtype)]
        except (KeyError, TypeError):
            raise BackendError(f"NCCL allreduce of {x.dtype} arrays is not supported here") from None

    def _buffer(self, x: Any) -> Any:
        """``x`` as a contiguous array on this rank's GPU (the one NCCL was set up on), else one sentence."""
        x = self.cupy.ascontiguousarray(x)
        if x.device.id != self.device.id:
            raise BackendError(
                f"rank {self.rank}'s NCCL runs on GPU {self.device.id} but the array is on GPU "
                f"{x.device.id}; train on get_backend('cupy:{self.local_rank}') (comm.local_rank)"
            )
        return x

    def allreduce(self, x: Any) -> Any:
        x = self._buffer(x)
        stream = self.cupy.cuda.get_current_stream().ptr
        self.nccl_comm.allReduce(
            x.data.ptr, x.data.ptr, x.size, self._nccl_dtype(x), self.nccl.NCCL_SUM, stream
        )
        return x

    def broadcast(self, x: Any, root: int = 0) -> Any:
        x = self._buffer(x)
        stream = self.cupy.cuda.get_current_stream().ptr
        self.nccl_comm.broadcast(x.data.ptr, x.data.ptr, x.size, self._nccl_dtype(x), root, stream)
        return x


COMMUNICATORS = {"single": SingleProcess, "mpi": MPIComm, "nccl": NCCLComm}


def get_communicator(kind: str = "auto", backend: Any = None) -> Communicator:
    """A communicator: ``"single"``, ``"mpi"``, ``"nccl"``, or ``"auto"``: NCCL when ``backend`` is a
    GPU (CuPy) backend, else MPI; a process not started by an MPI launcher gets :class:`SingleProcess`
    only when asked for ``"single"`` (``"auto"`` and ``"mpi"`` load MPI, which runs as one rank)."""
    if kind == "auto":
        kind = "nccl" if backend is not None and getattr(backend, "name", "").startswith("cupy") else "mpi"
    try:
        cls = COMMUNICATORS[kind]
    except KeyError:
        raise BackendError(
            f"unknown communicator {kind!r}; choose one of: auto, {', '.join(COMMUNICATORS)}"
        ) from None
    return cls()


def as_communicator(comm: Any) -> Communicator:
    """``comm`` as a :class:`Communicator`: one already, an mpi4py communicator (wrapped), or ``None``
    (:class:`SingleProcess`)."""
    if comm is None:
        return SingleProcess()
    if isinstance(comm, Communicator):
        return comm
    if hasattr(comm, "Get_rank") and hasattr(comm, "Allreduce"):
        return MPIComm(comm)
    raise TypeError(
        f"comm must be a dlcore communicator (dlcore.backends.comm.get_communicator()) or an mpi4py "
        f"communicator; got {type(comm).__name__}"
    )
