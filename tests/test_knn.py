"""Item kNN: cosine of item columns, summed over the history."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.models.knn import ItemKNN


def binary(n_users, n_items, density, seed):
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < density).astype(np.float32))


def test_similarity_is_the_cosine_of_item_columns():
    X = binary(30, 12, 0.4, 0)
    model = ItemKNN().fit(X)
    columns = X.toarray().T
    norms = np.linalg.norm(columns, axis=1)
    a, b = 2, 7
    assert model.similarity_[a, b] == pytest.approx(columns[a] @ columns[b] / (norms[a] * norms[b]))
    np.testing.assert_allclose(np.diag(model.similarity_), 0.0)
    np.testing.assert_allclose(model.similarity_, model.similarity_.T)


def test_scores_sum_similarities_over_the_history():
    X = binary(30, 12, 0.4, 1)
    model = ItemKNN().fit(X)
    np.testing.assert_allclose(model.score_items([3], X[3])[0], X[3].toarray()[0] @ model.similarity_)


def test_pruning_keeps_each_items_nearest_neighbours():
    X = binary(40, 15, 0.4, 2)
    full, pruned = ItemKNN().fit(X).similarity_, ItemKNN(neighbours=3).fit(X).similarity_
    assert ((pruned != 0).sum(axis=1) <= 3).all()
    for row in range(15):
        kept = np.flatnonzero(pruned[row])
        assert (full[row, kept] >= np.sort(full[row])[-3] - 1e-12).all()
        np.testing.assert_allclose(pruned[row, kept], full[row, kept])


@pytest.mark.parametrize("neighbours, message", [(0, "neighbours"), (2.5, "neighbours"), (12, "smaller than")])
def test_bad_neighbours(neighbours, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ItemKNN(neighbours=neighbours).fit(binary(10, 12, 0.5, 0))


def test_too_many_items(monkeypatch):
    monkeypatch.setattr("recsys_lab.models.knn.MAX_ITEMS", 3)
    with pytest.raises(ValueError, match="at most 3 items"):
        ItemKNN().fit(binary(5, 4, 0.5, 0))
