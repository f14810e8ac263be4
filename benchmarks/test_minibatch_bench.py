"""One epoch of mini-batch gradient descent on the wide net: dlcore, MLPClassifier, PyTorch
(the cases are in :mod:`dlcore.benchmarks.epoch`)."""

import pytest


@pytest.mark.parametrize("role", ["vectorized", "sklearn", "pytorch"])
def test_minibatch_epoch(run_case, role):
    run_case("minibatch_epoch", "epoch wide", role)
