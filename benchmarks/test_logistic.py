"""Logistic regression gradient: two loops (examples, features), one loop (examples), none."""

import pytest


@pytest.mark.parametrize("role", ["loop", "one_loop", "vectorized"])
def test_logistic_gradient(run_case, role):
    run_case("logistic", "logistic gradient", role)
