"""BetaVAE disentanglement score.

Paper: I. Higgins, L. Matthey, A. Pal, C. Burgess, X. Glorot, M. Botvinick, S. Mohamed,
A. Lerchner, "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
Framework", ICLR 2017 (https://openreview.net/forum?id=Sy2fzU9gl).
Reference implementation: disentanglement_lib ``evaluation/metrics/beta_vae.py``
(``compute_beta_vae_sklearn``).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from disent.metrics.utils import as_rng, random_index, with_fixed_factor

__all__ = ["beta_vae_score"]


def beta_vae_score(
    data, represent, rng, batch_size: int = 64, num_train: int = 10000, num_eval: int = 5000
) -> dict[str, float]:
    """Accuracy of a linear classifier that tells which factor was held fixed.

    Formula
        One point: draw ``k ~ U{0..K-1}``; draw two batches of ``batch_size`` factor vectors
        ``f1, f2`` and copy column ``k`` of ``f1`` into ``f2`` (the pairs share factor ``k``);
        feature ``= mean_b |r(x1_b) - r(x2_b)|`` (a ``D`` vector), label ``k``. A
        ``LogisticRegression`` is fit on ``num_train`` points; the score is its accuracy on
        them (``train_accuracy``) and on ``num_eval`` fresh points (``eval_accuracy``).

    Draw order (identical to DL, so a caching ``data``/``represent`` pair cannot change the
    result): per point ``k = rng.integers(K)`` (``randint`` for a ``RandomState``),
    ``f1 = data.sample_factors(batch_size, rng)``, ``f2 = data.sample_factors(batch_size,
    rng)``, ``f2[:, k] = f1[:, k]``, ``f2 = data.with_fixed_factor(f2, k, rng)`` (where ``data``
    has it; see below), ``x1 = data.sample_observations_from_factors(f1, rng)``,
    ``x2 = ...(f2, rng)``, then ``represent(x1)``, ``represent(x2)``; all training points before
    all eval points. ``data`` and ``represent`` are used only through these calls.

    Settings (disentanglement_lib study)
        ``batch_size = 64``, ``num_train = 10000``, ``num_eval = 5000``.

    Args:
        data: ground-truth data set with ``num_factors``, ``sample_factors(n, rng)`` and
            ``sample_observations_from_factors(factors, rng)``.
        represent: ``observations -> (n, D)`` codes (numpy or array-like).
        rng: ``np.random.Generator``, int seed, or ``np.random.RandomState`` (DL's draws).
        batch_size, num_train, num_eval: see above.

    Returns:
        ``{"train_accuracy", "eval_accuracy"}`` as floats.

    Differences from disentanglement_lib
        - ``LogisticRegression(random_state=0)``: DL passes its RandomState, which the lbfgs
          solver never uses, so the numbers are the same.
        - As DL's code run with scikit-learn >= 0.22, the classifier is lbfgs/multinomial; the
          scikit-learn 0.20 of the original DL study defaulted to liblinear one-vs-rest.
        - ``rng`` is a ``Generator`` by default (DL: ``RandomState``); the calls are the same.
        - After the copy of column ``k``, ``f2`` goes through ``data.with_fixed_factor(f2, k,
          rng)`` (when ``data`` has the method; DL has no such call). On a grid data set it
          returns ``f2`` unchanged and draws nothing, so the score equals DL's; on a data set
          that is not a full grid (``dataset=arrays``), where ``f2``'s combinations may not
          exist, it replaces each missing one by a random existing row with the same value of
          factor ``k`` (so the pairs still share factor ``k``), and warns once.
    """
    rng = as_rng(rng)
    train_points, train_labels = _generate_training_batch(
        data, represent, batch_size, num_train, rng
    )
    model = LogisticRegression(random_state=0)
    model.fit(train_points, train_labels)
    train_accuracy = np.mean(model.predict(train_points) == train_labels)
    eval_points, eval_labels = _generate_training_batch(data, represent, batch_size, num_eval, rng)
    eval_accuracy = model.score(eval_points, eval_labels)
    return {"train_accuracy": float(train_accuracy), "eval_accuracy": float(eval_accuracy)}


def _generate_training_batch(data, represent, batch_size, num_points, rng):
    points = None
    labels = np.zeros(num_points, dtype=np.int64)
    for i in range(num_points):
        labels[i], feature = _generate_training_sample(data, represent, batch_size, rng)
        if points is None:
            points = np.zeros((num_points, feature.shape[0]))
        points[i, :] = feature
    return points, labels


def _generate_training_sample(data, represent, batch_size, rng):
    index = random_index(rng, data.num_factors)
    factors1 = np.array(data.sample_factors(batch_size, rng))
    factors2 = np.array(data.sample_factors(batch_size, rng))
    factors2[:, index] = factors1[:, index]
    factors2 = with_fixed_factor(data, factors2, index, rng)  # grids: unchanged, nothing drawn
    observation1 = data.sample_observations_from_factors(factors1, rng)
    observation2 = data.sample_observations_from_factors(factors2, rng)
    representation1 = np.asarray(represent(observation1))
    representation2 = np.asarray(represent(observation2))
    feature_vector = np.mean(np.abs(representation1 - representation2), axis=0)
    return index, feature_vector
