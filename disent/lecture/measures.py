"""What the items measure on a trained model, beyond the metrics its run scored: the factor-latent
mutual information matrix, each latent's KL, the part of the KL that carries information."""

import numpy as np

from disent.data import build_dataset
from disent.lecture.runs import Job
from disent.metrics.udr import gaussian_kl
from disent.metrics.utils import (
    discrete_entropy,
    discrete_mutual_info,
    generate_batch_factor_code,
    histogram_discretize,
)
from disent.models import encoder_of


def mi_matrix(job: Job, num_points: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(I(z_j; v_k) / H(v_k) of the mean codes (Z, K) on `num_points` points, the mean KL of each
    latent (Z,), the factor names), kept in the job's measures. With MIG's settings (10,000 points,
    20 bins, the run's metric seed) the per-factor gaps of the matrix average to the run's MIG."""
    kept = job.measure(f"mi_matrix(points={num_points})", lambda: _mi_matrix(job, num_points))
    return np.asarray(kept["mi"]), np.asarray(kept["kl"]), kept["factor_names"]


def _mi_matrix(job: Job, num_points: int) -> dict:
    model, cfg = job.load()
    data = build_dataset(cfg.dataset)
    encode = encoder_of(model, 512)
    rng = np.random.default_rng(cfg.metrics.seed)  # the draws of the run's MIG
    codes, factors = generate_batch_factor_code(data, lambda x: encode(x)[0], num_points, rng)
    mi = (
        discrete_mutual_info(histogram_discretize(codes, 20), factors)
        / discrete_entropy(factors)[None, :]
    )
    mu, logvar = encode(data.sample_observations(2000, np.random.default_rng(1)))
    kl = gaussian_kl(mu, logvar)
    return {"mi": mi.tolist(), "kl": kl.tolist(), "factor_names": list(data.factor_names)}


def kl_offsets(job: Job, num_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(each latent's mean KL to the prior (Z,), the part of it that is a constant offset of the means,
    ½·E[μ_j]² (Z,)) on `num_points` images, kept in the job's measures. An offset is the same for
    every image, so it carries no information: a KL made of offsets is capacity spent on nothing."""
    kept = job.measure(f"kl_offsets(points={num_points})", lambda: _kl_offsets(job, num_points))
    return np.asarray(kept["kl"]), np.asarray(kept["offset"])


def _kl_offsets(job: Job, num_points: int) -> dict:
    mu, logvar = _posteriors(job, num_points)
    kl = gaussian_kl(mu, logvar)
    return {"kl": kl.tolist(), "offset": (0.5 * mu.mean(axis=0) ** 2).tolist()}


def capacity_gap(job: Job, num_points: int, capacity: float, num_batches: int) -> float:
    """`batch_capacity_gap` of the run's final codes of `num_points` images, in batches of the run's
    size (kept in the job's measures). Times γ, it is the capacity penalty γ·|KL − C| that those codes
    pay per step on average."""
    key = f"capacity_gap(points={num_points},capacity={capacity:g},batches={num_batches})"
    kept = job.measure(key, lambda: _capacity_gap(job, num_points, capacity, num_batches))
    return float(kept["gap"])


def _capacity_gap(job: Job, num_points: int, capacity: float, num_batches: int) -> dict:
    mu, logvar = _posteriors(job, num_points)
    rng = np.random.default_rng(2)
    batch_size = job.results["batch_size"]
    return {"gap": batch_capacity_gap(mu, logvar, capacity, batch_size, num_batches, rng)}


def batch_capacity_gap(
    mu: np.ndarray,
    logvar: np.ndarray,
    capacity: float,
    batch_size: int,
    num_batches: int,
    rng: np.random.Generator,
) -> float:
    """E|KL_batch − C| in nats over `num_batches` batches drawn from the codes (N, Z): KL_batch is the
    mean over a batch's images of each image's KL to the prior, summed over latents, as the
    AnnealedVAE's penalty γ·|KL − C| reads it. Codes whose KL differs from image to image pay for the
    spread of KL_batch from batch to batch; a constant offset of the means pays nothing."""
    kl_per_image = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(axis=1)  # (N,)
    batches = rng.integers(0, len(kl_per_image), (num_batches, batch_size))
    kl_per_batch = kl_per_image[batches].mean(axis=1)  # (num_batches,)
    return float(np.abs(kl_per_batch - capacity).mean())


def _posteriors(job: Job, num_points: int) -> tuple[np.ndarray, np.ndarray]:
    """The trained encoder's (mu, logvar) (N, Z) on `num_points` images of its data set (fixed draw)."""
    model, cfg = job.load()
    data = build_dataset(cfg.dataset)
    images = data.sample_observations(num_points, np.random.default_rng(1))
    return encoder_of(model, 512)(images)


def information_bound(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Per latent, an upper bound on the information the code carries about the image, I(x; z_j),
    from the encoder's Gaussians over N images: ``(N, Z), (N, Z) -> (Z,)``, in nats.

        I(x; z_j) <= 1/2 log(Var[mu_j] + E[sigma_j^2]) - 1/2 E[log sigma_j^2]

    (a Gaussian has the largest entropy at a given variance). It splits each latent's mean KL
    exactly: KL_j = bound_j + KL(N(E[mu_j], Var[mu_j] + E[sigma_j^2]) || N(0, 1)). The second term is
    KL spent on making the codes' marginal differ from the prior, which tells no two images apart: a
    constant offset of the means, or posteriors narrower than the prior around a constant mean."""
    spread = mu.var(axis=0) + np.exp(logvar).mean(axis=0)
    return 0.5 * (np.log(spread) - logvar.mean(axis=0))


def kl_information(job: Job, num_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(each latent's mean KL to the prior (Z,), its `information_bound` (Z,)) on `num_points`
    images, kept in the job's measures."""
    kept = job.measure(
        f"kl_information(points={num_points})", lambda: _kl_information(job, num_points)
    )
    return np.asarray(kept["kl"]), np.asarray(kept["information"])


def _kl_information(job: Job, num_points: int) -> dict:
    mu, logvar = _posteriors(job, num_points)
    kl = gaussian_kl(mu, logvar)
    return {"kl": kl.tolist(), "information": information_bound(mu, logvar).tolist()}


def factor_gaps(mi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per factor: (the best latent, its normalised MI, its gap to the second best latent)."""
    ranked = np.sort(mi, axis=0)[::-1]
    return mi.argmax(axis=0), ranked[0], ranked[0] - ranked[1]
