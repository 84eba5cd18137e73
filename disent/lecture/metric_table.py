"""Item 1: the β-VAE paper's table of its disentanglement metric (Higgins et al. 2017, table 1; the
lecture's slide "Disentanglement metric score"): the BetaVAE score on dSprites of the ground truth,
raw pixels, PCA and ICA with 10 components, an untrained VAE, a trained VAE (β = 1), a trained β-VAE
and disent's InfoGAN, over 3 seeds, beside the paper's column. disent scores with
disentanglement_lib's version of the metric (see PROTOCOL)."""

import json
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
from omegaconf import DictConfig, OmegaConf
from sklearn.decomposition import PCA, FastICA

from disent.config import load_config
from disent.data import build_dataset
from disent.lecture.page import Section, cited_commit, hours, mean_sd, table
from disent.lecture.runs import Runs
from disent.metrics import beta_vae_score
from disent.metrics.suite import GridIndices, evaluate
from disent.models import build_model, encoder_of
from disent.results import code_version, write_json_atomic

PAPER = {
    "ground truth": "100",
    "raw pixels": "45.75 ± 0.8",
    "PCA (10)": "84.9 ± 0.4",
    "ICA (10)": "42.03 ± 10.6",
    "VAE untrained": "44.14 ± 2.5",
    "VAE (β = 1)": "61.58 ± 0.5",
    "β-VAE": "99.23 ± 0.1",
    "InfoGAN": "73.5 ± 0.9",
}
BASELINES_FILE = "baselines.json"  # in the item's folder beside the page: see kept_baselines
PROTOCOL = (
    "Differences of protocol: disent computes disentanglement_lib's version of the score (`compute_beta_vae_sklearn`): "
    "each point is the mean |r(x₁) − r(x₂)| over a batch of {batch} pairs sharing one factor, chosen uniformly among "
    "all five factors (shape included); {train:,} training and {eval:,} evaluation points; scikit-learn's logistic "
    "regression (L2, default settings); the eval accuracy is reported. Higgins et al. used a linear classifier trained "
    "with Adagrad on their own batches and report its accuracy in %; their β-VAE is β = 4 in their normalisation, "
    "their InfoGAN their own, and their PCA/ICA fitted on the whole data set (here on {fit:,} images). The β-VAE row "
    "here is disent's highest β of item 2 (β = {beta:g}, disentanglement_lib's grid), trained {steps:,} steps on a CPU "
    "instead of to convergence."
)


def flat(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) images -> (N, C·H·W) pixel vectors: the raw-pixel representation."""
    return images.reshape(len(images), -1)


def _fixed_scores(data, suite: dict, represent, seed: int, view=None) -> float:
    """The BetaVAE eval accuracy (x100) of `represent` over `data` (or over grid indices with `view`)."""
    values = beta_vae_score(
        view or data, represent, np.random.default_rng(seed), **suite["beta_vae"]
    )
    return 100 * values["eval_accuracy"]


def baseline_scores(
    data, metrics: DictConfig, seeds: list[int], fit_points: int, untrained
) -> dict:
    """The BetaVAE scores (x100) that need no training, one per seed: the ground truth, raw pixels,
    PCA and ICA fitted on `fit_points` images, and a VAE built as `untrained` (a run config) builds
    it, before any step; and how much that VAE's mean codes vary from image to image ("spread")."""
    suite = OmegaConf.to_container(metrics.suite)
    view = GridIndices(data)
    scores: dict[str, list[float]] = {}
    scores["ground truth"] = [
        _fixed_scores(data, suite, lambda i: data.index_to_factors(i).astype(float), s, view)
        for s in seeds
    ]
    scores["raw pixels"] = [_fixed_scores(data, suite, flat, s) for s in seeds]
    for label, method in (("PCA (10)", PCA), ("ICA (10)", FastICA)):
        scores[label] = []
        for seed in seeds:
            images = flat(data.sample_observations(fit_points, seed))
            fitted = method(n_components=10, random_state=seed).fit(images)
            scores[label].append(
                _fixed_scores(data, suite, lambda x, f=fitted: f.transform(flat(x)), seed)
            )
    only = {
        **OmegaConf.to_container(metrics),
        "suite": {"beta_vae": suite["beta_vae"]},
        "representations": ["mean"],
    }
    scores["VAE untrained"] = []
    spread = []  # the standard deviation of each latent over 1,000 images, averaged
    for seed in seeds:  # a VAE as disent-train builds it, with that seed, before any step
        L.seed_everything(seed, verbose=False)
        model = build_model(untrained, data.observation_shape, len(data))
        encode = encoder_of(model, 512)
        values = evaluate(data, encode, {**only, "seed": seed})["mean"]  # the metric's seed too
        scores["VAE untrained"].append(100 * values["beta_vae.eval_accuracy"])
        spread.append(float(encode(data.sample_observations(1000, seed))[0].std(axis=0).mean()))
    return {"scores": scores, "spread": float(np.mean(spread))}


def kept_baselines(path: Path, key: dict, compute: Callable[[], dict]) -> dict:
    """`compute()`'s baseline scores, kept in `path` with the settings they were computed for (`key`)
    and the code that computed them: a later report with the same settings reads them instead of
    computing them again (the untrained VAEs alone encode about 2 million images per seed). Delete
    the file to compute them again."""
    key = json.loads(json.dumps(key))  # as it reads back from the file
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or not JSON
        kept = {}
    if isinstance(kept, dict) and kept.get("key") == key:
        return kept
    start = time.time()
    computed = compute()
    fresh = {"key": key, "code": code_version(), "seconds": time.time() - start, **computed}
    write_json_atomic(path, fresh)
    return fresh


def analyze(runs: Runs, out: Path) -> Section:
    vaes = runs.by_value("beta_traversals")
    infogans = runs.jobs("infogan_dsprites")
    if not vaes:
        return Section("No completed β-VAE jobs yet.\n")
    metrics_name = runs.setting("metrics")
    seeds = runs.setting("seeds")
    metrics = load_config([f"metrics={metrics_name}"]).metrics
    suite = OmegaConf.to_container(metrics.suite)
    first = next(iter(vaes.values()))[0]
    data = build_dataset(first.config.dataset)
    key = {
        "beta_vae": suite["beta_vae"],
        "seeds": list(seeds),
        "fit_points": runs.setting("fit_points"),
        "dataset": OmegaConf.to_container(first.config.dataset, resolve=True),
        "untrained": OmegaConf.to_container(first.config.model, resolve=True),
    }
    baselines = kept_baselines(
        out / BASELINES_FILE,
        key,
        lambda: baseline_scores(data, metrics, seeds, key["fit_points"], first.config),
    )
    scores: dict[str, list[float]] = dict(baselines["scores"])
    spread = baselines["spread"]
    low, high = min(vaes), max(vaes)
    scores["VAE (β = 1)"] = [100 * job.metric("beta_vae.eval_accuracy") for job in vaes[low]]
    scores["β-VAE"] = [100 * job.metric("beta_vae.eval_accuracy") for job in vaes[high]]
    scores["InfoGAN"] = [100 * job.metric("beta_vae.eval_accuracy") for job in infogans]
    rows = [
        [
            label + (f" (β = {high:g})" if label == "β-VAE" else ""),
            mean_sd(values),
            len(values),
            PAPER[label],
        ]
        for label, values in scores.items()
    ]
    order_ok = (
        np.mean(scores["β-VAE"]) > np.mean(scores["VAE (β = 1)"]) > np.mean(scores["VAE untrained"])
    )
    lines = [
        f"BetaVAE score (eval accuracy, %, mean ± sd over seeds {', '.join(map(str, seeds))} of the metric, "
        f"PCA/ICA fits and untrained weights; over the runs' seeds for trained models), metric set "
        f"`{metrics_name}`:",
        "",
        table(["representation", "disent", "seeds", "Higgins et al. 2017"], rows),
        f"The paper's order, β-VAE > VAE > untrained VAE: **{'holds' if order_ok else 'fails'}**.",
        "",
        f"The untrained VAE: its mean codes vary by {spread:.1e} from image to image (the "
        "standard deviation of each latent over 1,000 images, averaged), so the score's features, mean "
        "|Δz| over a batch, are of that size, and disentanglement_lib's classifier (L2-regularised, C = 1, "
        "on unscaled features) can hardly tell the factors apart: a score near chance "
        f"({100 / data.num_factors:.0f}% for {data.num_factors} factors). Higgins et al. report 44% with "
        "their own classifier.",
        "",
        f"The rows that need no training (ground truth to the untrained VAE) were computed at commit "
        f"{cited_commit(baselines['code'])} and are kept in `{BASELINES_FILE}` beside this item's figures "
        "with the settings they were computed for; a report with the same settings reads them (delete "
        f"the file to compute them again: that took {hours(baselines['seconds'])}).",
        "",
        PROTOCOL.format(
            batch=suite["beta_vae"]["batch_size"],
            train=suite["beta_vae"]["num_train"],
            eval=suite["beta_vae"]["num_eval"],
            fit=runs.setting("fit_points"),
            beta=high,
            steps=vaes[high][0].results["max_steps"],
        ),
    ]
    shown = ("β-VAE", "VAE (β = 1)", "InfoGAN")
    measured = " / ".join(
        f"{np.mean(scores[label]):.1f}" if scores[label] else "—" for label in shown
    )
    paper = " / ".join(PAPER[label].split(" ±")[0] for label in shown)
    return Section(
        "\n".join(lines),
        f"BetaVAE score β-VAE / VAE / InfoGAN: {measured}",
        paper,
        "holds" if order_ok else "fails",
    )
