"""floor_gap's hand-fused step is the engine's step: its passes as plain Python (a stand-in for numba, so
this runs without it), serial and row-parallel, and its ``--ablate`` variants, against ``train_step`` in
float64."""

import types

import numpy as np
import pytest
from dlcore.benchmarks import floor_gap
from dlcore.benchmarks.workloads import seeded_data

import dlcore
from dlcore.activations import get_activation

PYTHON = types.SimpleNamespace(njit=lambda **options: lambda f: f, prange=range)


@pytest.mark.parametrize(
    "parallel, variant", [(False, {}), (True, {}), (False, {"keep_z": True}), (False, {"outer_apart": True})]
)
@pytest.mark.parametrize("dims", [[6, 5, 4, 1], [7, 5, 3, 2, 1]])
def test_the_fused_step_trains_as_train_step(dims, parallel, variant, monkeypatch):
    monkeypatch.setattr(floor_gap, "LR", 0.5)
    X, Y = seeded_data(dims[0], 30, seed=0)
    params = dlcore.initialize_parameters(dims, "he", dlcore.get_backend("numpy"), 3, "float64")
    mine, oracle = ({k: v.copy() for k, v in params.items()} for _ in range(2))
    acts = [get_activation("relu")] * (len(dims) - 2) + [get_activation("sigmoid")]
    step = floor_gap.fused_step(X, Y, mine, floor_gap._passes(PYTHON, parallel), **variant)
    for _ in range(3):
        J = step()
        J_want = float(dlcore.train_step(X, Y, oracle, acts, 0.5))
        assert J == pytest.approx(J_want, rel=1e-12)
        for k in oracle:
            np.testing.assert_allclose(mine[k], oracle[k], rtol=1e-12, atol=1e-15, err_msg=k)
        assert not np.allclose(mine["W1"], params["W1"])  # it trains


def test_a_cell_is_the_median_time_then_step_over_floor_and_its_interval():
    assert floor_gap._cell(0.00653, 1.068, (1.041, 1.09)) == "6.53 ms (1.068; 1.041-1.090)"
    assert floor_gap._cell(0.0221, 7.3, None) == "22.10 ms (7.300)"  # the floor, the two-thread rounds
