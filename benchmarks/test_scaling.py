"""The training step along the scaling series (planar as m grows, [784, h, h, 1] as h grows) against the
hand-written NumPy step, the floor and PyTorch."""

import pytest


@pytest.mark.parametrize("role", ["vectorized", "handwritten", "floor", "pytorch"])
@pytest.mark.parametrize("point", ["planar m=400", "h=64"])
def test_scaling(run_case, point, role):
    run_case("scaling", f"scaling {point}", role)
