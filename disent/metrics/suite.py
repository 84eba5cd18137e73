"""The metric suite runner: a configured set of metrics (`conf/metrics/`) scored on a representation.

A representation is a function of observations: `score` runs every metric of a suite on one, and
`evaluate` / `evaluate_many` score Gaussian encoders (observations -> (mu, logvar) NumPy arrays: any
model, trained by disent or elsewhere) through their mean ("mean", what the study reports) or a
sample z ~ q(z|x) ("sampled"); disentanglement_lib evaluates both. NumPy and scikit-learn only:
nothing here imports torch or a model.

Speed: for a data set whose observation is a function of its factors (`data.deterministic`), the
score metrics alone would encode millions of images. When the factor grid is smaller than the
number of images the suite would encode (and at most `cache_grid_max_size`), the whole grid is
encoded once and every metric looks codes up by grid index: the same values for "mean" as
encoding each sampled batch. For "sampled", z = mu + sigma * eps is drawn at look-up time from the
suite's seed, so it equals per-batch sampling in distribution, not draw for draw.
"""

import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from tqdm import tqdm

from disent.metrics.beta_vae import beta_vae_score
from disent.metrics.dci_es import dci_es
from disent.metrics.dci_score import dci
from disent.metrics.downstream import downstream
from disent.metrics.factor_vae import factor_vae_score
from disent.metrics.infomec import infomec
from disent.metrics.irs_score import irs
from disent.metrics.mcc_score import mcc
from disent.metrics.mig_score import mig
from disent.metrics.modularity_score import modularity_explicitness
from disent.metrics.sap_score import sap
from disent.metrics.unsupervised_metrics import unsupervised
from disent.metrics.utils import generate_batch_factor_code, with_fixed_factor

log = logging.getLogger(__name__)

# observations -> (mu, logvar), (N, Z) each
Encode = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
REPRESENTATIONS = ("mean", "sampled")


# --- the metric suite -----------------------------------------------------------------------------
# metrics on codes/factors drawn from the data set: (train, test, settings, seed, n_jobs) -> values
DRAWN_METRICS = {
    "mig": lambda train, test, s, seed, n_jobs: mig(*train, num_bins=s["num_bins"]),
    "unsupervised": lambda train, test, s, seed, n_jobs: unsupervised(
        train[0], num_bins=s["num_bins"]
    ),
    "dci": lambda train, test, s, seed, n_jobs: dci(
        *train,
        *test,
        seed=seed,
        n_jobs=n_jobs,
        n_estimators=s["n_estimators"],
        estimator=s["estimator"],
    ),
    "sap": lambda train, test, s, seed, n_jobs: sap(
        *train, *test, continuous_factors=s["continuous_factors"]
    ),
    "modularity": lambda train, test, s, seed, n_jobs: modularity_explicitness(
        *train, *test, num_bins=s["num_bins"]
    ),
    "irs": lambda train, test, s, seed, n_jobs: irs(
        *train, diff_quantile=s["diff_quantile"], num_bins=s["num_bins"]
    ),
    "mcc": lambda train, test, s, seed, n_jobs: mcc(*train, correlation=s["correlation"]),
    "dci_es": lambda train, test, s, seed, n_jobs: dci_es(
        *train,
        *test,
        depths=s["depths"],
        n_estimators=s["n_estimators"],
        continuous_factors=s["continuous_factors"],
        seed=seed,
        n_jobs=n_jobs,
    ),
    "infomec": lambda train, test, s, seed, n_jobs: infomec(
        *train,
        discrete_codes=s["discrete_codes"],
        n_neighbors=s["n_neighbors"],
        active_fraction=s["active_fraction"],
        max_iter=s["max_iter"],
        seed=seed,
    ),
}


def downstream_logistic(data, represent, rng, **settings) -> dict[str, float]:
    return downstream(data, represent, rng, predictor="logistic", **settings)


def downstream_gbt(data, represent, rng, **settings) -> dict[str, float]:
    return downstream(data, represent, rng, predictor="gbt", **settings)


# metrics that draw their own samples through (data, represent, rng, **settings)
SCORE_METRICS = {
    "beta_vae": beta_vae_score,
    "factor_vae": factor_vae_score,
    "downstream_logistic": downstream_logistic,
    "downstream_gbt": downstream_gbt,
}
METRIC_NAMES = sorted(DRAWN_METRICS | SCORE_METRICS)


def check_suite(suite: dict) -> None:
    """Refuse unknown metric names before any work is done."""
    unknown = sorted(set(suite) - set(METRIC_NAMES))
    if unknown:
        raise ValueError(
            f"unknown metric(s) {unknown} in metrics.suite: choose from {METRIC_NAMES}"
        )


def images_encoded_per_batch(suite: dict) -> int:
    """How many images the suite encodes when every sampled batch is encoded (upper bound)."""
    total = 0
    for name, s in suite.items():
        if name == "beta_vae":
            total += 2 * s["batch_size"] * (s["num_train"] + s["num_eval"])
        elif name == "factor_vae":
            total += s["num_variance_estimate"] + s["batch_size"] * (s["num_train"] + s["num_eval"])
        elif name.startswith("downstream"):
            total += sum(s["num_train"]) + len(s["num_train"]) * s["num_test"]
        else:
            total += s["num_train"] + s.get("num_test", 0)
    return total


def score(
    data,
    represent: Callable[[np.ndarray], np.ndarray],
    suite: dict,
    seed: int,
    dci_n_jobs: int | None = None,
    seconds: dict[str, float] | None = None,
) -> dict[str, float]:
    """Every metric of `suite` (name -> settings) for one `represent` function; flat
    {"dci.completeness": ...}. `seconds`, when given, receives each metric's wall time.

    Each metric starts from a fresh `np.random.default_rng(seed)`, as disentanglement_lib gives each
    metric its own `RandomState(seed)`: every metric's train set is the first `num_train` points of
    one stream and its test set the points after them, so they are drawn once and shared.
    """
    check_suite(suite)
    trains: dict[
        int, tuple[tuple, dict]
    ] = {}  # num_train -> ((codes, factors), generator state after them)
    tests: dict[tuple[int, int], tuple] = {}

    def draw(num_train: int, num_test: int):
        if num_train not in trains:
            rng = np.random.default_rng(seed)
            trains[num_train] = (
                generate_batch_factor_code(data, represent, num_train, rng),
                rng.bit_generator.state,
            )
        train, state = trains[num_train]
        if num_test and (num_train, num_test) not in tests:
            rng = np.random.default_rng(seed)
            rng.bit_generator.state = state
            tests[(num_train, num_test)] = generate_batch_factor_code(
                data, represent, num_test, rng
            )
        return train, tests.get((num_train, num_test))

    results: dict[str, float] = {}
    # progress in a terminal only (disable=None: off when stderr is not a TTY, e.g. in a sweep's log)
    for name, settings in tqdm(suite.items(), desc="metrics", unit="metric", disable=None):
        if name in SCORE_METRICS:
            rng = np.random.default_rng(seed)
            run = partial(SCORE_METRICS[name], data, represent, rng, **settings)
        else:
            train, test = draw(settings["num_train"], settings.get("num_test", 0))
            run = partial(DRAWN_METRICS[name], train, test, settings, seed, dci_n_jobs)
        results |= _timed(name, run, seconds)
    return results


def _timed(
    name: str, run: Callable[[], dict], seconds: dict[str, float] | None
) -> dict[str, float]:
    """One metric's values, flat ({"dci.completeness": ...}), its wall time logged and put in `seconds`."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        # the reference's classifiers (LogisticRegression with max_iter=100) often stop early on
        # these features; that is part of the metric's definition, so it is not reported per fit
        warnings.simplefilter("ignore", ConvergenceWarning)
        values = run()
    elapsed = time.perf_counter() - start
    log.info("metric %s: %.1f s", name, elapsed)
    if seconds is not None:
        seconds[name] = round(elapsed, 3)
    return {(k if k == name else f"{name}.{k}"): float(v) for k, v in values.items()}


def score_codes(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    suite: dict,
    seed: int,
    dci_n_jobs: int | None = None,
    seconds: dict[str, float] | None = None,
) -> tuple[dict[str, float], list[str]]:
    """The metrics of `suite` that score fixed arrays (codes, factors), on a representation computed
    anywhere: `train` and `test` are ((N, D) codes, (N, K) factors) each, used whole (the suite's
    num_train / num_test do not apply). Returns (flat values, the suite's metrics that were skipped
    because they draw their own observations from a data set: BetaVAE, FactorVAE, downstream)."""
    check_suite(suite)
    values: dict[str, float] = {}
    skipped = sorted(name for name in suite if name in SCORE_METRICS)
    for name, settings in suite.items():
        if name not in SCORE_METRICS:
            run = partial(DRAWN_METRICS[name], train, test, settings, seed, dci_n_jobs)
            values |= _timed(name, run, seconds)
    return values, skipped


def encode_shared(
    data, encode: Encode, num_points: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) of `num_points` observations drawn from `seed` alone: every model scored with the
    same metric set on the same data set sees the same observations, in the same order (the shared
    inputs of UDR, disent.metrics.udr)."""
    observations = data.sample_observations(num_points, np.random.default_rng(seed))
    return encode(observations)


# --- representations ---------------------------------------------------------------------------
def to_representation(
    encoded: tuple[np.ndarray, np.ndarray], kind: str, rng: np.random.Generator
) -> np.ndarray:
    """The representation of (mu, logvar) codes: the means ("mean") or a sample z = mu + sigma * eps ("sampled")."""
    mu, logvar = encoded
    if kind == "mean":
        return mu
    return mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape).astype(mu.dtype)


class GridIndices:
    """The data set seen through grid indices: 'observations' are indices into a table of codes."""

    def __init__(self, data):
        self.data = data
        self.factor_sizes = data.factor_sizes
        self.num_factors = data.num_factors
        self.deterministic = True

    def sample_factors(self, n: int, rng) -> np.ndarray:
        return self.data.sample_factors(n, rng)

    def with_fixed_factor(self, factors: np.ndarray, k: int, rng) -> np.ndarray:
        return with_fixed_factor(self.data, factors, k, rng)  # a grid's: unchanged, nothing drawn

    def sample_observations_from_factors(self, factors: np.ndarray, rng) -> np.ndarray:
        return self.data.factors_to_index(factors)  # (n,) grid indices


def encode_grid(data, encode: Encode, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) of every grid image, in grid-index order: (len(data), Z) each."""
    return encode_grids(data, [encode], chunk)[0]


def encode_grids(
    data, encoders: list[Encode], chunk: int = 4096
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`encode_grid` for several models: each chunk of the grid is rendered once and encoded by every model."""
    parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in encoders]
    starts = range(0, len(data), chunk)
    for start in tqdm(starts, desc="encoding the factor grid", unit="chunk", disable=None):
        indices = np.arange(start, min(start + chunk, len(data)))
        observations = data.sample_observations_from_factors(
            data.index_to_factors(indices), np.random.default_rng(0)
        )
        for model_parts, encode in zip(parts, encoders, strict=True):
            model_parts.append(encode(observations))
    return [
        (np.concatenate([p[0] for p in model_parts]), np.concatenate([p[1] for p in model_parts]))
        for model_parts in parts
    ]


class _SharedDraws:
    """A deterministic data set seen through row ids of tables of codes, one table per model, that fill
    up as the metrics draw: a batch of factors drawn for the first time is rendered once and encoded
    by every model; the same factors drawn again (by the next representation, or the next model's
    metrics, which draw from the same seed) find their rows. For several models scored on the same
    metric set."""

    def __init__(self, data, encoders: list[Encode]):
        self.data = data
        self.encoders = encoders
        self.factor_sizes = data.factor_sizes
        self.num_factors = data.num_factors
        self.deterministic = True
        self.rows: dict[
            bytes, np.ndarray
        ] = {}  # factors of a drawn batch -> its rows in the tables
        self.size = 0
        # (capacity, Z) each
        self.tables: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(encoders)

    def sample_factors(self, n: int, rng) -> np.ndarray:
        return self.data.sample_factors(n, rng)

    def with_fixed_factor(self, factors: np.ndarray, k: int, rng) -> np.ndarray:
        return with_fixed_factor(self.data, factors, k, rng)  # a grid's: unchanged, nothing drawn

    def sample_observations_from_factors(self, factors: np.ndarray, rng) -> np.ndarray:
        factors = np.ascontiguousarray(factors)
        key = str(factors.shape).encode() + factors.tobytes()
        if key not in self.rows:
            observations = self.data.sample_observations_from_factors(factors, rng)
            for k, encode in enumerate(self.encoders):
                self._append(k, encode(observations))
            self.rows[key] = np.arange(self.size, self.size + len(factors))
            self.size += len(factors)
        return self.rows[key]  # (n,) row ids: the "observations" that `codes` looks up

    def _append(self, k: int, codes: tuple[np.ndarray, np.ndarray]) -> None:
        n, table = len(codes[0]), self.tables[k]
        # grow by doubling: appending stays linear
        if table is None or len(table[0]) < self.size + n:
            capacity = max(2 * (0 if table is None else len(table[0])), self.size + n, 1024)
            grown = tuple(np.empty((capacity, *c.shape[1:]), dtype=c.dtype) for c in codes)
            if table is not None:
                for old, new in zip(table, grown, strict=True):
                    new[: self.size] = old[: self.size]
            self.tables[k] = table = grown
        for column, values in zip(table, codes, strict=True):
            column[self.size : self.size + n] = values

    def codes(self, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model k's (mu, logvar) of `rows`."""
        return self.tables[k][0][rows], self.tables[k][1][rows]


def check_metrics_config(metrics_cfg: Mapping) -> None:
    """Refuse unknown metrics or representations before any training or encoding is done."""
    check_suite(metrics_cfg["suite"] or {})
    unknown = sorted(set(metrics_cfg["representations"]) - set(REPRESENTATIONS))
    if unknown:
        raise ValueError(
            f"unknown representation(s) {unknown} in metrics.representations: choose from "
            f"{list(REPRESENTATIONS)}"
        )


def evaluate(
    data, encode: Encode, metrics_cfg: Mapping, seconds: dict | None = None
) -> dict[str, dict[str, float]]:
    """Score a Gaussian encoder on `data` with the metric set `metrics_cfg` (a `conf/metrics/` file).

    Returns {representation: {metric: value}}, e.g. {"mean": {"mig": 0.21, "dci.disentanglement":
    ...}}. `seconds`, when given, receives the wall times (`evaluate_many`).
    """
    return evaluate_many(data, [encode], metrics_cfg, seconds)[0]


def evaluate_many(
    data, encoders: list[Encode], metrics_cfg: Mapping, seconds: dict | None = None
) -> list[dict[str, dict[str, float]]]:
    """`evaluate` for several encoders on one data set and metric set (a stack's members): the values
    of one `evaluate` call each, but on a deterministic data set every image the metrics draw is
    rendered once and encoded by every model, through the encoded factor grid (module docstring) or,
    with more than one model and at most `cache_grid_max_size` drawn images, through tables of the
    drawn batches' codes.

    `seconds`, when given, receives where the time went, for all encoders together:
    {"grid_encoding": s (when the grid was encoded), "<representation>": {metric: s, summed over the
    encoders}}."""
    seconds = {} if seconds is None else seconds
    cfg = _plain(metrics_cfg)
    check_metrics_config(cfg)
    suite = cfg["suite"] or {}
    if not suite:
        return [{} for _ in encoders]
    deterministic, drawn = getattr(data, "deterministic", False), images_encoded_per_batch(suite)
    if deterministic and len(data) <= cfg["cache_grid_max_size"] and len(data) < drawn:
        start = time.perf_counter()
        grids = encode_grids(data, encoders)
        seconds["grid_encoding"] = round(time.perf_counter() - start, 3)
        log.info(
            "encoded the %d-image factor grid for %d model(s) in %.1f s",
            len(data),
            len(encoders),
            time.perf_counter() - start,
        )
        views = [(GridIndices(data), _grid_codes(grid)) for grid in grids]
    elif deterministic and len(encoders) > 1 and drawn <= cfg["cache_grid_max_size"]:
        shared = _SharedDraws(data, encoders)
        views = [(shared, lambda rows, k=k: shared.codes(k, rows)) for k in range(len(encoders))]
    else:
        views = [(data, encode) for encode in encoders]
    results = []
    for view, codes in views:
        per_kind = {}
        for kind in cfg["representations"]:
            # for "sampled"
            noise = np.random.default_rng([cfg["seed"], 1 + REPRESENTATIONS.index(kind)])
            times: dict[str, float] = {}
            per_kind[kind] = score(
                view,
                _represent(codes, kind, noise),
                suite,
                cfg["seed"],
                cfg.get("dci_n_jobs"),
                times,
            )
            totals = seconds.setdefault(kind, {})
            for name, elapsed in times.items():
                totals[name] = round(totals.get(name, 0.0) + elapsed, 3)
        results.append(per_kind)
    return results


def representation(
    data,
    encode: Encode,
    kind: str,
    rng: np.random.Generator,
    grid: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[object, Callable]:
    """(the data set as the metrics see it, represent) for one kind of representation.

    With `grid` (from `encode_grid`), the metrics see grid indices and `represent` looks codes up;
    otherwise `represent` encodes the observations. `rng` draws the noise of "sampled" codes.
    """
    if grid is None:
        return data, _represent(encode, kind, rng)
    return GridIndices(data), _represent(_grid_codes(grid), kind, rng)


def _grid_codes(grid: tuple[np.ndarray, np.ndarray]) -> Encode:
    """codes(grid indices) -> (mu, logvar), looked up in an encoded grid."""
    return lambda indices: (grid[0][indices], grid[1][indices])


def _represent(
    codes: Encode, kind: str, rng: np.random.Generator
) -> Callable[[np.ndarray], np.ndarray]:
    """represent(x) for the metrics, from codes(x) -> (mu, logvar): x observations, or rows of a table of codes."""
    return lambda x: to_representation(codes(x), kind, rng)


def flatten(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """{"mean": {"mig": x}} -> {"mean/mig": x}, for loggers."""
    return {
        f"{kind}/{name}": value
        for kind, values in results.items()
        for name, value in values.items()
    }


def _plain(value):
    """A metric set as plain dicts and lists: an OmegaConf DictConfig read item by item (which resolves
    its interpolations), without importing OmegaConf: the suite needs none."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(item) for item in value]
    return value
