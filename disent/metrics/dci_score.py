"""Disentanglement, Completeness and Informativeness (DCI).

Paper: C. Eastwood, C. K. I. Williams, "A Framework for the Quantitative Evaluation of
Disentangled Representations", ICLR 2018 (https://openreview.net/forum?id=By-7dz-AZ).
Reference implementation: disentanglement_lib ``evaluation/metrics/dci.py``.
"""

from __future__ import annotations

import numpy as np
import scipy.stats
from joblib import Parallel, delayed
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from tqdm import tqdm

from disent.metrics.utils import check_codes_factors

__all__ = ["dci", "disentanglement", "completeness", "canonical_column_order", "ESTIMATORS"]

ESTIMATORS = ("gbt", "hist_gbt")


def dci(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    seed: int = 0,
    n_jobs=None,
    n_estimators: int = 100,
    estimator: str = "gbt",
) -> dict[str, float]:
    """DCI scores with gradient-boosted-tree importances.

    Formula
        For every factor ``k`` a ``GradientBoostingClassifier()`` (sklearn defaults: 100
        stages, depth 3, learning rate 0.1; ``random_state=seed``) predicts ``y_k`` from all
        ``D`` codes. ``R[j, k] = |feature_importances_[j]|`` of classifier ``k`` (``D x K``).
        With ``P = R + 1e-11``, ``H_b(p)`` the entropy of ``p / sum(p)`` in base ``b``::

            disentanglement = sum_j rho_j (1 - H_K(P[j, :])),  rho_j = sum_k R[j, k] / sum R
            completeness    = sum_k rho_k (1 - H_D(P[:, k])),  rho_k = sum_j R[j, k] / sum R
            informativeness_{train,test} = mean_k accuracy of classifier k on train / test

        (if ``sum R == 0`` the weights are uniform). Note that "informativeness" is a
        classification accuracy (DL names it ``train_err``/``test_err`` but stores accuracy).

    Settings (disentanglement_lib study)
        ``num_train = 10000``, ``num_test = 5000`` points.

    Args:
        codes_train, factors_train: ``(N, D)`` codes and ``(N, K)`` integer factors (fit).
        codes_test, factors_test: held-out ``(M, D)`` / ``(M, K)`` (test accuracy only).
        seed: ``random_state`` of every classifier (sklearn's trees permute the features at
            each split, which decides ties between equally good splits).
        n_jobs: joblib workers over factors (``None`` = sequential). Each classifier is
            seeded independently of the schedule, so results do not depend on ``n_jobs``.
        n_estimators: boosting stages per classifier (DL: sklearn's default, 100). A stage
            fits one tree per class, so the cost is ~ stages x classes x factors trees; fewer
            stages make a smoke test cheap (``metrics=tiny_all`` uses 10), never a result.
        estimator: ``"gbt"`` (DL's ``GradientBoostingClassifier``: the default, exact) or
            ``"hist_gbt"``: scikit-learn's ``HistGradientBoostingClassifier`` with the same
            stages, depth and learning rate on 255-bin histograms of the codes, its importances
            the split gains per code dim summed over all trees (as ``GradientBoostingClassifier``
            sums its trees' impurity decreases). Many times faster and
            close to the exact values (``scripts/bench_metrics.py --dci`` measures both), but not
            DL's numbers: for ``metrics=fast`` and periodic metrics, never for a study.

    Returns:
        ``{"disentanglement", "completeness", "informativeness_train",
        "informativeness_test"}`` as floats.

    Differences from disentanglement_lib
        - The classifiers are seeded (``random_state=seed``); DL leaves ``random_state=None``
          (the global numpy RNG), which only matters for tie-breaking between equally good
          splits, so DL's numbers equal ours for some seed but are not reproducible.
        - The code dims are passed to the trees in a canonical order defined by their contents
          (``canonical_column_order``), so permuting the code dims changes no output. The
          order only affects which of several equally good splits is kept; DL breaks such
          ties randomly (unseeded), so each of our results is one of DL's possible results.
        - Classifiers are fit in parallel when ``n_jobs`` is set (same numbers).
        - ``n_estimators`` is a setting (DL fixes sklearn's default, 100: the default here).
    """
    codes_train, factors_train = check_codes_factors(codes_train, factors_train, "train ")
    codes_test, factors_test = check_codes_factors(codes_test, factors_test, "test ")
    if (
        codes_train.shape[1] != codes_test.shape[1]
        or factors_train.shape[1] != factors_test.shape[1]
    ):
        raise ValueError("train and test must have the same numbers of code dims and factors")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    num_factors = factors_train.shape[1]
    # sklearn's trees visit the features in a (seeded) random order at every split and keep the
    # first of equally good splits. Exact ties are common in small nodes (two code dims inducing
    # the same partition of a few samples), so with a fixed seed the result would depend on the
    # order of the code dims (~1e-3 on D/C). Feeding the dims in a canonical, content-defined order
    # makes the result exactly invariant to permuting them; tie-breaking stays seeded-random.
    order = canonical_column_order(codes_train)
    x_train, x_test = codes_train[:, order], codes_test[:, order]
    results = Parallel(n_jobs=n_jobs)(
        delayed(_fit_one_factor)(
            x_train, factors_train[:, k], x_test, factors_test[:, k], seed, n_estimators, estimator
        )
        for k in tqdm(range(num_factors), desc="DCI classifiers", leave=False, disable=None)
    )
    importance_matrix = np.empty((codes_train.shape[1], num_factors), dtype=np.float64)  # (D, K)
    importance_matrix[order, :] = np.stack([r[0] for r in results], axis=1)
    return {
        "disentanglement": float(disentanglement(importance_matrix)),
        "completeness": float(completeness(importance_matrix)),
        "informativeness_train": float(np.mean([r[1] for r in results])),
        "informativeness_test": float(np.mean([r[2] for r in results])),
    }


def canonical_column_order(x: np.ndarray) -> np.ndarray:
    """A permutation of the columns of ``x`` that depends only on their contents (byte-wise
    lexicographic order of the columns; identical columns keep their relative order, which
    cannot matter because they are interchangeable)."""
    x = np.asarray(x)
    keys = [np.ascontiguousarray(x[:, j]).tobytes() for j in range(x.shape[1])]
    return np.array(sorted(range(x.shape[1]), key=keys.__getitem__), dtype=np.int64)


def _fit_one_factor(x_train, y_train, x_test, y_test, seed, n_estimators, estimator):
    if estimator == "gbt":
        model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
        model.fit(x_train, y_train)
        importance = np.abs(model.feature_importances_)
    else:
        model = HistGradientBoostingClassifier(
            max_iter=n_estimators,
            max_depth=3,  # GradientBoostingClassifier's trees (HistGradientBoosting's default: 31 leaves)
            learning_rate=0.1,
            min_samples_leaf=1,  # GradientBoostingClassifier's (HistGradientBoosting's default: 20)
            early_stopping=False,
            random_state=seed,
        )
        model.fit(x_train, y_train)
        importance = split_gain_importances(model, x_train.shape[1])
    train_acc = np.mean(model.predict(x_train) == y_train)
    test_acc = np.mean(model.predict(x_test) == y_test)
    return importance, train_acc, test_acc


def split_gain_importances(model: HistGradientBoostingClassifier, num_features: int) -> np.ndarray:
    """(D,) feature importances of a fitted HistGradientBoostingClassifier, which has none of its
    own: the gains of all its trees' splits summed per feature, normalised to sum 1 (as
    GradientBoostingClassifier sums its trees' impurity decreases). Reads the fitted trees' node
    arrays (`_predictors`: scikit-learn's internal, long-stable API)."""
    gains = np.zeros(num_features)
    for trees in model._predictors:  # per stage, one tree per class (one for two classes)
        for tree in trees:
            splits = tree.nodes[tree.nodes["is_leaf"] == 0]
            np.add.at(gains, splits["feature_idx"], splits["gain"])
    return gains / gains.sum() if gains.sum() > 0 else gains


def disentanglement(importance_matrix: np.ndarray) -> float:
    """``sum_j rho_j (1 - H_K(R[j, :] + 1e-11))`` for a ``(D, K)`` importance matrix (DL's
    ``disentanglement``)."""
    importance_matrix = np.asarray(importance_matrix, dtype=np.float64)
    per_code = 1.0 - scipy.stats.entropy(
        importance_matrix.T + 1e-11, base=importance_matrix.shape[1]
    )
    if importance_matrix.sum() == 0.0:
        importance_matrix = np.ones_like(importance_matrix)
    code_importance = importance_matrix.sum(axis=1) / importance_matrix.sum()
    return float(np.sum(per_code * code_importance))


def completeness(importance_matrix: np.ndarray) -> float:
    """``sum_k rho_k (1 - H_D(R[:, k] + 1e-11))`` for a ``(D, K)`` importance matrix (DL's
    ``completeness``)."""
    importance_matrix = np.asarray(importance_matrix, dtype=np.float64)
    per_factor = 1.0 - scipy.stats.entropy(
        importance_matrix + 1e-11, base=importance_matrix.shape[0]
    )
    if importance_matrix.sum() == 0.0:
        importance_matrix = np.ones_like(importance_matrix)
    factor_importance = importance_matrix.sum(axis=0) / importance_matrix.sum()
    return float(np.sum(per_factor * factor_importance))
