"""The host memory pool (backends/host_memory.py): freed arrays are reused without new page faults."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest
from dlcore.backends import host_memory

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the host memory pool tunes glibc's malloc; other C libraries keep their defaults",
)

# Allocate, write and free an 8 MiB array (one wide-net activation in float32) 30 times and count the
# minor page faults: without the pool every round faults its 2,048 pages in again.
FAULTS = textwrap.dedent(
    """
    import os, resource, sys
    import numpy as np
    sys.path.insert(0, os.getcwd())
    if sys.argv[1] == "pool":
        from dlcore.backends import get_backend
        get_backend("numpy")
    np._core.multiarray._set_madvise_hugepage(False)  # count 4 KiB pages, not transparent huge pages
    keep = np.ones((1024, 2048), dtype=np.float32)  # something else on the heap, as in training
    for _ in range(3):
        a = np.ones((1024, 2048), dtype=np.float32); del a
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):
        a = np.ones((1024, 2048), dtype=np.float32); b = a * 2.0; del a, b
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _faults(mode: str, env: dict[str, str] | None = None) -> int:
    import os

    out = subprocess.run(
        [sys.executable, "-c", FAULTS, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return int(out.stdout.strip())


@glibc_only
def test_pool_removes_the_page_faults_of_repeated_allocations():
    pages_per_round = 2 * (8 << 20) // 4096  # two 8 MiB arrays per round
    without = _faults("plain")
    with_pool = _faults("pool")
    assert without > 10 * pages_per_round, f"expected page faults without the pool, got {without}"
    assert with_pool < pages_per_round, f"the pool should reuse freed memory; got {with_pool} faults"


@glibc_only
def test_env_var_turns_the_pool_off():
    assert _faults("pool", {host_memory.ENV_VAR: "0"}) > 10 * 2 * (8 << 20) // 4096


def test_status_names_the_state(monkeypatch):
    monkeypatch.setattr(host_memory, "_status", None)
    monkeypatch.setenv(host_memory.ENV_VAR, "0")
    assert host_memory.host_pool_status().startswith("not started")
    assert host_memory.keep_freed_host_memory().startswith(f"off (${host_memory.ENV_VAR}=0)")
    monkeypatch.setattr(host_memory, "_status", None)
    monkeypatch.delenv(host_memory.ENV_VAR)
    monkeypatch.setattr(host_memory, "_glibc", lambda: None)
    assert host_memory.keep_freed_host_memory().startswith("off: not glibc")
