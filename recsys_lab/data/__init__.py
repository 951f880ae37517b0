"""Datasets, the ``Interactions`` container and the course's splits."""

from recsys_lab.data.interactions import Interactions
from recsys_lab.data.movielens import DatasetUnavailableError, MovieLens, default_cache_dir, load_movielens_100k
from recsys_lab.data.splits import LeaveLastOutSplit, RolledBack, cold_items, leave_last_out, rating_folds, roll_back
from recsys_lab.data.synthetic import synthetic_factors, synthetic_user_items
from recsys_lab.data.tiny import load_tiny_ratings

__all__ = [
    "Interactions", "DatasetUnavailableError", "MovieLens", "default_cache_dir", "load_movielens_100k",
    "LeaveLastOutSplit", "RolledBack", "leave_last_out", "roll_back", "cold_items", "rating_folds", "synthetic_factors", "synthetic_user_items",
    "load_tiny_ratings",
]
