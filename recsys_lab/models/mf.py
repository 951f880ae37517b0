"""Explicit matrix factorization with biases, trained by SGD (Funk 2006; Koren, Bell & Volinsky 2009).

A rating is explained as a global mean, how generous the user is, how well
liked the item is, and how the user's tastes match the item's traits:

.. math::

    \\hat r_{ui} = \\mu + b_u + b_i + p_u^\\top q_i .

Training minimises the squared error on the *observed* ratings plus an L2
penalty, one rating at a time (stochastic gradient descent). With
``e = r_ui - r_hat_ui``:

.. math::

    b_u \\leftarrow b_u + \\eta (e - \\lambda b_u),\\quad
    p_u \\leftarrow p_u + \\eta (e\\, q_i - \\lambda p_u),\\quad
    q_i \\leftarrow q_i + \\eta (e\\, p_u - \\lambda q_i)

(and the same for ``b_i``). Here the updates are applied to a small
mini-batch of ratings at once, vectorised with numpy, which keeps the
textbook update rule while running an epoch of ML-100K in milliseconds.
"""

from __future__ import annotations

import logging

import numpy as np
from tqdm.auto import tqdm

from recsys_lab.data.interactions import Interactions
from recsys_lab.models.base import FactorRecommender
from recsys_lab.validation import (
    check_factors_finite,
    check_nonnegative_float,
    check_positive_int,
    check_random_state,
    check_user_items,
    check_userids,
)

__all__ = ["BiasedMF"]

logger = logging.getLogger("recsys_lab")


def add_rows(target: np.ndarray, rows: np.ndarray, updates: np.ndarray) -> None:
    """``target[rows] += updates`` in place, where a row listed twice gets both updates.

    The same as ``np.add.at(target, rows, updates)`` on a 2-D array, but done on
    the flat view with one index per element: numpy's fast 1-D path, about five
    times faster for the (batch, k) updates of SGD.
    """
    if not target.flags.c_contiguous:   # reshape would copy, and the updates would be lost
        raise ValueError("add_rows needs a C-contiguous target; pass np.ascontiguousarray(target).")
    width = target.shape[1]
    flat_index = (rows[:, None] * width + np.arange(width)).ravel()
    np.add.at(target.reshape(-1), flat_index, updates.ravel())


class BiasedMF(FactorRecommender):
    """Biased matrix factorization for rating prediction (the "SVD" of the Netflix prize).

    Parameters
    ----------
    factors : int
        Embedding dimension k of ``p_u`` and ``q_i``.
    lr : float
        SGD step size eta.
    regularization : float
        L2 weight lambda on the vectors.
    bias_regularization : float
        L2 weight on the biases ``b_u``, ``b_i``.
    epochs : int
        Passes over the training ratings, reshuffled each time.
    batch_size : int
        Ratings updated together; 1 is classic per-rating SGD.
    init_std : float
        Standard deviation of the normal initial vectors (biases start at 0).
    random_state : None, int or numpy.random.Generator
        Seeds the initial vectors and the shuffles.

    Attributes
    ----------
    global_mean_ : float
    user_bias_, item_bias_ : ndarray of shape (n_users,), (n_items,)
    user_factors, item_factors : ndarray of shape (n_users, k), (n_items, k)
    train_rmse_history_ : list of float
        Training RMSE measured during each epoch.
    valid_rmse_history_ : list of float
        RMSE on ``eval_ratings`` after each epoch, when given.

    References
    ----------
    Koren, Bell & Volinsky (2009). Matrix factorization techniques for
    recommender systems. IEEE Computer 42(8). Funk (2006), "Netflix Update:
    Try This at Home" (the SGD recipe).

    Examples
    --------
    >>> model = BiasedMF(100, epochs=40, random_state=0).fit(train_ratings)   # CSR of ratings
    >>> model.predict(test_users, test_items)
    """

    def __init__(self, factors: int = 100, *, lr: float = 0.01, regularization: float = 0.1,
                 bias_regularization: float = 0.01, epochs: int = 40, batch_size: int = 256,
                 init_std: float = 0.1, random_state=None):
        self.factors = factors
        self.lr = lr
        self.regularization = regularization
        self.bias_regularization = bias_regularization
        self.epochs = epochs
        self.batch_size = batch_size
        self.init_std = init_std
        self.random_state = random_state
        self.train_rmse_history_: list[float] = []
        self.valid_rmse_history_: list[float] = []

    def fit(self, ratings, *, eval_ratings=None, show_progress: bool = True) -> "BiasedMF":
        """Fit on the stored entries of ``ratings`` (CSR (n_users, n_items) or ``Interactions``).

        ``eval_ratings`` (same shape, held-out ratings) adds a validation RMSE
        per epoch to ``valid_rmse_history_``: the learning curve. Raises
        ``FloatingPointError`` as soon as an epoch's training RMSE exceeds ten
        times that of the untrained model (or of the rating range): SGD has
        diverged, usually because ``lr`` is too large, even if the factors are
        still finite.
        """
        ratings = check_user_items(ratings.to_csr("rating") if isinstance(ratings, Interactions) else ratings)
        factors = check_positive_int(self.factors, "factors")
        lr = check_nonnegative_float(self.lr, "lr", strictly_positive=True)
        reg = check_nonnegative_float(self.regularization, "regularization")
        bias_reg = check_nonnegative_float(self.bias_regularization, "bias_regularization")
        epochs = check_positive_int(self.epochs, "epochs")
        batch_size = check_positive_int(self.batch_size, "batch_size")
        init_std = check_nonnegative_float(self.init_std, "init_std")
        rng = check_random_state(self.random_state)
        if eval_ratings is not None:
            eval_ratings = check_user_items(eval_ratings)
            if eval_ratings.shape != ratings.shape:
                raise ValueError(f"eval_ratings has shape {eval_ratings.shape}; ratings {ratings.shape}.")

        n_users, n_items = ratings.shape
        users = np.repeat(np.arange(n_users), np.diff(ratings.indptr))       # (n_ratings,)
        items, values = ratings.indices.astype(np.int64), ratings.data.astype(np.float64)
        self.global_mean_ = float(values.mean())
        self.user_bias_, self.item_bias_ = np.zeros(n_users), np.zeros(n_items)
        P = init_std * rng.standard_normal((n_users, factors))                 # (n_users, k)
        Q = init_std * rng.standard_normal((n_items, factors))                 # (n_items, k)
        self.user_factors, self.item_factors = P, Q
        self.rating_range_ = (float(values.min()), float(values.max()))
        self.train_rmse_history_, self.valid_rmse_history_ = [], []
        # no healthy epoch errs 10x more than the untrained model or the rating range: beyond that, SGD diverged
        untrained = values - (self.global_mean_ + np.einsum("nk,nk->n", P[users], Q[items]))     # (n_ratings,)
        divergence_limit = 10 * max(float(np.sqrt(np.mean(untrained**2))), float(np.ptp(values)), 1.0)

        bar = tqdm(range(epochs), disable=not show_progress, desc="biased MF (SGD)")
        for epoch in bar:
            squared_error = 0.0
            order = rng.permutation(len(values))
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                u, i, r = users[batch], items[batch], values[batch]
                pu, qi = P[u], Q[i]                                            # (b, k)
                error = r - (self.global_mean_ + self.user_bias_[u] + self.item_bias_[i]
                             + np.einsum("bk,bk->b", pu, qi))                  # (b,)
                squared_error += error @ error
                np.add.at(self.user_bias_, u, lr * (error - bias_reg * self.user_bias_[u]))
                np.add.at(self.item_bias_, i, lr * (error - bias_reg * self.item_bias_[i]))
                add_rows(P, u, lr * (error[:, None] * qi - reg * pu))
                add_rows(Q, i, lr * (error[:, None] * pu - reg * qi))
            self.train_rmse_history_.append(float(np.sqrt(squared_error / len(values))))
            if not self.train_rmse_history_[-1] <= divergence_limit:  # also catches inf and NaN
                raise FloatingPointError(
                    f"{type(self).__name__} diverged in epoch {epoch + 1}: training RMSE "
                    f"{self.train_rmse_history_[-1]:.3g} (ratings {values.min():g} to {values.max():g}). "
                    f"Lower the learning rate (lr={lr:g}) or raise the regularization.")
            if eval_ratings is not None:
                self.valid_rmse_history_.append(self._rmse(eval_ratings))
            bar.set_postfix(train_rmse=f"{self.train_rmse_history_[-1]:.4f}")
            logger.debug("biased MF epoch %d train RMSE %.4f", epoch + 1, self.train_rmse_history_[-1])
        check_factors_finite(type(self).__name__, user_factors=P, item_factors=Q,
                             user_bias=self.user_bias_, item_bias=self.item_bias_)
        return self

    def predict(self, userids, itemids, *, clip: bool = True) -> np.ndarray:
        """Predicted ratings for the pairs ``(userids[j], itemids[j])``, shape (n_pairs,).

        ``clip`` keeps predictions inside the training rating range (as Surprise does).
        """
        self._check_fitted()
        users, _ = check_userids(userids, self.n_users)
        items, _ = check_userids(itemids, self.n_items, name="itemid")
        if users.shape != items.shape:
            raise ValueError(f"userids and itemids must pair up; got {users.shape} and {items.shape}.")
        predicted = (self.global_mean_ + self.user_bias_[users] + self.item_bias_[items]
                     + np.einsum("pk,pk->p", self.user_factors[users], self.item_factors[items]))
        return np.clip(predicted, *self.rating_range_) if clip else predicted

    def _score(self, userids, history):
        return (self.global_mean_ + self.user_bias_[userids, None] + self.item_bias_[None, :]
                + self.user_factors[userids] @ self.item_factors.T)

    def _rmse(self, ratings) -> float:
        users = np.repeat(np.arange(ratings.shape[0]), np.diff(ratings.indptr))
        errors = ratings.data - self.predict(users, ratings.indices)
        return float(np.sqrt(np.mean(errors**2)))
