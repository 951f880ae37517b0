"""Recommenders with one interface: ``fit(user_items)`` then ``recommend``.

Models that need torch, gensim or transformers live in their own modules
and are imported from there (``from recsys_lab.models.sasrec import SASRec``),
so ``import recsys_lab.models`` stays light.
"""

from recsys_lab.models.base import FactorRecommender, History, Recommender
from recsys_lab.models.popularity import Popularity

__all__ = ["FactorRecommender", "History", "Recommender", "Popularity"]
