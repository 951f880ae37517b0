"""The one recommender interface of the course, modelled on ``implicit``.

Every top-N model subclasses :class:`Recommender` and implements two methods:

* ``fit(user_items, *, show_progress=True) -> self``: ``user_items`` is a
  CSR (n_users, n_items) matrix, or an ``Interactions`` when the model needs
  the time order of each history (sequence models);
* ``_score(userids, history) -> ndarray (len(userids), n_items)``: raw scores.

The base class then provides, identically for all models:

* ``score_items(userid, user_items)``: the raw scores (no filtering);
* ``recommend(userid, user_items, N=10, filter_already_liked_items=True)``:
  ``(ids, scores)``, 1-D for one user, 2-D for an array of users.

As in ``implicit`` 0.7, the rows of a ``user_items`` matrix passed to
``recommend`` correspond to ``userid`` (pass ``user_items[userid]``). An
``Interactions`` over all users is also accepted; its rows are then picked by
``userid``, and sequence models read each user's ordered history from it.

Every subclass's ``fit`` also records ``fitted_on_``, a fingerprint of the
(user, item) pairs it was given, so the evaluator can refuse to score a
target with a model that saw other events than the protocol allows.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys_lab.data.interactions import Interactions, interaction_fingerprint
from recsys_lab.evaluation.metrics import top_k
from recsys_lab.validation import check_positive_int, check_userids

__all__ = ["Recommender", "FactorRecommender", "History"]


@dataclass(frozen=True)
class History:
    """What a model may condition on when scoring ``userids``.

    ``user_items`` rows align with the user ids; ``sequences`` (time-ordered
    item arrays, also aligned) is None when only a CSR matrix was given.
    """

    user_items: sp.csr_matrix
    sequences: list[np.ndarray] | None

    def require_sequences(self, model_name: str) -> list[np.ndarray]:
        if self.sequences is None:
            raise TypeError(
                f"{model_name} reads each user's history in time order: pass an Interactions "
                f"(for example split.history('test')), not a bare csr_matrix."
            )
        return self.sequences


class Recommender:
    """Base class of every top-N model. Subclasses set ``n_items`` (and
    ``n_users``) in ``fit`` and implement ``fit`` and ``_score``."""

    n_users: int | None = None
    n_items: int | None = None
    needs_order: bool = False  # True for sequence models: pass an Interactions, not a bare CSR
    fitted_on_: str | None = None  # fingerprint of the (user, item) pairs of the last fit

    def __init_subclass__(cls, **kwargs):
        """Make every subclass's ``fit`` remember what it was fitted on (``fitted_on_``)."""
        super().__init_subclass__(**kwargs)
        if "fit" in cls.__dict__:
            cls.fit = _remembering_training_data(cls.__dict__["fit"])

    def fit(self, user_items, *, show_progress: bool = True):  # pragma: no cover - interface
        raise NotImplementedError

    def _score(self, userids: np.ndarray, history: History) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------ public API
    def score_items(self, userid, user_items) -> np.ndarray:
        """Raw scores of every item, shape (n_items,) for one user or
        (len(userid), n_items) for an array; nothing is filtered."""
        ids, scalar = self._check_userids(userid)
        scores = self._score(ids, self._history(ids, user_items))
        if scores.shape != (len(ids), self.n_items):
            raise RuntimeError(f"{type(self).__name__}._score returned shape {scores.shape}, expected {(len(ids), self.n_items)}.")
        return scores[0] if scalar else scores

    def recommend(self, userid, user_items, N: int = 10, filter_already_liked_items: bool = True):
        """Top-``N`` item columns and their scores, best first.

        Parameters
        ----------
        userid : int or array of int
            Row index (or indices) of the user(s).
        user_items : csr_matrix of shape (len(userid), n_items), or Interactions
            The users' histories; items in them are filtered out when
            ``filter_already_liked_items`` is True.
        N : int
            How many items to return (at most ``n_items``).

        Returns
        -------
        ids, scores : ndarray of shape (N,) or (len(userid), N)
            A filtered item is never returned. When a user has fewer than
            ``N`` items left after filtering, one user gets a shorter row
            (every item left); in a batch, the row is padded at its end with
            id ``-1`` and score ``-inf``.

        Examples
        --------
        >>> ids, scores = model.recommend(0, train.user_items[0], N=10)
        """
        ids, scalar = self._check_userids(userid)
        N = check_positive_int(N, "N")
        if N > self.n_items:
            raise ValueError(f"N={N} is larger than the {self.n_items} items.")
        history = self._history(ids, user_items)
        scores = self._score(ids, history).astype(np.float64, copy=True)
        filtered = np.zeros(scores.shape, dtype=bool)                    # (n_users, n_items)
        if filter_already_liked_items:
            filtered[history.user_items.nonzero()] = True
            scores[filtered] = -np.inf
        best = top_k(scores, N)                                          # (n_users, N), filtered items last
        best_scores = np.take_along_axis(scores, best, axis=1)
        padding = np.take_along_axis(filtered, best, axis=1)
        order = np.argsort(padding, axis=1, kind="stable")               # kept items first, in rank order
        best, best_scores, padding = (np.take_along_axis(a, order, axis=1) for a in (best, best_scores, padding))
        if scalar:
            return best[0][~padding[0]], best_scores[0][~padding[0]]
        best[padding], best_scores[padding] = -1, -np.inf
        return best, best_scores

    # ------------------------------------------------------------ helpers
    def _check_fitted(self):
        if self.n_items is None:
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit(user_items) first.")

    def _check_userids(self, userid):
        self._check_fitted()
        return check_userids(userid, self.n_users)

    def _history(self, ids: np.ndarray, user_items) -> History:
        if isinstance(user_items, Interactions):
            if user_items.n_items != self.n_items:
                raise ValueError(f"the Interactions has {user_items.n_items} items; the model was fitted on {self.n_items}.")
            sequences = user_items.sequences()
            return History(user_items.user_items[ids], [sequences[u] for u in ids])
        if not sp.issparse(user_items):
            raise TypeError(f"user_items must be a csr_matrix or an Interactions, got {type(user_items).__name__}.")
        user_items = sp.csr_matrix(user_items)
        if user_items.shape != (len(ids), self.n_items):
            raise ValueError(
                f"user_items has shape {user_items.shape}; expected ({len(ids)}, {self.n_items}): one row per "
                f"userid, as in implicit (pass user_items[userid])."
            )
        return History(user_items, None)

    def get_params(self) -> dict:
        """Constructor arguments, scikit-learn style (for tables and cloning)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        def show(value):   # an array parameter (external item vectors) by its shape, not its values
            return f"<array {value.shape}>" if isinstance(value, np.ndarray) else repr(value)
        params = ", ".join(f"{k}={show(v)}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


class FactorRecommender(Recommender):
    """A model whose score is ``user_factors @ item_factors.T``.

    Subclasses fill ``user_factors`` (n_users, factors) and ``item_factors``
    (n_items, factors) in ``fit``; both go straight into ``faiss``.
    """

    user_factors: np.ndarray | None = None
    item_factors: np.ndarray | None = None

    @property
    def n_users(self):
        return None if self.user_factors is None else len(self.user_factors)

    @property
    def n_items(self):
        return None if self.item_factors is None else len(self.item_factors)

    def _score(self, userids, history):
        return self.user_factors[userids] @ self.item_factors.T

    def similar_items(self, itemid, N: int = 10):
        """The ``N`` items with the highest cosine similarity to ``itemid``
        (itself included, first), as ``(ids, similarities)``."""
        self._check_fitted()
        ids, scalar = check_userids(itemid, self.n_items, name="itemid")
        N = check_positive_int(N, "N")
        if N > self.n_items:
            raise ValueError(f"N={N} is larger than the {self.n_items} items.")
        unit = self.item_factors / np.maximum(np.linalg.norm(self.item_factors, axis=1, keepdims=True), 1e-12)
        sims = unit[ids] @ unit.T
        best = top_k(sims, N)
        best_sims = np.take_along_axis(sims, best, axis=1)
        return (best[0], best_sims[0]) if scalar else (best, best_sims)


def _remembering_training_data(fit):
    """Wrap a ``fit`` method so that the fitted model stores the fingerprint of its training pairs."""
    @functools.wraps(fit)
    def fit_and_remember(self, user_items, *args, **kwargs):
        fitted = fit(self, user_items, *args, **kwargs)
        # data that lives elsewhere (a Spark DataFrame on a cluster) leaves no fingerprint
        known = sp.issparse(user_items) or isinstance(user_items, Interactions)
        self.fitted_on_ = interaction_fingerprint(user_items) if known else None
        return fitted
    return fit_and_remember

