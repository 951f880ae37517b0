"""Multi-interest users, PinnerSage-style: several medoids instead of one vector.

One user vector has to sit somewhere between everything the user likes; a
user who watches both horror films and musicals gets a vector pointing at
neither. PinnerSage (Pal et al., 2020) keeps several: it clusters the items
of a user's history (Ward's hierarchical clustering on the item
embeddings), represents each cluster by its **medoid** (the member item
closest to the others, always a real item, unlike a centroid), ranks the
clusters by a recency-weighted importance, and retrieves nearest neighbours
for each of the top medoids.

:class:`MultiInterest` does this for any item vectors and plugs into the
shared protocol: an item's score is its best cosine similarity to any of the
user's interests, :math:`s(u, i) = \\max_m \\cos(y_{m}, y_i)`, which is also
exactly the order in which :meth:`MultiInterest.retrieve` merges the per-
medoid faiss results.

References
----------
Pal, Eksombatchai, Zhou, Zhao, Rosenberg & Leskovec (2020). PinnerSage:
Multi-Modal User Embedding Framework for Recommendations at Pinterest. KDD.
Ward, J. H. (1963). Hierarchical grouping to optimize an objective function. JASA.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from recsys_lab.models.base import Recommender
from recsys_lab.validation import check_nonnegative_float, check_positive_int

__all__ = ["Interests", "user_interests", "MultiInterest", "intra_list_diversity"]


def _unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class Interests:
    """A user's interests, most important first.

    Attributes
    ----------
    vectors : ndarray of shape (n_interests, d)
        Unit-length representative of each interest.
    medoids : ndarray of shape (n_interests,)
        Item column of each medoid (-1 when ``representative="mean"``).
    importance : ndarray of shape (n_interests,)
        Recency-weighted size of each cluster.
    """

    vectors: np.ndarray
    medoids: np.ndarray
    importance: np.ndarray


def user_interests(item_vectors, history, *, max_clusters: int = 8, n_interests: int = 3, decay: float = 0.99,
                   representative: str = "medoid") -> Interests:
    """Cluster one user's history and keep the ``n_interests`` most important clusters.

    Parameters
    ----------
    item_vectors : ndarray of shape (n_items, d)
    history : int array
        The user's item columns, oldest first (``Interactions.sequences()``).
    max_clusters : int
        Ward clusters cut from the dendrogram (fewer for short histories).
    n_interests : int
        How many clusters to keep.
    decay : float in (0, 1]
        The ``t``-th most recent item weighs ``decay ** t`` in a cluster's importance.
    representative : {"medoid", "mean"}
        Medoid (a real item, PinnerSage) or the mean of the members.

    Examples
    --------
    >>> user_interests(als.item_factors, split.train.sequences()[0]).medoids
    """
    if representative not in ("medoid", "mean"):
        raise ValueError(f"representative={representative!r} must be 'medoid' or 'mean'.")
    if not 0 < decay <= 1:
        raise ValueError(f"decay={decay} must lie in (0, 1].")
    max_clusters = check_positive_int(max_clusters, "max_clusters")
    n_interests = check_positive_int(n_interests, "n_interests")
    history = np.asarray(history, dtype=np.int64)
    if history.size == 0:
        raise ValueError("the history is empty: a user needs at least one item to have interests.")
    unit = _unit(np.asarray(item_vectors, dtype=np.float64)[history])       # (n_hist, d)
    weights = decay ** np.arange(len(history))[::-1]                          # newest item weighs 1
    if len(history) >= 2 and max_clusters > 1:
        labels = fcluster(linkage(unit, method="ward"), t=min(max_clusters, len(history)), criterion="maxclust")
    else:
        labels = np.ones(len(history), dtype=int)
    clusters = np.unique(labels)
    importance = np.array([weights[labels == c].sum() for c in clusters])
    keep = clusters[np.argsort(-importance, kind="stable")[:n_interests]]
    vectors, medoids = [], []
    for c in keep:
        members = unit[labels == c]                                           # (m, d)
        if representative == "mean":
            vectors.append(_unit(members.mean(axis=0)))
            medoids.append(-1)
        else:
            distances = ((members[:, None, :] - members[None, :, :]) ** 2).sum(-1).sum(1)  # (m,)
            best = int(np.argmin(distances))
            vectors.append(members[best])
            medoids.append(int(history[labels == c][best]))
    order_importance = np.array([weights[labels == c].sum() for c in keep])
    return Interests(np.array(vectors), np.array(medoids, dtype=np.int64), order_importance)


class MultiInterest(Recommender):
    """Recommend from several interest vectors per user, built from fixed item vectors.

    Parameters
    ----------
    item_vectors : ndarray of shape (n_items, d)
        Any item embeddings (ALS, item2vec, text...). They are not trained here.
    max_clusters, n_interests, decay, representative
        As in :func:`user_interests`. ``n_interests=1, representative="mean"``
        is the single-vector baseline: the mean of the history.

    Examples
    --------
    >>> model = MultiInterest(als.item_factors, n_interests=3).fit(split.train)
    >>> evaluate(model, split)                    # needs time order: pass Interactions

    References
    ----------
    Pal et al. (2020). PinnerSage. KDD.
    """

    def __init__(self, item_vectors, *, max_clusters: int = 8, n_interests: int = 3, decay: float = 0.99,
                 representative: str = "medoid"):
        self.item_vectors = item_vectors
        self.max_clusters = max_clusters
        self.n_interests = n_interests
        self.decay = decay
        self.representative = representative

    def fit(self, user_items, *, show_progress: bool = True) -> "MultiInterest":
        """Nothing is learned; checks the settings and records the catalogue size."""
        vectors = np.asarray(self.item_vectors, dtype=np.float64)
        if vectors.ndim != 2 or not np.isfinite(vectors).all():
            raise ValueError(f"item_vectors must be a finite 2-D array, got shape {vectors.shape}.")
        if user_items.shape[1] != len(vectors):
            raise ValueError(f"user_items has {user_items.shape[1]} items but item_vectors {len(vectors)} rows.")
        check_positive_int(self.max_clusters, "max_clusters")
        check_positive_int(self.n_interests, "n_interests")
        check_nonnegative_float(self.decay, "decay", strictly_positive=True)
        self._unit_items = _unit(vectors)
        self.n_users, self.n_items = user_items.shape
        return self

    def interests(self, history) -> Interests:
        """The interests of one time-ordered history."""
        return user_interests(self.item_vectors, history, max_clusters=self.max_clusters,
                              n_interests=self.n_interests, decay=self.decay, representative=self.representative)

    def _score(self, userids, history):
        sequences = history.require_sequences("MultiInterest")
        scores = np.zeros((len(userids), self.n_items))
        for row, items in enumerate(sequences):
            if len(items):
                scores[row] = (self.interests(items).vectors @ self._unit_items.T).max(axis=0)  # (n_items,)
        return scores

    def retrieve(self, index, sequences, N: int = 10, *, exclude=None) -> np.ndarray:
        """Top ``N`` items per user: one faiss search per interest, merged by similarity.

        Parameters
        ----------
        index : VectorIndex
            ``recsys_lab.retrieval.index.build_index(item_vectors, metric="cosine")``.
        sequences : list of int arrays
            Time-ordered histories, one per user.
        exclude : csr_matrix of shape (len(sequences), n_items), optional
            Items never to return (the users' histories).

        Returns
        -------
        ndarray of shape (len(sequences), N), -1 where fewer items were found.
        """
        self._check_fitted()
        N = check_positive_int(N, "N")
        out = np.full((len(sequences), N), -1, dtype=np.int64)
        for row, items in enumerate(sequences):
            if not len(items):
                continue
            queries = self.interests(items).vectors.astype(np.float32)                   # (m, d)
            seen = None if exclude is None else exclude[[row] * len(queries)]
            ids, sims = index.search(queries, N, exclude=seen)                          # (m, N) each
            best = {}
            for i, s in zip(ids.ravel(), sims.ravel()):
                if i >= 0 and s > best.get(i, -np.inf):
                    best[i] = s
            ranked = sorted(best, key=lambda i: (-best[i], i))[:N]
            out[row, : len(ranked)] = ranked
        return out


def intra_list_diversity(lists, item_vectors) -> np.ndarray:
    """``1 -`` mean pairwise cosine similarity inside each list (Ziegler et al., 2005).

    Parameters
    ----------
    lists : int array of shape (n_users, N); -1 entries are ignored
    item_vectors : ndarray of shape (n_items, d)

    Returns
    -------
    ndarray of shape (n_users,): 0 means identical items, higher is more diverse.
    """
    unit = _unit(np.asarray(item_vectors, dtype=np.float64))
    out = np.empty(len(lists))
    for row, items in enumerate(np.asarray(lists)):
        items = items[items >= 0]
        if len(items) < 2:
            raise ValueError(f"list {row} has {len(items)} items; diversity needs at least 2.")
        sims = unit[items] @ unit[items].T
        out[row] = 1 - (sims.sum() - np.trace(sims)) / (len(items) * (len(items) - 1))
    return out
