"""Mean Correlation Coefficient (MCC) after matching code dimensions to factors.

Paper: I. Khemakhem, D. P. Kingma, R. P. Monti, A. Hyvärinen, "Variational Autoencoders and Nonlinear
ICA: A Unifying Framework", AISTATS 2020 (https://arxiv.org/abs/1907.04809), and the identifiability
literature after it (e.g. Zimmermann et al. 2021, "Contrastive Learning Inverts the Data Generating
Process"), which score a representation by it. Reference implementation: the iVAE authors'
``mean_corr_coef`` (Pearson or Spearman correlations, then a linear sum assignment).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata

from disent.metrics.utils import check_codes_factors

__all__ = ["mcc"]

CORRELATIONS = ("pearson", "spearman")


def mcc(codes, factors, correlation: str = "pearson") -> dict[str, float]:
    """Mean absolute correlation of matched (code dimension, factor) pairs.

    Formula
        ``C[j, k] = |corr(z_j, f_k)|`` (Pearson, or Spearman: Pearson of the ranks); a constant
        column correlates 0 with everything. The one-to-one matching ``pi`` of factors to distinct
        code dimensions maximising ``sum_k C[pi(k), k]`` (Hungarian algorithm) gives::

            MCC = 1/min(D, K) * sum_k C[pi(k), k]

        1 when every factor is a monotone (Spearman) or affine (Pearson) function of its own code
        dimension; invariant to permuting and rescaling the code dimensions.

    Args:
        codes: ``(N, D)`` representations.
        factors: ``(N, K)`` ground-truth factors of the same samples.
        correlation: ``"pearson"`` or ``"spearman"``.

    Returns:
        ``{"mcc": float}``.

    Differences from the iVAE code
        That code matches square matrices (as many latents as sources); here ``D`` and ``K`` may
        differ (a VAE of 10 latents on dSprites' 5 factors): each factor gets its own code
        dimension, and the mean runs over ``min(D, K)`` pairs.
    """
    codes, factors = check_codes_factors(codes, factors)
    if correlation not in CORRELATIONS:
        raise ValueError(f"correlation must be one of {CORRELATIONS}, got {correlation!r}")
    codes = codes.astype(np.float64)
    factors = factors.astype(np.float64)
    if correlation == "spearman":
        codes = rankdata(codes, axis=0)
        factors = rankdata(factors, axis=0)
    matrix = np.abs(_correlations(codes, factors))  # (D, K)
    rows, columns = linear_sum_assignment(matrix, maximize=True)
    return {"mcc": float(matrix[rows, columns].mean())}


def _correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlations of every column of a (N, D) with every column of b (N, K); 0 where a
    column is constant."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    norms = np.outer(np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms > 0, (a.T @ b) / norms, 0.0)
