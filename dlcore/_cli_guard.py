"""Imported first by ``dlcore/__init__.py``: a Ctrl-C while the command line is still importing (its
first ~0.1 s) exits 130 with one line instead of a KeyboardInterrupt traceback."""

from __future__ import annotations


def install() -> None:
    """Ctrl-C while ``dlcore`` / ``python -m dlcore`` is still importing (its first ~0.1 s): exit 130 with
    one line, not a KeyboardInterrupt traceback. Library users are left alone; :func:`dlcore.cli.main`
    puts the usual handler back as soon as it runs."""
    import os
    import signal
    import sys

    orig = list(getattr(sys, "orig_argv", []))
    as_module = sys.argv[:1] == ["-m"] and "-m" in orig and orig[orig.index("-m") + 1 :][:1] == ["dlcore"]
    as_script = bool(sys.argv) and os.path.basename(sys.argv[0]) in ("dlcore", "dlcore.exe")
    if not (as_module or as_script):
        return

    def quiet(signum: int, frame: object) -> None:
        print("dlcore: interrupted", file=sys.stderr)
        raise SystemExit(130)

    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, quiet)
    except ValueError:  # not the main thread
        pass


install()
