"""TextEncoder on the packaged all-MiniLM-L6-v2: offline, deterministic, cached."""

import numpy as np
import pandas as pd
import pytest

from recsys_lab.features.text import (YEAR_EDGES, TextEncoder, item_onehot, item_texts, packaged_model_path, tfidf_matrix,
                                      tfidf_vectors)

TEXTS = ["Toy Story (1995). Genres: Animation, Children's, Comedy.",
         "Heat (1995). Genres: Action, Crime, Thriller.",
         "Toy Story (1995). Genres: Animation, Children's, Comedy.",  # a repeat: encoded once
         "A Close Shave (1995). Genres: Animation, Comedy."]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    encoder = TextEncoder(cache_dir=tmp_path_factory.mktemp("text-cache"))
    return encoder, encoder.encode(TEXTS, show_progress=False)


def test_packaged_model_is_found():
    assert (packaged_model_path() / "config.json").is_file()


def test_vectors_are_unit_norm_and_meaningful(encoded):
    encoder, vectors = encoded
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.n_encoded_ == 3  # the repeated text went through the model once
    np.testing.assert_array_equal(vectors[0], vectors[2])
    # two animated comedies are closer to each other than to a crime thriller
    assert vectors[0] @ vectors[3] > vectors[0] @ vectors[1]


def test_cache_hit_gives_the_same_vectors_without_the_model(encoded):
    encoder, vectors = encoded
    again = TextEncoder(cache_dir=encoder.cache_dir)
    np.testing.assert_array_equal(again.encode(TEXTS[::-1], show_progress=False), vectors[::-1])
    assert again.n_encoded_ == 0 and again._loaded is None  # the model was never loaded
    assert encoder.cache_file.is_file()


def test_encoding_is_deterministic_and_independent_of_the_batch(encoded):
    encoder, vectors = encoded
    fresh = TextEncoder(use_cache=False, batch_size=1).encode(TEXTS[:2], show_progress=False)
    np.testing.assert_allclose(fresh, vectors[:2], atol=1e-5)


def test_settings_change_the_cache_key(encoded):
    encoder, _ = encoded
    assert TextEncoder(cache_dir=encoder.cache_dir, max_length=16).cache_file != encoder.cache_file


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="list of strings"):
        TextEncoder(use_cache=False).encode("just one string")
    with pytest.raises(ValueError, match="empty"):
        TextEncoder(use_cache=False).encode([])
    with pytest.raises(ValueError, match="max_length=0"):
        TextEncoder(max_length=0)


def test_item_texts():
    items = pd.DataFrame({"title": ["Toy Story", "Nameless"], "year": pd.array([1995, None], dtype="Int64"),
                          "genres": ["Animation|Children's|Comedy", "unknown"]})
    assert item_texts(items) == ["Toy Story (1995). Genres: Animation, Children's, Comedy.", "Nameless."]
    with pytest.raises(ValueError, match="'genres'"):
        item_texts(items.drop(columns="genres"))


def test_item_onehot_genres_and_year_buckets():
    items = pd.DataFrame({"title": ["A", "B", "C", "D"], "year": pd.array([1995, 1972, None, 1925], dtype="Int64"),
                          "genres": ["Comedy|Drama", "Drama", "unknown", "Comedy"]}, index=[10, 11, 12, 13])
    onehot = item_onehot(items)
    assert list(onehot.columns) == ["genre=Comedy", "genre=Drama", "year=<1930", "year=1970-1979", "year=1995-1995"]
    assert onehot.dtypes.unique().tolist() == [np.float32] and list(onehot.index) == [10, 11, 12, 13]
    np.testing.assert_array_equal(onehot.to_numpy(), [[1, 1, 0, 0, 1], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 0, 1, 0, 0]])
    decades = item_onehot(items, year_edges=(1930, 1980))       # other buckets, same genres
    assert list(decades.columns[2:]) == ["year=<1930", "year=1930-1979", "year=1980+"]
    assert YEAR_EDGES[:2] == (1930, 1940) and YEAR_EDGES[-1] == 1998


def test_item_onehot_refuses_bad_input():
    items = pd.DataFrame({"year": [1995], "genres": ["Drama"]})
    with pytest.raises(ValueError, match="'genres'"):
        item_onehot(items.drop(columns="genres"))
    with pytest.raises(ValueError, match="strictly increasing"):
        item_onehot(items, year_edges=(1990, 1980))


def test_tfidf_matrix_and_its_reduction():
    texts = ["Toy Story (1995). Genres: Animation.", "Toy Soldiers (1991). Genres: Action.", "Heat (1995). Genres: Crime."]
    words, chars = tfidf_matrix(texts, "word"), tfidf_matrix(texts)
    assert words.shape[0] == chars.shape[0] == 3 and chars.shape[1] > words.shape[1]    # more character n-grams
    similarity = (chars @ chars.T).toarray()
    assert similarity[0, 1] > similarity[0, 2]                                           # "Toy ..." titles share n-grams
    vectors = tfidf_vectors(chars, n_components=2)
    assert vectors.shape == (3, 2) and np.isfinite(vectors).all()
    with pytest.raises(ValueError, match="analyzer"):
        tfidf_matrix(texts, "letters")
    with pytest.raises(ValueError, match="non-empty list of strings"):
        tfidf_matrix([])
    with pytest.raises(ValueError, match="smaller than both sides"):
        tfidf_vectors(chars, n_components=3)
