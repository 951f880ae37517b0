"""Putting user and item vectors to work: filtered neighbours, segments, lookalikes.

Once a model has produced embeddings, teams use them for much more than its
own ranked list:

* :func:`similar` finds nearest neighbours (items or users) by cosine,
  restricted by a business filter (a genre, a release year, unseen items...);
* :func:`choose_k` and :func:`describe_segments` cluster users with K-Means
  and describe each segment by what its members watch and who they are;
  :func:`segment_overlap` measures how far the segments agree with another
  grouping of the same users (demographics, another model's segments),
  against the agreement that shuffled labels reach by chance;
* :func:`lookalikes` and :func:`lookalike_recovery` expand a seed audience to
  its nearest users and measure, on held-out members of the audience, how
  well the expansion works.

scikit-learn is imported here; ``import recsys_lab`` does not import this module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, silhouette_score

from recsys_lab.evaluation.bootstrap import bootstrap_ci
from recsys_lab.evaluation.metrics import top_k
from recsys_lab.validation import check_positive_int, check_random_state, seed_from

__all__ = ["unit_rows", "similar", "choose_k", "describe_segments", "segment_overlap", "lookalikes",
           "lookalike_recovery"]


def unit_rows(vectors) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), so dot products are cosines."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be 2-D (n, d), got shape {vectors.shape}.")
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def similar(vectors, row: int, N: int = 10, *, allowed=None) -> tuple[np.ndarray, np.ndarray]:
    """The ``N`` rows most cosine-similar to ``row``, among the ``allowed`` ones.

    Parameters
    ----------
    vectors : array of shape (n, d)
        Item or user vectors.
    row : int
        The query row; it is never returned.
    N : int
        How many neighbours.
    allowed : bool array of shape (n,), optional
        The business filter: only rows where it is True may be returned
        (``items.genres.str.contains("Horror")``, ``items.year >= 1990``...).

    Returns
    -------
    ids, similarities : ndarray of shape (<= N,)
        Fewer than ``N`` when the filter leaves fewer candidates.

    Examples
    --------
    >>> ids, sims = similar(als.item_factors, 49, N=5, allowed=(ml.items.year < 1980).to_numpy())
    """
    unit = unit_rows(vectors)
    n = len(unit)
    if not isinstance(row, (int, np.integer)) or not 0 <= row < n:
        raise ValueError(f"row={row!r} must be an integer in 0..{n - 1}.")
    N = check_positive_int(N, "N")
    allowed = np.ones(n, bool) if allowed is None else np.asarray(allowed, dtype=bool)
    if allowed.shape != (n,):
        raise ValueError(f"allowed has shape {allowed.shape}; expected ({n},), one flag per row.")
    sims = unit @ unit[row]                                      # (n,)
    candidates = np.flatnonzero(allowed & (np.arange(n) != row))
    best = candidates[top_k(sims[candidates][None, :], min(N, len(candidates)))[0]] if len(candidates) else candidates
    return best, sims[best]


def choose_k(vectors, ks=(2, 3, 4, 5, 6, 8, 10, 12), *, random_state=None, sample_size: int = 2000) -> pd.DataFrame:
    """Fit K-Means for each ``k`` on unit-length rows; report inertia and silhouette.

    The elbow of the inertia curve and the peak of the silhouette
    (Rousseeuw, 1987) are the two usual guides; neither is a proof, and the
    segments must also make sense to the people who use them.

    Returns
    -------
    DataFrame indexed by ``k`` with columns ``inertia`` and ``silhouette``.
    """
    unit = unit_rows(vectors)
    rows = []
    for k in ks:
        k = check_positive_int(k, "k", minimum=2)
        if k >= len(unit):
            raise ValueError(f"k={k} must be smaller than the {len(unit)} rows.")
        model = KMeans(k, n_init=4, random_state=seed_from(random_state) if random_state is not None else None).fit(unit)
        silhouette = silhouette_score(unit, model.labels_, sample_size=min(sample_size, len(unit)),
                                      random_state=0 if random_state is None else seed_from(random_state))
        rows.append({"k": k, "inertia": model.inertia_, "silhouette": silhouette})
    return pd.DataFrame(rows).set_index("k")


def describe_segments(labels, users: pd.DataFrame, user_items, items: pd.DataFrame, *, top: int = 3) -> pd.DataFrame:
    """One row per segment: size, who the members are, what they over-watch.

    Parameters
    ----------
    labels : int array of shape (n_users,)
        Segment of each user (row ``u`` of ``users`` and of ``user_items``).
    users : DataFrame with columns ``age``, ``gender``, ``occupation``
    user_items : csr_matrix of shape (n_users, n_items)
    items : DataFrame with a ``genres`` column of '|'-joined genres (row ``j`` = column ``j``)
    top : int
        How many genres and occupations to list per segment.

    Returns
    -------
    DataFrame indexed by segment: ``users``, ``mean age``, ``share female``,
    ``top occupations`` (with their lift over the population) and ``top
    genres`` (genre share of the segment's interactions divided by the
    share over everyone: a lift above 1 means over-represented).
    """
    labels = np.asarray(labels)
    user_items = sp.csr_matrix(user_items)
    if labels.shape != (len(users),) or user_items.shape[0] != len(users) or user_items.shape[1] != len(items):
        raise ValueError(f"labels {labels.shape}, users {len(users)} rows, user_items {user_items.shape} and "
                         f"items {len(items)} rows do not line up.")
    genre_matrix = items["genres"].str.get_dummies(sep="|")          # (n_items, n_genres)
    watched = user_items @ genre_matrix.to_numpy(np.float64)        # (n_users, n_genres) genre counts
    overall_genre = watched.sum(axis=0) / watched.sum()
    overall_occupation = users["occupation"].value_counts(normalize=True)
    rows = []
    for segment in np.unique(labels):
        members = labels == segment
        genre_lift = pd.Series(watched[members].sum(axis=0) / max(watched[members].sum(), 1e-12) / overall_genre,
                               index=genre_matrix.columns).nlargest(top)
        occupation_lift = (users.loc[members, "occupation"].value_counts(normalize=True) / overall_occupation).nlargest(top)
        rows.append({
            "segment": segment, "users": int(members.sum()), "mean age": users.loc[members, "age"].mean(),
            "share female": (users.loc[members, "gender"] == "F").mean(),
            "top genres": ", ".join(f"{g} ×{v:.1f}" for g, v in genre_lift.items()),
            "top occupations": ", ".join(f"{o} ×{v:.1f}" for o, v in occupation_lift.items()),
        })
    return pd.DataFrame(rows).set_index("segment")


def segment_overlap(labels, groupings: dict, *, n_permutations: int = 200, random_state=None) -> pd.DataFrame:
    """Agreement of segments with other groupings of the same users, against shuffled labels.

    Two chance-corrected scores of how well one partition predicts another:
    the adjusted mutual information (AMI, Vinh, Epps & Bailey, 2010) and the
    adjusted Rand index (ARI, Hubert & Arabie, 1985). Both are 1 for the
    same partition and 0 *in expectation* for unrelated ones, but a finite
    sample of unrelated labels still scores a little above or below 0. The
    permutation baseline measures that noise: the segment labels are
    shuffled ``n_permutations`` times, which keeps the segment sizes and
    breaks any link to the grouping.

    Parameters
    ----------
    labels : array of shape (n_users,)
        Segment of each user.
    groupings : dict name -> array of shape (n_users,)
        Other labels of the same users (age band, gender, occupation, another
        model's segments); any hashable values.
    n_permutations : int
        Shuffles for the baseline.
    random_state : None, int or numpy.random.Generator
        Seeds the shuffles.

    Returns
    -------
    DataFrame indexed by grouping, with for ``AMI`` and for ``ARI``: the
    score, ``... shuffled 95%`` (the 95th percentile of the score over the
    shuffles) and ``... p-value`` ((1 + shuffles scoring at least as high) /
    (1 + n_permutations)). A score above its shuffled 95% is agreement
    beyond chance; how *much* agreement is the score itself.

    Examples
    --------
    >>> segment_overlap(segments, {"gender": ml.users.gender.to_numpy()}, random_state=0)
    """
    labels = np.asarray(labels)
    n_permutations = check_positive_int(n_permutations, "n_permutations")
    if labels.ndim != 1 or len(labels) < 2:
        raise ValueError(f"labels must be a 1-D array of at least two users, got shape {labels.shape}.")
    rng = check_random_state(random_state)
    shuffles = [rng.permutation(labels) for _ in range(n_permutations)]   # the same shuffles for every grouping
    rows = []
    for name, other in groupings.items():
        other = np.asarray(other)
        if other.shape != labels.shape:
            raise ValueError(f"grouping {name!r} has shape {other.shape}; expected {labels.shape}, one label per user.")
        row = {"grouping": name}
        for score_name, score in (("AMI", adjusted_mutual_info_score), ("ARI", adjusted_rand_score)):
            observed = score(other, labels)
            null = np.array([score(other, shuffled) for shuffled in shuffles])
            row.update({score_name: observed, f"{score_name} shuffled 95%": np.quantile(null, 0.95),
                        f"{score_name} p-value": (1 + (null >= observed).sum()) / (1 + n_permutations)})
        rows.append(row)
    return pd.DataFrame(rows).set_index("grouping")


def lookalikes(user_vectors, seeds, N: int) -> np.ndarray:
    """The ``N`` non-seed users closest (cosine) to the centroid of the seeds' unit vectors.

    Examples
    --------
    >>> audience = lookalikes(als.user_factors, seed_users, N=100)
    """
    unit = unit_rows(user_vectors)
    seeds = np.unique(np.asarray(seeds, dtype=np.int64))
    if seeds.size == 0 or seeds.min() < 0 or seeds.max() >= len(unit):
        raise ValueError(f"seeds must be a non-empty set of rows in 0..{len(unit) - 1}.")
    N = check_positive_int(N, "N")
    if N > len(unit) - len(seeds):
        raise ValueError(f"N={N} is larger than the {len(unit) - len(seeds)} users outside the seed set.")
    scores = unit @ unit[seeds].mean(axis=0)                     # (n_users,)
    scores[seeds] = -np.inf
    return top_k(scores[None, :], N)[0]


def lookalike_recovery(user_vectors, audience, *, seed_fraction: float = 0.5, N: int = 100,
                       repeats: int = 20, random_state=None) -> dict:
    """How many held-out audience members a lookalike expansion recovers.

    Each repeat splits ``audience`` at random into seeds (``seed_fraction``)
    and held-out members, expands the seeds to ``N`` lookalikes, and records
    the precision: the share of the ``N`` that are held-out members. A random
    pick of ``N`` non-seed users would score the held-out members' share of
    the non-seed population: ``base_rate``.

    Returns
    -------
    dict with ``precision`` (mean over repeats), ``low`` / ``high`` (95%
    bootstrap interval over repeats), ``base_rate``, ``lift``
    (precision / base_rate) and ``precisions``, the array of shape
    (repeats,) with each repeat's precision. The splits depend only on
    ``audience``, ``seed_fraction``, ``repeats`` and ``random_state``, so two
    sets of vectors measured with the same int ``random_state`` see the same
    splits, and ``paired_bootstrap_ci`` of their ``precisions`` compares
    them split by split.
    """
    user_vectors = np.asarray(user_vectors)
    audience = np.unique(np.asarray(audience, dtype=np.int64))
    if not 0 < seed_fraction < 1:
        raise ValueError(f"seed_fraction={seed_fraction} must lie strictly between 0 and 1.")
    repeats = check_positive_int(repeats, "repeats")
    n_seeds = int(round(seed_fraction * len(audience)))
    if n_seeds < 1 or n_seeds >= len(audience):
        raise ValueError(f"an audience of {len(audience)} with seed_fraction={seed_fraction} leaves no seeds or no held-out users.")
    rng = check_random_state(random_state)
    precisions = np.empty(repeats)
    for r in range(repeats):
        shuffled = rng.permutation(audience)
        seeds, held_out = shuffled[:n_seeds], shuffled[n_seeds:]
        found = lookalikes(user_vectors, seeds, N)
        precisions[r] = np.isin(found, held_out).mean()
    base_rate = (len(audience) - n_seeds) / (len(user_vectors) - n_seeds)
    low, high = bootstrap_ci(precisions, random_state=0)
    return {"precision": precisions.mean(), "low": low, "high": high, "base_rate": base_rate,
            "lift": precisions.mean() / base_rate, "precisions": precisions}
