"""Metrics, intervals and the shared protocol."""

from recsys_lab.evaluation.bootstrap import bootstrap_ci, paired_bootstrap_ci, verdict
from recsys_lab.evaluation.metrics import hit_rate, mae, ndcg, recall_at_k, reciprocal_rank, rmse, target_ranks, top_k, top_k_overlap
from recsys_lab.evaluation.protocol import (beyond_accuracy, check_fitted_on, evaluate, rank_targets, refit, refit_on,
                                            summarize_ranks, validation_ndcg)

__all__ = [
    "bootstrap_ci", "paired_bootstrap_ci", "hit_rate", "mae", "ndcg", "recall_at_k", "reciprocal_rank",
    "rmse", "target_ranks", "top_k", "top_k_overlap", "evaluate", "rank_targets", "summarize_ranks", "refit", "refit_on", "check_fitted_on", "beyond_accuracy",
    "validation_ndcg", "verdict",
]
