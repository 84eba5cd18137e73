"""Tests of disent.metrics: known answers, invariances, reproducibility, and agreement with
straightforward transcriptions of disentanglement_lib's (DL) loops (the ``_dl_*`` helpers
below follow DL's code line by line, with DL's transposed (D, N) arrays)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import sklearn.metrics
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

from disent.metrics import (
    beta_vae_score,
    completeness,
    dci,
    disentanglement,
    factor_vae_score,
    mig,
    modularity_explicitness,
    sap,
    unsupervised,
)
from disent.metrics.utils import (
    discrete_entropy,
    discrete_mutual_info,
    generate_batch_factor_code,
    histogram_discretize,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SIZES = (4, 5, 6, 3)
K = len(SIZES)


# --------------------------------------------------------------------------- toy data set
class ToyData:
    """Ground-truth data whose observation is the factor vector itself, shaped (n, K, 1, 1).

    With ``noise > 0`` the observation sampling also draws from the random source, so tests
    can check that the metrics consume it in DL's order."""

    def __init__(self, factor_sizes=SIZES, noise: float = 0.0):
        self.factor_sizes = tuple(factor_sizes)
        self.num_factors = len(self.factor_sizes)
        self.noise = noise
        self.calls = None  # set to a list to record the calls

    def sample_factors(self, n, rng):
        if self.calls is not None:
            self.calls.append(("sample_factors", n))
        if isinstance(rng, np.random.RandomState):
            return rng.randint(0, self.factor_sizes, size=(n, self.num_factors)).astype(np.int64)
        return rng.integers(0, self.factor_sizes, size=(n, self.num_factors)).astype(np.int64)

    def sample_observations_from_factors(self, factors, rng):
        if self.calls is not None:
            self.calls.append(("sample_observations_from_factors", len(factors)))
        obs = np.asarray(factors, dtype=np.float32)
        if self.noise:
            obs = obs + np.float32(self.noise) * rng.normal(size=obs.shape).astype(np.float32)
        return obs[:, :, None, None]

    # DL's GroundTruthData helpers, used by the DL transcriptions below only.
    def sample(self, n, rng):
        factors = self.sample_factors(n, rng)
        return factors, self.sample_observations_from_factors(factors, rng)

    def sample_observations(self, n, rng):
        return self.sample(n, rng)[1]


def represent(obs):
    return np.asarray(obs).reshape(len(obs), -1)


def rotation(d, seed=1):
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))[0]


def draw(n, seed=0, data=None):
    return generate_batch_factor_code(data or ToyData(), represent, n, np.random.default_rng(seed))


@pytest.fixture(scope="module")
def ident():
    """(codes_train, factors_train, codes_test, factors_test) with codes = factors (float)."""
    codes, factors = draw(3000)
    return codes[:2000], factors[:2000], codes[2000:], factors[2000:]


@pytest.fixture(scope="module")
def ident_dci(ident):
    return dci(*ident, seed=0)


# --------------------------------------------------------------------------- DL transcriptions
def _dl_histogram_discretize(target, num_bins=20):
    discretized = np.zeros_like(target)
    for i in range(target.shape[0]):
        discretized[i, :] = np.digitize(target[i, :], np.histogram(target[i, :], num_bins)[1][:-1])
    return discretized


def _dl_discrete_mutual_info(mus, ys):
    m = np.zeros([mus.shape[0], ys.shape[0]])
    for i in range(mus.shape[0]):
        for j in range(ys.shape[0]):
            m[i, j] = sklearn.metrics.mutual_info_score(ys[j, :], mus[i, :])
    return m


def _dl_discrete_entropy(ys):
    return np.array(
        [sklearn.metrics.mutual_info_score(ys[j, :], ys[j, :]) for j in range(ys.shape[0])]
    )


def _dl_mig(codes, factors):
    mus_train, ys_train = codes.T, factors.T
    m = _dl_discrete_mutual_info(_dl_histogram_discretize(mus_train), ys_train)
    entropy = _dl_discrete_entropy(ys_train)
    sorted_m = np.sort(m, axis=0)[::-1]
    return np.mean(np.divide(sorted_m[0, :] - sorted_m[1, :], entropy[:]))


def _dl_modularity_explicitness(codes_train, factors_train, codes_test, factors_test):
    mus_train, ys_train, mus_test, ys_test = (
        codes_train.T,
        factors_train.T,
        codes_test.T,
        factors_test.T,
    )
    mi = _dl_discrete_mutual_info(_dl_histogram_discretize(mus_train), ys_train)
    squared_mi = np.square(mi)
    max_squared_mi = np.max(squared_mi, axis=1)
    numerator = np.sum(squared_mi, axis=1) - max_squared_mi
    denominator = max_squared_mi * (squared_mi.shape[1] - 1.0)
    modularity_score = 1.0 - numerator / denominator
    modularity_score[max_squared_mi == 0.0] = 0.0
    mean, std = np.mean(mus_train, axis=1), np.std(mus_train, axis=1)
    x_train = np.transpose((mus_train - mean[:, np.newaxis]) / std[:, np.newaxis])
    x_test = np.transpose((mus_test - mean[:, np.newaxis]) / std[:, np.newaxis])
    train, test = [], []
    for i in range(ys_train.shape[0]):
        clf = LogisticRegression().fit(x_train, ys_train[i])
        mlb = MultiLabelBinarizer()
        train.append(
            roc_auc_score(
                mlb.fit_transform(np.expand_dims(ys_train[i], 1)), clf.predict_proba(x_train)
            )
        )
        test.append(
            roc_auc_score(
                mlb.fit_transform(np.expand_dims(ys_test[i], 1)), clf.predict_proba(x_test)
            )
        )
    return np.mean(modularity_score), np.mean(train), np.mean(test)


def _dl_unsupervised(codes):
    mus_train = codes.T
    num_codes = mus_train.shape[0]
    cov = np.cov(mus_train)
    tc = 0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1])
    sqrtm = scipy.linalg.sqrtm(cov * np.expand_dims(np.diag(cov), axis=1))
    wc = 2 * np.trace(cov) - 2 * np.trace(sqrtm)
    d = _dl_histogram_discretize(mus_train)
    mi = _dl_discrete_mutual_info(d, d)
    np.fill_diagonal(mi, 0)
    return tc, wc, wc / np.sum(np.diag(cov)), np.sum(mi) / (num_codes**2 - num_codes)


def _dl_sap_continuous(codes, factors):
    mus, ys = codes.T, factors.T
    s = np.zeros([mus.shape[0], ys.shape[0]])
    for i in range(mus.shape[0]):
        for j in range(ys.shape[0]):
            c = np.cov(mus[i, :], ys[j, :], ddof=1)
            s[i, j] = c[0, 1] ** 2 * 1.0 / (c[0, 0] * c[1, 1]) if c[0, 0] > 1e-12 else 0.0
    s = np.sort(s, axis=0)
    return np.mean(s[-1, :] - s[-2, :])


def _dl_beta_vae(data, representation_function, random_state, batch_size, num_train, num_eval):
    def sample_point():
        index = random_state.randint(data.num_factors)
        factors1 = data.sample_factors(batch_size, random_state)
        factors2 = data.sample_factors(batch_size, random_state)
        factors2[:, index] = factors1[:, index]
        observation1 = data.sample_observations_from_factors(factors1, random_state)
        observation2 = data.sample_observations_from_factors(factors2, random_state)
        r1, r2 = representation_function(observation1), representation_function(observation2)
        return index, np.mean(np.abs(r1 - r2), axis=0)

    def batch(n):
        labels, points = zip(*[sample_point() for _ in range(n)], strict=True)
        return np.array(points), np.array(labels)

    train_points, train_labels = batch(num_train)
    model = LogisticRegression(random_state=random_state).fit(train_points, train_labels)
    train_accuracy = np.mean(model.predict(train_points) == train_labels)
    eval_points, eval_labels = batch(num_eval)
    return train_accuracy, model.score(eval_points, eval_labels)


def _dl_factor_vae(
    data, representation_function, random_state, batch_size, num_train, num_eval, num_var, thr
):
    global_variances = np.var(
        representation_function(data.sample_observations(num_var, random_state)), axis=0, ddof=1
    )
    active_dims = np.sqrt(global_variances) >= thr

    def votes(n):
        v = np.zeros((data.num_factors, global_variances.shape[0]), dtype=np.int64)
        for _ in range(n):
            factor_index = random_state.randint(data.num_factors)
            factors = data.sample_factors(batch_size, random_state)
            factors[:, factor_index] = factors[0, factor_index]
            obs = data.sample_observations_from_factors(factors, random_state)
            local_variances = np.var(representation_function(obs), axis=0, ddof=1)
            argmin = np.argmin(local_variances[active_dims] / global_variances[active_dims])
            v[factor_index, argmin] += 1
        return v

    training_votes = votes(num_train)
    classifier = np.argmax(training_votes, axis=0)
    other_index = np.arange(training_votes.shape[1])
    train_accuracy = np.sum(training_votes[classifier, other_index]) * 1.0 / np.sum(training_votes)
    eval_votes = votes(num_eval)
    eval_accuracy = np.sum(eval_votes[classifier, other_index]) * 1.0 / np.sum(eval_votes)
    return train_accuracy, eval_accuracy


# --------------------------------------------------------------------------- utils
@pytest.mark.filterwarnings("ignore:Clustering metrics expects discrete values")
def test_fast_mutual_info_equals_sklearn():
    rng = np.random.default_rng(0)
    n = 3000
    a = np.stack(
        [rng.integers(0, 20, n), rng.integers(0, 3, n), np.zeros(n, int), rng.integers(5, 9, n)],
        axis=1,
    )
    a[:, 3] = np.where(rng.random(n) < 0.5, a[:, 0] % 7, a[:, 3])  # dependent column
    b = np.stack(
        [rng.integers(0, 40, n), a[:, 0] // 2, rng.integers(0, 2, n), np.full(n, 7)], axis=1
    )
    b = np.hstack([b, rng.normal(size=(n, 1)).round(1)])  # float labels
    m = discrete_mutual_info(a, b)
    ref = np.array(
        [[sklearn.metrics.mutual_info_score(b[:, j], a[:, i]) for j in range(5)] for i in range(4)]
    )
    np.testing.assert_allclose(m, ref, rtol=0, atol=1e-12)
    assert (m[2] == 0).all() and (m[:, 3] == 0).all()  # constant variables: exactly 0, as sklearn
    h = discrete_entropy(b)
    ref_h = [sklearn.metrics.mutual_info_score(b[:, j], b[:, j]) for j in range(5)]
    np.testing.assert_allclose(h, ref_h, rtol=0, atol=1e-12)
    aa = discrete_mutual_info(a, a)
    np.testing.assert_allclose(aa, aa.T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_histogram_discretize_matches_dl(dtype):
    rng = np.random.default_rng(1)
    codes = (rng.normal(size=(2000, 5)) * 3).astype(dtype)
    codes[:, 2] = codes[0, 2]  # constant column
    d = histogram_discretize(codes)
    np.testing.assert_array_equal(d, _dl_histogram_discretize(codes.T).T)
    assert d.min() >= 1 and d.max() <= 20


def test_generate_batch_factor_code_calls_and_shapes():
    data = ToyData()
    data.calls = []
    codes, factors = generate_batch_factor_code(
        data, represent, 37, np.random.default_rng(0), batch_size=16
    )
    assert codes.shape == (37, K) and factors.shape == (37, K)
    np.testing.assert_array_equal(codes, factors.astype(np.float32))
    sizes = [16, 16, 5]
    assert data.calls == [
        c for s in sizes for c in (("sample_factors", s), ("sample_observations_from_factors", s))
    ]
    # RandomState gives DL's draws: the same as DL's ground_truth_data.sample loop
    codes_rs, factors_rs = generate_batch_factor_code(
        ToyData(), represent, 37, np.random.RandomState(3)
    )
    rs = np.random.RandomState(3)
    ref = np.vstack([ToyData().sample(s, rs)[0] for s in sizes])
    np.testing.assert_array_equal(factors_rs, ref)


# --------------------------------------------------------------------------- agreement with DL
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mig_modularity_unsupervised_match_dl(dtype):
    codes, factors = draw(1500, seed=2, data=ToyData(noise=0.7))
    codes = (codes @ rotation(K, 2)[:, :K] * np.array([1.0, 2.0, 0.5, 3.0])).astype(dtype)
    codes = np.hstack([codes, np.random.default_rng(3).normal(size=(1500, 2)).astype(dtype)])
    ct, ft, cs, fs = codes[:1000], factors[:1000], codes[1000:], factors[1000:]
    assert mig(ct, ft)["mig"] == pytest.approx(_dl_mig(ct, ft), abs=1e-12)
    me = modularity_explicitness(ct, ft, cs, fs)
    ref = _dl_modularity_explicitness(ct, ft, cs, fs)
    np.testing.assert_allclose(
        [me["modularity"], me["explicitness_train"], me["explicitness_test"]], ref, atol=1e-12
    )
    un = unsupervised(ct)
    keys = [
        "gaussian_total_correlation",
        "gaussian_wasserstein_correlation",
        "gaussian_wasserstein_correlation_norm",
        "mutual_info_score",
    ]
    np.testing.assert_allclose(
        [un[k] for k in keys], np.real(_dl_unsupervised(ct)), rtol=1e-12, atol=1e-12
    )
    assert sap(ct, ft, cs, fs, continuous_factors=True)["sap"] == pytest.approx(
        _dl_sap_continuous(ct, ft), abs=1e-12
    )


def test_dci_formulas():
    rng = np.random.default_rng(0)
    r = rng.random((6, 4)) ** 3
    r[5] = 0  # an unused code

    def ent(p, base):
        p = p / p.sum()
        return -np.sum(p * np.log(p)) / np.log(base)

    d_ref = sum(r[j].sum() / r.sum() * (1 - ent(r[j] + 1e-11, 4)) for j in range(6))
    c_ref = sum(r[:, k].sum() / r.sum() * (1 - ent(r[:, k] + 1e-11, 6)) for k in range(4))
    assert disentanglement(r) == pytest.approx(d_ref, abs=1e-12)
    assert completeness(r) == pytest.approx(c_ref, abs=1e-12)
    assert disentanglement(np.eye(4)) == pytest.approx(1.0, abs=1e-8)
    assert completeness(np.ones((4, 4))) == pytest.approx(0.0, abs=1e-12)
    assert disentanglement(np.zeros((3, 3))) == pytest.approx(0.0, abs=1e-9)


def test_scores_match_dl_draw_order():
    """With a RandomState and an observation sampler that consumes it, both scores equal the
    DL transcriptions exactly: same calls on the random source, in the same order."""
    data = ToyData(noise=0.3)
    a = beta_vae_score(
        data, represent, np.random.RandomState(5), batch_size=8, num_train=150, num_eval=100
    )
    ref = _dl_beta_vae(data, represent, np.random.RandomState(5), 8, 150, 100)
    assert (a["train_accuracy"], a["eval_accuracy"]) == ref
    f = factor_vae_score(
        data,
        represent,
        np.random.RandomState(5),
        batch_size=8,
        num_train=150,
        num_eval=100,
        num_variance_estimate=500,
    )
    ref = _dl_factor_vae(data, represent, np.random.RandomState(5), 8, 150, 100, 500, 0.05)
    assert (f["train_accuracy"], f["eval_accuracy"]) == ref


def test_scores_through_caching_wrapper_are_identical():
    """A data/represent pair that returns grid indices and looks codes up in a table (as a
    later caching layer will) gives exactly the same numbers as encoding observations."""
    q = rotation(K, 4)

    def rep(obs):
        return represent(obs) @ q

    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SIZES], indexing="ij"), -1).reshape(-1, K)
    table = rep(ToyData().sample_observations_from_factors(grid, None))

    class CachedData(ToyData):
        def sample_observations_from_factors(self, factors, rng):
            return np.ravel_multi_index(np.asarray(factors).T, self.factor_sizes)

    def cached_rep(index):
        return table[index]

    for fn, kw in [
        (beta_vae_score, dict(num_train=120, num_eval=80)),
        (factor_vae_score, dict(num_train=120, num_eval=80, num_variance_estimate=500)),
    ]:
        assert fn(ToyData(), rep, 11, **kw) == fn(CachedData(), cached_rep, 11, **kw)


# --------------------------------------------------------------------------- known answers
def test_identity_code_is_disentangled(ident, ident_dci):
    ct, ft, cs, fs = ident
    assert mig(ct, ft)["mig"] > 0.85
    assert ident_dci["disentanglement"] > 0.9 and ident_dci["completeness"] > 0.9
    assert ident_dci["informativeness_test"] == 1.0
    me = modularity_explicitness(ct, ft, cs, fs)
    assert me["modularity"] > 0.99 and me["explicitness_test"] > 0.95
    kw = dict(num_train=300, num_eval=200)
    assert beta_vae_score(ToyData(), represent, 0, **kw) == {
        "train_accuracy": 1.0,
        "eval_accuracy": 1.0,
    }
    f = factor_vae_score(ToyData(), represent, 0, num_variance_estimate=2000, **kw)
    assert f == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": float(K)}
    for scores in [ident_dci, me, f, mig(ct, ft), sap(ct, ft, cs, fs), unsupervised(ct)]:
        assert all(type(v) is float for v in scores.values())


def test_rotation_scores_lower(ident, ident_dci):
    ct, ft, cs, fs = ident
    q = rotation(K)
    rt, rs = ct @ q, cs @ q
    assert mig(rt, ft)["mig"] < mig(ct, ft)["mig"] - 0.3
    rot_dci = dci(rt, ft, rs, fs)
    assert rot_dci["disentanglement"] < ident_dci["disentanglement"] - 0.3
    assert rot_dci["completeness"] < ident_dci["completeness"] - 0.3
    assert sap(rt, ft, rs, fs)["sap"] < sap(ct, ft, cs, fs)["sap"] - 0.1


def test_noise_scores_near_chance():
    rng = np.random.default_rng(5)
    codes, factors = draw(2000, seed=6)
    noise = rng.normal(size=(2000, 6))
    assert abs(mig(noise, factors)["mig"]) < 0.02
    assert sap(noise[:1500], factors[:1500], noise[1500:], factors[1500:])["sap"] < 0.03

    noise_source = np.random.default_rng(7)

    def noise_rep(obs):
        return noise_source.normal(size=(len(obs), 6))

    b = beta_vae_score(ToyData(), noise_rep, 0, num_train=300, num_eval=400)
    assert abs(b["eval_accuracy"] - 1 / K) < 0.1


def test_duplicated_factor(ident, ident_dci):
    ct, ft, cs, fs = ident
    dup_t, dup_s = np.hstack([ct, ct[:, :1]]), np.hstack([cs, cs[:, :1]])

    def gaps(codes):
        m = np.sort(discrete_mutual_info(histogram_discretize(codes), ft), axis=0)
        return (m[-1] - m[-2]) / discrete_entropy(ft)

    g, g_dup = gaps(ct), gaps(dup_t)
    assert g[0] > 0.9 and g_dup[0] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(g_dup[1:], g[1:], atol=1e-12)
    assert mig(dup_t, ft)["mig"] < mig(ct, ft)["mig"] - 0.2
    assert dci(dup_t, ft, dup_s, fs)["completeness"] < ident_dci["completeness"] - 0.05


def test_permuting_code_dims_changes_nothing():
    """All metrics are invariant to the order of the code dims. DCI is exactly invariant
    thanks to the canonical column order fed to the trees (without it, equally good splits on
    different dims are broken by a seeded random feature order, which moves D/C by ~1e-3).
    The remaining tolerance 1e-9 only covers floating-point summation order (observed
    differences <= 1e-15); classifier accuracies agree exactly."""
    rng = np.random.default_rng(8)
    codes, factors = draw(1500, seed=9, data=ToyData(noise=0.5))
    codes = np.hstack([codes @ rotation(K, 5), rng.normal(size=(1500, 2))])
    perm = np.array([3, 0, 5, 1, 4, 2])
    ct, ft, cs, fs = codes[:1000], factors[:1000], codes[1000:], factors[1000:]
    pt, ps = ct[:, perm], cs[:, perm]
    pairs = [
        (mig(ct, ft), mig(pt, ft)),
        (dci(ct, ft, cs, fs), dci(pt, ft, ps, fs)),
        (sap(ct, ft, cs, fs), sap(pt, ft, ps, fs)),
        (sap(ct, ft, cs, fs, True), sap(pt, ft, ps, fs, True)),
        (modularity_explicitness(ct, ft, cs, fs), modularity_explicitness(pt, ft, ps, fs)),
        (unsupervised(ct), unsupervised(pt)),
    ]
    q = rotation(K, 6)

    def rep(obs):
        return represent(obs) @ q

    def rep_perm(obs):
        return rep(obs)[:, [2, 0, 3, 1]]

    data = ToyData(noise=0.2)
    kw = dict(num_train=200, num_eval=150)
    pairs.append((beta_vae_score(data, rep, 3, **kw), beta_vae_score(data, rep_perm, 3, **kw)))
    kw["num_variance_estimate"] = 1000
    pairs.append((factor_vae_score(data, rep, 3, **kw), factor_vae_score(data, rep_perm, 3, **kw)))
    for a, b in pairs:
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], abs=1e-9), k


def test_dead_dimension():
    def rep_dead(obs):
        r = represent(obs)
        return np.hstack([r[:, :2], np.zeros((len(r), 1), np.float32), r[:, 2:]])

    f = factor_vae_score(
        ToyData(), rep_dead, 0, num_train=200, num_eval=100, num_variance_estimate=1000
    )
    assert f == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": float(K)}
    none = factor_vae_score(
        ToyData(), lambda o: np.zeros((len(o), 3)), 0, num_train=10, num_eval=10
    )
    assert none == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}

    codes, factors = draw(1500, seed=1, data=ToyData(noise=0.5))
    codes = np.hstack([codes, np.zeros((1500, 1))])
    ct, ft, cs, fs = codes[:1000], factors[:1000], codes[1000:], factors[1000:]
    me = modularity_explicitness(ct, ft, cs, fs)
    assert all(np.isfinite(v) for v in me.values())
    me_alive = modularity_explicitness(ct[:, :K], ft, cs[:, :K], fs)
    assert me["explicitness_test"] == pytest.approx(me_alive["explicitness_test"], abs=1e-6)
    un, un_alive = unsupervised(ct), unsupervised(ct[:, :K])
    assert all(np.isfinite(v) for v in un.values())
    assert un["gaussian_total_correlation"] == pytest.approx(
        un_alive["gaussian_total_correlation"], abs=1e-12
    )
    assert un["gaussian_wasserstein_correlation"] == pytest.approx(
        un_alive["gaussian_wasserstein_correlation"]
    )


def test_same_seed_same_values(ident, ident_dci):
    data, kw = ToyData(noise=0.5), dict(num_train=150, num_eval=100)
    assert beta_vae_score(data, represent, 4, **kw) == beta_vae_score(
        data, represent, np.random.default_rng(4), **kw
    )
    kw["num_variance_estimate"] = 500
    assert factor_vae_score(data, represent, 4, **kw) == factor_vae_score(data, represent, 4, **kw)
    ct, ft, cs, fs = ident
    assert modularity_explicitness(ct, ft, cs, fs) == modularity_explicitness(ct, ft, cs, fs)
    assert sap(ct, ft, cs, fs) == sap(ct, ft, cs, fs)
    assert dci(*ident, seed=0, n_jobs=2) == ident_dci  # independent of n_jobs


def test_dci_n_jobs_independent_on_noisy_code():
    codes, factors = draw(600, seed=3, data=ToyData(noise=1.0))
    args = (codes[:400], factors[:400], codes[400:], factors[400:])
    assert dci(*args, seed=1, n_jobs=None) == dci(*args, seed=1, n_jobs=2)


def test_deterministic_data_draws_the_same_points_in_large_encoding_chunks():
    """With `deterministic` data, all factors are drawn first and encoded 1024 at a time: same points."""

    class DeterministicToy(ToyData):
        deterministic = True

    calls = []

    def counting(obs):
        calls.append(len(obs))
        return represent(obs)

    interleaved = generate_batch_factor_code(ToyData(), represent, 3000, np.random.default_rng(5))
    chunked = generate_batch_factor_code(
        DeterministicToy(), counting, 3000, np.random.default_rng(5)
    )
    np.testing.assert_array_equal(interleaved[0], chunked[0])
    np.testing.assert_array_equal(interleaved[1], chunked[1])
    assert calls == [1024, 1024, 952]
