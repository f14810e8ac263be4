"""Network forward + backward for one batch: a loop over examples against the vectorized core."""

import pytest


@pytest.mark.parametrize("role", ["loop", "vectorized"])
@pytest.mark.parametrize("net", ["planar", "deep"])
def test_forward_backward(run_case, net, role):
    run_case("network", f"forward+backward {net}", role)
