"""Unsupervised scores of a representation (no ground-truth factors needed).

Reference implementation: disentanglement_lib ``evaluation/metrics/unsupervised_metrics.py``
(used in F. Locatello et al., "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations", ICML 2019, https://arxiv.org/abs/1811.12359). The Gaussian
total correlation is the quantity penalised by the beta-TC-VAE / FactorVAE
(https://arxiv.org/abs/1802.04942, https://arxiv.org/abs/1802.05983).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from disent.metrics.utils import discrete_mutual_info, histogram_discretize

__all__ = ["unsupervised", "gaussian_total_correlation", "gaussian_wasserstein_correlation"]


def unsupervised(codes, num_bins: int = 20) -> dict[str, float]:
    """Covariance- and mutual-information-based scores of codes.

    Formula
        ``S = np.cov(codes)`` (``D x D``, ``ddof=1``) and ``diag(S)`` its diagonal.

        - ``gaussian_total_correlation`` = KL(N(0, S) || N(0, diag(S)))
          ``= 1/2 (sum_i log S_ii - log det S)``.
        - ``gaussian_wasserstein_correlation`` = squared 2-Wasserstein distance between
          N(0, S) and N(0, diag(S)) ``= 2 tr(S) - 2 tr(sqrtm(S * diag(S)[:, None]))``.
        - ``gaussian_wasserstein_correlation_norm`` = the above ``/ tr(S)``.
        - ``mutual_info_score`` = mean over ordered pairs ``i != j`` of the discrete mutual
          information (nats) between codes ``i`` and ``j`` (``num_bins`` equal-width bins):
          ``sum_{i != j} I[i, j] / (D^2 - D)``.

    Settings (disentanglement_lib study)
        ``num_train = 10000`` points, 20 bins.

    Args:
        codes: ``(N, D)`` representations, ``D >= 2``.
        num_bins: bins per code dimension for the mutual information.

    Returns:
        ``{"gaussian_total_correlation", "gaussian_wasserstein_correlation",
        "gaussian_wasserstein_correlation_norm", "mutual_info_score"}`` as floats.

    Differences from disentanglement_lib
        - Code dims with zero variance are left out of the two Gaussian correlations (a
          constant dim is independent of all others, so this is the limit value; DL returns
          NaN for the total correlation and takes ``sqrtm`` of a singular matrix). With all
          variances positive the numbers are DL's. They stay in ``mutual_info_score``
          (contributing 0, as in DL) and in the ``tr(S)`` normaliser (they add 0 to it).
        - If ``sqrtm`` returns a complex matrix (numerical noise), its real part is used.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise ValueError(f"codes must be (N, D) with D >= 2, got shape {codes.shape}")
    num_codes = codes.shape[1]
    cov = np.cov(codes.T)  # same call (and memory layout) as DL's np.cov(mus_train)
    alive = np.diag(cov) > 0
    cov_alive = cov if alive.all() else cov[np.ix_(alive, alive)]
    scores = {}
    scores["gaussian_total_correlation"] = float(gaussian_total_correlation(cov_alive))
    scores["gaussian_wasserstein_correlation"] = float(gaussian_wasserstein_correlation(cov_alive))
    scores["gaussian_wasserstein_correlation_norm"] = float(
        scores["gaussian_wasserstein_correlation"] / np.sum(np.diag(cov))
    )
    discrete = histogram_discretize(codes, num_bins)
    mi = discrete_mutual_info(discrete, discrete)
    np.fill_diagonal(mi, 0)
    scores["mutual_info_score"] = float(np.sum(mi) / (num_codes**2 - num_codes))
    return scores


def gaussian_total_correlation(cov: np.ndarray) -> float:
    """KL divergence between N(0, cov) and the product of its marginals N(0, diag(cov))."""
    if cov.shape[0] == 0:
        return 0.0
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1]))


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """Squared 2-Wasserstein distance between N(0, cov) and N(0, diag(cov))."""
    if cov.shape[0] == 0:
        return 0.0
    sqrtm = scipy.linalg.sqrtm(cov * np.expand_dims(np.diag(cov), axis=1))
    return float(np.real(2 * np.trace(cov) - 2 * np.trace(sqrtm)))
