"""LightGCN: graph normalisation, propagation, gradients, training."""

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from recsys_lab.models.lightgcn import (  # noqa: E402
    LightGCN, LightGCNConfig, LightGCNModule, _SymmetricPropagate, _to_torch, normalized_adjacency,
)

def binary(n_users, n_items, density, seed):
    """A random 0/1 user x item CSR matrix."""
    return sp.random(n_users, n_items, density=density, format="csr", random_state=seed, data_rvs=np.ones,
                     dtype=np.float32)



def test_normalized_adjacency_matches_the_formula():
    R = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    A = normalized_adjacency(R).toarray()
    dense = np.zeros((5, 5))
    dense[:2, 2:], dense[2:, :2] = R.toarray(), R.toarray().T
    degree = dense.sum(1)
    inv = np.zeros_like(degree)
    inv[degree > 0] = degree[degree > 0] ** -0.5
    np.testing.assert_allclose(A, inv[:, None] * dense * inv[None, :], rtol=1e-6)
    np.testing.assert_allclose(A, A.T)
    assert (A[4] == 0).all()  # an item nobody touched stays isolated


def test_symmetric_propagation_gradient_equals_dense():
    rng = np.random.default_rng(0)
    graph = normalized_adjacency(sp.random(6, 5, density=0.4, format="csr", random_state=0))
    dense = torch.as_tensor(graph.toarray())
    x1 = torch.tensor(rng.normal(size=(11, 3)), dtype=torch.float32, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    (_SymmetricPropagate.apply(_to_torch(graph), x1) ** 2).sum().backward()
    ((dense @ x2) ** 2).sum().backward()
    np.testing.assert_allclose(x1.grad.numpy(), x2.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_layer_averaging():
    graph = normalized_adjacency(sp.random(4, 3, density=0.5, format="csr", random_state=1))
    cfg = LightGCNConfig(factors=2, n_layers=2)
    module = LightGCNModule(_to_torch(graph), 4, 3, cfg)
    E0 = module.embedding.weight.detach().numpy()
    A = graph.toarray()
    expected = (E0 + A @ E0 + A @ A @ E0) / 3
    users, items = module()
    np.testing.assert_allclose(np.vstack([users.detach(), items.detach()]), expected, rtol=1e-5, atol=1e-6)
    no_layers = LightGCNModule(_to_torch(graph), 4, 3, LightGCNConfig(factors=2, n_layers=0))
    np.testing.assert_allclose(torch.cat(no_layers()).detach(), no_layers.embedding.weight.detach())


def test_fit_is_seeded_and_learns():
    X = binary(60, 40, 0.15, 0)
    cfg = LightGCNConfig(factors=8, n_layers=2, epochs=15, batch_size=256, lr=0.05)
    a = LightGCN(cfg, random_state=0).fit(X, show_progress=False)
    b = LightGCN(cfg, random_state=0).fit(X, show_progress=False)
    np.testing.assert_allclose(a.user_factors, b.user_factors)
    assert a.user_factors.shape == (60, 8) and a.item_factors.shape == (40, 8)
    assert a.history_.loss[-1] < a.history_.loss[0]
    # training pairs now score above the user's average item
    scores = a.user_factors @ a.item_factors.T
    coo = X.tocoo()
    assert scores[coo.row, coo.col].mean() > scores.mean()


def test_on_epoch_end_records_a_metric():
    X = binary(30, 20, 0.2, 1)
    model = LightGCN(LightGCNConfig(factors=4, epochs=3), random_state=0)
    model.fit(X, show_progress=False, on_epoch_end=lambda m: float(m.user_factors.mean()))
    assert len(model.history_.metric) == 3


def test_sampled_negatives_are_never_training_positives(monkeypatch):
    import recsys_lab.models.lightgcn as lightgcn

    X = binary(20, 12, 0.5, 2)                          # dense rows: a uniform draw hits a positive half the time
    seen = []

    def recording_loss(module, users, positives, negatives, l2):
        seen.append((users.numpy(), negatives.numpy()))
        return lightgcn_loss(module, users, positives, negatives, l2)

    lightgcn_loss = lightgcn.bpr_loss
    monkeypatch.setattr(lightgcn, "bpr_loss", recording_loss)
    LightGCN(LightGCNConfig(factors=4, epochs=2, batch_size=32), random_state=0).fit(X, show_progress=False)
    users, negatives = map(np.concatenate, zip(*seen))
    assert len(users) == 2 * X.nnz and not np.asarray(X[users, negatives]).any()


@pytest.mark.parametrize("kwargs, match", [({"n_layers": -1}, "n_layers=-1"), ({"lr": 0.0}, "lr=0.0"),
                                           ({"factors": 0}, "factors=0"), ({"l2": -1.0}, "l2=-1.0"),
                                           ({"patience": 0}, "patience=0")])
def test_config_errors_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LightGCNConfig(**kwargs)


def test_wrong_config_type():
    with pytest.raises(TypeError, match="LightGCNConfig"):
        LightGCN({"factors": 8}).fit(binary(5, 4, 0.5, 0), show_progress=False)
