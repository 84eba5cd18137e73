"""Unsupervised Disentanglement Ranking (UDR): model selection without labels, from how much models
trained with different seeds agree.

Paper: S. Duan, L. Matthey, A. Saraiva, N. Watters, C. P. Burgess, A. Lerchner, I. Higgins,
"Unsupervised Model Selection for Variational Disentangled Representation Learning", ICLR 2020
(https://arxiv.org/abs/1905.12614). Reference: disentanglement_lib's
``evaluation/udr/metrics/udr.py`` (``compute_udr_sklearn``, commit 86a644d of
google-research/disentanglement_lib; not in the 1.5 wheel).

The idea: a disentangled solution is one that many seeds find, up to permutation and sign of the
latents; entangled solutions differ from seed to seed. So every pair (i, j) of models encodes the
same observations, a similarity matrix R between model i's latents and model j's is estimated, and
the pair's score says how close R is to a (partial) permutation matrix. A model's UDR is the median
of its pairs' scores.

Unlike the other metrics this one scores a *set* of models (a study cell: one model and strength, P
seeds), from their codes on shared inputs; `disent-study udr` and `disent-study report` run it on the
codes each job saves (``metrics.shared_codes``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import Lasso
from sklearn.preprocessing import StandardScaler

__all__ = ["gaussian_kl", "relative_strength", "udr"]

CORRELATIONS = ("lasso", "spearman")


def gaussian_kl(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean KL(q(z_j|x) || N(0, 1)) of each latent over the points: ``(N, Z) -> (Z,)``."""
    return np.mean(0.5 * (np.square(mu) + np.exp(logvar) - logvar - 1), axis=0)


def relative_strength(matrix: np.ndarray) -> float:
    """How close a non-negative similarity matrix R (rows: model a's latents, columns: model b's) is to
    a permutation matrix, disentanglement_lib's ``relative_strength_disentanglement``::

        score = 1/2 * ( mean_b  max_a R[a, b]^2 / sum_a R[a, b]
                      + mean_a  max_b R[a, b]^2 / sum_b R[a, b] )

    A column or row that sums to 0 (or holds NaN) counts as 0 in its mean, as in the reference; an
    empty matrix (no active latent in one of the models) scores 0, where the reference raises.
    """
    if matrix.size == 0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = np.nan_to_num(np.max(matrix, axis=0) ** 2 / np.sum(matrix, axis=0), nan=0.0)
        rows = np.nan_to_num(np.max(matrix, axis=1) ** 2 / np.sum(matrix, axis=1), nan=0.0)
    return float((np.nanmean(columns) + np.nanmean(rows)) / 2)


def _lasso_similarity(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """|W| of the Lasso regression b ~ a W: (Z_a, Z_b), row = a latent of a."""
    model = Lasso(alpha=alpha)  # cyclic coordinate descent: deterministic, no random state used
    model.fit(a, b)
    return np.abs(model.coef_).T  # coef_: (Z_b, Z_a)


def _spearman_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Spearman correlation| of every latent of a with every latent of b: (Z_a, Z_b); NaN where a
    latent is constant (as scipy's ``spearmanr`` gives)."""
    ranks_a = rankdata(a, axis=0)
    ranks_b = rankdata(b, axis=0)
    ranks_a = ranks_a - ranks_a.mean(axis=0)
    ranks_b = ranks_b - ranks_b.mean(axis=0)
    norms = np.outer(np.linalg.norm(ranks_a, axis=0), np.linalg.norm(ranks_b, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = (ranks_a.T @ ranks_b) / norms
    return np.abs(np.where(norms > 0, correlation, np.nan))


def udr(
    means: Sequence[np.ndarray],
    kls: Sequence[np.ndarray],
    correlation: str = "lasso",
    filter_low_kl: bool = True,
    kl_threshold: float = 0.01,
    alpha: float = 0.1,
) -> dict[str, np.ndarray]:
    """UDR of each of M models from their mean codes on the same N observations.

    Formula
        Each model's codes are standardised (zero mean, unit variance per latent) and its latents
        with mean KL to the prior ``<= kl_threshold`` are zeroed ("inactive"). For each ordered pair
        (i, j), i != j, R_ij is ``|W|`` of a Lasso regression (``alpha``) of model j's codes on model
        i's ("lasso", UDR_L) or the absolute Spearman correlations ("spearman", UDR_S); with
        ``filter_low_kl`` only the active latents' rows and columns are kept. The pair's score is
        ``relative_strength(R_ij)`` and model i's UDR is ``median_{j != i} score(j, i)``.

    Args:
        means: M arrays ``(N, Z)``: each model's encoder means on the same observations, same order.
        kls: M arrays ``(Z,)``: each latent's mean KL to the prior on those observations
            (`gaussian_kl`).
        correlation: ``"lasso"`` or ``"spearman"``.
        filter_low_kl: drop inactive latents from each R_ij before scoring it.
        kl_threshold: the KL (nats) at or below which a latent is inactive.
        alpha: the Lasso's L1 weight (disentanglement_lib: 0.1).

    Returns:
        ``{"scores": (M,) each model's UDR, "pairwise": (M, M) score(i, j), NaN on the diagonal}``.

    Differences from disentanglement_lib
        - The reference zeroes inactive latents at a fixed KL of 0.01 and filters them at
          ``kl_filter_threshold``; here ``kl_threshold`` does both (the same at the default 0.01).
        - The reference draws its observations and encodes them itself; here the codes come in, so
          the same codes can be scored by both variants, and by studies run elsewhere.
        - The reference returns 0 on the pairwise diagonal; here it is NaN (no pair).
        - A pair where one model has no active latent scores 0; the reference raises.
    """
    if correlation not in CORRELATIONS:
        raise ValueError(f"correlation must be one of {CORRELATIONS}, got {correlation!r}")
    if len(means) != len(kls) or len(means) < 2:
        raise ValueError(
            f"UDR needs the codes and KLs of at least 2 models, got {len(means)} and {len(kls)}"
        )
    shapes = {np.shape(m) for m in means}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"every model's means must be (N, Z) of one shape, got {sorted(shapes)}")
    active = [np.asarray(kl) > kl_threshold for kl in kls]
    codes = [
        StandardScaler().fit_transform(np.asarray(m, dtype=np.float64)) * mask
        for m, mask in zip(means, active, strict=True)
    ]
    num_models = len(codes)
    pairwise = np.full((num_models, num_models), np.nan)
    for i in range(num_models):
        for j in range(num_models):
            if i == j:
                continue
            if correlation == "lasso":
                matrix = _lasso_similarity(codes[i], codes[j], alpha)
            else:
                matrix = _spearman_similarity(codes[i], codes[j])
            if filter_low_kl:
                matrix = matrix[active[i]][:, active[j]]
            pairwise[i, j] = relative_strength(matrix)
    scores = np.array([np.median(np.delete(pairwise[:, i], i)) for i in range(num_models)])
    return {"scores": scores, "pairwise": pairwise}
