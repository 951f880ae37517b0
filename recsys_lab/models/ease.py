"""EASE: the linear autoencoder with a closed-form solution.

An autoencoder reconstructs each user's row ``x_u`` of the interaction
matrix from the row itself. Make it linear, ``x_u B``, forbid the trivial
answer (an item predicting itself, ``diag(B) = 0``) and add an L2 penalty:

.. math::

    \\min_B \\; \\|X - X B\\|_F^2 + \\lambda \\|B\\|_F^2
    \\quad \\text{s.t.} \\quad \\operatorname{diag}(B) = 0 .

With :math:`P = (X^\\top X + \\lambda I)^{-1}` the Lagrangian gives
:math:`B_{ij} = -P_{ij} / P_{jj}` for :math:`i \\ne j` (Steck, 2019): one
(n_items x n_items) inverse, no iterations, no learning rate. The score of
a user is ``x_u B``, read straight from the user's history, so a new user
is scored without refitting anything.

References
----------
Steck, H. (2019). Embarrassingly Shallow Autoencoders for Sparse Data. WWW.
"""

from __future__ import annotations

import numpy as np

from recsys_lab.models.base import Recommender
from recsys_lab.validation import check_factors_finite, check_nonnegative_float, check_user_items

__all__ = ["EASE"]

MAX_ITEMS = 30_000  # the dense item x item inverse needs n_items^2 floats


class EASE(Recommender):
    """Embarrassingly Shallow AutoEncoder (Steck, WWW 2019).

    Parameters
    ----------
    regularization : float
        The L2 weight lambda (> 0). Larger values shrink the item-item
        weights towards zero; tune it on the validation targets.

    Attributes
    ----------
    item_weights : ndarray of shape (n_items, n_items), float32
        ``B``: column ``j`` says how much each item votes for item ``j``;
        its diagonal is zero.

    Examples
    --------
    >>> model = EASE(regularization=300.0).fit(split.train.user_items)
    >>> ids, scores = model.recommend(0, split.train.user_items[0], N=10)

    References
    ----------
    Steck, H. (2019). Embarrassingly Shallow Autoencoders for Sparse Data. WWW.
    """

    def __init__(self, regularization: float = 300.0):
        self.regularization = regularization

    def fit(self, user_items, *, show_progress: bool = True) -> "EASE":
        """Solve for ``B`` from ``user_items`` (CSR (n_users, n_items), binarised)."""
        user_items = check_user_items(user_items)
        regularization = check_nonnegative_float(self.regularization, "regularization", strictly_positive=True)
        n_users, n_items = user_items.shape
        if n_items > MAX_ITEMS:
            raise ValueError(f"EASE inverts an n_items x n_items matrix; {n_items} items exceed MAX_ITEMS={MAX_ITEMS}.")
        binary = (user_items > 0).astype(np.float64)
        gram = (binary.T @ binary).toarray()                   # (n_items, n_items): co-occurrence counts
        gram[np.diag_indices(n_items)] += regularization
        inverse = np.linalg.inv(gram)                          # P
        weights = -inverse / np.diag(inverse)                  # B_ij = -P_ij / P_jj (divides column j)
        weights[np.diag_indices(n_items)] = 0.0
        check_factors_finite("EASE", item_weights=weights)
        self.item_weights = weights.astype(np.float32)
        self.n_users, self.n_items = n_users, n_items
        return self

    def _score(self, userids, history):
        rows = (history.user_items > 0).astype(np.float32)     # (n, n_items)
        return np.asarray(rows @ self.item_weights)            # (n, n_items)
