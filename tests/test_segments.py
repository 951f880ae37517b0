"""Filtered neighbours, segments and lookalikes."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_lab.analysis.segments import (choose_k, describe_segments, lookalike_recovery, lookalikes, segment_overlap,
                                          similar, unit_rows)


def clustered(n_per=30, d=6, groups=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(groups, d) * 5
    return np.vstack([c + rng.normal(size=(n_per, d)) for c in centres]), np.repeat(np.arange(groups), n_per)


def test_unit_rows_and_errors():
    x = unit_rows([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(x, [[0.6, 0.8], [0, 0]])
    with pytest.raises(ValueError, match="2-D"):
        unit_rows(np.ones(3))


def test_similar_respects_the_filter_and_skips_the_query():
    vectors = np.array([[1, 0], [0.9, 0.1], [0.8, 0.3], [0, 1], [-1, 0]], float)
    ids, sims = similar(vectors, 0, 2)
    assert ids.tolist() == [1, 2] and np.all(np.diff(sims) <= 0)
    ids, _ = similar(vectors, 0, 3, allowed=np.array([True, False, False, True, True]))
    assert ids.tolist() == [3, 4]  # fewer than N when the filter leaves fewer
    with pytest.raises(ValueError, match="row=7"):
        similar(vectors, 7)
    with pytest.raises(ValueError, match="allowed has shape"):
        similar(vectors, 0, allowed=np.ones(2, bool))


def test_choose_k_prefers_the_true_number_of_groups():
    vectors, _ = clustered()
    table = choose_k(vectors, ks=(2, 3, 5), random_state=0)
    assert table["silhouette"].idxmax() == 3 and (table["inertia"].diff().dropna() < 0).all()
    with pytest.raises(ValueError, match="k=1"):
        choose_k(vectors, ks=(1,))


def test_describe_segments_lifts():
    users = pd.DataFrame({"age": [20, 30, 40, 50], "gender": ["F", "M", "F", "M"], "occupation": ["a", "a", "b", "b"]})
    items = pd.DataFrame({"genres": ["Horror", "Comedy|Drama", "Comedy"]})
    user_items = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 0, 1]], float))
    table = describe_segments(np.array([0, 0, 1, 1]), users, user_items, items, top=1)
    assert table.loc[0, "users"] == 2 and table.loc[0, "mean age"] == 25 and table.loc[0, "share female"] == 0.5
    assert table.loc[0, "top genres"].startswith("Horror ×3.0")  # 2 of 6 genre tags are horror overall, all of theirs
    assert table.loc[1, "top occupations"] == "b ×2.0"
    with pytest.raises(ValueError, match="do not line up"):
        describe_segments(np.array([0, 1]), users, user_items, items)


def test_lookalikes_find_the_seed_group():
    vectors, group = clustered(seed=1)
    members = np.flatnonzero(group == 1)
    found = lookalikes(vectors, members[:10], N=20)
    assert not set(found) & set(members[:10]) and (group[found] == 1).mean() == 1.0
    with pytest.raises(ValueError, match="N=100"):
        lookalikes(vectors, members, N=100)
    with pytest.raises(ValueError, match="seeds"):
        lookalikes(vectors, [], N=1)


def test_lookalike_recovery_beats_the_base_rate_and_is_seeded():
    vectors, group = clustered(seed=2)
    audience = np.flatnonzero(group == 0)
    a = lookalike_recovery(vectors, audience, N=10, repeats=5, random_state=0)
    b = lookalike_recovery(vectors, audience, N=10, repeats=5, random_state=0)
    np.testing.assert_array_equal(a.pop("precisions"), b.pop("precisions"))
    assert a == b and a["precision"] > 0.9 and a["lift"] > 3 and a["low"] <= a["precision"] <= a["high"]
    assert a["base_rate"] == pytest.approx(15 / 75)
    # the splits depend on the audience and the seed only: other vectors are measured on the same splits
    noisy = vectors + np.random.default_rng(3).normal(scale=3, size=vectors.shape)
    c = lookalike_recovery(noisy, audience, N=10, repeats=5, random_state=0)
    assert c["precisions"].shape == (5,) and c["precision"] == pytest.approx(c["precisions"].mean())
    random = lookalike_recovery(np.random.default_rng(0).normal(size=(90, 6)), audience, N=10, repeats=30, random_state=0)
    assert random["lift"] < 2
    with pytest.raises(ValueError, match="seed_fraction=1.5"):
        lookalike_recovery(vectors, audience, seed_fraction=1.5)


def test_segment_overlap_against_shuffled_labels():
    _, group = clustered(n_per=40)
    rng = np.random.default_rng(4)
    noisy = np.where(rng.random(len(group)) < 0.3, rng.integers(3, size=len(group)), group)   # 30% relabelled
    unrelated = rng.integers(2, size=len(group))
    table = segment_overlap(group, {"same": group, "noisy": noisy, "unrelated": unrelated}, n_permutations=99,
                            random_state=0)
    assert table.loc["same", "AMI"] == pytest.approx(1) and table.loc["same", "ARI"] == pytest.approx(1)
    assert table.loc["noisy", "AMI"] > table.loc["noisy", "AMI shuffled 95%"]
    assert table.loc["noisy", "AMI p-value"] == pytest.approx(0.01)   # no shuffle reaches it
    assert table.loc["unrelated", "AMI"] < 0.05 and table.loc["unrelated", "ARI p-value"] > 0.01
    assert abs(table.loc["unrelated", "AMI shuffled 95%"]) < 0.05      # chance agreement stays near 0
    again = segment_overlap(group, {"noisy": noisy}, n_permutations=99, random_state=0)
    assert again.loc["noisy", "AMI shuffled 95%"] == table.loc["noisy", "AMI shuffled 95%"]   # seeded
    with pytest.raises(ValueError, match="grouping 'short'"):
        segment_overlap(group, {"short": group[:-1]})
    with pytest.raises(ValueError, match="n_permutations=0"):
        segment_overlap(group, {"same": group}, n_permutations=0)
    with pytest.raises(ValueError, match="1-D"):
        segment_overlap(group[:, None], {"same": group})
