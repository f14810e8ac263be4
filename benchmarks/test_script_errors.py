"""The benchmark scripts' command lines: a bad argument or a missing GPU is one sentence and exit 2."""

from __future__ import annotations

import importlib

import pytest
from dlcore.backends import get_backend

CASES = [
    ("floor_gap", ["--points", "h=32"], "argument --points: unknown 'h=32'; choose from h=64,"),
    ("compare_steps", ["/nonexistent"], "/nonexistent is no dlcore checkout"),
    ("torch_graphs", [], "cannot use torch:cuda"),
    ("cupy_step", [], "cannot use the cupy backend"),
    # each of these was a traceback: StatisticsError, ZeroDivisionError, ValueError, KeyError, BackendError
    ("floor_gap", ["--rounds", "0"], "argument --rounds: wants an integer >= 1; got '0'"),
    ("floor_gap", ["--dtype", "float16"], "argument --dtype: unknown 'float16'; choose from float32,float64"),
    ("replay_ablation", ["abc"], "argument ms: wants an integer >= 1; got 'abc'"),
    ("replay_ablation", ["0"], "argument ms: wants an integer >= 1; got '0'"),
    ("replay_ablation", ["400", "0"], "argument rounds: wants an integer >= 1; got '0'"),
    ("compare_steps", ["--rounds", "0", "."], "argument --rounds: wants an integer >= 1; got '0'"),
    ("distributed", ["--ranks", "0"], "argument --ranks: wants an integer >= 1; got '0'"),
    ("mixed_precision", ["--backend", "bogus"], "unknown backend 'bogus'"),
    ("mixed_precision", ["--dims", "2,x"], "argument --dims: wants an integer >= 1; got 'x'"),
    ("mixed_precision", ["--m", "0"], "argument --m: wants an integer >= 1; got '0'"),
    ("mixed_precision", ["--backend", "numpy", "--compute", "bfloat16"], "bfloat16"),
    ("torch_graphs", ["--device", "cpu", "--nets", "bogus"], "argument --nets: unknown 'bogus'; choose from"),
]


@pytest.mark.parametrize(
    ("script", "argv", "message"), CASES, ids=[f"{c[0]} {' '.join(c[1])}" for c in CASES]
)
def test_a_bad_argument_is_one_sentence(script, argv, message, capsys):
    """Each ended in a traceback (KeyError, FileNotFoundError, BackendError, ModuleNotFoundError)."""
    if script == "torch_graphs":
        torch = pytest.importorskip("torch", reason="torch_graphs imports torch")
        if torch.cuda.is_available() and not argv:
            pytest.skip("a CUDA GPU is here: the script would run")
    if script == "cupy_step":
        try:
            get_backend("cupy")
            pytest.skip("a GPU with CuPy is here: the script would run")
        except Exception:
            pass
    with pytest.raises(SystemExit) as info:
        importlib.import_module(f"dlcore.benchmarks.{script}").main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and message in err[-1] and "Traceback" not in "\n".join(err), err


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
