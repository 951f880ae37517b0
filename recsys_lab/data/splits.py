"""The course's two evaluation splits.

* :func:`leave_last_out`: the shared top-N protocol. Each user's events are
  in time order; the last is the test target, the one before it the
  validation target, the rest are training history. MovieLens-100K logs
  many ratings in the same second; their order is the fixed pseudo-random
  one of :class:`~recsys_lab.data.Interactions` (never item ids, which leak
  release order). ``hide_target_second=True`` is the robustness variant:
  a target's history also leaves out the events of the target's own second.
* :func:`roll_back`: training labels for a second-stage ranker: each user's
  last few events of a history become targets, predicted from what came
  before them.
* :func:`cold_items`: a fixed random share of the catalogue to hold out
  entirely, for cold-start experiments.
* :func:`rating_folds`: fixed random K folds for rating prediction (RMSE).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_lab.data.interactions import Interactions
from recsys_lab.validation import check_positive_int, check_random_state

__all__ = ["LeaveLastOutSplit", "RolledBack", "leave_last_out", "roll_back", "cold_items", "rating_folds"]


@dataclass(frozen=True)
class LeaveLastOutSplit:
    """Train history plus one validation and one test target per user.

    Attributes
    ----------
    train : Interactions
        Everything but each user's last two events: what a model may see
        for the validation targets.
    test_history : Interactions
        What a model may see for the test targets: ``train`` plus the
        validation events (less the targets' own seconds in the variant).
    valid_items, test_items : ndarray of shape (n_users,)
        Column index of each user's target, -1 for users with fewer than
        three events (they stay in ``train`` and are not evaluated).
    valid_events, test_events : Interactions
        The target events themselves (with rating and timestamp).
    """

    train: Interactions
    test_history: Interactions
    valid_events: Interactions
    test_events: Interactions
    valid_items: np.ndarray
    test_items: np.ndarray

    def history(self, on: str) -> Interactions:
        """What a model may see when predicting the ``on`` target: fit on it, score with it.

        For ``"valid"`` the training events; for ``"test"`` the training
        events plus the validation target, which is then also excluded from
        the ranking (the user has interacted with it). Every model is refit
        on ``history("test")`` before it is scored on test
        (:func:`recsys_lab.evaluation.refit`), so all models see the same
        events for the same target.
        """
        if on == "valid":
            return self.train
        if on == "test":
            return self.test_history
        raise ValueError(f"on={on!r} must be 'valid' or 'test'.")

    def targets(self, on: str) -> np.ndarray:
        """Target column per user for ``on`` (-1 where the user has none)."""
        if on not in ("valid", "test"):
            raise ValueError(f"on={on!r} must be 'valid' or 'test'.")
        return self.valid_items if on == "valid" else self.test_items

    def __repr__(self) -> str:
        n_eval = int((self.test_items >= 0).sum())
        return f"LeaveLastOutSplit(train={self.train!r}, evaluated users={n_eval})"


def leave_last_out(interactions: Interactions, *, hide_target_second: bool = False) -> LeaveLastOutSplit:
    """Split each user's time-ordered history into train / validation / test.

    Parameters
    ----------
    interactions : Interactions
        The whole log; same-second events follow its ``tie_break`` order.
    hide_target_second : bool
        The robustness variant for sequence models: a target's history also
        leaves out the other events logged in the target's own second, as if
        they had never been logged (they then compete in the ranking like
        any unseen item). Same-second ratings come in batches of nearby ids,
        a trace of how MovieLens collected them that a sequence model can
        exploit; this variant removes it.

    Examples
    --------
    >>> split = leave_last_out(load_movielens_100k().interactions)
    >>> split.test_items[:3]    # one held-out item column per user
    """
    if not isinstance(interactions, Interactions):
        raise TypeError(f"leave_last_out takes an Interactions, got {type(interactions).__name__}.")
    if not isinstance(hide_target_second, bool):
        raise TypeError(f"hide_target_second must be True or False, got {hide_target_second!r}.")
    events = interactions.events  # sorted by user, then time (same-second events in the tie-break order)
    position_from_end = events.groupby("user").cumcount(ascending=False).to_numpy()
    user_size = events.groupby("user")["user"].transform("size").to_numpy()
    evaluable = user_size >= 3
    is_test = evaluable & (position_from_end == 0)
    is_valid = evaluable & (position_from_end == 1)

    def target_column(mask: np.ndarray) -> np.ndarray:
        targets = np.full(interactions.n_users, -1, dtype=np.int64)
        chosen = events[mask]
        targets[chosen["user"].to_numpy()] = chosen["item"].to_numpy()
        return targets

    in_test_second = in_valid_second = np.zeros(len(events), dtype=bool)
    if hide_target_second:
        in_valid_second = _in_target_second(events, is_valid)
        in_test_second = _in_target_second(events, is_test)
    earlier = ~(is_test | is_valid)
    return LeaveLastOutSplit(
        train=interactions.subset(earlier & ~in_valid_second),
        test_history=interactions.subset((earlier | is_valid) & ~in_test_second),
        valid_events=interactions.subset(is_valid),
        test_events=interactions.subset(is_test),
        valid_items=target_column(is_valid),
        test_items=target_column(is_test),
    )


def _in_target_second(events: pd.DataFrame, is_target: np.ndarray) -> np.ndarray:
    """True for the events (other than the target) logged in the same second as their user's target."""
    target_second = pd.Series(events.loc[is_target, "timestamp"].to_numpy(), index=events.loc[is_target, "user"].to_numpy())
    second = events["user"].map(target_second).to_numpy()
    return (events["timestamp"].to_numpy() == second) & ~is_target


@dataclass(frozen=True)
class RolledBack:
    """A history rolled back by a few events per user, and the events it dropped.

    Attributes
    ----------
    history : Interactions
        Each user's events but the last ``n_targets``: what the models that
        produce the ranker's features are fitted on.
    targets : Interactions
        The dropped events: the items each user went on to choose.
    """

    history: Interactions
    targets: Interactions

    @property
    def target_items(self) -> sp.csr_matrix:
        """(n_users, n_items) binary CSR matrix, 1 where the item is one of the user's targets."""
        return self.targets.user_items

    def __repr__(self) -> str:
        return f"RolledBack(history={self.history!r}, targets={len(self.targets)} events)"


def roll_back(interactions: Interactions, n_targets: int = 5, *, min_history: int = 1) -> RolledBack:
    """Hold out each user's last ``n_targets`` events of ``interactions`` as targets.

    A learned ranker needs labelled examples drawn like the prediction it
    will make: "the items this user chose next, given what came before".
    The leave-last-out split has one such label per user for validation;
    rolling the training history back by a few events gives several more
    per user, with every label after the history its features are computed
    from, so nothing leaks backwards in time. Same-second events keep the
    log's tie-break order, as in :func:`leave_last_out`.

    Parameters
    ----------
    interactions : Interactions
        The history to roll back, usually ``split.train``.
    n_targets : int
        Events to hold out per user (>= 1).
    min_history : int
        Events every user keeps (>= 1): a user with fewer than
        ``n_targets + min_history`` events gives fewer targets, never their
        whole history.

    Examples
    --------
    >>> rolled = roll_back(split.train, n_targets=5)
    >>> ranker_labels = rolled.target_items   # 1 for each user's last five training items
    """
    if not isinstance(interactions, Interactions):
        raise TypeError(f"roll_back takes an Interactions (for example split.train), got {type(interactions).__name__}.")
    n_targets = check_positive_int(n_targets, "n_targets")
    min_history = check_positive_int(min_history, "min_history")
    events = interactions.events  # sorted by user, then time (same-second events in the tie-break order)
    position_from_end = events.groupby("user").cumcount(ascending=False).to_numpy()
    position_from_start = events.groupby("user").cumcount().to_numpy()
    is_target = (position_from_end < n_targets) & (position_from_start >= min_history)
    if not is_target.any():
        raise ValueError(f"no user has more than min_history={min_history} events, so nothing can be held out; "
                         f"lower min_history or pass a longer history.")
    return RolledBack(history=interactions.subset(~is_target), targets=interactions.subset(is_target))


def cold_items(n_items: int, share: float = 0.1, *, random_state=0) -> np.ndarray:
    """Sorted columns of a random ``share`` of the catalogue, for cold-start experiments.

    Every event on these items is held out of training, so a model meets them
    as new items; the default seed makes the set the same wherever it is drawn
    (chapter 05 and its solutions).

    >>> cold = cold_items(ml.interactions.n_items)      # 168 of 1682 items
    """
    n_items = check_positive_int(n_items, "n_items", minimum=2)
    if not 0 < share < 1:
        raise ValueError(f"share={share} must lie strictly between 0 and 1.")
    size = int(n_items * share)
    if size == 0:
        raise ValueError(f"share={share} of {n_items} items selects none; raise share.")
    return np.sort(check_random_state(random_state).choice(n_items, size=size, replace=False))


def rating_folds(ratings: pd.DataFrame, n_folds: int = 5, *, random_state=0):
    """Yield ``(train, test)`` frames for K fixed random folds over the rows.

    The default seed makes the folds the same in every chapter, so RMSEs
    from chapters 02 and 03 compare fold by fold.

    >>> for train, test in rating_folds(ml.ratings): ...
    """
    n_folds = check_positive_int(n_folds, "n_folds", minimum=2)
    if len(ratings) < n_folds:
        raise ValueError(f"{len(ratings)} rows cannot be split into n_folds={n_folds} folds.")
    fold_of_row = check_random_state(random_state).permutation(len(ratings)) % n_folds
    for fold in range(n_folds):
        yield ratings[fold_of_row != fold], ratings[fold_of_row == fold]
