"""Loss terms of the VAE against values computed by hand with NumPy."""

import numpy as np
import pytest
import torch

from disent.models.regularizers import BetaVAELoss, Posterior, gaussian_kl
from disent.models.vae import VAE, reconstruction_loss
from disent.nets import build_encoder_decoder

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(3, 1, 4, 4))
TARGETS = (RNG.random(size=(3, 1, 4, 4)) > 0.5).astype(np.float64)
MU = RNG.normal(size=(3, 5))
LOGVAR = RNG.normal(size=(3, 5))


def test_bernoulli_reconstruction_is_summed_binary_cross_entropy():
    p = 1 / (1 + np.exp(-LOGITS))
    expected = -(TARGETS * np.log(p) + (1 - TARGETS) * np.log(1 - p)).reshape(3, -1).sum(1).mean()
    got = reconstruction_loss(torch.tensor(LOGITS), torch.tensor(TARGETS), "bernoulli")
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_gaussian_reconstruction_is_summed_squared_error_of_sigmoid():
    p = 1 / (1 + np.exp(-LOGITS))
    expected = ((p - TARGETS) ** 2).reshape(3, -1).sum(1).mean()
    got = reconstruction_loss(torch.tensor(LOGITS), torch.tensor(TARGETS), "gaussian")
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_unknown_reconstruction_names_the_choices():
    with pytest.raises(ValueError, match="bernoulli"):
        reconstruction_loss(torch.zeros(1, 1), torch.zeros(1, 1), "laplace")


def test_gaussian_kl_matches_closed_form():
    var = np.exp(LOGVAR)
    expected = 0.5 * (MU**2 + var - np.log(var) - 1)
    np.testing.assert_allclose(
        gaussian_kl(torch.tensor(MU), torch.tensor(LOGVAR)).numpy(), expected, rtol=1e-12
    )
    assert gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max().item() == 0.0


@pytest.mark.parametrize("beta", [1.0, 4.0, 16.0])
def test_beta_vae_term_is_beta_times_kl_summed_over_latents_averaged_over_batch(beta):
    kl = gaussian_kl(torch.tensor(MU), torch.tensor(LOGVAR))
    posterior = Posterior(
        mu=torch.tensor(MU), logvar=torch.tensor(LOGVAR), z=torch.tensor(MU), kl_per_latent=kl
    )
    term, _ = BetaVAELoss(beta)(posterior, step=0)
    var = np.exp(LOGVAR)
    expected = beta * (0.5 * (MU**2 + var - LOGVAR - 1)).sum(1).mean()
    assert term.item() == pytest.approx(expected, rel=1e-10)


def test_vae_loss_is_reconstruction_plus_beta_kl_for_the_sampled_z():
    torch.manual_seed(0)
    encoder, decoder = build_encoder_decoder("mlp", (1, 4, 4), latent_dim=3, hidden_dim=8)
    optimizer = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}
    model = VAE(
        encoder, decoder, BetaVAELoss(4.0), "bernoulli", optimizer, final_loss_window=5
    ).double()
    x = torch.tensor(TARGETS)
    draws = model.draws(x, torch.Generator().manual_seed(1))
    terms = model.step_terms(x, draws, step=0)
    # redo by hand with the same noise
    mu, logvar = (t.detach().numpy() for t in model.encode(x))
    eps = draws["noise"].numpy()
    assert eps.shape == mu.shape and np.std(eps) > 0.1
    z = mu + eps * np.exp(0.5 * logvar)
    logits = model.decode(torch.tensor(z)).detach().numpy()
    p = 1 / (1 + np.exp(-logits))
    recon = -(TARGETS * np.log(p) + (1 - TARGETS) * np.log(1 - p)).reshape(3, -1).sum(1).mean()
    kl = (0.5 * (mu**2 + np.exp(logvar) - logvar - 1)).sum(1).mean()
    assert terms["reconstruction"].item() == pytest.approx(recon, rel=1e-9)
    assert terms["kl"].item() == pytest.approx(kl, rel=1e-9)
    assert terms["loss"].item() == pytest.approx(recon + 4.0 * kl, rel=1e-9)
    assert terms["elbo"].item() == pytest.approx(-(recon + kl), rel=1e-9)
    assert sum(terms[f"kl_z{i}"].item() for i in range(3)) == pytest.approx(kl, rel=1e-9)
