"""Item 8: the theorem of "Challenging Disentanglement Assumptions" (Locatello et al. 2019), built as
in its proof.

For z with a factorised density, f = g⁻¹ ∘ h⁻¹ ∘ A ∘ h ∘ g, where g maps each dimension through its CDF to
U(0, 1), h is Φ⁻¹ per dimension (to N(0, 1)), and A is an orthogonal matrix with no zero entry. A rotates an
isotropic Gaussian into itself, so f(z) has exactly the marginals of z, while every output depends on every
input. Applied to a disentangled representation (the ground-truth factors, and a trained β-VAE's codes), the
marginals stay (a per-dimension two-sample KS test) and the metrics fall to what independent noise scores.

Which metrics fall depends on A. A random A leaves each factor its own pattern of weights A_jk², which the
BetaVAE and FactorVAE classifiers and Modularity can still read; a flat A (every A_jk² = 1/d, a scaled Hadamard
matrix) gives every factor the same pattern. Real flat matrices exist only for d = 1, 2 or a multiple of 4, so
the flat f acts on the representation padded with independent U(0, 1) dimensions (which carry no factor, like
a VAE's unused latents) up to the next power of two.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from scipy.stats import ks_2samp, norm  # noqa: E402

from disent.config import load_config  # noqa: E402
from disent.data import build_dataset  # noqa: E402
from disent.lecture.page import Section, save_picture, table  # noqa: E402
from disent.lecture.runs import Job, Runs  # noqa: E402
from disent.metrics.suite import GridIndices, score, to_representation
from disent.metrics.unsupervised_metrics import gaussian_total_correlation  # noqa: E402
from disent.models import encoder_of  # noqa: E402
from disent.study import STUDY_METRICS  # noqa: E402
from disent.viz.figures import figure_to_array  # noqa: E402

EXPERIMENT = "beta_traversals"
WHY_SOME_STAY = (
    "Why a random A leaves some metrics standing: holding factor k fixed lowers the spread of output j by a share "
    "A_jk², so the BetaVAE and FactorVAE classifiers (which dimensions vary least when one factor is fixed) and "
    "Modularity (does each dimension depend on one factor more than on the others) still see a pattern that "
    "differs from factor to factor. A flat A gives every factor the same pattern, and they fall to chance too. "
    "MIG, DCI and SAP ask for one dimension per factor that the others do not share, and collapse under either. "
    "Chance is what independent noise scores, not 0: Modularity's mutual-information estimates have a floor, so "
    "noise scores well above 0 on it. Theorem 1 is about identifiability, not about these scores: f(z) is as "
    "likely a representation as z, and unsupervised training cannot tell them apart."
)


def random_orthogonal(d: int, rng: np.random.Generator, smallest: float = 0.05) -> np.ndarray:
    """A Haar-random orthogonal (d, d) matrix whose entries are all at least `smallest` in magnitude."""
    while True:
        q, r = np.linalg.qr(rng.standard_normal((d, d)))
        a = q * np.sign(np.diag(r))
        if np.abs(a).min() >= smallest / np.sqrt(d):
            return a


def flat_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    """An orthogonal (d, d) matrix with every |A_ij| = 1/sqrt(d), for d a power of two: Sylvester's Hadamard
    matrix, scaled, its rows permuted and its columns' signs flipped at random."""
    if d < 1 or d & (d - 1):
        raise ValueError(
            f"flat_orthogonal needs d a power of two, got {d}: pad the representation first"
        )
    hadamard = scipy.linalg.hadamard(d) / np.sqrt(d)
    return hadamard[rng.permutation(d)] * rng.choice([-1.0, 1.0], size=d)


def with_noise(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """z (N, d) with independent U(0, 1) columns appended up to the next power of two: (N, 2^⌈log2 d⌉)."""
    width = 1 << (z.shape[1] - 1).bit_length()
    return np.concatenate([z, rng.random((len(z), width - z.shape[1]))], axis=1)


def entangling_bijection(
    cdf: Callable, quantile: Callable, a: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """f = g⁻¹ ∘ h⁻¹ ∘ A ∘ h ∘ g on rows z (N, d), with g = `cdf`, g⁻¹ = `quantile` (both per dimension)."""

    def f(z: np.ndarray) -> np.ndarray:
        gaussian = norm.ppf(np.clip(cdf(z), 1e-7, 1 - 1e-7))  # h(g(z)): (N, d) standard normal
        return quantile(norm.cdf(gaussian @ a.T))  # g⁻¹(h⁻¹(A h(g(z))))

    return f


def uniform_marginals(sizes: np.ndarray) -> tuple[Callable, Callable]:
    """(cdf, quantile) of independent U[0, size_k) dimensions: dequantised factor values."""
    return (lambda z: z / sizes), (lambda u: u * sizes)


def empirical_marginals(reference: np.ndarray) -> tuple[Callable, Callable]:
    """(cdf, quantile) of each dimension, interpolated from the sorted `reference` rows (N, d)."""
    ordered = np.sort(reference, axis=0)
    levels = (np.arange(len(ordered)) + 0.5) / len(ordered)

    def cdf(z: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(z[:, i], ordered[:, i], levels) for i in range(z.shape[1])], 1)

    def quantile(u: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(u[:, i], levels, ordered[:, i]) for i in range(u.shape[1])], 1)

    return cdf, quantile


def ks_statistics(
    before: np.ndarray, after: np.ndarray, points: int, rng: np.random.Generator
) -> list[tuple[float, float]]:
    """Per dimension, the two-sample KS (statistic, p-value) between `points` rows of `before` and
    other rows of `after`."""
    rows = rng.choice(len(before), size=(2, min(points, len(before) // 2)), replace=False)
    return [tuple(ks_2samp(before[rows[0], i], after[rows[1], i])) for i in range(before.shape[1])]


def _panel(
    axes, before: np.ndarray, after: np.ndarray, i: int, names: list[str], title: str
) -> None:
    """One row of the figure: dimension i's marginal before and after f (the same), output i against
    input i (no longer a line), and |correlation| of every output with every input (no longer diagonal)."""
    axes[0].hist(
        [before[:, i], after[:, i]], bins=40, label=["z", "f(z)"], histtype="step", density=True
    )
    axes[0].set_title(f"{title}: marginal of {names[i]}", fontsize=8)
    axes[0].legend(fontsize=7)
    rows = np.random.default_rng(2).choice(len(before), size=min(2000, len(before)), replace=False)
    axes[1].scatter(before[rows, i], after[rows, i], s=1, alpha=0.4)
    axes[1].set_title(f"{title}: f(z) against z", fontsize=8)
    axes[1].set_xlabel(f"z: {names[i]}", fontsize=7)
    axes[1].set_ylabel(f"f(z): {names[i]}", fontsize=7)
    d = before.shape[1]
    mixing = np.abs(np.corrcoef(after[rows].T, before[rows].T)[:d, d:])  # (outputs, inputs)
    image = axes[2].imshow(mixing, vmin=0, vmax=1, cmap="Blues")
    axes[2].set_title(f"{title}: |corr(f(z)_i, z_j)|", fontsize=8)
    axes[2].set_xticks(range(d), names[:d], rotation=90, fontsize=6)
    axes[2].set_yticks(range(d), names[:d], fontsize=6)
    axes[2].figure.colorbar(image, ax=axes[2], fraction=0.046)


COLUMNS = {  # the representations scored, by their key in the measurement: their column on the page
    "truth": "ground truth z",
    "truth_random": "f(z), random A",
    "truth_padded": "z + noise dims",
    "truth_flat": "f(z + noise), flat A",
    "noise": "noise only (chance)",
    "codes": "β-VAE codes",
    "codes_random": "f(codes), random A",
    "codes_flat": "f(codes + noise), flat A",
}


def analyze(runs: Runs, out: Path) -> Section:
    high = runs.by_value(EXPERIMENT)
    if not high:
        return Section("No completed β-VAE jobs yet.\n")
    sizes = {name: runs.setting(name) for name in ("metrics", "ks_points", "reference_points")}
    key = "theorem(flat," + ",".join(f"{name}={value}" for name, value in sizes.items()) + ")"
    # the highest β (the most disentangled codes there are): the first seed measured already, else the
    # first whose checkpoint is here, else the first (whose record then says what is missing)
    seeds = high[max(high)]
    job = next((j for j in seeds if j.holds(key)), next((j for j in seeds if j.trained), seeds[0]))
    built = functools.cache(lambda: Built.of(job, sizes["reference_points"]))  # once, if at all
    kept = job.measure(key, lambda: measure(built(), sizes["metrics"], sizes["ks_points"]))
    figure_path = out / "theorem.png"
    if not figure_path.is_file():  # the figure alone: no metric is scored again
        if not job.trained:
            raise job.gone(f"its checkpoint, to draw {figure_path} again")
        draw(built(), figure_path)
    return render(kept, sizes["metrics"])


@dataclass
class Built:
    """f with a random and with a flat A, built on the ground truth and on a job's codes, and what they
    are applied to. Its random draws come in one fixed order from `rng`, which measure() then goes on
    drawing from: the same job gives the same f, measured or drawn."""

    job: Job
    data: object
    rng: np.random.Generator
    grid: np.ndarray  # (N, factors): the ground truth, dequantised
    truth_random: np.ndarray  # f(grid), random A
    padded: np.ndarray  # (N, 8): the factors, then independent U(0, 1) columns
    truth_flat: np.ndarray  # f(padded), flat A
    noise: np.ndarray  # (N, 8): a representation that knows nothing: chance for each metric
    encode: Callable
    reference: np.ndarray  # (reference_points, d) mean codes: the representation the metrics score
    sampled: np.ndarray  # z ~ q(z|x) of the same images: what training factorises
    a_codes: np.ndarray  # the codes' random A
    codes_random: Callable
    code_noise: np.random.Generator  # the codes' padding, drawn afresh for every image scored
    padded_codes: int
    codes_flat: Callable

    @classmethod
    def of(cls, job: Job, reference_points: int) -> "Built":
        model, cfg = job.load()
        data = build_dataset(cfg.dataset)
        rng = np.random.default_rng(0)
        sizes = np.asarray(data.factor_sizes, dtype=float)
        grid = data.index_to_factors(np.arange(len(data))) + rng.random((len(data), len(sizes)))
        truth_random = entangling_bijection(
            *uniform_marginals(sizes), random_orthogonal(len(sizes), rng)
        )(grid)
        padded = with_noise(grid, rng)
        padded_sizes = np.concatenate([sizes, np.ones(padded.shape[1] - len(sizes))])
        truth_flat = entangling_bijection(
            *uniform_marginals(padded_sizes), flat_orthogonal(padded.shape[1], rng)
        )(padded)
        noise = rng.random(padded.shape)
        encode = encoder_of(model, 512)
        encoded = encode(data.sample_observations(reference_points, np.random.default_rng(1)))
        reference = encoded[0]
        sampled = to_representation(encoded, "sampled", np.random.default_rng(2))
        a_codes = random_orthogonal(reference.shape[1], rng)
        code_noise = np.random.default_rng(3)
        padded_reference = with_noise(reference, code_noise)
        codes_flat = entangling_bijection(
            *empirical_marginals(padded_reference), flat_orthogonal(padded_reference.shape[1], rng)
        )
        return cls(
            job=job,
            data=data,
            rng=rng,
            grid=grid,
            truth_random=truth_random,
            padded=padded,
            truth_flat=truth_flat,
            noise=noise,
            encode=encode,
            reference=reference,
            sampled=sampled,
            a_codes=a_codes,
            codes_random=entangling_bijection(*empirical_marginals(reference), a_codes),
            code_noise=code_noise,
            padded_codes=padded_reference.shape[1],
            codes_flat=codes_flat,
        )

    def sampled_after(self) -> np.ndarray:
        """f(sampled codes), random A, with the sampled codes' own marginals."""
        return entangling_bijection(*empirical_marginals(self.sampled), self.a_codes)(self.sampled)


def measure(b: Built, metrics: str, ks_points: int) -> dict:
    """What the section shows (JSON values): the metrics of every representation of COLUMNS, the KS
    tests, the codes' dependence."""
    suite_config = load_config([f"metrics={metrics}"]).metrics
    suite = OmegaConf.to_container(suite_config.suite)
    view = GridIndices(b.data)
    encode = b.encode
    representations = {
        "truth": (view, lambda idx: b.grid[idx]),
        "truth_random": (view, lambda idx: b.truth_random[idx]),
        "truth_padded": (view, lambda idx: b.padded[idx]),
        "truth_flat": (view, lambda idx: b.truth_flat[idx]),
        "noise": (view, lambda idx: b.noise[idx]),
        "codes": (b.data, lambda x: encode(x)[0]),
        "codes_random": (b.data, lambda x: b.codes_random(encode(x)[0])),
        "codes_flat": (b.data, lambda x: b.codes_flat(with_noise(encode(x)[0], b.code_noise))),
    }
    values = {
        name: score(where, represent, suite, suite_config.seed)
        for name, (where, represent) in representations.items()
    }
    rng = b.rng
    ks = {
        "ground truth": ks_statistics(b.grid, b.truth_random, ks_points, rng),
        "ground truth, flat A": ks_statistics(b.padded, b.truth_flat, ks_points, rng),
        "codes": ks_statistics(b.reference, b.codes_random(b.reference), ks_points, rng),
        "sampled codes": ks_statistics(b.sampled, b.sampled_after(), ks_points, rng),
    }
    d = b.reference.shape[1]
    prior = rng.standard_normal((len(b.reference), d))  # the model's factorised p(z)
    ks["prior samples"] = ks_statistics(
        prior, entangling_bijection(norm.cdf, norm.ppf, b.a_codes)(prior), ks_points, rng
    )
    return {
        "job": b.job.name,
        "beta": float(b.job.value),
        "factors": b.grid.shape[1],
        "padded_factors": b.padded.shape[1],
        "code_dims": d,
        "padded_codes": b.padded_codes,
        "points": min(ks_points, len(b.reference) // 2),
        "reference_points": len(b.reference),
        "smallest_a": float(np.abs(b.a_codes).min()),
        "values": {
            name: {key: float(value) for key, value in scores.items()}
            for name, scores in values.items()
        },
        "ks": {name: [[float(s), float(p)] for s, p in tests] for name, tests in ks.items()},
        "dependence": {
            name: float(gaussian_total_correlation(np.cov(codes, rowvar=False)))
            for name, codes in (("mean", b.reference), ("sampled", b.sampled))
        },
    }


def draw(b: Built, figure_path: Path) -> None:
    """The figure: the ground truth under the flat f, the β-VAE's sampled codes under the random one."""
    fig, axes = plt.subplots(2, 3, figsize=(9, 5.6))
    factors = list(b.data.factor_names)
    names = factors + [f"noise{k}" for k in range(b.padded.shape[1] - len(factors))]
    _panel(axes[0], b.padded, b.truth_flat, names.index("posX"), names, "ground truth, flat A")
    widest = int(np.argmax(b.reference.var(axis=0)))
    latent_names = [f"z{k}" for k in range(b.reference.shape[1])]
    _panel(axes[1], b.sampled, b.sampled_after(), widest, latent_names, "β-VAE codes, random A")
    fig.tight_layout()
    save_picture(figure_to_array(fig), figure_path, max_width=900, colors=64)


def collapsed(values: dict, shown: dict, before: str, after: str) -> list[str]:
    """The metrics (of `shown`: name -> key) that f takes from `before` at least half-way down to chance
    (what the noise representation scores) in `after`."""
    chance = values["noise"]
    return [
        name
        for name, key in shown.items()
        if values[after][key] - chance[key] < 0.5 * (values[before][key] - chance[key])
    ]


def render(kept: dict, metrics_name: str) -> Section:
    """The section from the measurements (measure())."""
    values, ks, dependence = kept["values"], kept["ks"], kept["dependence"]
    shown = {
        name: column.removeprefix("mean/")
        for name, column in STUDY_METRICS.items()
        if column.removeprefix("mean/") in values["truth"]
    }
    rows = [[name, *[values[r][key] for r in COLUMNS]] for name, key in shown.items()]
    largest = {name: max(s for s, _ in tests) for name, tests in ks.items()}
    smallest = {name: f"{min(p for _, p in tests):.2g}" for name, tests in ks.items()}
    padding = kept["padded_factors"] - kept["factors"]
    lines = [
        f"f is built as in the proof: g the marginal CDFs (the ground truth's factors dequantised to "
        f"U[0, size); the codes' estimated from {kept['reference_points']:,} encodings), h = Φ⁻¹, and A "
        f"orthogonal with no zero entry, either random (smallest |A_ij| for the codes: "
        f"{kept['smallest_a']:.3f}) or flat (every |A_ij| = 1/√d: a scaled Hadamard matrix, which exists only "
        f"for d = 1, 2 or a multiple of 4, so the flat f acts on the representation with independent U(0, 1) "
        f"dimensions appended up to the next power of two: {padding} for the ground truth's "
        f"{kept['factors']} factors, {kept['padded_codes'] - kept['code_dims']} for the "
        f"codes' {kept['code_dims']} latents). Codes (mean representation) of the β-VAE of "
        f"`{kept['job']}`; metric set `{metrics_name}`.",
        "",
        "![theorem](theorem.png)",
        "",
        "**Marginals** (two-sample KS test between z and f(z), per dimension, "
        f"{kept['points']:,} points each; largest statistic, smallest p-value):",
        "",
        table(
            ["z", "independent dimensions?", "largest KS statistic", "smallest p-value"],
            [
                [
                    "ground truth factors (random A)",
                    "yes (dSprites' grid)",
                    largest["ground truth"],
                    smallest["ground truth"],
                ],
                [
                    f"ground truth factors + {padding} noise dimensions (flat A)",
                    "yes",
                    largest["ground truth, flat A"],
                    smallest["ground truth, flat A"],
                ],
                [
                    "the β-VAE's prior N(0, I) (f = A)",
                    "yes",
                    largest["prior samples"],
                    smallest["prior samples"],
                ],
                [
                    "the β-VAE's sampled codes z ~ q(z|x) (the figure)",
                    f"nearly: Gaussian total correlation {dependence['sampled']:.2f} nats",
                    largest["sampled codes"],
                    smallest["sampled codes"],
                ],
                [
                    "the β-VAE's mean codes (the metrics' representation)",
                    f"less: Gaussian total correlation {dependence['mean']:.2f} nats",
                    largest["codes"],
                    smallest["codes"],
                ],
            ],
        ),
        "The theorem assumes a factorised p(z): the ground truth and the model's prior are, and the sampled "
        "codes nearly are (training factorises them, item 9); f keeps their marginals to within the KS "
        "statistics above. The mean codes are further from independent, so rotating their Gaussianised joint "
        "moves their marginals more.",
        "",
        f"**Metrics** before and after f (β = {kept['beta']:g}; chance: {kept['padded_factors']} independent "
        "U(0, 1) dimensions):",
        "",
        table(["metric", *COLUMNS.values()], rows),
    ]
    flat = collapsed(values, shown, "truth_padded", "truth_flat")
    random = collapsed(values, shown, "truth", "truth_random")
    codes_flat = collapsed(values, shown, "codes", "codes_flat")
    codes_random = collapsed(values, shown, "codes", "codes_random")
    # kept: no dimension's KS test rejects at 1%, Bonferroni-corrected over the dimensions of each z
    factorised = ("ground truth", "ground truth, flat A", "prior samples", "sampled codes")
    marginals_kept = all(min(p for _, p in ks[name]) > 0.01 / len(ks[name]) for name in factorised)
    claim = "partly"
    if not marginals_kept or not flat:
        claim = "fails"
    elif len(flat) == len(shown):
        claim = "holds"
    stay = [name for name in shown if name not in flat]
    lines += [
        "",
        f"Claim: f keeps the marginals of a factorised z ({'yes' if marginals_kept else 'no'}: no KS test "
        "rejects at 1%, Bonferroni-corrected over the dimensions) and destroys the metrics: on the ground "
        f"truth, with a flat A, {len(flat)} of {len(shown)} fall at least half-way to chance: "
        f"{', '.join(flat) or 'none'}"
        + (f"; {', '.join(stay)} stay high" if stay else "")
        + "; with a "
        f"random A, {len(random)} of {len(shown)}: {', '.join(random) or 'none'}. **{claim}**.",
        "",
        f"On the β-VAE's codes (not judged: they start far from disentangled, MIG "
        f"{values['codes'][shown['MIG']]:.2f}), a flat A takes {len(codes_flat)} of {len(shown)} at least "
        f"half-way to chance ({', '.join(codes_flat) or 'none'}) and a random A {len(codes_random)} "
        f"({', '.join(codes_random) or 'none'}); chance is measured on {kept['padded_factors']} noise "
        f"dimensions, the padded codes have {kept['padded_codes']}.",
        "",
        WHY_SOME_STAY,
    ]
    headline = ("BetaVAE score", "MIG", "Modularity")
    measured = (
        f"KS ≤ {max(largest[name] for name in factorised):.3f}; on the ground truth, flat A: "
        + ", ".join(
            f"{name} {values['truth_padded'][shown[name]]:.2f} → {values['truth_flat'][shown[name]]:.2f}"
            for name in headline
            if name in shown
        )
        + " (chance "
        + " / ".join(f"{values['noise'][shown[name]]:.2f}" for name in headline if name in shown)
        + ")"
    )
    return Section("\n".join(lines), measured, "the marginals stay, every metric collapses", claim)
