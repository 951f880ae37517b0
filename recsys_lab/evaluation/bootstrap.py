"""Bootstrap confidence intervals over users.

A mean over 943 users hides how much it would move with other users; the
percentile bootstrap (Efron & Tibshirani, 1993) resamples users with
replacement and reads the interval off the resampled means.
"""

from __future__ import annotations

import numpy as np

from recsys_lab.validation import check_positive_int, check_random_state

__all__ = ["bootstrap_ci", "paired_bootstrap_ci", "verdict"]


def bootstrap_ci(values, *, n_resamples: int = 1000, confidence: float = 0.95, random_state=0) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` (one value per user).

    >>> bootstrap_ci(np.array([0, 1, 1, 0, 1.0]), random_state=0)
    (0.2, 1.0)
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {values.shape}.")
    if not np.isfinite(values).all():
        raise ValueError("values contains NaN or infinite entries; drop them before bootstrapping.")
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must lie strictly between 0 and 1.")
    rng = check_random_state(random_state)
    # resample in blocks so 100k users x 1000 resamples never sits in memory at once
    means = np.empty(n_resamples)
    block = max(1, 5_000_000 // values.size)
    for start in range(0, n_resamples, block):
        stop = min(n_resamples, start + block)
        picks = rng.integers(values.size, size=(stop - start, values.size))
        means[start:stop] = values[picks].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def paired_bootstrap_ci(a, b, **kwargs) -> tuple[float, float]:
    """Interval of mean(a - b) for two models scored on the same users.

    If it contains 0, the data cannot tell the two models apart.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must score the same users; got shapes {a.shape} and {b.shape}.")
    return bootstrap_ci(a - b, **kwargs)


def verdict(name_a: str, name_b: str, interval) -> str:
    """The course's reading of a paired interval of mean(a - b), in words.

    "A beats B" only when the whole interval lies above zero (and the other
    way round below zero); an interval that contains zero is "not told apart".

    >>> verdict("iALS", "popularity", (0.012, 0.041))
    'iALS beats popularity'
    >>> verdict("iALS", "EASE", (-0.01, 0.02))
    'not told apart'
    """
    try:
        low, high = (float(bound) for bound in interval)
    except (TypeError, ValueError):
        raise ValueError(f"interval must be a (low, high) pair of numbers such as paired_bootstrap_ci returns; "
                         f"got {interval!r}.") from None
    if not (np.isfinite(low) and np.isfinite(high)) or low > high:
        raise ValueError(f"interval must be finite with low <= high; got ({low}, {high}).")
    if low > 0:
        return f"{name_a} beats {name_b}"
    if high < 0:
        return f"{name_b} beats {name_a}"
    return "not told apart"
