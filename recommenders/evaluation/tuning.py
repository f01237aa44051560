"""Small search routines used to tune blend weights and hyper-parameters on a validation split."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def coordinate_search(
    objective: Callable[[np.ndarray], float],
    start: np.ndarray,
    grid: Sequence[float],
    *,
    rounds: int = 3,
) -> tuple[np.ndarray, float]:
    """Maximise ``objective`` over non-negative weight vectors, one coordinate at a time.

    Each round tries every ``grid`` value for each coordinate in turn and keeps a change only
    when it strictly improves the objective, so the result is never worse than ``start``.
    All-zero vectors are skipped. Stops early when a round changes nothing.
    """
    best = np.asarray(start, dtype=np.float64).copy()
    best_value = objective(best)
    for _ in range(max(rounds, 0)):
        changed = False
        for i in range(best.size):
            for value in grid:
                if value == best[i]:
                    continue
                trial = best.copy()
                trial[i] = value
                if not np.any(trial > 0):
                    continue
                score = objective(trial)
                if score > best_value + 1e-12:
                    best, best_value, changed = trial, score, True
        if not changed:
            break
    return best, best_value
