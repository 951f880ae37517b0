"""Mult-VAE / Mult-DAE: config checks, seeding, the vectors behind the scores."""

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from recsys_lab.models.multvae import MultVAE, MultVAEConfig, annealed_beta, negative_elbo  # noqa: E402

# these tests read the module's tensors directly, so they pin the CPU (benchmarks/cuda_check.py covers cuda)
SMALL = dict(hidden=16, latent=4, epochs=5, batch_size=16, anneal_epochs=2, device="cpu")

def binary(n_users, n_items, density, seed):
    """A random 0/1 user x item CSR matrix."""
    return sp.random(n_users, n_items, density=density, format="csr", random_state=seed, data_rvs=np.ones,
                     dtype=np.float32)



@pytest.mark.parametrize("variational", [True, False])
def test_fit_seeded_and_vectors_reproduce_the_logits(variational):
    X = binary(50, 30, 0.2, 0)
    cfg = MultVAEConfig(**SMALL, variational=variational)
    a = MultVAE(cfg, random_state=0).fit(X, show_progress=False)
    b = MultVAE(cfg, random_state=0).fit(X, show_progress=False)
    np.testing.assert_allclose(a.item_factors, b.item_factors)
    assert a.item_factors.shape == (30, 17) and len(a.history_.loss) == 5
    with torch.no_grad():
        logits, _, _ = a.module_(torch.as_tensor(X[:4].toarray()))
    np.testing.assert_allclose(a.user_vectors(X[:4]) @ a.item_factors.T, logits.numpy(), rtol=1e-4, atol=1e-4)


def test_training_lowers_the_loss_and_scores_new_users():
    X = binary(80, 30, 0.2, 2)
    model = MultVAE(MultVAEConfig(**{**SMALL, "epochs": 30}, lr=1e-2), random_state=0).fit(X, show_progress=False)
    assert model.history_.loss[-1] < model.history_.loss[0]
    newcomer = sp.csr_matrix(np.eye(1, 30, 3, dtype=np.float32))
    ids, scores = model.recommend(0, newcomer, N=5)
    assert 3 not in ids and np.all(np.diff(scores) <= 0)


@pytest.mark.parametrize("kwargs, match", [({"dropout": 1.0}, "dropout=1.0"), ({"latent": 0}, "latent=0"),
                                           ({"beta_max": -0.1}, "beta_max=-0.1"), ({"lr": 0.0}, "lr=0.0"),
                                           ({"patience": 0}, "patience=0"), ({"anneal_epochs": 0}, "anneal_epochs=0")])
def test_config_errors_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultVAEConfig(**kwargs)


def test_user_vectors_checks_the_width():
    X = binary(20, 10, 0.3, 0)
    model = MultVAE(MultVAEConfig(**SMALL), random_state=0).fit(X, show_progress=False)
    with pytest.raises(ValueError, match="11 columns"):
        model.user_vectors(sp.csr_matrix((2, 11)))


def test_negative_elbo_on_values_worked_by_hand():
    n_items = 8
    logits = torch.zeros(2, n_items)                        # a uniform softmax: each click costs log(8)
    x = torch.zeros(2, n_items)
    x[0, 1] = x[1, [2, 5]] = 1.0                             # one click, then two
    mu, logvar = torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.zeros(2, 2)   # KL 0 and 0.5
    nll = np.log(n_items) * (1 + 2) / 2
    assert negative_elbo(logits, x, mu, None, beta=0.3).item() == pytest.approx(nll)          # Mult-DAE: no KL
    assert negative_elbo(logits, x, mu, logvar, beta=0.3).item() == pytest.approx(nll + 0.3 * 0.25)


def test_beta_grows_linearly_then_stays():
    betas = [annealed_beta(step, beta_max=0.2, anneal_steps=4) for step in range(7)]
    assert betas == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.2, 0.2])
