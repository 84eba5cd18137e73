"""Shared helpers of the disentanglement metrics.

Conventions (different from disentanglement_lib, which stores arrays transposed):
codes are ``(N, D)`` float arrays (rows = samples), factors are ``(N, K)`` integer
arrays. All information quantities are in nats.

Contents
--------
``as_rng``                      int seed / Generator / RandomState -> random source.
``histogram_discretize``        DL's ``_histogram_discretize`` (equal-width bins per code dim).
``discrete_mutual_info``        matrix of ``sklearn.metrics.mutual_info_score`` values, vectorised.
``discrete_entropy``            ``mutual_info_score(y, y)`` per column, vectorised.
``generate_batch_factor_code``  DL's ``generate_batch_factor_code`` (rows = samples).
``with_fixed_factor``           ``data.with_fixed_factor`` where ``data`` has it (non-grid data).

Differences from disentanglement_lib
------------------------------------
- ``discrete_mutual_info``/``discrete_entropy`` compute sklearn's exact per-cell terms
  (same operations, same eps-zeroing, same clipping) from a ``np.bincount`` contingency
  table instead of calling ``mutual_info_score`` in a double loop; only the order in which
  the terms of one entry are summed differs, i.e. values agree to ~1e-15 (tested to 1e-12).
- ``histogram_discretize`` returns integer labels; DL stores the same labels in an array of
  the input's dtype (``np.zeros_like(target)``). Identical bins.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "as_rng",
    "check_codes_factors",
    "random_index",
    "with_fixed_factor",
    "histogram_discretize",
    "discrete_mutual_info",
    "discrete_entropy",
    "generate_batch_factor_code",
]


def as_rng(rng):
    """Return a random source: a ``np.random.Generator`` (ints and ``None`` are converted with
    ``np.random.default_rng``); a ``np.random.RandomState`` is passed through unchanged so the
    exact disentanglement_lib draws can be reproduced. The global numpy RNG is never used."""
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    return np.random.default_rng(rng)


def check_codes_factors(codes, factors, what: str = ""):
    """``np.asarray`` both and check shapes ``(N, D)`` / ``(N, K)`` with the same ``N``.
    Codes keep their dtype (DL bins float32 codes in float32)."""
    codes = np.asarray(codes)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or codes.shape[0] != factors.shape[0]:
        raise ValueError(
            f"{what}codes and factors must be (N, D) and (N, K) with the same N, got {codes.shape} and {factors.shape}"
        )
    return codes, factors


def random_index(rng, high: int) -> int:
    """One uniform integer in ``[0, high)``: ``rng.integers(high)`` for a Generator,
    ``rng.randint(high)`` (DL's call) for a RandomState."""
    if isinstance(rng, np.random.RandomState):
        return int(rng.randint(high))
    return int(rng.integers(high))


def with_fixed_factor(data, factors: np.ndarray, k: int, rng) -> np.ndarray:
    """``factors`` after the caller copied one value of factor ``k`` into them, made into
    combinations the data set has: ``data.with_fixed_factor(factors, k, rng)`` where ``data`` has
    that method (``disent.data.GroundTruthData``; on a grid it returns ``factors`` and draws
    nothing), else ``factors`` unchanged (a data set of one's own, e.g. DL's, whose every
    combination exists)."""
    hook = getattr(data, "with_fixed_factor", None)
    return factors if hook is None else np.asarray(hook(factors, k, rng))


def histogram_discretize(codes, num_bins: int = 20) -> np.ndarray:
    """Discretise each code dimension into ``num_bins`` equal-width bins.

    Exactly DL's ``_histogram_discretize``: for every column ``x``,
    ``np.digitize(x, np.histogram(x, num_bins)[1][:-1])`` (labels ``1..num_bins``; the
    column minimum falls in bin 1, the maximum in bin ``num_bins``). The edges are computed
    in the input's dtype (as ``np.histogram`` does), so float32 codes are binned exactly as
    DL bins them. Returns an ``(N, D)`` int64 array.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be (N, D), got shape {codes.shape}")
    out = np.empty(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):  # D is small; each column is fully vectorised
        col = codes[:, i]
        edges = np.histogram_bin_edges(col, num_bins)  # == np.histogram(col, num_bins)[1]
        out[:, i] = np.digitize(col, edges[:-1])
    return out


def _relabel(x: np.ndarray):
    """Per column: dense labels ``0..n-1`` (sorted unique values, as sklearn does), counts."""
    labels = np.empty(x.shape, dtype=np.int64)
    counts = []
    for j in range(x.shape[1]):
        _, inv, cnt = np.unique(x[:, j], return_inverse=True, return_counts=True)
        labels[:, j] = inv.reshape(-1)
        counts.append(cnt.astype(np.int64))
    return labels, counts


def _mi_terms(n_cells: np.ndarray, row_marg: np.ndarray, col_marg: np.ndarray, total) -> np.ndarray:
    """sklearn's ``mutual_info_score`` per-cell terms (identical floating-point operations)."""
    log_contingency_nm = np.log(n_cells)
    contingency_nm = n_cells / total
    outer = row_marg.astype(np.int64, copy=False) * col_marg.astype(np.int64, copy=False)
    log_outer = -np.log(outer) + math.log(total) + math.log(total)
    mi = contingency_nm * (log_contingency_nm - math.log(total)) + contingency_nm * log_outer
    return np.where(np.abs(mi) < np.finfo(mi.dtype).eps, 0.0, mi)


def discrete_mutual_info(a, b) -> np.ndarray:
    """Matrix ``M[i, j] = sklearn.metrics.mutual_info_score(b[:, j], a[:, i])`` (nats).

    ``a``: ``(N, Da)`` and ``b``: ``(N, Db)`` arrays of discrete labels (any hashable numeric
    values; only equality matters). DL calls ``mutual_info_score`` ``Da * Db`` times; here one
    ``np.bincount`` per column of ``a`` builds all ``Db`` contingency tables at once, and the
    per-cell terms are computed with sklearn's formula, including its conventions: a variable
    with a single distinct value gives exactly 0, terms below machine eps are zeroed, and the
    sum is clipped at 0.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must be (N, Da) and (N, Db), got {a.shape} and {b.shape}")
    n = a.shape[0]
    la, ca = _relabel(a)
    lb, cb = _relabel(b)
    nb = np.array([len(c) for c in cb], dtype=np.int64)
    db = b.shape[1]
    col_off = np.concatenate([[0], np.cumsum(nb)])  # offsets of each b column's labels
    cb_cat = np.concatenate(cb) if db else np.zeros(0, np.int64)
    m = np.zeros((a.shape[1], db), dtype=np.float64)
    for i in range(a.shape[1]):
        na = len(ca[i])
        if na == 1:
            continue  # sklearn: single cluster -> MI = 0
        sizes = na * nb
        off = np.concatenate([[0], np.cumsum(sizes)])
        idx = off[:-1][None, :] + la[:, i][:, None] * nb[None, :] + lb  # (N, Db) cell ids
        counts = np.bincount(idx.ravel(), minlength=int(off[-1]))
        cells = np.flatnonzero(counts)
        pair = np.searchsorted(off, cells, side="right") - 1
        within = cells - off[pair]
        r, c = within // nb[pair], within % nb[pair]
        terms = _mi_terms(counts[cells], ca[i][r], cb_cat[col_off[pair] + c], n)
        mi = np.bincount(pair, weights=terms, minlength=db)
        mi[nb == 1] = 0.0
        m[i] = np.clip(mi, 0.0, None)
    return m


def discrete_entropy(y) -> np.ndarray:
    """Entropy (nats) of each column of ``y`` ``(N, K)``, computed as DL does, i.e. as
    ``sklearn.metrics.mutual_info_score(y[:, j], y[:, j])`` (0 for a constant column)."""
    y = np.asarray(y)
    if y.ndim != 2:
        raise ValueError(f"y must be (N, K), got shape {y.shape}")
    _, counts = _relabel(y)
    h = np.zeros(y.shape[1], dtype=np.float64)
    for j, cnt in enumerate(counts):
        if len(cnt) > 1:
            h[j] = max(float(np.sum(_mi_terms(cnt, cnt, cnt, y.shape[0]))), 0.0)
    return h


def generate_batch_factor_code(
    data, represent, num_points: int, rng, batch_size: int = 16, encode_chunk: int = 1024
):
    """Draw ``num_points`` (codes, factors) pairs in batches, as DL's helper of the same name.

    Per batch of ``b = min(batch_size, remaining)``: ``factors = data.sample_factors(b, rng)``,
    ``obs = data.sample_observations_from_factors(factors, rng)``, ``codes = represent(obs)``
    (the same RNG calls in the same order as DL's ``ground_truth_data.sample``).

    When ``data.deterministic`` is true, rendering draws nothing from ``rng``, so all factor
    batches are drawn first (the same values as the interleaved loop) and the observations are
    rendered and represented ``encode_chunk`` at a time: a net encodes 1024 images far faster
    than 64 batches of 16.

    Returns ``codes`` ``(num_points, D)`` and ``factors`` ``(num_points, K)`` (rows = samples;
    DL returns the transposes).
    """
    rng = as_rng(rng)
    sizes = [min(batch_size, num_points - i) for i in range(0, num_points, batch_size)]
    if getattr(data, "deterministic", False):
        factors = np.concatenate([np.asarray(data.sample_factors(b, rng)) for b in sizes], axis=0)
        codes = [
            np.asarray(
                represent(data.sample_observations_from_factors(factors[i : i + encode_chunk], rng))
            )
            for i in range(0, num_points, encode_chunk)
        ]
        return np.concatenate(codes, axis=0), factors
    codes, factors = [], []
    for b in sizes:
        f = np.asarray(data.sample_factors(b, rng))
        obs = data.sample_observations_from_factors(f, rng)
        codes.append(np.asarray(represent(obs)))
        factors.append(f)
    return np.concatenate(codes, axis=0), np.concatenate(factors, axis=0)
