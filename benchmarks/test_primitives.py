"""The vectorization lecture: dot product, elementwise exp and u = A v, loop against vectorized."""

import pytest


@pytest.mark.parametrize("role", ["loop", "vectorized"])
@pytest.mark.parametrize("name", ["dot", "exp", "matvec"])
def test_primitive(run_case, name, role):
    run_case("primitive", name, role)
