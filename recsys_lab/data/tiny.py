"""The hand-made ratings table that teaches mean normalization (chapter 03)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["load_tiny_ratings", "TINY_RATINGS_PATH"]

TINY_RATINGS_PATH = Path(__file__).resolve().parents[2] / "datasets" / "tiny_ratings.csv"
_NEW_USER = "Eve"


def load_tiny_ratings(path=TINY_RATINGS_PATH) -> pd.DataFrame:
    """Users x films ratings (NaN = not rated), with Eve, who rated nothing.

    >>> load_tiny_ratings().loc["Eve"].isna().all()
    True
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; it ships in the repo's datasets/ folder.")
    long = pd.read_csv(path)
    table = long.pivot(index="user", columns="item", values="rating")
    films = list(dict.fromkeys(long["item"]))
    table = table.reindex(index=[*dict.fromkeys(long["user"]), _NEW_USER], columns=films)
    return table.astype(np.float64)
