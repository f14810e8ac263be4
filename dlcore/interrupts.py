"""Ctrl-C and SIGTERM between updates, never in the middle of one.

A KeyboardInterrupt that lands while the optimizer walks the layers would leave some layers updated and
others not (and Adam's moments one step ahead of the weights): parameters training never reached.
:func:`between_updates` holds such a signal until the update under way is done.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def between_updates(progress: Callable[[int], None] | None) -> Iterator[Callable[[int], None] | None]:
    """Yields ``progress`` wrapped (call it after every update with the updates done): a SIGINT or
    SIGTERM received meanwhile acts there, through the handler it would have met (Python's raises
    KeyboardInterrupt), so an interrupted fit keeps the parameters of its last whole update. One still
    pending when the block ends normally acts then. Each signal reaches its handler once; a second one
    before the update ends acts at once. Handlers that are not Python functions (SIG_IGN, SIG_DFL) are
    left alone, and so is everything outside the main thread, where ``progress`` comes back as it was."""
    if threading.current_thread() is not threading.main_thread():  # only it may set signal handlers
        yield progress
        return
    pending: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def act() -> None:  # once: a handler that returns (a user's "stop after this run") lets training go on
        signum = pending.pop()
        previous[signum](signum, None)

    def defer(signum: int, frame: Any) -> None:
        if pending:  # asked twice before the update ended: now
            previous[signum](signum, frame)
        else:
            pending.append(signum)

    def reported(iteration: int) -> None:
        if progress is not None:
            progress(iteration)
        if pending:
            act()

    for signum, handler in previous.items():
        if callable(handler):
            signal.signal(signum, defer)
    try:
        yield reported
    finally:
        for signum, handler in previous.items():
            if callable(handler):
                signal.signal(signum, handler)
    if pending:  # after the last update, before the block ended
        act()
