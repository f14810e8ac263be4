"""A full training step (forward, cost, backward, update): dlcore, its matrix-product floor, PyTorch."""

import pytest


@pytest.mark.parametrize("role", ["vectorized", "handwritten", "floor", "pytorch", "pytorch_tensors"])
@pytest.mark.parametrize("net", ["planar", "deep", "wide"])
def test_train_step(run_case, net, role):
    run_case("train_step", f"train step {net}", role)
