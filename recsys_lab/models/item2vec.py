"""Item2vec / Prod2Vec: word2vec over users' histories, with ``gensim``.

Treat each item as a word and each user's time-ordered history as a
sentence; skip-gram with negative sampling (Mikolov et al., 2013) then gives
items that appear in the same contexts nearby vectors. Grbovic et al. (2015)
did this with e-mail receipts (prod2vec), Barkan & Koenigstein (2016) with
item sets (item2vec), and Caselles-Dupre et al. (2018) showed that the
defaults tuned for language are far from best for recommendation: the
negative-sampling exponent, the window, subsampling and the number of epochs
all deserve a sweep on validation data.

A user is scored by the cosine of every item to the (optionally decayed)
mean of their history vectors. Items that never reach ``min_count`` have no
vector and are ranked last.

This module imports gensim; ``import recsys_lab`` does not.
"""

from __future__ import annotations

import hashlib

import numpy as np
from gensim.models import Word2Vec

from recsys_lab.data.interactions import Interactions
from recsys_lab.models.base import FactorRecommender, Recommender
from recsys_lab.models.content import check_pooling, profile_scores
from recsys_lab.features.external import unit_rows
from recsys_lab.validation import (check_factors_finite, check_nonnegative_float, check_positive_int,
                                   check_random_state, check_user_items, seed_from)

__all__ = ["Item2Vec", "UNKNOWN_SCORE"]

UNKNOWN_SCORE = -2.0  # below every cosine: items without a vector rank last


def _stable_hash(text: str) -> int:
    """gensim seeds each word's initial vector with ``hashfxn(word + str(seed))``;
    Python's ``hash`` changes from process to process, this does not."""
    return int.from_bytes(hashlib.md5(text.encode()).digest()[:4], "little")


class Item2Vec(Recommender):
    """Skip-gram with negative sampling over item histories (item2vec, prod2vec).

    Parameters
    ----------
    factors : int
        Size of the item vectors.
    window : int
        Maximum distance between a target item and its context items (gensim
        samples the effective window in 1..window). Histories are long
        (MovieLens: median 65 events), so larger windows than text's 5 help.
    negative : int
        Negative samples per positive pair.
    ns_exponent : float
        Exponent of the unigram distribution negatives are drawn from: 0.75
        for language; 0 samples uniformly, negative values favour rare items
        (Caselles-Dupre et al. found this one matters most).
    sample : float
        Subsampling threshold for frequent items (0 switches it off).
    epochs : int
        Passes over the histories.
    min_count : int
        Items seen fewer times get no vector (ranked last).
    learning_rate : float
        gensim's initial ``alpha``, decayed linearly to ``min_alpha``.
    pooling, half_life :
        How a history becomes scores: see :class:`~recsys_lab.models.content.ContentRecommender`.
    random_state : None, int or Generator
        Seeds gensim (which runs with one worker thread so that a seed
        gives the same vectors every time).

    Attributes
    ----------
    item_factors : ndarray of shape (n_items, factors)
        The word vectors, zero for items without one.
    in_vocabulary : ndarray of bool, shape (n_items,)
    word2vec : gensim.models.Word2Vec
        The trained gensim model (words are item columns as strings).

    Examples
    --------
    >>> model = Item2Vec(64, window=10, random_state=0).fit(split.train)
    >>> evaluate(model, split)

    References
    ----------
    Barkan & Koenigstein, "Item2vec: neural item embedding for collaborative filtering", MLSP 2016.
    Grbovic et al., "E-commerce in your inbox: product recommendations at scale", KDD 2015.
    Mikolov et al., "Distributed representations of words and phrases and their compositionality", NeurIPS 2013.
    Caselles-Dupre, Lesaint & Royo-Letelier, "Word2vec applied to recommendation: hyperparameters matter", RecSys 2018.
    """

    @property
    def needs_order(self) -> bool:
        """A decayed profile weighs recent items more, so it needs each history's time order."""
        return self.half_life is not None

    def __init__(self, factors: int = 64, *, window: int = 5, negative: int = 5, ns_exponent: float = 0.75,
                 sample: float = 1e-3, epochs: int = 10, min_count: int = 1, learning_rate: float = 0.025,
                 pooling: str = "mean", half_life: float | None = None, random_state=None):
        self.factors = factors
        self.window = window
        self.negative = negative
        self.ns_exponent = ns_exponent
        self.sample = sample
        self.epochs = epochs
        self.min_count = min_count
        self.learning_rate = learning_rate
        self.pooling = pooling
        self.half_life = half_life
        self.random_state = random_state
        self.item_factors = None

    def fit(self, user_items, *, show_progress: bool = True) -> "Item2Vec":
        """Learn item vectors from the histories.

        Parameters
        ----------
        user_items : Interactions or csr_matrix of shape (n_users, n_items)
            An ``Interactions`` gives each history in time order (prod2vec);
            a matrix has no order, so each row's items are shuffled with the
            seed and treated as a set (item2vec).
        """
        matrix = check_user_items(user_items)
        factors = check_positive_int(self.factors, "factors")
        window = check_positive_int(self.window, "window")
        negative = check_positive_int(self.negative, "negative")
        epochs = check_positive_int(self.epochs, "epochs")
        min_count = check_positive_int(self.min_count, "min_count")
        sample = check_nonnegative_float(self.sample, "sample")
        learning_rate = check_nonnegative_float(self.learning_rate, "learning_rate", strictly_positive=True)
        if not np.isfinite(self.ns_exponent) or abs(self.ns_exponent) > 5:
            raise ValueError(f"ns_exponent={self.ns_exponent} must be a finite number in [-5, 5] (0.75 for text).")
        check_pooling(self.pooling, self.half_life)
        rng = check_random_state(self.random_state)

        if isinstance(user_items, Interactions):
            histories = user_items.sequences()
        else:
            histories = [rng.permutation(matrix.indices[matrix.indptr[u]: matrix.indptr[u + 1]])
                         for u in range(matrix.shape[0])]
        sentences = [[str(i) for i in history] for history in histories if len(history)]
        model = Word2Vec(
            sentences, vector_size=factors, window=window, min_count=min_count, sample=sample,
            negative=negative, ns_exponent=float(self.ns_exponent), sg=1, hs=0, epochs=epochs,
            alpha=learning_rate, seed=seed_from(rng), workers=1, hashfxn=_stable_hash,
        )
        self.n_users, self.n_items = matrix.shape
        known = np.array([int(word) for word in model.wv.index_to_key], dtype=np.int64)
        self.item_factors = np.zeros((self.n_items, factors), dtype=np.float32)
        self.item_factors[known] = model.wv.vectors
        self.in_vocabulary = np.zeros(self.n_items, dtype=bool)
        self.in_vocabulary[known] = True
        self.word2vec = model
        check_factors_finite(type(self).__name__, item_factors=self.item_factors)
        return self

    def _score(self, userids, history):
        scores = profile_scores(history, unit_rows(self.item_factors), pooling=self.pooling,
                                half_life=self.half_life, model_name=type(self).__name__)
        scores[:, ~self.in_vocabulary] = UNKNOWN_SCORE
        return scores

    similar_items = FactorRecommender.similar_items
