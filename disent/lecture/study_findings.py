"""Item 10: Locatello et al.'s two findings on a Noisy-dSprites study of disent's six VAEs: (1) the
strength and the seed explain more of each metric's spread than the model; (2) the six metrics agree
only partly, set beside the seed's rank-correlation table, with the Spearman correlation between the
two tables' 15 pairs."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from disent.lecture.measures import kl_information  # noqa: E402
from disent.lecture.page import Section, save_picture, table  # noqa: E402
from disent.lecture.runs import Runs  # noqa: E402

# noqa: E402
from disent.study import (
    STUDY_METRICS,
    better_beats_worse,
    collect,
    rank_correlation,
    variance_explained,
)
from disent.viz.figures import figure_to_array  # noqa: E402

DATASET = "noisy_dsprites"
# the lecture's table (Locatello et al. 2019, Noisy-dSprites): Spearman x100 between the metrics
# (A)..(F)
PAPER = pd.DataFrame(
    [
        [100, 80, 44, 41, 46, 37],
        [80, 100, 49, 52, 25, 38],
        [44, 49, 100, 76, 6, 42],
        [41, 52, 76, 100, -8, 38],
        [46, 25, 6, -8, 100, 13],
        [37, 38, 42, 38, 13, 100],
    ],
    index=list(STUDY_METRICS),
    columns=list(STUDY_METRICS),
)


def pairs(frame: pd.DataFrame) -> pd.Series:
    """The off-diagonal entries of a symmetric table, one per pair (A, B), in a fixed order."""
    names = list(frame.index)
    return pd.Series(
        {(a, b): frame.loc[a, b] for i, a in enumerate(names) for b in names[i + 1 :]}, dtype=float
    )


def seed_count(jobs: pd.DataFrame) -> str:
    seeds = jobs["seed"].nunique()
    return f"{seeds} seed{'s' * (seeds > 1)}"


def _cell(value: float) -> str:
    return "—" if np.isnan(value) else f"{value:.0f}"


def violins(jobs: pd.DataFrame, path: Path) -> str:
    """Each metric's values per model (all strengths and seeds of the model in one violin)."""
    present = {name: column for name, column in STUDY_METRICS.items() if column in jobs}
    models = sorted(jobs["model"].unique())
    fig, axes = plt.subplots(1, len(present), figsize=(2.6 * len(present), 3.0), squeeze=False)
    for ax, (name, column) in zip(axes[0], present.items(), strict=True):
        values = [jobs.loc[jobs["model"] == m, column].dropna().to_numpy(float) for m in models]
        shown = [i for i, v in enumerate(values) if len(v) > 1]
        if shown:
            ax.violinplot([values[i] for i in shown], positions=shown, showmedians=True)
        for i, v in enumerate(values):
            ax.scatter(np.full(len(v), i), v, s=6, color="black", zorder=3)
        ax.set_xticks(range(len(models)), models, rotation=60, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    picture = figure_to_array(fig)
    return save_picture(picture, path, max_width=1200, colors=64)


def variance_shares(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per study metric (rows): the shares of its variance explained by the model, the strength and
    the seed."""
    present = {name: column for name, column in STUDY_METRICS.items() if column in jobs}
    shares = {name: variance_explained(jobs, column) for name, column in present.items()}
    return pd.DataFrame(shares).T


def model_minor(variance: pd.DataFrame) -> list[str]:
    """The metrics whose variance the model explains less than half of (finding 1)."""
    return [name for name in variance.index if variance.loc[name, "model"] < 0.5]


def agreement(table_: pd.DataFrame) -> tuple[pd.DataFrame, list[str], float, pd.Series]:
    """(our rank-correlation table, the metrics it has, the Spearman correlation of its off-diagonal
    pairs with the seed's, |ours - the seed's| per pair, sorted)."""
    ours = rank_correlation(table_, DATASET).astype(float)
    names = [name for name in PAPER.index if name in ours.index]
    both = pd.DataFrame(
        {"ours": pairs(ours.loc[names, names]), "paper": pairs(PAPER.loc[names, names])}
    ).dropna()
    rho = float("nan")
    if len(both) >= 3:
        rho = spearmanr(both["ours"], both["paper"]).statistic
    difference = (both["ours"] - both["paper"]).abs().sort_values()
    return ours, names, rho, difference


def information_shares(runs: Runs) -> pd.DataFrame:
    """Per completed Noisy-dSprites job: its model, its final KL and the share of it that can carry
    information about the image (measures.information_bound, summed over the latents)."""
    points = runs.setting("kl_points")
    rows = []
    for job in runs.all_jobs(completed=True):
        if job.results.get("dataset") != DATASET:
            continue
        kl, information = kl_information(job, points)
        share = information.sum() / kl.sum() if kl.sum() > 0 else float("nan")
        rows.append({"model": job.results["model"], "kl": kl.sum(), "share": share})
    return pd.DataFrame(rows, columns=["model", "kl", "share"])


def information_part(runs: Runs) -> tuple[list[str], list[str]]:
    """The table of what each model's codes carry, and the models whose codes carry almost nothing
    (median share below the item's `collapse_share`)."""
    shares = information_shares(runs)
    threshold = runs.setting("collapse_share")
    rows = []
    collapsed = []
    for model, cell in shares.groupby("model"):
        median = cell["share"].median()
        if median < threshold:
            collapsed.append(model)
        spread = f"{cell['share'].min():.1%} – {cell['share'].max():.1%}"
        rows.append([model, len(cell), f"{cell['kl'].median():.1f}", f"{median:.1%}", spread])
    lines = [
        "**What the codes carry.** Per model, the final KL (nats, summed over the latents) and the "
        "share of it that can carry information about the image: a Gaussian upper bound on "
        "Σ_j I(x; z_j); the rest only shifts or narrows the codes' spread over the images away from "
        "the prior's, which tells no two images apart (`disent.lecture.measures.information_bound`; "
        f"{runs.setting('kl_points'):,} images per job). Median and range over the model's jobs:",
        "",
        table(["model", "jobs", "KL (median)", "share (median)", "share (range)"], rows),
    ]
    return lines, collapsed


def analyze(runs: Runs, out: Path) -> Section:
    table_ = collect([job.dir for job in runs.all_jobs()])
    jobs = table_[(table_["status"] == "completed") & (table_["dataset"] == DATASET)]
    if jobs["model"].nunique() < 2:
        return Section("Not enough completed jobs yet (at least two models are needed).\n")
    grids = []
    for model, cell in jobs.groupby("model"):
        strengths = ", ".join(f"{float(v):g}" for v in sorted(cell["value"].unique(), key=float))
        grids.append(
            f"{model} ({cell['hyperparameter'].iloc[0]} ∈ {{{strengths}}}, {seed_count(cell)})"
        )
    lines = [f"{len(jobs)} completed jobs: " + ", ".join(grids) + ".", ""]
    variance = variance_shares(jobs)
    present = {name: column for name, column in STUDY_METRICS.items() if column in jobs}
    beats = pd.DataFrame(
        {name: better_beats_worse(jobs, column) for name, column in present.items()}
    ).T
    dominant = model_minor(variance)
    lines += [
        "**What explains a metric's spread** (shares of its variance: the model, the strength within the "
        "model, and the rest, the seed):",
        "",
        share_table(variance),
        f"Finding 1 (strength and seed matter more than the model): the model explains less than half of the "
        f"variance for **{len(dominant)} of {len(variance)}** metrics ({', '.join(dominant) or 'none'}). "
        "The paper shows it as violin plots of each metric per model, wide and overlapping:",
        "",
        f"![violins]({violins(jobs, out / 'violins.png')})",
        "",
        "Probability that a run with the better of two strengths scores higher than one with the worse "
        "(seeds random; 0.5: the strength does not matter beside the seed):",
        "",
        table(
            ["metric", *beats.columns],
            [[name, *beats.loc[name].round(2).tolist()] for name in beats.index],
        ),
    ]
    ours, names, rho, difference = agreement(table_)
    side = [
        [name, *[f"{_cell(ours.loc[name, other])} ({PAPER.loc[name, other]})" for other in names]]
        for name in names
    ]
    lines += [
        "",
        "**Do the metrics agree?** Spearman rank correlation ×100 between the metrics over these jobs, "
        "disent's value first and the seed's table (Locatello et al., Noisy-dSprites) in brackets:",
        "",
        table(["", *names], side),
        f"Finding 2, set beside the paper: the Spearman correlation between the two tables' "
        f"{len(difference)} pairs (with a value in both) is **{rho:.2f}**. Closest pairs: "
        + ", ".join(f"{a}–{b} ({d:.0f})" for (a, b), d in difference.head(3).items())
        + "; furthest: "
        + ", ".join(f"{a}–{b} ({d:.0f})" for (a, b), d in difference.tail(3).items())
        + ".",
        "",
    ]
    information, collapsed = information_part(runs)
    lines += ["", *information]
    measured = (
        f"model explains < ½ of the variance for {len(dominant)} of {len(variance)} metrics; "
        f"Spearman with the seed's table {rho:.2f}"
    )
    kept = jobs[~jobs["model"].isin(collapsed)]
    if collapsed and kept["model"].nunique() >= 2:
        sensitivity, summary = without_collapsed(
            table_, kept, collapsed, runs.setting("collapse_share")
        )
        lines += sensitivity
        measured += f" ({summary})"
    elif collapsed:
        lines += [
            f"Codes that carry almost nothing: {', '.join(collapsed)}; too few models are left for "
            "a check without them.",
            "",
        ]
    else:
        lines += [
            f"Every model's codes carry information (median share ≥ {runs.setting('collapse_share'):.0%}).",
            "",
        ]
    steps = sorted({int(s) for s in jobs["steps"].dropna()})
    lines += [
        "What a full run would change (`disent-lecture run study_findings --preset full` with a cluster's "
        "launcher): the study's own grid, six strengths per model and 50 seeds, 1,800 jobs of 300,000 steps "
        f"(here: three strengths, {seed_count(jobs)}, {', '.join(f'{n:,}' for n in steps)} "
        "steps), scored with `metrics=study` (here `fast`). The seed's share of each metric's variance then "
        "rests on 50 draws per cell instead of a few, the strength's on the whole grid, and every model is "
        "trained to the paper's length.",
        "",
    ]
    claim = "holds" if len(dominant) > len(variance) / 2 else "fails"
    trained = jobs["model"].nunique()
    if trained < len(runs.experiments):  # a finding about models needs all of them
        measured = f"partial, {trained} of {len(runs.experiments)} models: {measured}"
        claim = "—"
    return Section(
        "\n".join(lines), measured, "model < ½ for most metrics; the seed's table", claim
    )


def share_table(variance: pd.DataFrame) -> str:
    """The variance shares as a markdown table (a share that rounds to zero shows as 0.00, not -0.00)."""
    shares = variance[["model", "strength", "seed"]].round(2) + 0.0
    return table(
        ["metric", "model", "strength", "seed"],
        [[name, *shares.loc[name].tolist()] for name in shares.index],
    )


def without_collapsed(
    table_: pd.DataFrame, kept: pd.DataFrame, collapsed: list[str], threshold: float
) -> tuple[list[str], str]:
    """Both findings again without the models whose codes carry almost nothing: their scores rank
    noise, and a model that scores noise on every strength and seed inflates the model's share."""
    variance = variance_shares(kept)
    dominant = model_minor(variance)
    _, _, rho, _ = agreement(table_[~table_["model"].isin(collapsed)])
    names = ", ".join(collapsed)
    lines = [
        f"**{names}** carr{'ies' if len(collapsed) == 1 else 'y'} almost nothing (median share below "
        f"{threshold:.0%}): the runs met their objective's KL with codes that tell the images apart "
        "hardly better than the prior, so their metric scores rank noise, not disentanglement."
    ]
    if "annealed_vae" in collapsed:
        lines[-1] += (
            " For AnnealedVAE, γ·|KL − C| sets each posterior's KL, not the information it carries, "
            "so a constant offset of the means meets it. The study's jobs use PyTorch's default init "
            "(`model.init: null`, as they were trained); conf/experiment/lecture/noisy_study.yaml "
            "says what disentanglement_lib's init (`glorot`) changes at this length."
        )
    lines += [
        "",
        f"As a sensitivity check, both findings without {names} ({len(kept)} jobs):",
        "",
        share_table(variance),
        f"The model explains less than half of the variance for **{len(dominant)} of {len(variance)}** "
        f"metrics, and the rank-correlation table's Spearman correlation with the seed's is **{rho:.2f}**.",
        "",
    ]
    summary = f"without {names}: {len(dominant)} of {len(variance)}, Spearman {rho:.2f}"
    return lines, summary
