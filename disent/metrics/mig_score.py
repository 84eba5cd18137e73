"""Mutual Information Gap (MIG).

Paper: R. T. Q. Chen, X. Li, R. Grosse, D. Duvenaud, "Isolating Sources of Disentanglement
in Variational Autoencoders", NeurIPS 2018 (https://arxiv.org/abs/1802.04942).
Reference implementation: disentanglement_lib ``evaluation/metrics/mig.py``.
"""

from __future__ import annotations

import numpy as np

from disent.metrics.utils import (
    check_codes_factors,
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
)

__all__ = ["mig"]


def mig(codes, factors, num_bins: int = 20) -> dict[str, float]:
    """Mutual Information Gap of a representation.

    Formula
        Each code dimension is discretised into ``num_bins`` equal-width bins
        (``histogram_discretize``); ``I[j, k]`` is the discrete mutual information (nats)
        between code ``j`` and factor ``k`` and ``H[k]`` the entropy of factor ``k``. With
        ``I_(1)[k] >= I_(2)[k]`` the two largest entries of column ``k``::

            MIG = 1/K * sum_k (I_(1)[k] - I_(2)[k]) / H[k]

    Settings (disentanglement_lib study)
        ``num_train = 10000`` points, 20 bins (``histogram_discretizer``).

    Args:
        codes: ``(N, D)`` representations (e.g. means of the encoder), ``D >= 2``.
        factors: ``(N, K)`` integer ground-truth factors of the same samples.
        num_bins: number of equal-width bins per code dimension.

    Returns:
        ``{"mig": float}`` (DL's key is ``"discrete_mig"``).

    Differences from disentanglement_lib
        none (mutual information computed with sklearn's formula in vectorised form, equal
        to ``mutual_info_score`` to ~1e-15). A constant factor (``H[k] = 0``) gives NaN/inf,
        as in DL.
    """
    codes, factors = check_codes_factors(codes, factors)
    if codes.shape[1] < 2:
        raise ValueError("MIG needs at least 2 code dimensions")
    m = discrete_mutual_info(histogram_discretize(codes, num_bins), factors)  # (D, K)
    entropy = discrete_entropy(factors)
    sorted_m = np.sort(m, axis=0)[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.divide(sorted_m[0, :] - sorted_m[1, :], entropy)
    return {"mig": float(np.mean(gap))}
