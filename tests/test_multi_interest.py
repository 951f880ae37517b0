"""PinnerSage-style multi-interest retrieval."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.data import Interactions, leave_last_out
from recsys_lab.evaluation import evaluate
from recsys_lab.analysis.multi_interest import MultiInterest, intra_list_diversity, user_interests

# two tight groups of items: 0-4 around e0, 5-9 around e1, plus distractors 10-11
ITEMS = np.vstack([np.eye(3)[0] + 0.05 * np.arange(5)[:, None] * np.eye(3)[2],
                   np.eye(3)[1] + 0.05 * np.arange(5)[:, None] * np.eye(3)[2],
                   [[0, 0, 1], [-1, -1, 0]]])


def test_interests_are_medoids_ranked_by_recency():
    history = np.array([5, 6, 0, 1, 2])          # older interest in group 1, recent one in group 0
    found = user_interests(ITEMS, history, max_clusters=2, n_interests=2)
    assert found.medoids.tolist() == [1, 5] or found.medoids.tolist() == [1, 6]
    assert found.importance[0] > found.importance[1]
    np.testing.assert_allclose(np.linalg.norm(found.vectors, axis=1), 1)
    mean = user_interests(ITEMS, history, max_clusters=2, n_interests=1, representative="mean")
    assert mean.medoids.tolist() == [-1] and len(mean.vectors) == 1


@pytest.mark.parametrize("kwargs, match", [({"decay": 0.0}, "decay=0.0"), ({"representative": "mode"}, "representative='mode'"),
                                           ({"n_interests": 0}, "n_interests=0")])
def test_user_interests_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        user_interests(ITEMS, [0, 1], **kwargs)
    with pytest.raises(ValueError, match="empty"):
        user_interests(ITEMS, [])


def toy_log():
    rows = [(0, [5, 6, 0, 1, 2, 3]), (1, [0, 1, 2, 3, 4]), (2, [5, 6, 7, 8, 9, 0])]
    events = [(u, i, 1.0, t) for u, items in rows for t, i in enumerate(items)]
    import pandas as pd
    frame = pd.DataFrame(events, columns=["user_id", "item_id", "rating", "timestamp"])
    return Interactions.from_frame(frame, item_ids=np.arange(len(ITEMS)))


def test_scores_are_the_best_interest_similarity_and_plug_into_the_protocol():
    log = toy_log()
    model = MultiInterest(ITEMS, max_clusters=2, n_interests=2).fit(log)
    scores = model.score_items(0, log)
    unit = ITEMS / np.linalg.norm(ITEMS, axis=1, keepdims=True)
    expected = (model.interests(log.sequences()[0]).vectors @ unit.T).max(axis=0)
    np.testing.assert_allclose(scores, expected)
    split = leave_last_out(log)
    row = evaluate(MultiInterest(ITEMS).fit(split.history("test")), split)
    assert row["users"].iloc[0] == 3
    with pytest.raises(TypeError, match="Interactions"):
        model.score_items(0, log.user_items[[0]])


def test_retrieve_through_faiss_matches_recommend():
    pytest.importorskip("faiss")
    from recsys_lab.retrieval.index import build_index

    log = toy_log()
    model = MultiInterest(ITEMS, max_clusters=2, n_interests=2).fit(log)
    index = build_index(ITEMS.astype(np.float32), kind="flat", metric="cosine")
    users = np.arange(3)
    lists = model.retrieve(index, log.sequences(), 3, exclude=log.user_items)
    expected, _ = model.recommend(users, log, N=3)
    assert [set(a) for a in lists] == [set(b) for b in expected]


def test_fit_checks_the_catalogue():
    with pytest.raises(ValueError, match="12 rows"):
        MultiInterest(ITEMS).fit(sp.csr_matrix((2, 5)))


def test_intra_list_diversity():
    vectors = np.array([[1, 0], [1, 0], [0, 1]], float)
    np.testing.assert_allclose(intra_list_diversity([[0, 1], [0, 2]], vectors), [0.0, 1.0])
    np.testing.assert_allclose(intra_list_diversity([[0, 2, -1]], vectors), [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        intra_list_diversity([[0, -1]], vectors)
