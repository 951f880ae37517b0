"""Recommenders over fixed item vectors: content-based scoring and dual embeddings.

Both take the item vectors as given (text embeddings from chapter 05, any
external embedding, or item2vec's vectors) and learn nothing per item, so
they can score an item that no user has touched yet: the cold-start case
where collaborative models are blind.

* :class:`ContentRecommender` scores each item by its cosine to the user's
  history: to the (optionally decayed) mean profile, or the maximum over the
  history items (an item-kNN in the embedding space).
* :class:`DualEmbedding` solves each user's vector with one implicit-ALS user
  step against the fixed vectors (``recsys_lab.features.external``).

Only numpy and scipy are imported here.
"""

from __future__ import annotations

import numpy as np

from recsys_lab.features.external import dual_user_factors, history_profiles, unit_rows
from recsys_lab.models.base import FactorRecommender, History, Recommender
from recsys_lab.validation import check_item_vectors, check_nonnegative_float, check_user_items

__all__ = ["ContentRecommender", "DualEmbedding", "profile_scores", "check_pooling"]

POOLINGS = ("mean", "max")


def profile_scores(history: History, unit_vectors: np.ndarray, *, pooling: str = "mean",
                   half_life: float | None = None, model_name: str = "this model") -> np.ndarray:
    """Cosine of every item to each user's history, shape (n_users, n_items).

    ``unit_vectors`` (n_items, dim) must have unit (or zero) rows. With
    ``pooling="mean"`` the score is the cosine to the history profile
    (:func:`~recsys_lab.features.external.history_profiles`; decayed when
    ``half_life`` is set, which needs the time order); with ``"max"`` it is
    the highest cosine to any single history item.
    """
    if pooling == "mean":
        if half_life is None:
            profiles = history_profiles(history.user_items, unit_vectors)
        else:
            profiles = history_profiles(history.require_sequences(model_name), unit_vectors, half_life=half_life)
        return profiles @ unit_vectors.T
    rows = history.user_items
    scores = np.zeros((rows.shape[0], len(unit_vectors)), dtype=np.float32)
    for u in range(rows.shape[0]):
        items = rows.indices[rows.indptr[u]: rows.indptr[u + 1]]
        if items.size:
            scores[u] = (unit_vectors[items] @ unit_vectors.T).max(axis=0)   # (n_items,)
    return scores


def check_pooling(pooling, half_life) -> None:
    """Raise a ``ValueError`` unless ``pooling`` and ``half_life`` form a valid history profile."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r} must be one of {POOLINGS}.")
    if half_life is not None:
        check_nonnegative_float(half_life, "half_life", strictly_positive=True)
        if pooling == "max":
            raise ValueError(f"half_life={half_life} applies to pooling='mean' only; use half_life=None with 'max'.")


class ContentRecommender(Recommender):
    """Recommend the items closest to the user's history in a fixed embedding space.

    The score of item ``j`` for user ``u`` is :math:`\\cos(p_u, v_j)` with
    :math:`p_u` the (decayed) mean of the unit history vectors
    (``pooling="mean"``), or :math:`\\max_t \\cos(v_{i_t}, v_j)`
    (``pooling="max"``). ``fit`` only checks shapes: nothing is learned, so
    items without any interaction are scored like any other.

    Parameters
    ----------
    item_vectors : array-like of shape (n_items, dim)
        For example ``TextEncoder().encode(item_texts(ml.items))``.
    pooling : {"mean", "max"}
    half_life : float, optional
        Recency half-life in events for ``pooling="mean"``; needs the time
        order, so score with an ``Interactions`` (``split.history("test")``).

    Examples
    --------
    >>> model = ContentRecommender(text_vectors).fit(split.train.user_items)
    >>> evaluate(model, split)

    References
    ----------
    Lops, de Gemmis & Semeraro, "Content-based recommender systems: state of
    the art and trends", Recommender Systems Handbook, 2011.
    """

    @property
    def needs_order(self) -> bool:
        """A decayed profile weighs recent items more, so it needs each history's time order."""
        return self.half_life is not None

    def __init__(self, item_vectors, *, pooling: str = "mean", half_life: float | None = None):
        self.item_vectors = item_vectors
        self.pooling = pooling
        self.half_life = half_life

    def fit(self, user_items, *, show_progress: bool = True) -> "ContentRecommender":
        user_items = check_user_items(user_items)
        check_pooling(self.pooling, self.half_life)
        self.item_factors = unit_rows(check_item_vectors(self.item_vectors, user_items.shape[1]))
        self.n_users, self.n_items = user_items.shape
        return self

    def _score(self, userids, history):
        return profile_scores(history, self.item_factors, pooling=self.pooling, half_life=self.half_life,
                              model_name=type(self).__name__)

    similar_items = FactorRecommender.similar_items

class DualEmbedding(Recommender):
    """One implicit-ALS user step against fixed item vectors ("dual embeddings").

    Scoring solves :math:`x_u = (V^\\top C_u V + \\lambda I)^{-1} V^\\top C_u p_u`
    for each user from the history passed in (so a new user is one small
    solve, no retraining) and returns :math:`x_u^\\top v_j`. The item vectors
    are L2-normalised first so all items start on an equal footing.

    Parameters
    ----------
    item_vectors : array-like of shape (n_items, dim)
    regularization : float
        :math:`\\lambda`; tune on the validation split.
    alpha : float
        Confidence scale, :math:`c_{ui} = 1 + \\alpha r_{ui}`.

    Examples
    --------
    >>> model = DualEmbedding(text_vectors, regularization=1.0, alpha=10.0).fit(split.train.user_items)
    >>> ids, scores = model.recommend(0, split.train.user_items[0])

    References
    ----------
    Hu, Koren & Volinsky, "Collaborative filtering for implicit feedback
    datasets", ICDM 2008.
    """

    def __init__(self, item_vectors, *, regularization: float = 1.0, alpha: float = 10.0):
        self.item_vectors = item_vectors
        self.regularization = regularization
        self.alpha = alpha

    def fit(self, user_items, *, show_progress: bool = True) -> "DualEmbedding":
        user_items = check_user_items(user_items)
        check_nonnegative_float(self.regularization, "regularization", strictly_positive=True)
        check_nonnegative_float(self.alpha, "alpha")
        self.item_factors = unit_rows(check_item_vectors(self.item_vectors, user_items.shape[1]))
        self.n_users, self.n_items = user_items.shape
        return self

    def user_vectors(self, user_items) -> np.ndarray:
        """The dual user vectors, shape (n_rows, dim), for a (n_rows, n_items) history."""
        self._check_fitted()
        return dual_user_factors(user_items, self.item_factors, regularization=self.regularization, alpha=self.alpha)

    def _score(self, userids, history):
        if history.user_items.nnz == 0:
            return np.zeros((len(userids), self.n_items), dtype=np.float32)
        return self.user_vectors(history.user_items) @ self.item_factors.T

    similar_items = FactorRecommender.similar_items
