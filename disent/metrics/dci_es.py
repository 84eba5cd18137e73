"""DCI-ES: explicitness (E) from a loss-capacity curve, and size (S), beside D, C and I.

Paper: C. Eastwood, A. L. Nicolicioiu, J. von Kügelgen, A. Kekić, F. Träuble, A. Dittadi,
B. Schölkopf, "DCI-ES: An Extended Disentanglement Framework with Connections to Identifiability",
ICLR 2023 (https://openreview.net/forum?id=462z-gLgSht). Reference: the authors' repository
github.com/andreinicolicioiu/DCI-ES at commit 9329dae: ``metrics/explitcitness.py`` (E),
``src/loss_capacity/train_model_random_forest.py`` (the random-forest probes) and
``src/simple_gather.py`` (the curve, and D, C, I of the most informative probe).

The idea: a representation is explicit when even a low-capacity probe reads the factors from it.
A ladder of probes of increasing capacity (random forests of growing depth) is fitted for every
factor; the area between its loss-capacity curve and the lowest loss reached, normalised by the loss
of knowing nothing, is what explicitness subtracts from 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from disent.metrics.dci_score import completeness, disentanglement
from disent.metrics.utils import check_codes_factors

__all__ = ["dci_es", "explicitness"]

DEPTHS = (1, 2, 3, 4, 8, 10, 12, 14, 16, 18, 20, 32)  # the authors' random-forest ladder


def explicitness(capacities: np.ndarray, losses: np.ndarray, baseline_loss: float) -> float:
    """E of one factor's loss-capacity curve, as the authors' ``Explitcitness`` computes it.

    Formula
        With ``l_i`` the loss of the probe of capacity ``c_i`` (increasing), made monotone by
        keeping the lowest loss reached so far, ``l* = min_i l_i`` and ``l_b`` the baseline loss
        (of a probe that knows nothing)::

            AULCC = sum_i (c_{i+1} - c_i) * ((l_i + l_{i+1}) / 2 - l*)     (trapezoids)
            E     = 1 - 2 * AULCC / ((c_max - c_min) * l_b)

        1 when the lowest capacity already reaches the lowest loss; lower the more capacity the
        factor needs. l* is the curve's own lowest loss (the authors' code, whatever its comment
        "we assume l* = 0" says), so a code that holds nothing of a factor (a flat curve at the
        baseline) also scores 1: read E beside informativeness.
    """
    capacities = np.asarray(capacities, dtype=np.float64)
    losses = np.minimum.accumulate(np.asarray(losses, dtype=np.float64))
    lowest = losses.min()
    heights = 0.5 * (losses[:-1] - lowest) + 0.5 * (losses[1:] - lowest)
    area = np.sum(heights * np.diff(capacities))
    return float(1.0 - 2.0 * area / ((capacities.max() - capacities.min()) * baseline_loss))


def dci_es(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    depths: Sequence[int] = DEPTHS,
    n_estimators: int = 100,
    continuous_factors: bool = False,
    seed: int = 0,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """Explicitness and size of a representation, and the DCI scores of its most informative probe.

    Formula
        For every factor k and depth d in ``depths`` a random forest (``n_estimators`` trees,
        ``max_depth=d``, ``random_state=seed``) predicts factor k from all D codes: a classifier
        with loss 1 - test accuracy, or with ``continuous_factors`` a regressor with loss
        1 - test R². The baseline loss l_b is that of the best constant prediction: 1 - the
        largest class frequency of the training factor (classification), 1 (regression: R² = 0).
        ``explicitness.<k>`` is `explicitness` of factor k's curve (capacity = depth) and
        ``explicitness`` their mean. ``size = K / D`` (factors per code dimension; 1 when the
        code has one dimension per factor, smaller when it is larger than needed). D, C and I
        are those of the depth with the highest mean test score: ``disentanglement`` and
        ``completeness`` from its forests' ``feature_importances_`` (the formulas of
        `disent.metrics.dci_score`), ``informativeness_test`` its mean test accuracy (or R²).

    Args:
        codes_train, factors_train: ``(N, D)`` codes and ``(N, K)`` integer factors (fit).
        codes_test, factors_test: held-out ``(M, D)`` / ``(M, K)`` (the losses).
        depths: the probes' capacities, increasing (the authors': 1 ... 32).
        n_estimators: trees per forest (the authors': 100).
        continuous_factors: regress every factor instead of classifying it.
        seed: ``random_state`` of every forest.
        n_jobs: scikit-learn's ``n_jobs`` of each forest (the values do not depend on it).

    Returns:
        ``explicitness``, ``explicitness.<k>`` per factor, ``size``, ``disentanglement``,
        ``completeness``, ``informativeness_test``, ``best_depth``.

    Differences from the authors' code
        - Their baseline losses are written per data set for uniform factors (1 - 1/n, or 1 for
          the factors they regress); here they are measured on the training factors (the same
          for uniform factors, up to sampling).
        - They choose per factor whether to classify or regress it (on dSprites: shape
          classified, the rest regressed); here one switch, ``continuous_factors``, for all.
        - They train the probes on a train split and pick nothing on the validation split for
          random forests; the same here, with no validation split.
        - Size is not in their code; it is the paper's definition (section 4).
    """
    codes_train, factors_train = check_codes_factors(codes_train, factors_train, "train ")
    codes_test, factors_test = check_codes_factors(codes_test, factors_test, "test ")
    depths = list(depths)
    if len(depths) < 2 or any(b <= a for a, b in zip(depths, depths[1:], strict=False)):
        raise ValueError(f"depths must be at least two increasing capacities, got {depths}")
    num_codes = codes_train.shape[1]
    num_factors = factors_train.shape[1]
    losses = np.zeros((num_factors, len(depths)))  # (K, depths)
    importances = np.zeros((len(depths), num_codes, num_factors))  # (depths, D, K)
    baselines = np.zeros(num_factors)
    for k in range(num_factors):
        baselines[k] = 1.0 if continuous_factors else _majority_loss(factors_train[:, k])
        for i, depth in enumerate(depths):
            forest_type = RandomForestRegressor if continuous_factors else RandomForestClassifier
            forest = forest_type(
                n_estimators=n_estimators, max_depth=depth, random_state=seed, n_jobs=n_jobs
            )
            forest.fit(codes_train, factors_train[:, k])
            losses[k, i] = 1.0 - forest.score(codes_test, factors_test[:, k])
            importances[i, :, k] = np.abs(forest.feature_importances_)
    per_factor = [explicitness(depths, losses[k], baselines[k]) for k in range(num_factors)]
    best = int(np.argmax((1.0 - losses).mean(axis=0)))
    scores = {
        "explicitness": float(np.mean(per_factor)),
        **{f"explicitness.{k}": e for k, e in enumerate(per_factor)},
        "size": num_factors / num_codes,
        "disentanglement": disentanglement(importances[best]),
        "completeness": completeness(importances[best]),
        "informativeness_test": float((1.0 - losses[:, best]).mean()),
        "best_depth": float(depths[best]),
    }
    return scores


def _majority_loss(labels: np.ndarray) -> float:
    """1 - the largest class frequency: the loss of always predicting the most common class."""
    _, counts = np.unique(labels, return_counts=True)
    return float(1.0 - counts.max() / counts.sum())
