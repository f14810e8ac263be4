"""Early stopping: watch the validation cost, stop after ``patience`` checks without improvement,
and hand back a copy of the parameters from the best check."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dlcore.propagation import copy_params
from dlcore.validation import check_positive_int

Params = dict[str, Any]


class EarlyStopping:
    """Call :meth:`check` with each validation cost; it returns True when training should stop.

    An improvement is a cost below ``best - min_delta``; ``best_params`` is a copy of the parameters
    at the best check (restore them at the end), made by ``snapshot`` (an optimizer's, which may keep
    more than the arrays it is handed: mixed precision's float32 masters).
    """

    def __init__(
        self, patience: int, min_delta: float = 0.0, snapshot: Callable[[Params], Params] = copy_params
    ) -> None:
        self.patience = check_positive_int(patience, "patience")
        self.min_delta = float(min_delta)
        self.snapshot = snapshot
        self.best = math.inf
        self.best_params: Params | None = None
        self.best_index = -1
        self.bad_checks = 0
        self.checks = 0

    def check(self, cost: float, params: Params) -> bool:
        """Record a validation cost for ``params``; True once ``patience`` checks pass without improvement."""
        index = self.checks
        self.checks += 1
        if not math.isfinite(cost) and self.best_params is None:  # nothing finite yet: nothing to keep,
            return False  # so no stop (all-NaN checks stopped a fit with no parameters to restore)
        if self.improves(cost):
            self.best, self.best_index, self.bad_checks = cost, index, 0
            self.best_params = self.snapshot(params)
            return False
        self.bad_checks += 1
        return self.bad_checks >= self.patience

    def improves(self, cost: float) -> bool:
        """Whether ``cost`` is below the best check's by more than ``min_delta``."""
        return cost < self.best - self.min_delta

    def keeps_last_check(self) -> bool:
        """For a run that ended right after a check: True when that check was the best, whose parameters
        are then the final ones (``best_params`` is dropped: nothing to restore)."""
        if self.checks == 0 or self.best_index != self.checks - 1:
            return False
        self.best_params = None
        return True

    def keeps_final(self, cost: float) -> bool:
        """The validation cost of a run's final parameters (it ended without stopping): True when they
        improve on the best check, which then has nothing to restore (``best_params`` is dropped)."""
        if not self.improves(cost):
            return False
        self.best_params = None
        return True
