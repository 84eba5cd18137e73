"""FactorVAE disentanglement score.

Paper: H. Kim, A. Mnih, "Disentangling by Factorising", ICML 2018
(https://arxiv.org/abs/1802.05983), Section 4.
Reference implementation: disentanglement_lib ``evaluation/metrics/factor_vae.py``.
"""

from __future__ import annotations

import numpy as np

from disent.metrics.utils import as_rng, random_index, with_fixed_factor

__all__ = ["factor_vae_score"]


def factor_vae_score(
    data,
    represent,
    rng,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    prune_threshold: float = 0.05,
) -> dict[str, float]:
    """Accuracy of a majority-vote classifier on the least-varying (normalised) code dim.

    Formula
        ``s^2`` = per-dim variance (``ddof=1``) of the codes of ``num_variance_estimate``
        random samples; active dims: ``sqrt(s^2) >= prune_threshold``. One vote: draw
        ``k ~ U{0..K-1}``, a batch of ``batch_size`` factor vectors whose column ``k`` is set
        to the value of the first row; ``d = argmin_{j active} Var_batch(r_j) / s_j^2``
        (``ddof=1``); the vote is ``(d, k)``. With ``V[d, k]`` the vote counts of
        ``num_train`` votes, the classifier maps ``d -> argmax_k V[d, k]`` (ties: lowest
        ``k``); ``train_accuracy = sum_d max_k V[d, k] / num_train`` and ``eval_accuracy`` is
        its accuracy on ``num_eval`` fresh votes. All zeros if no dim is active.

    Draw order (identical to DL, so a caching ``data``/``represent`` pair cannot change the
    result): ``f = data.sample_factors(num_variance_estimate, rng)``,
    ``x = data.sample_observations_from_factors(f, rng)``, ``represent(x)`` (one call each,
    as DL's ``sample_observations``); then per vote ``k = rng.integers(K)`` (``randint`` for
    a ``RandomState``), ``f = data.sample_factors(batch_size, rng)``, ``f[:, k] = f[0, k]``,
    ``f = data.with_fixed_factor(f, k, rng)`` (where ``data`` has it; see below),
    ``x = data.sample_observations_from_factors(f, rng)``, ``represent(x)``; all training
    votes before all eval votes. ``data``/``represent`` are used only through these calls.

    Settings (disentanglement_lib study)
        ``batch_size = 64``, ``num_train = 10000``, ``num_eval = 5000``,
        ``num_variance_estimate = 10000``, ``prune_dims.threshold = 0.05``.

    Args:
        data: ground-truth data set with ``num_factors``, ``sample_factors(n, rng)`` and
            ``sample_observations_from_factors(factors, rng)``.
        represent: ``observations -> (n, D)`` codes. It receives all
            ``num_variance_estimate`` observations in one call, as in DL; batch inside it if
            memory requires.
        rng: ``np.random.Generator``, int seed, or ``np.random.RandomState`` (DL's draws).
        batch_size, num_train, num_eval, num_variance_estimate, prune_threshold: see above.

    Returns:
        ``{"train_accuracy", "eval_accuracy", "num_active_dims"}`` as floats.

    Differences from disentanglement_lib
        - ``num_active_dims`` is the number of active dims; DL reports ``len(mask)``, i.e.
          always the total number of dims ``D`` (0 only when no dim is active).
        - Votes are recorded at the real code index; DL records them at the position among
          the active dims. This relabels the columns of the vote matrix one-to-one, so both
          accuracies are identical.
        - ``rng`` is a ``Generator`` by default (DL: ``RandomState``); the calls are the same.
        - After ``f[:, k] = f[0, k]``, ``f`` goes through ``data.with_fixed_factor(f, k, rng)``
          (when ``data`` has the method; DL has no such call). On a grid data set it returns
          ``f`` unchanged and draws nothing, so the score equals DL's; on a data set that is not
          a full grid (``dataset=arrays``), where ``f``'s combinations may not exist, it replaces
          each missing one by a random existing row with the same value of factor ``k`` (so the
          batch still shares factor ``k``), and warns once.
        - none otherwise; in particular, with ``prune_threshold = 0`` (DL's non-study default)
          a constant dim gives ``0/0 = NaN`` and ``argmin`` picks it, exactly as in DL.
    """
    rng = as_rng(rng)
    factors = np.array(data.sample_factors(num_variance_estimate, rng))
    observations = data.sample_observations_from_factors(factors, rng)
    global_variances = np.var(np.asarray(represent(observations)), axis=0, ddof=1)
    active_dims = np.sqrt(global_variances) >= prune_threshold
    num_active = int(np.sum(active_dims))
    if num_active == 0:
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}

    training_votes = _generate_votes(
        data, represent, batch_size, num_train, rng, global_variances, active_dims
    )
    classifier = np.argmax(training_votes, axis=1)  # per code dim, the factor with most votes
    code_index = np.arange(training_votes.shape[0])
    train_accuracy = np.sum(training_votes[code_index, classifier]) * 1.0 / np.sum(training_votes)
    eval_votes = _generate_votes(
        data, represent, batch_size, num_eval, rng, global_variances, active_dims
    )
    eval_accuracy = np.sum(eval_votes[code_index, classifier]) * 1.0 / np.sum(eval_votes)
    return {
        "train_accuracy": float(train_accuracy),
        "eval_accuracy": float(eval_accuracy),
        "num_active_dims": float(num_active),
    }


def _generate_votes(data, represent, batch_size, num_points, rng, global_variances, active_dims):
    """``(D, K)`` matrix of vote counts ``V[code dim, factor]``."""
    active_index = np.flatnonzero(active_dims)
    votes = np.zeros((global_variances.shape[0], data.num_factors), dtype=np.int64)
    for _ in range(num_points):
        factor_index = random_index(rng, data.num_factors)
        factors = np.array(data.sample_factors(batch_size, rng))
        factors[:, factor_index] = factors[0, factor_index]
        # on a grid unchanged, nothing drawn; else missing combinations replaced (see above)
        factors = with_fixed_factor(data, factors, factor_index, rng)
        observations = data.sample_observations_from_factors(factors, rng)
        local_variances = np.var(np.asarray(represent(observations)), axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            argmin = np.argmin(local_variances[active_dims] / global_variances[active_dims])
        votes[active_index[argmin], factor_index] += 1
    return votes
