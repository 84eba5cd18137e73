"""Modularity and explicitness.

Paper: K. Ridgeway, M. C. Mozer, "Learning Deep Disentangled Embeddings With the F-Statistic
Loss", NeurIPS 2018 (https://arxiv.org/abs/1802.05312), Section 3.
Reference implementation: disentanglement_lib
``evaluation/metrics/modularity_explicitness.py``.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from disent.metrics.utils import check_codes_factors, discrete_mutual_info, histogram_discretize

__all__ = ["modularity_explicitness", "modularity", "explicitness_per_factor"]


def modularity_explicitness(
    codes_train, factors_train, codes_test, factors_test, num_bins: int = 20
) -> dict[str, float]:
    """Modularity (from discrete mutual information) and explicitness (ROC-AUC).

    Formula
        Modularity: ``m[i, k]`` = discrete mutual information between code ``i`` (train codes,
        ``num_bins`` equal-width bins) and factor ``k``. Per code ``i``, with
        ``theta_i = max_k m[i, k]``::

            delta_i = (sum_k m[i, k]^2 - theta_i^2) / (theta_i^2 (K - 1))
            modularity_i = 1 - delta_i          (0 if theta_i = 0)
            modularity = mean_i modularity_i    (over all D codes)

        Explicitness: codes are standardised with the train mean/std; for each factor ``k`` a
        ``LogisticRegression()`` (sklearn defaults: lbfgs, L2, C=1, multinomial) is fit on all
        standardised train codes; its score is the macro-averaged one-vs-rest ROC-AUC of
        ``predict_proba`` against the one-hot factor (one column per class), on train and on
        test; explicitness_{train,test} = mean over factors.

    Settings (disentanglement_lib study)
        ``num_train = 10000``, ``num_test = 5000`` points, 20 bins.

    Args:
        codes_train, factors_train: ``(N, D)`` codes and ``(N, K)`` integer factors.
        codes_test, factors_test: ``(M, D)`` / ``(M, K)`` held-out data (explicitness_test).
        num_bins: bins per code dimension for the mutual information.

    Returns:
        ``{"modularity", "explicitness_train", "explicitness_test"}`` as floats (DL's keys:
        ``modularity_score``, ``explicitness_score_train``, ``explicitness_score_test``).

    Differences from disentanglement_lib
        - A code dim with train standard deviation exactly 0 is divided by 1 instead of 0
          (DL produces NaN codes and ``LogisticRegression`` raises); the dim stays constant,
          so explicitness is finite and otherwise unchanged.
        - The ROC-AUC uses one column per class seen in the train set (``clf.classes_``); a
          column without positives or without negatives in the evaluated set is left out of
          the macro average. DL one-hot encodes the evaluated set's own classes, which is
          identical when the train and evaluated sets contain the same classes and raises
          otherwise.
        - ``LogisticRegression(random_state=0)``: the lbfgs solver does not use the random
          state; it only keeps sklearn away from the global numpy RNG.
        - As DL's code run with scikit-learn >= 0.22, the classifier is lbfgs/multinomial; the
          scikit-learn 0.20 of the original DL study defaulted to liblinear one-vs-rest.
    """
    codes_train, factors_train = check_codes_factors(codes_train, factors_train, "train ")
    codes_test, factors_test = check_codes_factors(codes_test, factors_test, "test ")
    mi = discrete_mutual_info(histogram_discretize(codes_train, num_bins), factors_train)  # (D, K)
    scores = {"modularity": float(modularity(mi))}

    mean = np.mean(codes_train, axis=0)
    std = np.std(codes_train, axis=0)
    std = np.where(std == 0, np.ones_like(std), std)
    x_train = (codes_train - mean) / std
    x_test = (codes_test - mean) / std
    explicit = np.array(
        [
            explicitness_per_factor(x_train, factors_train[:, k], x_test, factors_test[:, k])
            for k in range(factors_train.shape[1])
        ]
    )
    scores["explicitness_train"] = float(np.mean(explicit[:, 0]))
    scores["explicitness_test"] = float(np.mean(explicit[:, 1]))
    return scores


def modularity(mutual_information: np.ndarray) -> float:
    """Mean modularity over codes of a ``(D, K)`` mutual-information matrix (DL's formula)."""
    squared_mi = np.square(mutual_information)
    max_squared_mi = np.max(squared_mi, axis=1)
    numerator = np.sum(squared_mi, axis=1) - max_squared_mi
    denominator = max_squared_mi * (squared_mi.shape[1] - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = numerator / denominator
    modularity_score = 1.0 - delta
    modularity_score[max_squared_mi == 0.0] = 0.0
    return float(np.mean(modularity_score))


def explicitness_per_factor(x_train, y_train, x_test, y_test) -> tuple[float, float]:
    """Macro ROC-AUC (train, test) of a logistic regression predicting ``y`` from ``x``."""
    clf = LogisticRegression(random_state=0).fit(x_train, y_train)
    return _macro_roc_auc(clf, x_train, y_train), _macro_roc_auc(clf, x_test, y_test)


def _macro_roc_auc(clf, x, y) -> float:
    proba = clf.predict_proba(x)
    onehot = (np.asarray(y)[:, None] == clf.classes_[None, :]).astype(np.int64)
    positives = onehot.sum(axis=0)
    keep = (positives > 0) & (positives < len(y))
    if not keep.any():
        return float("nan")
    if keep.sum() == 1:  # a single usable column is a plain binary problem
        return float(roc_auc_score(onehot[:, keep].ravel(), proba[:, keep].ravel()))
    return float(roc_auc_score(onehot[:, keep], proba[:, keep], average="macro"))
