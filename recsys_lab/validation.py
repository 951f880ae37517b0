"""Input checks shared by every public function of ``recsys_lab``.

Each check either returns the value in canonical form or raises a
``ValueError`` (``TypeError`` for the wrong kind of object) that names the
offending value and says how to fix it, in the spirit of scikit-learn's
``check_array`` and ``check_random_state``.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp

__all__ = [
    "check_random_state",
    "check_user_items",
    "check_positive_int",
    "check_nonnegative_float",
    "check_factors_finite",
    "check_userids",
    "check_vectors",
    "check_item_vectors",
]


def check_random_state(random_state) -> np.random.Generator:
    """Turn ``None``, an int or a ``Generator`` into a ``numpy.random.Generator``.

    ``None`` gives fresh OS entropy (not reproducible); an int seeds a new
    generator; a ``Generator`` is returned as is, so callers can share one
    stream across several steps.

    >>> check_random_state(0).integers(10)
    np.int64(8)
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state={random_state} must be a non-negative integer.")
        return np.random.default_rng(int(random_state))
    raise TypeError(
        f"random_state={random_state!r} is not None, an int or a numpy.random.Generator."
    )


def seed_from(random_state) -> int:
    """Draw one integer seed from ``random_state`` (for libraries that want an int)."""
    return int(check_random_state(random_state).integers(2**31 - 1))


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r} must be an integer.")
    if value < minimum:
        raise ValueError(f"{name}={value} must be at least {minimum}.")
    return int(value)


def check_nonnegative_float(value, name: str, *, strictly_positive: bool = False) -> float:
    """Return ``value`` as a float, or raise if it is negative, NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a real number.")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (strictly_positive and value == 0):
        bound = "> 0" if strictly_positive else ">= 0"
        raise ValueError(f"{name}={value} must be a finite number {bound}.")
    return value


def check_user_items(user_items, *, allow_negative: bool = False) -> sp.csr_matrix:
    """Return ``user_items`` as a float32 CSR matrix of shape (n_users, n_items).

    Other sparse formats are converted with a warning that names what was
    passed, as ``implicit`` does; dense arrays are refused because a dense
    user x item matrix is almost always a mistake at recommender scale.
    An ``Interactions`` object is accepted and its ``user_items`` used.
    Explicitly stored zeros are not interactions: they are dropped (from a
    copy) with a warning, so that no model counts them.
    """
    from recsys_lab.data.interactions import Interactions

    if isinstance(user_items, Interactions):
        user_items = user_items.user_items
    if not sp.issparse(user_items):
        raise TypeError(
            f"user_items must be a scipy.sparse.csr_matrix of shape (n_users, n_items), "
            f"got {type(user_items).__name__}. Build one with scipy.sparse.csr_matrix(...) "
            f"or use Interactions.user_items."
        )
    if user_items.format != "csr":
        warnings.warn(
            f"user_items is a {user_items.format}_matrix; converting to csr_matrix. "
            f"Pass a csr_matrix to avoid the copy.",
            stacklevel=3,
        )
    user_items = sp.csr_matrix(user_items, dtype=np.float32)
    if user_items.shape[0] == 0 or user_items.shape[1] == 0 or user_items.nnz == 0:
        raise ValueError(
            f"user_items of shape {user_items.shape} with {user_items.nnz} stored entries "
            f"is empty: a recommender needs at least one interaction."
        )
    if not np.all(np.isfinite(user_items.data)):
        raise ValueError("user_items contains NaN or infinite values; drop or fill them first.")
    n_zeros = int(np.count_nonzero(user_items.data == 0))
    if n_zeros:
        if n_zeros == user_items.nnz:
            raise ValueError(
                f"user_items of shape {user_items.shape} holds only explicit zeros ({n_zeros} stored entries): "
                f"without them it is empty, and a recommender needs at least one interaction."
            )
        warnings.warn(
            f"user_items stores {n_zeros} explicit zeros; they are not interactions and are dropped. "
            f"Call user_items.eliminate_zeros() first to avoid this warning.",
            stacklevel=3,
        )
        user_items = user_items.copy()  # never change the caller's matrix
        user_items.eliminate_zeros()
    if not allow_negative and user_items.data.min() < 0:
        raise ValueError(
            f"user_items contains negative values (min {user_items.data.min():g}); "
            f"confidences and counts must be >= 0."
        )
    return user_items


def check_userids(userids, n_users: int, *, name: str = "userid") -> tuple[np.ndarray, bool]:
    """Return ``(ids as an int64 array, was_scalar)``; raise on unknown indices.

    ``name="itemid"`` checks item columns the same way.
    """
    scalar = np.ndim(userids) == 0
    ids = np.atleast_1d(np.asarray(userids))
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer index, got dtype {ids.dtype}.")
    ids = ids.astype(np.int64)
    bad = ids[(ids < 0) | (ids >= n_users)]
    if bad.size:
        kind = "users" if name == "userid" else "items"
        raise ValueError(
            f"{name} {bad[0]} is outside the {n_users} {kind} the model was fitted on "
            f"(valid indices are 0..{n_users - 1}); map raw ids with Interactions.{kind[:-1]}_index()."
        )
    return ids, bool(scalar)


def check_factors_finite(model_name: str, **factors) -> None:
    """Raise if any learned factor matrix holds NaN or inf (a diverged fit)."""
    for name, value in factors.items():
        if value is not None and not np.all(np.isfinite(value)):
            raise FloatingPointError(
                f"{model_name} produced non-finite {name}: training diverged. "
                f"Lower the learning rate or raise the regularization."
            )


def check_vectors(vectors, name: str, dim: int | None = None) -> np.ndarray:
    """A non-empty, finite 2-D array of ``dim``-dim vectors as contiguous float32 (what faiss needs)."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, dim); got shape {vectors.shape}.")
    if vectors.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {vectors.shape}): there is nothing to index or search.")
    if dim is not None and vectors.shape[1] != dim:
        raise ValueError(f"{name} have {vectors.shape[1]} dims; the index holds {dim}-dim vectors.")
    with np.errstate(over="ignore"):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not np.all(np.isfinite(vectors)):           # after the cast: 1e300 is finite in float64, inf in float32
        bad = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
        raise ValueError(f"{name} contains NaN or infinite values, or values too large for float32 "
                         f"(first in row {bad}).")
    return vectors


def check_item_vectors(item_vectors, n_items: int) -> np.ndarray:
    """External item vectors as float32 (n_items, dim), one row per item column of ``user_items``."""
    vectors = np.asarray(item_vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != n_items:
        raise ValueError(f"item_vectors has shape {vectors.shape}; user_items has {n_items} item columns, "
                         f"so it must be ({n_items}, dim).")
    return vectors
