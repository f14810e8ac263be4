"""Data-parallel training, the core's side: one model trained by N processes (ranks), as Horovod,
ChainerMN and PyTorch's DDP do it. Every rank holds the same data and the same parameters; of each
(global) batch it computes the gradient of its own contiguous slice of columns; the gradients are summed
over the ranks; every rank applies the same update, so the parameters stay identical everywhere.

    global batch X{t}: (n_x, mb)  ->  rank r's columns [lo_r, hi_r),  m_r = hi_r - lo_r
    local backward with scale  s m_r / mb     (so rank r's dW[l] = s / mb  sum over its columns)
    one allreduce of the flat buffer  [dW1, db1, ..., dWL, dbL,  (m_r / mb) J_r (when recorded),  stop flags]
      -> s times the global batch's mean gradient, and its cost J, on every rank
    L2 (lambd / mb W[l], lambd / (2 mb) sum ||W||^2) is added once, after the sum

Mini-batches: every rank draws the same epoch permutation (same seed) and takes its slice of each
global batch, as DDP's DistributedSampler does; dropout masks are drawn for the whole global batch and
sliced, so the ranks together see the masks one process would. Costs, validation costs and so every
decision (divergence, early stopping) are the same on every rank; Ctrl-C and SIGTERM become a flag
that travels with the gradients, so all ranks stop after the same update. The communicator (MPI, NCCL)
is handed in: see :mod:`dlcore.backends.comm`; this module imports no library.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from dlcore._namespace import namespace
from dlcore.ops import as_at_least_float32, at_least_float32

Array = Any
Params = dict[str, Array]


def shard(m: int, size: int, rank: int) -> tuple[int, int]:
    """``(lo, hi)``: rank ``rank``'s contiguous slice of m columns split over ``size`` ranks, the sizes
    differing by at most one (the first ``m mod size`` ranks take one more)."""
    base, extra = divmod(m, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


class DataParallel:
    """One rank's part in data-parallel training over ``comm`` (a :mod:`dlcore.backends.comm`
    communicator). ``terminate_error``: the exception raised on every rank when any rank got SIGTERM
    (the CLI passes its own; Ctrl-C raises KeyboardInterrupt)."""

    def __init__(self, comm: Any, terminate_error: type[BaseException] = KeyboardInterrupt) -> None:
        self.comm = comm
        self.rank, self.size = comm.rank, comm.size
        self.terminate_error = terminate_error
        self.requests = [0, 0]  # SIGINT and SIGTERM seen by this rank
        self.flags: Array | None = None  # the last allreduced [SIGINT count, SIGTERM count]
        self._tail: tuple[Any, Array] | None = None  # (what it was made from, [SIGINT, SIGTERM] array)

    def __repr__(self) -> str:
        return f"<DataParallel rank {self.rank} of {self.size} over {self.comm!r}>"

    # -- the data -------------------------------------------------------------------------------------
    def columns(self, m: int) -> tuple[int, int]:
        """This rank's ``(lo, hi)`` of a batch of m columns."""
        return shard(m, self.size, self.rank)

    def local(self, X: Array, Y: Array) -> tuple[Array, Array, float, tuple[int, int]]:
        """This rank's columns of a global batch (views), its weight m_r / mb and its ``(lo, hi)``."""
        m = X.shape[1]
        lo, hi = self.columns(m)
        if (lo, hi) == (0, m):
            return X, Y, 1.0, (lo, hi)
        return X[:, lo:hi], Y[:, lo:hi], (hi - lo) / m, (lo, hi)

    @contextlib.contextmanager
    def agreement(self) -> Iterator[None]:
        """A block of this rank's own checks (no collective inside): when it raises on any rank, every
        rank raises (the failing rank its exception, the others a ValueError quoting it), so none is
        left waiting in the next collective for a rank that gave up."""
        try:
            yield
        except BaseException as exc:  # a Ctrl-C or SIGTERM that reached this rank alone too
            self.agree(exc)
            raise
        self.agree(None)

    def agree(self, failure: BaseException | None) -> None:
        """Every rank says whether its set-up worked (one allgather); when one failed, the ranks that
        did not raise its message (prefixed with its rank unless it is rank 0)."""
        message = None if failure is None else str(failure) or f"stopped by {type(failure).__name__}"
        errors = self.comm.allgather(message)
        failed = [(rank, message) for rank, message in enumerate(errors) if message is not None]
        if failed and failure is None:
            rank, message = failed[0]
            raise ValueError(message if rank == 0 else f"on rank {rank}: {message}")

    def check_same_data(self, **arrays: Array) -> None:
        """Raise ValueError on every rank when any rank holds different ``arrays`` than rank 0 (checked
        by digest, before anything is trained)."""
        ranks, names = self._differing({name: self.comm.fingerprint(x) for name, x in arrays.items()})
        if ranks:
            raise ValueError(
                f"rank(s) {ranks} hold different training data ({names}) than rank 0; "
                "give every rank the same data (the same file, seed and options)"
            )

    def check_same_options(self, **options: Any) -> None:
        """Raise ValueError on every rank when any rank trains with other ``options`` than rank 0 (compared
        by repr, before anything is trained): each rank trained a model of its own, silently, or waited in
        a collective the others never reached (another iteration count), or failed in one (other layers)."""
        ranks, names = self._differing({name: repr(value) for name, value in options.items()})
        if ranks:
            raise ValueError(
                f"rank(s) {ranks} train with other options than rank 0 ({names}); give every rank "
                "the same network and fit options"
            )

    def _differing(self, mine: dict[str, Any]) -> tuple[str, str]:
        """Every rank's ``mine`` gathered (one allgather): the ranks whose values differ from rank 0's and
        the names that differ, each as a comma-separated string ("" when all agree)."""
        everyone = self.comm.allgather(mine)
        ranks, names = [], set()
        for rank, theirs in enumerate(everyone):
            differ = {k for k in theirs.keys() | everyone[0].keys() if theirs.get(k) != everyone[0].get(k)}
            if differ:
                ranks.append(str(rank))
                names |= differ
        return ", ".join(ranks), ", ".join(sorted(names))

    def agree_seed(self, seed: int | None) -> int:
        """Rank 0's seed on every rank (drawn there when ``None``), so all ranks shuffle alike."""
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        return self.comm.allgather(seed)[0]

    def broadcast_params(self, params: Params) -> None:
        """Rank 0's parameters on every rank, in place in the dict."""
        for name in params:
            params[name] = self.comm.broadcast(params[name], 0)

    # -- the step -------------------------------------------------------------------------------------
    def allreduce_gradients(self, grads: Params, J: Array | None) -> tuple[Params, Array | None]:
        """Sum the gradients (and this rank's weighted cost ``J``) over the ranks with one allreduce of a
        flat buffer (one concatenation, in at least float32); returns the summed gradients (views of it,
        in that dtype) and the summed cost. Mixed precision's float16 and bfloat16 gradients and costs are
        summed in float32: the cost keeps its digits, the sum over ranks rounds once, a rank whose slice
        is empty (a low-dtype zero) adds the same dtype as the others, and no bfloat16 reaches a host
        collective (NumPy has none).
        The stop flags ride along (see :meth:`stop_requested`). ``J`` is given on every rank or on none
        (a recorded step), so the layout is the same on every rank."""
        names = sorted(grads)  # the same layout on every rank, however each built its dict
        first = grads[names[0]]
        xp = namespace(first)
        dtype, device = at_least_float32(xp, first.dtype), first.device
        parts = [xp.reshape(xp.astype(grads[name], dtype, copy=False), (-1,)) for name in names]
        cost = [] if J is None else [xp.reshape(xp.astype(J, dtype), (1,))]
        flat = self.comm.allreduce(xp.concat([*parts, *cost, self._stop_flags(xp, dtype, device)]))
        summed, start = {}, 0
        for name, part in zip(names, parts, strict=True):
            stop = start + part.shape[0]
            summed[name] = xp.reshape(flat[start:stop], grads[name].shape)
            start = stop
        self.flags = flat[start + len(cost) :]
        return summed, (None if J is None else flat[start])

    def _stop_flags(self, xp: Any, dtype: Any, device: Any) -> Array:
        """``[SIGINT count, SIGTERM count]`` on the device, made again only after a signal (not a
        host-to-device copy per step: on a GPU one from pageable memory would sync)."""
        key = (self.requests[0], self.requests[1], dtype, device)
        if self._tail is None or self._tail[0] != key:
            values = [float(self.requests[0]), float(self.requests[1])]
            self._tail = key, xp.asarray(values, dtype=dtype, device=device)
        return self._tail[1]

    def sum(self, value: Array) -> Array:
        """A 0-D array summed over the ranks (a cost weighted by the rank's share), in at least float32."""
        value = as_at_least_float32(value)
        return self.comm.allreduce(namespace(value).reshape(value, (1,)))[0]

    def zero_gradients(self, params: Params) -> Params:
        """The gradients of a rank whose slice of a batch is empty."""
        xp = namespace(next(iter(params.values())))
        return {"d" + name: xp.zeros_like(p) for name, p in params.items()}

    # -- stopping together ----------------------------------------------------------------------------
    def stop_requested(self, read: bool = True) -> bool:
        """Whether any rank asked to stop (Ctrl-C, SIGTERM), as of the last allreduce; the same answer on
        every rank. With device collectives (NCCL) reading it is a host sync: the loop reads it at each
        mini-batch epoch's end and where it syncs anyway, the recorded full-batch steps (``read=False``
        answers False without looking)."""
        if self.flags is None or (self.comm.device_buffers and not read):
            return False
        return bool(self.flags[0] + self.flags[1] > 0)

    def stop_error(self) -> BaseException:
        """The exception every rank raises once a stop was agreed."""
        terminated = bool(self.flags is not None and self.flags[1] > 0)
        message = "terminated (SIGTERM) on some rank" if terminated else "interrupted (Ctrl-C)"
        return (self.terminate_error if terminated else KeyboardInterrupt)(message)

    @contextlib.contextmanager
    def interrupts(self, progress: Callable[[int], None] | None = None) -> Iterator[Any]:
        """While training, Ctrl-C and SIGTERM are counted (and sent to the other ranks with the next
        gradients) instead of raising where they land; a second Ctrl-C on a rank raises at once. Each
        training starts with none counted (an interrupted fit's count once stopped the next fit). Yields
        ``progress`` as it is (the ranks stop together in the step, not there), as
        :func:`~dlcore.interrupts.between_updates` yields it for one process. Only in the main thread."""
        self.requests, self.flags = [0, 0], None
        if threading.current_thread() is not threading.main_thread():  # only it may set signal handlers
            yield progress
            return

        def request(signum: int, frame: Any) -> None:
            index = 1 if signum == signal.SIGTERM else 0
            if self.requests[index] and signum == signal.SIGINT:
                if self.size > 1:  # on this rank alone (kill -INT): the others would wait in a collective
                    self.comm.abort("interrupted twice (Ctrl-C)")
                raise KeyboardInterrupt
            self.requests[index] += 1

        previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield progress
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        # the block ended normally, on every rank alike: a signal counted after the last gradients went
        # out (the final cost, the validation) was dropped, where one process stops there
        # (between_updates); one allgather of the counts stops every rank together
        counts = self.comm.allgather(tuple(self.requests))
        totals = [sum(count[i] for count in counts) for i in (0, 1)]
        if any(totals):
            self.flags = totals
            raise self.stop_error()

    def abort_on_error(self, exc: BaseException) -> None:
        """After an exception that is not collective (not divergence, not an agreed stop) on this rank:
        with other ranks waiting in a collective, print it and stop the whole job."""
        if self.size > 1:
            self.comm.abort(f"{type(exc).__name__}: {exc}")
