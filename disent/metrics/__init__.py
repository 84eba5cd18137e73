"""Disentanglement metrics, numerically matching google-research/disentanglement_lib (DL).

Every metric takes NumPy arrays and returns a dict of named Python floats. Conventions:
codes are ``(N, D)`` floats and factors ``(N, K)`` ints, rows = samples (DL stores the
transposes). Nothing here imports torch/lightning or other parts of ``disent``.

============================  ================================================  ==========================
function                      returns                                           file
============================  ================================================  ==========================
``mig``                       mig                                               ``mig_score.py``
``dci``                       disentanglement, completeness,                    ``dci_score.py``
                              informativeness_train, informativeness_test
``sap``                       sap                                               ``sap_score.py``
``modularity_explicitness``   modularity, explicitness_train/_test              ``modularity_score.py``
``unsupervised``              gaussian_total_correlation,                       ``unsupervised_metrics.py``
                              gaussian_wasserstein_correlation(_norm),
                              mutual_info_score
``beta_vae_score``            train_accuracy, eval_accuracy                     ``beta_vae.py``
``factor_vae_score``          train_accuracy, eval_accuracy, num_active_dims    ``factor_vae.py``
``irs``                       irs, num_active_dims                              ``irs_score.py``
``mcc``                       mcc                                               ``mcc_score.py``
``downstream``                {n}:mean_test_accuracy, ..., sample_efficiency    ``downstream.py``
``dci_es``                    explicitness(.k), size, disentanglement, ...      ``dci_es.py``
``infomec``                   infom, infoc, infoe, num_active_dims              ``infomec.py``
``udr``                       scores (M,), pairwise (M, M): a set of models     ``udr.py``
============================  ================================================  ==========================

The first five take codes/factors already drawn (e.g. with
``utils.generate_batch_factor_code``, DL's sampler, batch size 16); the last two draw their
own samples from a ground-truth ``data`` object and a ``represent`` function, calling the
random source in exactly DL's order. Study settings (DL's ``configs``): 10000 train / 5000
test points, 20 histogram bins, batch size 64 for the two scores, FactorVAE prune threshold
0.05 and 10000 points for the global variances.

Deliberate differences from disentanglement_lib
-----------------------------------------------
1. Random sources are explicit: ``np.random.Generator`` (or an int seed; a ``RandomState``
   is accepted and used with DL's calls, e.g. ``randint``); the global numpy RNG is never
   used, and every sklearn estimator gets a fixed ``random_state``.
2. DCI: ``GradientBoostingClassifier(random_state=seed)`` (DL: unseeded), and the code dims
   are given to the trees in a canonical content-defined order, so the result is exactly
   invariant to permuting code dims. Both only affect which of several equally good tree
   splits is kept, which DL decides at random. Optional joblib parallelism over factors.
3. SAP: ``LinearSVC(..., dual=False, random_state=0)`` — the primal solver that DL's call
   picks under scikit-learn >= 1.5; older scikit-learn used the (unseeded) dual solver for
   the same optimisation problem. A factor with one train class is predicted as that class
   (DL raises).
4. Explicitness: a code dim with zero train std is divided by 1, not 0 (DL: NaN and an
   exception). ROC-AUC columns are the train classes; a class column without positives or
   negatives in the evaluated set is skipped (DL raises when train/test classes differ).
5. Logistic regressions (explicitness, BetaVAE) use scikit-learn's current default
   (lbfgs, multinomial) — what DL's code gives with scikit-learn >= 0.22. The
   scikit-learn 0.20 used for DL's published study defaulted to liblinear one-vs-rest, which
   gives visibly different explicitness (e.g. 0.937 vs 0.896 on a dSprites-sized toy) and
   slightly different BetaVAE accuracies (0.931 vs 0.928).
6. FactorVAE: ``num_active_dims`` is the true number of active dims (DL: always ``D``).
   Votes are indexed by real code dim (DL: by position among active dims) — same accuracies.
7. Unsupervised: zero-variance code dims are left out of the Gaussian total/Wasserstein
   correlations (DL: NaN / sqrtm of a singular matrix); the real part of ``sqrtm`` is used.
8. Discrete mutual information is computed from ``np.bincount`` contingency tables with
   sklearn's exact per-cell formula (equal to ``mutual_info_score`` up to summation order,
   ~1e-15). Output keys are renamed (``mig``, ``sap``, ``modularity``,
   ``explicitness_train``...) and all values are Python floats (``num_active_dims`` too).
9. IRS: ``num_active_dims`` counts the active dims (DL: the sum of their code values).
10. Downstream: the GBT predictor gets ``random_state=0`` (DL: unseeded, so not repeatable).
"""

from disent.metrics import utils
from disent.metrics.beta_vae import beta_vae_score
from disent.metrics.dci_score import completeness, dci, disentanglement
from disent.metrics.downstream import downstream
from disent.metrics.factor_vae import factor_vae_score
from disent.metrics.irs_score import irs
from disent.metrics.mcc_score import mcc
from disent.metrics.mig_score import mig
from disent.metrics.modularity_score import modularity, modularity_explicitness
from disent.metrics.sap_score import sap, sap_score_matrix
from disent.metrics.unsupervised_metrics import (
    gaussian_total_correlation,
    gaussian_wasserstein_correlation,
    unsupervised,
)
from disent.metrics.utils import (
    discrete_entropy,
    discrete_mutual_info,
    generate_batch_factor_code,
    histogram_discretize,
)

__all__ = [
    "mig",
    "dci",
    "sap",
    "modularity_explicitness",
    "unsupervised",
    "beta_vae_score",
    "factor_vae_score",
    "irs",
    "mcc",
    "downstream",
    # building blocks
    "disentanglement",
    "completeness",
    "modularity",
    "sap_score_matrix",
    "gaussian_total_correlation",
    "gaussian_wasserstein_correlation",
    "histogram_discretize",
    "discrete_mutual_info",
    "discrete_entropy",
    "generate_batch_factor_code",
    "utils",
]
