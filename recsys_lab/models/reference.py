"""The ``implicit`` library's models behind the course's interface.

Chapter 03 and the results table compare our from-scratch models with the
industrial implementations the reader will use in practice. This adapter
fits an ``implicit`` model and exposes its factors as a
:class:`FactorRecommender`, so both go through the same evaluator.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from recsys_lab.models.base import FactorRecommender
from recsys_lab.validation import check_factors_finite, check_user_items, seed_from

__all__ = ["ImplicitLibrary"]

_MODELS = {
    "als": "implicit.cpu.als.AlternatingLeastSquares",
    "bpr": "implicit.cpu.bpr.BayesianPersonalizedRanking",
}


class ImplicitLibrary(FactorRecommender):
    """An ``implicit`` CPU model (``"als"`` or ``"bpr"``) with our interface.

    Parameters
    ----------
    kind : {"als", "bpr"}
        Which ``implicit`` model.
    num_threads : int
        Threads for ``implicit`` (0: all cores). One by default, so that
        results repeat: BPR's lock-free parallel updates differ from run to
        run with more than one thread.
    random_state : None, int or Generator
    **params
        Passed to the ``implicit`` constructor (``factors``,
        ``regularization``, ``alpha``, ``iterations``, ``learning_rate``...);
        an unknown name raises ``TypeError`` there.

    Examples
    --------
    >>> model = ImplicitLibrary("als", factors=64, iterations=15, random_state=0).fit(train.user_items)
    >>> model.item_factors.shape
    (1682, 64)
    """

    def __init__(self, kind: str = "als", *, num_threads: int = 1, random_state=None, **params):
        if kind not in _MODELS:
            raise ValueError(f"kind={kind!r} must be one of {sorted(_MODELS)}.")
        self.kind = kind
        self.num_threads = num_threads
        self.random_state = random_state
        self.params = params

    def get_params(self) -> dict:
        return {"kind": self.kind, "num_threads": self.num_threads, "random_state": self.random_state, **self.params}

    def fit(self, user_items, *, show_progress: bool = True) -> "ImplicitLibrary":
        user_items = check_user_items(user_items)
        module_name, class_name = _MODELS[self.kind].rsplit(".", 1)
        module = __import__(module_name, fromlist=[class_name])
        # implicit runs its own threads; a second BLAS thread pool underneath only slows it down
        with threadpool_limits(1, "blas"):
            model = getattr(module, class_name)(
                **self.params, num_threads=self.num_threads, random_state=seed_from(self.random_state)
            )
            model.fit(user_items, show_progress=show_progress)
        self.library_model_ = model
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        check_factors_finite(f"implicit {self.kind}", user_factors=self.user_factors, item_factors=self.item_factors)
        return self
