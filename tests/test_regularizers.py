"""Each regularizer of the zoo against a value computed by hand with NumPy on a small fixed tensor."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from disent.models.regularizers import (
    AnnealedVAELoss,
    BetaTCVAELoss,
    DIPVAELoss,
    FactorVAELoss,
    LinearSchedule,
    Posterior,
    gaussian_kl,
    permutation_order,
    permute_dims,
    tc_decomposition,
)

RNG = np.random.default_rng(0)
MU = RNG.normal(size=(6, 3))
LOGVAR = RNG.normal(scale=0.5, size=(6, 3))
Z = MU + np.exp(0.5 * LOGVAR) * RNG.normal(size=(6, 3))


def posterior(mu=MU, logvar=LOGVAR, z=Z) -> Posterior:
    mu, logvar, z = (torch.tensor(a, dtype=torch.float64) for a in (mu, logvar, z))
    return Posterior(mu=mu, logvar=logvar, z=z, kl_per_latent=gaussian_kl(mu, logvar))


def kl_np(mu=MU, logvar=LOGVAR) -> float:
    return float((0.5 * (mu**2 + np.exp(logvar) - logvar - 1)).sum(1).mean())


def test_linear_schedule_rises_then_holds():
    schedule = LinearSchedule(start=0.0, end=25.0, steps=100)
    assert [schedule(s).item() for s in (0, 50, 100, 1000)] == [0.0, 12.5, 25.0, 25.0]
    # no steps: the end at once
    assert LinearSchedule(start=0.0, end=25.0, steps=0)(0).item() == 25.0


@pytest.mark.parametrize("step, capacity", [(0, 0.0), (50, 1.0), (100, 2.0), (500, 2.0)])
def test_annealed_vae_is_gamma_times_distance_of_kl_to_capacity(step, capacity):
    loss, logs = AnnealedVAELoss(
        gamma=1000.0, capacity_schedule={"start": 0, "end": 2.0, "steps": 100}
    )(posterior(), step)
    assert loss.item() == pytest.approx(1000 * abs(kl_np() - capacity), rel=1e-10)
    assert logs["capacity"].item() == pytest.approx(capacity)


def _dip_by_hand(cov: np.ndarray, lambda_od: float, lambda_d: float) -> float:
    off = cov - np.diag(np.diag(cov))
    return lambda_od * (off**2).sum() + lambda_d * ((np.diag(cov) - 1) ** 2).sum()


def test_dip_vae_i_penalises_the_covariance_of_the_means():
    cov = np.cov(MU.T, bias=True)
    loss, logs = DIPVAELoss(lambda_od=2.0, lambda_d=20.0, dip_type="i")(posterior(), 0)
    assert loss.item() == pytest.approx(kl_np() + _dip_by_hand(cov, 2.0, 20.0), rel=1e-10)


def test_dip_vae_ii_adds_the_mean_encoder_variance_on_the_diagonal_only():
    cov_means = np.cov(MU.T, bias=True)
    mean_variance = np.exp(LOGVAR).mean(0)
    right = cov_means + np.diag(mean_variance)
    # the mistake: variances added to every entry of their column
    wrong = cov_means + mean_variance[None, :]
    loss, _ = DIPVAELoss(lambda_od=5.0, lambda_d=5.0, dip_type="ii")(posterior(), 0)
    assert loss.item() == pytest.approx(kl_np() + _dip_by_hand(right, 5.0, 5.0), rel=1e-10)
    assert abs(loss.item() - (kl_np() + _dip_by_hand(wrong, 5.0, 5.0))) > 1e-3


def test_tc_decomposition_matches_the_mws_estimator_by_hand():
    n = 1000
    # (B,B,Z)
    log_q = -0.5 * (
        np.log(2 * np.pi) + LOGVAR[None] + (Z[:, None] - MU[None]) ** 2 / np.exp(LOGVAR[None])
    )
    log_qz = logsumexp(log_q.sum(2), axis=1) - np.log(n * 6)
    log_qz_dims = (logsumexp(log_q, axis=1) - np.log(n * 6)).sum(1)
    log_qzx = (-0.5 * (np.log(2 * np.pi) + LOGVAR + (Z - MU) ** 2 / np.exp(LOGVAR))).sum(1)
    log_pz = (-0.5 * (np.log(2 * np.pi) + Z**2)).sum(1)
    terms = tc_decomposition(posterior(), n, "mws")
    assert terms["mutual_info"].item() == pytest.approx((log_qzx - log_qz).mean(), rel=1e-10)
    assert terms["total_correlation"].item() == pytest.approx(
        (log_qz - log_qz_dims).mean(), rel=1e-10
    )
    assert terms["dimension_kl"].item() == pytest.approx((log_qz_dims - log_pz).mean(), rel=1e-10)
    loss, _ = BetaTCVAELoss(beta=6.0, dataset_size=n, estimator="mws")(posterior(), 0)
    assert loss.item() == pytest.approx(kl_np() + 5 * (log_qz - log_qz_dims).mean(), rel=1e-10)


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_decomposition_sums_to_the_kl_in_expectation(estimator):
    """MI + TC + dimension-wise KL = mean(log q(z|x) − log p(z)) on every batch (the estimates of log
    q(z) cancel), and that single-sample estimate has the analytic KL as its expectation."""
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(256, 4, generator=generator, dtype=torch.float64) * 0.8
    logvar = torch.randn(256, 4, generator=generator, dtype=torch.float64) * 0.3 - 1.0
    per_sample = []
    for _ in range(200):
        z = (
            mu
            + torch.randn(mu.shape, generator=generator, dtype=torch.float64) * (0.5 * logvar).exp()
        )
        terms = tc_decomposition(
            Posterior(mu, logvar, z, gaussian_kl(mu, logvar)), 10_000, estimator
        )
        # log q(z|x) − log p(z)
        log_ratio = (-0.5 * (logvar + (z - mu) ** 2 / logvar.exp()) + 0.5 * z**2).sum(1)
        assert sum(t.item() for t in terms.values()) == pytest.approx(
            log_ratio.mean().item(), abs=1e-9
        )
        per_sample.append(log_ratio)
    per_sample = torch.cat(per_sample)
    analytic = gaussian_kl(mu, logvar).sum(1).mean().item()
    standard_error = per_sample.std().item() / math.sqrt(len(per_sample))
    assert abs(per_sample.mean().item() - analytic) < 4 * standard_error


def test_posterior_equal_to_the_prior_has_no_information_and_no_correlation():
    z = torch.randn(400, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    zeros = torch.zeros_like(z)
    terms = tc_decomposition(Posterior(zeros, zeros, z, gaussian_kl(zeros, zeros)), 400, "mws")
    # q(z|x) = p(z) for every x: q(z) = p(z) = Π_d q(z_d) up to the estimator's log(N·M)/N offsets
    assert terms["total_correlation"].item() == pytest.approx(
        2 * math.log(400 * 400 / 400), abs=1e-9
    )
    assert terms["mutual_info"].item() + terms["total_correlation"].item() + terms[
        "dimension_kl"
    ].item() == pytest.approx(0.0, abs=1e-9)


def test_factor_vae_tc_is_the_mean_logit_difference_and_discriminator_learns_the_classes():
    torch.manual_seed(0)
    regularizer = FactorVAELoss(
        gamma=10.0, latent_dim=3, discriminator={"hidden_dim": 16, "num_layers": 2}, permute="same"
    ).double()
    p = posterior()
    logits = regularizer.discriminator(p.z).detach().numpy()
    loss, logs = regularizer(p, 0)
    assert logs["total_correlation"].item() == pytest.approx(
        (logits[:, 0] - logits[:, 1]).mean(), rel=1e-10
    )
    assert loss.item() == pytest.approx(
        kl_np() + 10 * (logits[:, 0] - logits[:, 1]).mean(), rel=1e-10
    )
    draws = regularizer.draws(len(p.z), 3, torch.Generator().manual_seed(1))
    permuted = permute_dims(p.z, draws["order"])
    d_logs = regularizer.discriminator_terms(p, draws)
    d_loss = d_logs["discriminator_loss"]
    joint, shuffled = (regularizer.discriminator(z).detach().numpy() for z in (p.z, permuted))
    cross_entropy = 0.5 * (
        -(joint[:, 0] - logsumexp(joint, axis=1)).mean()
        - (shuffled[:, 1] - logsumexp(shuffled, axis=1)).mean()
    )
    assert d_loss.item() == pytest.approx(cross_entropy, rel=1e-10)
    accuracy = 0.5 * ((joint.argmax(1) == 0).mean() + (shuffled.argmax(1) == 1).mean())
    assert d_logs["discriminator_accuracy"].item() == pytest.approx(accuracy)
    # codes whose two dimensions are equal: the joint lies on the diagonal, the permuted codes do
    # not
    optimizer = torch.optim.Adam(regularizer.discriminator.parameters(), lr=1e-2)
    for _ in range(200):
        base = torch.randn(256, 1, dtype=torch.float64)
        z = torch.cat([base, base, torch.randn(256, 1, dtype=torch.float64)], dim=1)
        draws = regularizer.draws(256, 3, torch.Generator())
        d_logs = regularizer.discriminator_terms(
            Posterior(mu=z, logvar=z * 0, z=z, kl_per_latent=z * 0), draws
        )
        d_loss = d_logs["discriminator_loss"]
        optimizer.zero_grad()
        d_loss.backward()
        optimizer.step()
    assert d_logs["discriminator_accuracy"].item() > 0.9  # it learns the classes


def test_permute_dims_shuffles_each_dimension_independently():
    z = torch.arange(40.0).reshape(10, 4)
    permuted = permute_dims(z, permutation_order(10, 4, torch.Generator().manual_seed(0)))
    for d in range(4):
        assert sorted(permuted[:, d].tolist()) == z[:, d].tolist()  # same values per dimension
    assert not torch.equal(permuted, z)


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (DIPVAELoss, {"lambda_od": 1, "lambda_d": 1, "dip_type": "iii"}),
        (BetaTCVAELoss, {"beta": 1, "dataset_size": 10, "estimator": "xyz"}),
    ],
)
def test_bad_variant_names_the_choices(cls, kwargs):
    with pytest.raises(ValueError, match="must be"):
        cls(**kwargs)
