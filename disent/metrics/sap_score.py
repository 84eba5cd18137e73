"""Separated Attribute Predictability (SAP).

Paper: A. Kumar, P. Sattigeri, A. Balakrishnan, "Variational Inference of Disentangled Latent
Concepts from Unlabeled Observations", ICLR 2018 (https://openreview.net/forum?id=H1kG7GZAW),
Section 3. Reference implementation: disentanglement_lib ``evaluation/metrics/sap_score.py``.
"""

from __future__ import annotations

import numpy as np
from sklearn.svm import LinearSVC

from disent.metrics.utils import check_codes_factors

__all__ = ["sap", "sap_score_matrix"]


def sap(
    codes_train, factors_train, codes_test, factors_test, continuous_factors: bool = False
) -> dict[str, float]:
    """SAP score: mean gap between the two most predictive single code dims per factor.

    Formula
        Score matrix ``S`` (``D x K``):

        - discrete factors (default): ``S[j, k]`` = test accuracy of
          ``LinearSVC(C=0.01, class_weight="balanced")`` trained on the single raw code ``j``
          of the train set to predict factor ``k``;
        - ``continuous_factors=True``: ``S[j, k] = Cov(z_j, y_k)^2 / (Var z_j Var y_k)`` (R^2 of
          a linear fit, ``ddof=1``, train set only), or 0 if ``Var z_j <= 1e-12``.

        With ``S_(1)[k] >= S_(2)[k]`` the two largest entries of column ``k``::

            SAP = 1/K * sum_k (S_(1)[k] - S_(2)[k])

    Settings (disentanglement_lib study)
        ``num_train = 10000``, ``num_test = 5000`` points, ``continuous_factors = False``.

    Args:
        codes_train, factors_train: ``(N, D)`` codes and ``(N, K)`` integer factors (fit).
        codes_test, factors_test: ``(M, D)`` / ``(M, K)`` (accuracies; unused if continuous).
        continuous_factors: treat factors as continuous (R^2) instead of classes (accuracy).

    Returns:
        ``{"sap": float}`` (DL's key is ``"SAP_score"``).

    Differences from disentanglement_lib
        - ``LinearSVC`` is created with ``dual=False`` (primal solver) and ``random_state=0``.
          ``dual=False`` is what DL's call selects with scikit-learn >= 1.5 (``dual="auto"``
          with more samples than features); DL written for older scikit-learn used the dual
          solver with an unseeded shuffle, which solves the same convex problem (same optimum
          up to the solver tolerance). ``random_state`` only keeps liblinear away from the
          global numpy RNG; the primal solver does not use it.
        - A factor with a single class in the train set (DL: ``LinearSVC`` raises) is
          predicted as that class for every test point.
    """
    codes_train, factors_train = check_codes_factors(codes_train, factors_train, "train ")
    codes_test, factors_test = check_codes_factors(codes_test, factors_test, "test ")
    matrix = sap_score_matrix(
        codes_train, factors_train, codes_test, factors_test, continuous_factors
    )
    if matrix.shape[0] < 2:
        raise ValueError("SAP needs at least 2 code dimensions")
    sorted_matrix = np.sort(matrix, axis=0)
    return {"sap": float(np.mean(sorted_matrix[-1, :] - sorted_matrix[-2, :]))}


def sap_score_matrix(
    codes_train, factors_train, codes_test, factors_test, continuous_factors=False
) -> np.ndarray:
    """The ``(D, K)`` score matrix ``S`` of :func:`sap` (DL's ``_compute_score_matrix``)."""
    num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]
    matrix = np.zeros((num_codes, num_factors))
    for i in range(num_codes):
        mu_i = codes_train[:, i]
        for j in range(num_factors):
            y_j = factors_train[:, j]
            if continuous_factors:
                cov = np.cov(mu_i, y_j, ddof=1)  # same call as DL -> same rounding
                cov_mu_y, var_mu, var_y = cov[0, 1] ** 2, cov[0, 0], cov[1, 1]
                matrix[i, j] = cov_mu_y * 1.0 / (var_mu * var_y) if var_mu > 1e-12 else 0.0
            else:
                y_j_test = factors_test[:, j]
                classes = np.unique(y_j)
                if len(classes) < 2:
                    pred = np.full(len(y_j_test), classes[0])
                else:
                    clf = LinearSVC(C=0.01, class_weight="balanced", dual=False, random_state=0)
                    clf.fit(mu_i[:, np.newaxis], y_j)
                    pred = clf.predict(codes_test[:, i][:, np.newaxis])
                matrix[i, j] = np.mean(pred == y_j_test)
    return matrix
