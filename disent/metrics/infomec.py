"""InfoMEC: information-theoretic modularity (InfoM), explicitness (InfoE) and compactness (InfoC).

Paper: K. Hsu, W. Dorrell, J. C. R. Whittington, J. Wu, C. Finn, "Disentanglement via Latent
Quantization", NeurIPS 2023 (https://arxiv.org/abs/2305.18378), section 4. Reference
implementation: the authors' standalone ``disentangle/metrics/infomec.py`` of
github.com/kylehkhsu/latent_quantization (commit 9a420a3), which this file equals on fixed arrays
(tests/test_infomec.py; fixture from tests/fixtures/make_infomec_fixtures.py).
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, mutual_info_score

from disent.metrics.utils import check_codes_factors

__all__ = ["infomec", "normalized_mutual_information"]


def infomec(
    codes,
    factors,
    discrete_codes: bool = False,
    n_neighbors: int = 10,
    active_fraction: float = 1 / 20,
    max_iter: int = 100,
    seed: int = 0,
) -> dict[str, float]:
    """InfoM, InfoC and InfoE of a representation, from one set of samples.

    Formula
        Factors are relabelled ``0..|v_k|-1`` (sorted values). ``NMI[k, j] = I(v_k; z_j) / H(v_k)``:
        for continuous codes, the KSG estimate of scikit-learn's ``mutual_info_classif`` with
        ``n_neighbors`` neighbours on the standardised latent; for discrete codes, the plug-in
        ``mutual_info_score``. A latent is *active* when its range exceeds ``active_fraction`` of
        the largest range (discrete codes: any range > 0). With ``A`` active latents and ``K``
        factors::

            InfoM = (mean_j [max_k NMI[k, j] / sum_k NMI[k, j]] - 1/K) / (1 - 1/K)   (active j)
            InfoC = (mean_k [max_j NMI[k, j] / sum_j NMI[k, j]] - 1/A) / (1 - 1/A)   (active j)
            InfoE = mean_k (H_0(v_k) - H(v_k | z)) / H_0(v_k)

        where ``H(v_k | z)`` is the log loss, on the samples it was fitted to, of an unregularised
        multinomial logistic regression (lbfgs, ``max_iter`` iterations, balanced class weights)
        from all standardised latents (one-hot for discrete codes) to ``v_k``, and ``H_0(v_k)`` the
        same regression's loss on constant inputs. Each is 1 for a perfect code: InfoM when each
        latent informs about one factor only, InfoC when each factor is captured by one latent,
        InfoE when the code predicts every factor.

    Args:
        codes: ``(N, D)`` representations (continuous, or integer-valued when ``discrete_codes``).
        factors: ``(N, K)`` ground-truth factors of the same samples.
        discrete_codes: treat each code dimension as categorical (e.g. a quantised latent).
        n_neighbors: the KSG estimator's neighbours (the authors': 10).
        active_fraction: a continuous latent is pruned when its range is at most this share of the
            largest latent range (the authors': 1/20).
        max_iter: lbfgs iterations of each logistic regression (the authors': 100).
        seed: the KSG estimator's jitter of the codes (scikit-learn adds 1e-10-relative noise).

    Returns:
        ``{"infom", "infoc", "infoe", "num_active_dims"}``.

    Differences from the authors' code
        1. The KSG jitter comes from ``seed`` (theirs: NumPy's global generator).
        2. An active latent with zero NMI to every factor (0/0 in InfoM's ratio) counts as
           uninformative, ratio ``1/K``, i.e. 0 after the normalisation (theirs: NaN for the whole
           InfoM); likewise a factor no active latent informs about counts ``1/A`` in InfoC.
           With one active latent, InfoC is 1 (theirs: 0/0); with none, InfoM and InfoC are 0.
        3. LogisticRegression is called without ``multi_class="multinomial"`` (removed in
           scikit-learn 1.7; lbfgs fits the multinomial model by default since 1.5). For a factor of
           two values newer scikit-learn fits one coefficient vector instead of two: the same model,
           whose lbfgs path may end elsewhere when ``max_iter`` stops it before convergence.
    """
    codes, factors = check_codes_factors(codes, factors)
    labels = _relabel(factors)
    nmi = normalized_mutual_information(labels, codes, discrete_codes, n_neighbors, seed)
    ranges = codes.max(axis=0) - codes.min(axis=0)
    if discrete_codes:
        active = ranges > 0
    else:
        active = ranges > ranges.max() * active_fraction
    num_factors, num_active = labels.shape[1], int(active.sum())
    pruned = nmi[:, active]  # (K, A)
    infom = _concentration(pruned.T, num_factors)  # each latent's share in its best factor
    infoc = _concentration(pruned, num_active)  # each factor's share in its best latent
    return {
        "infom": infom,
        "infoc": infoc,
        "infoe": _predictive_information(labels, codes, discrete_codes, max_iter),
        "num_active_dims": float(num_active),
    }


def normalized_mutual_information(
    labels: np.ndarray, codes: np.ndarray, discrete_codes: bool, n_neighbors: int, seed: int
) -> np.ndarray:
    """(K, D) ``I(v_k; z_j) / H(v_k)`` of relabelled factors ``labels`` (N, K) and ``codes``
    (N, D)."""
    if discrete_codes:
        latents = _relabel(codes)
    else:
        latents = _standardize(codes)
    nmi = np.empty((labels.shape[1], codes.shape[1]))
    for k in range(labels.shape[1]):
        for j in range(codes.shape[1]):
            if discrete_codes:
                nmi[k, j] = mutual_info_score(labels[:, k], latents[:, j])
            else:
                nmi[k, j] = mutual_info_classif(
                    latents[:, j : j + 1],
                    labels[:, k],
                    discrete_features=False,
                    n_neighbors=n_neighbors,
                    random_state=seed,
                )[0]
        nmi[k] /= mutual_info_score(labels[:, k], labels[:, k])  # H(v_k), nats
    return nmi


def _concentration(rows: np.ndarray, size: int) -> float:
    """``(mean_i [max(rows[i]) / sum(rows[i])] - 1/size) / (1 - 1/size)``; an all-zero row counts
    1/size (no information, so no concentration)."""
    if rows.size == 0:
        return 0.0
    if size == 1:
        return 1.0  # all of it in the only one there is
    sums = rows.sum(axis=1)
    shares = np.full(len(rows), 1 / size)
    shares[sums > 0] = rows[sums > 0].max(axis=1) / sums[sums > 0]
    return float((shares.mean() - 1 / size) / (1 - 1 / size))


def _predictive_information(
    labels: np.ndarray, codes: np.ndarray, discrete_codes: bool, max_iter: int
) -> float:
    """mean_k (H_0 - H(v_k | z)) / H_0: log losses of logistic regressions fitted and scored on the
    same samples."""
    if discrete_codes:
        inputs = np.concatenate([_one_hot(column) for column in _relabel(codes).T], axis=1)
    else:
        inputs = _standardize(codes)
    constant = np.zeros_like(codes, dtype=np.float64)  # the authors' null input: all zeros
    shares = []
    for k in range(labels.shape[1]):
        conditional = _log_loss(inputs, labels[:, k], max_iter)
        marginal = _log_loss(constant, labels[:, k], max_iter)
        shares.append((marginal - conditional) / marginal)
    return float(np.mean(shares))


def _log_loss(inputs: np.ndarray, target: np.ndarray, max_iter: int) -> float:
    model = LogisticRegression(
        C=np.inf,  # unregularised (the authors' penalty=None)
        tol=1e-4,
        class_weight="balanced",
        solver="lbfgs",
        max_iter=max_iter,
    )
    model.fit(inputs, target)
    return float(log_loss(target, model.predict_proba(inputs)))


def _relabel(values: np.ndarray) -> np.ndarray:
    """Each column's values as 0..n-1 in sorted order (scikit-learn's LabelEncoder)."""
    return np.stack(
        [np.unique(column, return_inverse=True)[1] for column in values.T], axis=1
    ).astype(np.int64)


def _standardize(codes: np.ndarray) -> np.ndarray:
    """Zero mean, unit (population) variance per column; a constant column stays 0, as with
    StandardScaler."""
    codes = codes.astype(np.float64)
    std = codes.std(axis=0)
    return (codes - codes.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _one_hot(labels: np.ndarray) -> np.ndarray:
    return (labels[:, None] == np.arange(labels.max() + 1)).astype(np.float64)
