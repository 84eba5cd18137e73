"""Item 9: samples vs means (Locatello et al. 2019, figure 1; the lecture's slide "Training: factorizing samples;
Inference: mean vector"). The models regularise the aggregated posterior of *samples* z ~ q(z|x), but are used
through their *means*: the Gaussian total correlation of the sampled representation falls as the regularisation
strength rises, that of the mean representation does not follow (and often rises). From the Noisy-dSprites
study's runs (item 10). A knob its model's schema marks `weaker_when_larger` (AnnealedVAE's c_max: a larger
capacity constrains less) runs from its largest value (weakest) to its smallest (strongest)."""

from pathlib import Path

import numpy as np

from disent.lecture.page import Section, save_picture, table
from disent.lecture.runs import Runs
from disent.schema import MODELS
from disent.study import collect
from disent.study.report import tc_figure

TC = "unsupervised.gaussian_total_correlation"


def weakest_and_strongest(model: str, knob: str, values) -> tuple[float, float]:
    """The values of a model's knob that regularise least and most: the smallest and the largest, or
    the other way round for a knob its schema marks `weaker_when_larger`."""
    low = min(values)
    high = max(values)
    if model in MODELS and not MODELS[model].stronger_when_larger(knob):
        return high, low
    return low, high


def analyze(runs: Runs, out: Path) -> Section:
    table_ = collect([job.dir for job in runs.all_jobs()])
    jobs = table_[table_["status"] == "completed"]
    if not len(jobs) or f"sampled/{TC}" not in jobs:
        return Section("No completed jobs with both representations scored yet.\n")
    tc_figure(jobs, out / "tc.png")
    from PIL import Image

    with Image.open(out / "tc.png") as image:
        picture = np.asarray(image.convert("RGB"))
    figure = save_picture(picture, out / "tc.png", max_width=1200, colors=32)
    rows, falls, apart = [], 0, 0
    for model, runs_ in jobs.groupby("model"):
        strength = runs_["value"].astype(float)
        means = runs_.groupby(strength)[[f"sampled/{TC}", f"mean/{TC}"]].mean()
        knob = runs_["hyperparameter"].iloc[0]
        low, high = weakest_and_strongest(model, knob, means.index)
        sampled_falls = means.loc[high, f"sampled/{TC}"] < means.loc[low, f"sampled/{TC}"]
        mean_above = means.loc[high, f"mean/{TC}"] > means.loc[high, f"sampled/{TC}"]
        falls += sampled_falls
        apart += mean_above
        rows.append(
            [
                model,
                f"{knob} {low:g} → {high:g}",
                f"{means.loc[low, f'sampled/{TC}']:.2f} → {means.loc[high, f'sampled/{TC}']:.2f}",
                f"{means.loc[low, f'mean/{TC}']:.2f} → {means.loc[high, f'mean/{TC}']:.2f}",
            ]
        )
    models = jobs["model"].nunique()
    lines = [
        "Gaussian total correlation (disentanglement_lib's unsupervised score: the TC of a Gaussian fitted to "
        "the representation) of the sampled and of the mean representation, mean over seeds:",
        "",
        f"![tc]({figure})",
        "",
        table(["model", "strength, lowest → highest", "sampled TC", "mean TC"], rows),
        f"The sampled representation's TC falls from the lowest to the highest strength for **{falls} of "
        f"{models}** models; at the highest strength the mean representation's TC lies above the sampled one "
        f"for **{apart} of {models}**: the regulariser acts on samples, and the means used for inference need "
        f"not be factorised.",
    ]
    measured = f"sampled TC falls for {falls} of {models} models; mean TC above it for {apart}"
    section = Section(
        "\n".join(lines),
        measured,
        "the sampled TC falls, the mean TC does not follow",
        "holds" if falls == apart == models else "fails",
    )
    return section.judged_when_all(models, len(runs.experiments))
