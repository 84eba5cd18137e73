"""Interventional Robustness Score (IRS).

Paper: R. Suter, Đ. Miladinović, B. Schölkopf, S. Bauer, "Robustly Disentangled Causal Mechanisms:
Validating Deep Representations for Interventional Robustness", ICML 2019
(https://arxiv.org/abs/1811.00007).
Reference implementation: disentanglement_lib ``evaluation/metrics/irs.py``.
"""

from __future__ import annotations

import numpy as np

from disent.metrics.utils import check_codes_factors, histogram_discretize

__all__ = ["irs"]


def irs(codes, factors, diff_quantile: float = 0.99, num_bins: int = 20) -> dict[str, float]:
    """Interventional Robustness Score of a representation.

    Formula
        The factors are discretised into ``num_bins`` equal-width bins (as disentanglement_lib's
        study discretises them); constant code dimensions are dropped. For code ``j`` and factor
        ``k``, with ``G_k`` the distinct (binned) values of factor ``k``::

            dev[j, k] = 1/|G_k| * sum_{g in G_k} quantile_q( |z_j - E[z_j | f_k = g]|  over f_k = g )
            max_dev[j] = max_n |z_j(n) - E[z_j]|
            IRS[j, k] = 1 - dev[j, k] / max_dev[j]
            IRS = sum_j max_dev[j] * max_k IRS[j, k] / sum_j max_dev[j]

        i.e. how little code ``j`` moves when every factor but its best one may change (fixing
        factor k by conditioning on it), averaged with weights ``max_dev``. ``q = diff_quantile``
        (the paper's version is ``q = 1``).

    Settings (disentanglement_lib study)
        ``num_train = 10000`` points, ``diff_quantile = 0.99``, 20 histogram bins.

    Args:
        codes: ``(N, D)`` representations.
        factors: ``(N, K)`` integer ground-truth factors of the same samples.
        diff_quantile: the quantile of the deviations within a group (0 < q <= 1).
        num_bins: bins of the factors' histogram discretisation.

    Returns:
        ``{"irs": float, "num_active_dims": float}``.

    Differences from disentanglement_lib
        ``num_active_dims`` counts the non-constant code dimensions; DL's is ``np.sum`` of the
        active codes' values (a bug: a sum of activations, not a count). IRS itself is DL's to
        1e-12 (``tests/test_metrics_new.py`` against DL 1.5's outputs).
    """
    codes, factors = check_codes_factors(codes, factors)
    if not 0 < diff_quantile <= 1:
        raise ValueError(f"diff_quantile must be in (0, 1], got {diff_quantile}")
    binned = histogram_discretize(factors, num_bins)  # (N, K)
    active = codes[:, codes.var(axis=0) > 0]  # (N, D')
    if active.shape[1] == 0:
        return {"irs": 0.0, "num_active_dims": 0.0}
    max_deviations = np.max(np.abs(active - active.mean(axis=0)), axis=0)  # (D',)
    deviations = np.zeros((active.shape[1], binned.shape[1]))  # (D', K)
    for k in range(binned.shape[1]):
        values = np.unique(binned[:, k])
        for value in values:
            group = active[binned[:, k] == value]
            spread = np.abs(group - group.mean(axis=0))
            deviations[:, k] += np.percentile(spread, q=diff_quantile * 100, axis=0)
        deviations[:, k] /= len(values)
    irs_matrix = 1.0 - deviations / max_deviations[:, None]
    per_code = irs_matrix.max(axis=1)
    score = np.average(per_code, weights=max_deviations)
    return {"irs": float(score), "num_active_dims": float(active.shape[1])}
