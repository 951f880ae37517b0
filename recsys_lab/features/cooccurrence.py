"""Item co-occurrence within a window, its shifted positive PMI, and a truncated-SVD item embedding.

Levy & Goldberg (2014) showed what skip-gram with negative sampling (SGNS,
the algorithm behind word2vec and item2vec) optimises: with enough
dimensions, its optimum sets the dot product of an item's input vector and
a context's output vector to the context's pointwise mutual information
with the item, shifted down by the log of the number of negatives ``k``:

.. math:: v_w^\\top v'_c = \\operatorname{PMI}(w, c) - \\log k
          = \\log \\frac{\\#(w, c)\\, |D|}{\\#(w)\\, \\#(c)} - \\log k .

So the same item vectors can be built without any training: count how often
two items fall within the window of each other (:func:`window_cooccurrence`),
turn the counts into the shifted positive PMI matrix, where pairs seen less
often than chance give zero (:func:`shifted_ppmi`), and keep its leading
singular directions (:func:`svd_item_vectors`). :func:`sppmi_item_vectors`
does the three steps in a row.

Only numpy and scipy are imported here.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from recsys_lab.data.interactions import Interactions
from recsys_lab.validation import check_nonnegative_float, check_positive_int, check_random_state

__all__ = ["window_cooccurrence", "shifted_ppmi", "svd_item_vectors", "sppmi_item_vectors"]


def _histories(sequences, n_items):
    """The histories as int64 arrays with every item index checked against ``n_items``."""
    if isinstance(sequences, Interactions):
        sequences = sequences.sequences()
    histories = []
    for u, history in enumerate(sequences):
        history = np.asarray(history)
        if history.ndim != 1 or (history.size and history.dtype.kind not in "iu"):
            raise ValueError(f"history {u} must be a 1-D array of item indices, got shape {history.shape} "
                             f"and dtype {history.dtype}; pass Interactions.sequences().")
        history = history.astype(np.int64)
        if history.size and (history.min() < 0 or history.max() >= n_items):
            bad = history.min() if history.min() < 0 else history.max()
            raise ValueError(f"history {u} holds item index {bad}, outside the {n_items} items "
                             f"(valid indices are 0..{n_items - 1}).")
        histories.append(history)
    return histories


def window_cooccurrence(sequences, n_items: int, *, window: int = 5, shrink_windows: bool = False) -> sp.csr_matrix:
    """How often each pair of items falls within ``window`` positions of each other.

    ``counts[w, c]`` counts the (centre ``w``, context ``c``) pairs that
    skip-gram trains on: every position of every history paired with each
    position up to ``window`` steps before or after it. The matrix is
    symmetric. With ``shrink_windows=True`` a pair ``d`` steps apart counts
    :math:`(\\text{window} - d + 1) / \\text{window}`, its expected count under
    word2vec's (and gensim's default) window drawn uniformly in 1..window for
    each centre.

    Parameters
    ----------
    sequences : list of int arrays (oldest first) or Interactions
        ``Interactions.sequences()``: each user's items in time order.
    n_items : int
        Number of item columns.
    window : int
        Largest distance between a centre and a context.
    shrink_windows : bool
        Weight pairs by their chance of falling in a shrunk window.

    Returns
    -------
    csr_matrix of shape (n_items, n_items), float64

    Examples
    --------
    >>> counts = window_cooccurrence(split.train.sequences(), split.train.n_items, window=30)
    >>> counts.shape
    (1682, 1682)
    """
    n_items = check_positive_int(n_items, "n_items")
    window = check_positive_int(window, "window")
    histories = _histories(sequences, n_items)
    lengths = np.array([len(h) for h in histories], dtype=np.int64)
    flat = np.concatenate(histories) if histories else np.zeros(0, np.int64)
    owner = np.repeat(np.arange(len(histories)), lengths)      # which history each position belongs to
    counts = sp.csr_matrix((n_items, n_items), dtype=np.float64)
    longest = int(lengths.max()) if lengths.size else 0
    for offset in range(1, min(window, longest - 1) + 1):
        same = owner[:-offset] == owner[offset:]                  # both ends in one history
        left, right = flat[:-offset][same], flat[offset:][same]
        weight = (window - offset + 1) / window if shrink_windows else 1.0
        pairs = sp.csr_matrix((np.full(left.size, weight), (left, right)), shape=(n_items, n_items))
        counts = counts + pairs + pairs.T                         # both directions
    return counts.tocsr()


def _check_counts(counts) -> sp.csr_matrix:
    shape = counts.shape if sp.issparse(counts) else np.shape(counts)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"counts must be a square (n_items, n_items) matrix, got shape {shape}.")
    counts = sp.csr_matrix(counts, dtype=np.float64)
    counts.eliminate_zeros()
    if counts.nnz == 0:
        raise ValueError(f"counts of shape {counts.shape} holds no co-occurrence: every PMI would be undefined.")
    if not np.all(np.isfinite(counts.data)) or counts.data.min() < 0:
        raise ValueError("counts must be finite and non-negative (co-occurrence counts or weights).")
    return counts


def shifted_ppmi(counts, *, negative: float = 1.0, ns_exponent: float = 1.0) -> sp.csr_matrix:
    """The shifted positive PMI matrix, :math:`\\max(\\operatorname{PMI}_\\alpha(w, c) - \\log k, 0)`.

    With :math:`\\#(w) = \\sum_c \\#(w, c)` and the context distribution
    smoothed by ``ns_exponent`` :math:`\\alpha` (the exponent SGNS draws its
    negatives with; Levy, Goldberg & Dagan, 2015),

    .. math:: \\operatorname{PMI}_\\alpha(w, c) = \\log \\frac{\\#(w, c)}{\\#(w)\\, P_\\alpha(c)},
              \\qquad P_\\alpha(c) = \\frac{\\#(c)^\\alpha}{\\sum_{c'} \\#(c')^\\alpha},

    which is the usual PMI for :math:`\\alpha = 1`, and is the optimum of
    SGNS with ``k = negative`` negatives drawn from :math:`P_\\alpha`
    (shifted by :math:`-\\log k`). Pairs never seen together (PMI
    :math:`-\\infty`) and pairs seen less often than the shift allows are 0,
    so the result is as sparse as the counts.

    Parameters
    ----------
    counts : sparse or dense array of shape (n_items, n_items)
        Co-occurrence counts, for example from :func:`window_cooccurrence`.
    negative : float
        The shift :math:`k > 0`: 1 gives the plain positive PMI (PPMI), the
        best for SVD in Levy et al.'s experiments; 5 is the matrix of SGNS
        with word2vec's 5 negatives.
    ns_exponent : float
        :math:`\\alpha`: 1 for the plain PMI, 0.75 for word2vec's default, 0
        for uniform negatives (then PMI is the log of :math:`P(c \\mid w)`
        relative to a uniform pick).

    Returns
    -------
    csr_matrix of shape (n_items, n_items), float64, non-negative

    Examples
    --------
    >>> sppmi = shifted_ppmi(window_cooccurrence(sequences, n_items, window=30), negative=5)
    >>> sppmi.min() >= 0
    True

    References
    ----------
    Levy & Goldberg, "Neural word embedding as implicit matrix factorization", NeurIPS 2014.
    Levy, Goldberg & Dagan, "Improving distributional similarity with lessons learned from word
    embeddings", TACL 2015.
    """
    counts = _check_counts(counts)
    shift = check_nonnegative_float(negative, "negative", strictly_positive=True)
    if isinstance(ns_exponent, bool) or not isinstance(ns_exponent, numbers.Real) or not np.isfinite(ns_exponent) \
            or abs(ns_exponent) > 5:
        raise ValueError(f"ns_exponent={ns_exponent!r} must be a finite number in [-5, 5] (1 for the plain PMI).")
    row_totals = np.asarray(counts.sum(axis=1)).ravel()                  # #(w)
    column_totals = np.asarray(counts.sum(axis=0)).ravel()               # #(c)
    smoothed = np.zeros_like(column_totals)
    seen = column_totals > 0
    smoothed[seen] = column_totals[seen] ** float(ns_exponent)
    context_probability = smoothed / smoothed.sum()                       # P_alpha(c), only over seen contexts
    coo = counts.tocoo()
    values = (np.log(coo.data) - np.log(row_totals[coo.row]) - np.log(context_probability[coo.col])
              - np.log(shift))
    keep = values > 0
    return sp.csr_matrix((values[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape)


def svd_item_vectors(matrix, factors: int, *, eigen_power: float = 0.5, random_state=None) -> np.ndarray:
    """Item vectors :math:`U_d S_d^{p}` from the ``factors`` leading singular triplets of ``matrix``.

    ``p = 0.5`` (the default) splits the singular values evenly between the
    item and context sides, as SGNS's two vector tables do; Levy et al.
    (2015) found ``p`` of 0 or 0.5 better than 1 on word similarity. Each
    direction's sign is fixed (its largest entry is positive), so the
    vectors do not depend on the eigensolver's arbitrary sign.

    Parameters
    ----------
    matrix : sparse or dense array of shape (n_items, n_cols)
    factors : int
        Dimension ``d``, below ``min(matrix.shape)``.
    eigen_power : float
        ``p`` in ``[0, 1]``.
    random_state : None, int or Generator
        Seeds the solver's start vector (ARPACK).

    Returns
    -------
    ndarray of shape (n_items, factors), float32; columns by decreasing singular value.

    Examples
    --------
    >>> vectors = svd_item_vectors(shifted_ppmi(counts), 64, random_state=0)
    >>> vectors.shape
    (1682, 64)
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    factors = check_positive_int(factors, "factors")
    if factors >= min(matrix.shape):
        raise ValueError(f"factors={factors} must be below min(matrix.shape) = {min(matrix.shape)} "
                         f"for a truncated SVD; use fewer factors.")
    power = check_nonnegative_float(eigen_power, "eigen_power")
    if power > 1:
        raise ValueError(f"eigen_power={eigen_power} must lie in [0, 1] (0.5 for U sqrt(S)).")
    if matrix.nnz == 0 or not np.all(np.isfinite(matrix.data)):
        raise ValueError("matrix must hold at least one finite non-zero entry and no NaN or infinite values.")
    rng = check_random_state(random_state)
    start = rng.uniform(-1.0, 1.0, min(matrix.shape))
    u, s, _ = svds(matrix, k=factors, v0=start)
    order = np.argsort(s)[::-1]                                   # svds returns them ascending
    u, s = u[:, order], s[order]
    signs = np.sign(u[np.abs(u).argmax(axis=0), np.arange(factors)])
    return (u * signs * s**power).astype(np.float32)


def sppmi_item_vectors(sequences, n_items: int, *, factors: int = 64, window: int = 5, shrink_windows: bool = False,
                       negative: float = 1.0, ns_exponent: float = 1.0, eigen_power: float = 0.5,
                       random_state=None) -> np.ndarray:
    """Item vectors from the histories with no training: window counts, shifted PPMI, truncated SVD.

    The explicit counterpart of item2vec (Levy & Goldberg, 2014): the
    matrix that SGNS with the same ``window``, ``negative`` and
    ``ns_exponent`` factorizes implicitly, factorized by
    :func:`svd_item_vectors`. Items that never occur get zero vectors.
    See :func:`window_cooccurrence`, :func:`shifted_ppmi` and
    :func:`svd_item_vectors` for the parameters.

    Returns
    -------
    ndarray of shape (n_items, factors), float32

    Examples
    --------
    >>> vectors = sppmi_item_vectors(split.train.sequences(), split.train.n_items, window=30, random_state=0)
    >>> evaluate(ContentRecommender(vectors, half_life=3.0).fit(split.train.user_items), split, "valid")

    References
    ----------
    Levy & Goldberg, "Neural word embedding as implicit matrix factorization", NeurIPS 2014.
    """
    counts = window_cooccurrence(sequences, n_items, window=window, shrink_windows=shrink_windows)
    matrix = shifted_ppmi(counts, negative=negative, ns_exponent=ns_exponent)
    return svd_item_vectors(matrix, factors, eigen_power=eigen_power, random_state=random_state)
