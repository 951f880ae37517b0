"""The shared torch training loop: early stopping on a validation metric; the next-item training pairs."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recsys_lab.models.training import prefix_histories, train  # noqa: E402


def fit_line(metrics, *, patience, epochs=10):
    """Fit y = 3x with one weight; ``on_epoch_end`` records the weight and returns the scripted metric."""
    module = torch.nn.Linear(1, 1, bias=False)
    x = torch.ones(8, 1)
    weights = []

    def on_epoch_end(epoch):
        weights.append(module.weight.item())
        return metrics[epoch]

    history = train(module, lambda rng: [(x, 3 * x)], lambda m, a, b: ((m(a) - b) ** 2).mean(), epochs=epochs,
                    lr=0.1, rng=np.random.default_rng(0), device=torch.device("cpu"), show_progress=False,
                    on_epoch_end=on_epoch_end, patience=patience)
    return module, history, weights


def test_patience_stops_after_that_many_epochs_without_a_new_best_and_keeps_the_best_weights():
    module, history, weights = fit_line([0.1, 0.5, 0.4, 0.5, 0.9, 1.0], patience=2)
    assert history.best_epoch == 2 and history.metric == [0.1, 0.5, 0.4, 0.5]   # a tie is no improvement
    assert len(history.loss) == 4 and len(set(weights)) == 4                     # the weight moved every epoch
    assert module.weight.item() == weights[1]                                    # copied back, not retrained


def test_without_patience_every_epoch_runs_and_the_last_weights_stay():
    module, history, weights = fit_line([0.1, 0.5, 0.4], patience=None, epochs=3)
    assert history.best_epoch is None and len(history.loss) == 3
    assert module.weight.item() == weights[-1]


def test_the_cap_ends_training_that_still_improves():
    _, history, _ = fit_line([0.1, 0.2, 0.3], patience=2, epochs=3)
    assert history.best_epoch == 3 and len(history.loss) == 3


def test_patience_errors_say_what_is_missing():
    module = torch.nn.Linear(1, 1)
    args = dict(epochs=2, lr=0.1, rng=np.random.default_rng(0), device=torch.device("cpu"), show_progress=False)
    batches, loss = (lambda rng: [(torch.ones(2, 1),)]), (lambda m, a: m(a).sum())
    with pytest.raises(ValueError, match="patience needs a validation metric"):
        train(module, batches, loss, patience=3, **args)
    with pytest.raises(ValueError, match="returned no metric after epoch 1"):
        train(module, batches, loss, patience=3, on_epoch_end=lambda epoch: None, **args)
    with pytest.raises(ValueError, match="patience"):
        train(module, batches, loss, patience=0, on_epoch_end=lambda epoch: 1.0, **args)


def test_prefix_histories_most_recent_first_and_last_k():
    histories, targets = prefix_histories([np.array([4, 5, 6]), np.array([7])], max_history=2, pad=-1)
    np.testing.assert_array_equal(histories, [[4, -1], [5, 4]])
    np.testing.assert_array_equal(targets, [5, 6])
    histories, targets = prefix_histories([np.array([4, 5, 6, 8])], max_history=3, pad=-1, last=2)
    np.testing.assert_array_equal(histories, [[5, 4, -1], [6, 5, 4]])
    np.testing.assert_array_equal(targets, [6, 8])


def test_prefix_histories_refuses_bad_input():
    with pytest.raises(ValueError, match="no user has two or more events"):
        prefix_histories([np.array([1]), np.array([], dtype=np.int64)], max_history=2, pad=-1)
    with pytest.raises(ValueError, match="max_history=0"):
        prefix_histories([np.array([1, 2])], max_history=0, pad=-1)
    with pytest.raises(ValueError, match="last=0"):
        prefix_histories([np.array([1, 2])], max_history=2, pad=-1, last=0)
