"""The benchmark scripts' command lines: a bad argument or a missing GPU is one sentence and exit 2."""

from __future__ import annotations

import importlib

import pytest
from dlcore.backends import get_backend

CASES = {
    "floor_gap": (["--points", "h=32"], "--points: unknown point 'h=32'; choose from h=64,"),
    "compare_steps": (["/nonexistent"], "/nonexistent is no dlcore checkout"),
    "torch_graphs": ([], "cannot use torch:cuda"),
    "cupy_step": ([], "cannot use the cupy backend"),
}


@pytest.mark.parametrize("script", CASES)
def test_a_bad_argument_is_one_sentence(script, capsys):
    """Each ended in a traceback (KeyError, FileNotFoundError, BackendError, ModuleNotFoundError)."""
    if script == "torch_graphs":
        torch = pytest.importorskip("torch", reason="torch_graphs imports torch")
        if torch.cuda.is_available():
            pytest.skip("a CUDA GPU is here: the script would run")
    if script == "cupy_step":
        try:
            get_backend("cupy")
            pytest.skip("a GPU with CuPy is here: the script would run")
        except Exception:
            pass
    argv, message = CASES[script]
    with pytest.raises(SystemExit) as info:
        importlib.import_module(f"dlcore.benchmarks.{script}").main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and message in err[-1] and "Traceback" not in "\n".join(err)


SCRIPTS = [
    "compare_steps",
    "cupy_step",
    "distributed",
    "floor_gap",
    "launches",
    "mixed_precision",
    "replay_ablation",
    "report",
    "torch_graphs",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_describes_the_script_in_whole_sentences(script, capsys):
    """--help stopped mid-sentence ("... where the time goes, and") and showed reST's ``markup``."""
    if script == "torch_graphs":
        pytest.importorskip("torch", reason="torch_graphs imports torch")
    with pytest.raises(SystemExit):
        importlib.import_module(f"dlcore.benchmarks.{script}").main(["--help"])
    text = capsys.readouterr().out
    about = text.split("\n\n")[1]  # after the usage: the description
    assert about.rstrip().endswith((".", ")", ":")) and "``" not in about, about
