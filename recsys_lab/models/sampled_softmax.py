"""In-batch sampled softmax with the log-Q correction (Yi et al., 2019).

A retrieval model wants ``P(item | user) = softmax_i(u . v_i)`` over the
whole catalogue, which is too many items to normalise over at every step.
The in-batch trick reuses the other positives of the mini-batch as the
negatives: row ``b`` of the (B, B) matrix ``U V^T`` is user ``b`` against
every item of the batch, and the diagonal holds the true pairs.

Those negatives are not uniform: an item appears in a batch in proportion to
its popularity ``q_i``, so a plain in-batch softmax punishes popular items
far more than the full softmax would. Sampled softmax (Bengio & Senecal,
2008; Jean et al., 2015) corrects the logits by the log of the sampling
probability:

    s_c(u, i) = u . v_i - log q_i

which makes the sampled loss a consistent estimate of the full one; Yi et
al. (2019) estimate ``q_i`` from streaming item frequencies; here it is the
item's share of the training positives.

This module imports torch; ``import recsys_lab`` does not.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["log_q", "in_batch_softmax_loss"]


def log_q(item_counts) -> np.ndarray:
    """Log sampling probability of each item as an in-batch negative.

    ``item_counts`` (n_items,) counts each item's training positives; an item
    enters a batch with probability proportional to that count. Items never
    seen get the smallest nonzero probability (they are never sampled, so
    their correction never applies in training).

    >>> log_q(np.array([3, 1, 0]))
    array([-0.28768207, -1.38629436, -1.38629436])
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any() or counts.sum() == 0:
        raise ValueError("item_counts must be a non-empty 1-D array of counts >= 0 with a positive sum.")
    q = counts / counts.sum()
    return np.log(np.maximum(q, q[q > 0].min()))


def in_batch_softmax_loss(
    user_vectors: torch.Tensor,
    item_vectors: torch.Tensor,
    *,
    item_log_q: torch.Tensor | None = None,
    item_ids: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Softmax cross-entropy of each user's positive against the batch's other positives.

    Parameters
    ----------
    user_vectors, item_vectors : tensor of shape (B, d)
        Row ``b`` of each is one observed (user, item) pair.
    item_log_q : tensor of shape (B,), optional
        ``log q`` of each row's item (:func:`log_q`); None turns the correction off.
    item_ids : tensor of shape (B,), optional
        When given, a batch item equal to the row's own positive is not
        treated as a negative (its logit is masked), so duplicates do not
        push the true item down.
    temperature : float
        Logits are divided by it (smaller: sharper softmax).

    Returns
    -------
    Scalar tensor: the mean loss over the B rows.

    References
    ----------
    Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
    Recommendations", RecSys 2019.
    """
    if user_vectors.shape != item_vectors.shape or user_vectors.ndim != 2:
        raise ValueError(f"user_vectors and item_vectors must both be (B, d); got {tuple(user_vectors.shape)} "
                         f"and {tuple(item_vectors.shape)}.")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0.")
    logits = user_vectors @ item_vectors.T / temperature           # (B, B): user b vs every batch item
    if item_log_q is not None:
        logits = logits - item_log_q[None, :]                      # (B, B): popular items count for less
    target = torch.arange(len(logits), device=logits.device)       # (B,): the diagonal is the positive
    if item_ids is not None:
        same = item_ids[:, None] == item_ids[None, :]              # (B, B)
        logits = logits.masked_fill(same & ~torch.eye(len(logits), dtype=torch.bool, device=logits.device), float("-inf"))
    return F.cross_entropy(logits, target)
