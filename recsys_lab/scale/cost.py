"""What block-partitioned ALS moves and holds per iteration: a cost model on paper, and an exact count.

Spark's ALS (MLlib; Meng et al., 2016) hashes users into
``B`` user blocks and items into ``B`` item blocks (``id % B``). To update
the users, every item block sends the vector of item ``i`` to each user
block that holds at least one user who interacted with ``i``, never to the
others, and never twice to the same block. The item update sends user vectors
the other way. Per iteration the network therefore carries

.. math::

    4k \\Big(\\sum_i |\\{b : \\exists u \\in b,\\ r_{ui} \\neq 0\\}|
           + \\sum_u |\\{b : \\exists i \\in b,\\ r_{ui} \\neq 0\\}|\\Big)

bytes (float32 vectors of ``k`` numbers): at most ``4k`` per interaction in
each direction, and at most ``4k B`` per item or user. With ``d_i`` users
spread over the blocks at random, item ``i`` reaches
``B (1 - (1 - 1/B)^{d_i})`` blocks on average, which is what the paper
model below uses when the matrix itself is too large to build.

Numpy and scipy only.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_lab.validation import check_positive_int, check_user_items

__all__ = ["vectors_shipped", "expected_vectors_shipped", "als_iteration_cost"]

BYTES_PER_NUMBER = 4          # Spark's ALS keeps factors as float32
BYTES_PER_RATING = 16         # an interaction in both blockings: (int id, float rating) twice, about


def vectors_shipped(user_items, blocks: int) -> tuple[int, int]:
    """Exact vectors sent per iteration by block ALS on ``user_items`` with ``blocks`` blocks a side.

    Returns
    -------
    item_vectors, user_vectors : int
        Item vectors sent to user blocks (user half-step) and user vectors
        sent to item blocks (item half-step).

    >>> vectors_shipped(train.user_items, 10)
    """
    user_items = check_user_items(user_items)
    blocks = check_positive_int(blocks, "blocks")
    coo = user_items.tocoo()

    def distinct_pairs(ids, other_ids):                      # distinct (id, block of the other side)
        pairs = sp.csr_matrix((np.ones(len(ids), np.int8), (ids, other_ids % blocks)),
                              shape=(int(ids.max()) + 1, blocks))
        pairs.sum_duplicates()
        return int(pairs.nnz)

    return distinct_pairs(coo.col, coo.row), distinct_pairs(coo.row, coo.col)


def expected_vectors_shipped(user_degrees, item_degrees, blocks: int) -> tuple[float, float]:
    """Expected :func:`vectors_shipped` when each id's partners fall into blocks at random.

    Parameters
    ----------
    user_degrees, item_degrees : array of int
        Interactions per user and per item (only their distribution matters,
        so a larger catalogue can be modelled by repeating them).
    blocks : int

    Returns
    -------
    item_vectors, user_vectors : float
    """
    blocks = check_positive_int(blocks, "blocks")
    reached = []
    for name, degrees in (("item_degrees", item_degrees), ("user_degrees", user_degrees)):
        degrees = np.asarray(degrees, dtype=np.float64)
        if degrees.ndim != 1 or degrees.size == 0 or (degrees < 0).any():
            raise ValueError(f"{name} must be a non-empty 1-D array of counts >= 0.")
        reached.append(float(np.sum(blocks * -np.expm1(degrees * np.log1p(-1.0 / blocks)))) if blocks > 1
                       else float(np.count_nonzero(degrees)))
    return reached[0], reached[1]


def als_iteration_cost(user_degrees, item_degrees, *, blocks: int, factors: int, executors: int) -> dict:
    """Bytes shuffled per ALS iteration and memory per executor, on paper.

    Parameters
    ----------
    user_degrees, item_degrees : array of int
        Interactions per user and per item.
    blocks : int
        Blocks per side (Spark's ``numUserBlocks`` = ``numItemBlocks``).
    factors : int
        Embedding dimension k.
    executors : int
        Machines (executor JVMs) that share the blocks.

    Returns
    -------
    dict with ``shuffle bytes`` (per iteration, both half-steps),
    ``interactions``, and the ``memory bytes per executor``: its share of the
    interactions (kept in both blockings), of the user and item vectors, and
    of the vectors it receives in one half-step.

    Examples
    --------
    >>> als_iteration_cost(np.tile(user_deg, 1000), np.tile(item_deg, 1000), blocks=200, factors=64, executors=50)
    """
    factors = check_positive_int(factors, "factors")
    executors = check_positive_int(executors, "executors")
    items_sent, users_sent = expected_vectors_shipped(user_degrees, item_degrees, blocks)
    vector = BYTES_PER_NUMBER * factors
    interactions = float(np.sum(user_degrees))
    owned = (len(user_degrees) + len(item_degrees)) * vector
    shuffle = (items_sent + users_sent) * vector
    memory = (interactions * BYTES_PER_RATING + owned + max(items_sent, users_sent) * vector) / executors
    return {"interactions": interactions, "shuffle bytes": shuffle, "memory bytes per executor": memory}
