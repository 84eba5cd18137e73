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

from disent.lecture.page import Section, save_picture, table  # noqa: E402
from disent.lecture.runs import Runs  # noqa: E402
from disent.study import (
    STUDY_METRICS,
    better_beats_worse,
    collect,
    rank_correlation,
    variance_explained,
)  # noqa: E402
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


def analyze(runs: Runs, out: Path) -> Section:
    table_ = collect([job.dir for job in runs.all_jobs()])
    jobs = table_[(table_["status"] == "completed") & (table_["dataset"] == DATASET)]
    if jobs["model"].nunique() < 2:
        return Section("Not enough completed jobs yet (at least two models are needed).\n")
    grids = []
    for model, cell in jobs.groupby("model"):
        strengths = ", ".join(f"{float(v):g}" for v in sorted(cell["value"].unique(), key=float))
        seeds = cell["seed"].nunique()
        grids.append(
            f"{model} ({cell['hyperparameter'].iloc[0]} ∈ {{{strengths}}}, {seeds} seed{'s' * (seeds > 1)})"
        )
    lines = [f"{len(jobs)} completed jobs: " + ", ".join(grids) + ".", ""]
    present = {name: column for name, column in STUDY_METRICS.items() if column in jobs}
    variance = pd.DataFrame(
        {name: variance_explained(jobs, column) for name, column in present.items()}
    ).T
    beats = pd.DataFrame(
        {name: better_beats_worse(jobs, column) for name, column in present.items()}
    ).T
    dominant = [name for name in variance.index if variance.loc[name, "model"] < 0.5]
    lines += [
        "**What explains a metric's spread** (shares of its variance: the model, the strength within the "
        "model, and the rest, the seed):",
        "",
        table(
            ["metric", "model", "strength", "seed"],
            [
                [name, *variance.loc[name, ["model", "strength", "seed"]].round(2).tolist()]
                for name in variance.index
            ],
        ),
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
    ours = rank_correlation(table_, DATASET).astype(float)
    names = [name for name in PAPER.index if name in ours.index]
    side = [
        [name, *[f"{_cell(ours.loc[name, other])} ({PAPER.loc[name, other]})" for other in names]]
        for name in names
    ]
    both = pd.DataFrame(
        {"ours": pairs(ours.loc[names, names]), "paper": pairs(PAPER.loc[names, names])}
    ).dropna()
    agreement = spearmanr(both["ours"], both["paper"]).statistic if len(both) >= 3 else float("nan")
    difference = (both["ours"] - both["paper"]).abs().sort_values()
    lines += [
        "",
        "**Do the metrics agree?** Spearman rank correlation ×100 between the metrics over these jobs, "
        "disent's value first and the seed's table (Locatello et al., Noisy-dSprites) in brackets:",
        "",
        table(["", *names], side),
        f"Finding 2, set beside the paper: the Spearman correlation between the two tables' "
        f"{len(difference)} pairs (with a value in both) is **{agreement:.2f}**. Closest pairs: "
        + ", ".join(f"{a}–{b} ({d:.0f})" for (a, b), d in difference.head(3).items())
        + "; furthest: "
        + ", ".join(f"{a}–{b} ({d:.0f})" for (a, b), d in difference.tail(3).items())
        + ".",
        "",
    ]
    steps = sorted({int(s) for s in jobs["steps"].dropna()})
    lines += [
        "What a full run would change (`disent-lecture run study_findings --preset full` with a cluster's "
        "launcher): the study's own grid, six strengths per model and 50 seeds, 1,800 jobs of 300,000 steps "
        f"(here: three strengths, {jobs['seed'].nunique()} seeds, {', '.join(f'{n:,}' for n in steps)} "
        "steps), scored with `metrics=study` (here `fast`). The seed's share of each metric's variance then "
        "rests on 50 draws per cell instead of a few, the strength's on the whole grid, and every model is "
        "trained to the paper's length.",
        "",
    ]
    measured = (
        f"model explains < ½ of the variance for {len(dominant)} of {len(variance)} metrics; "
        f"Spearman with the seed's table {agreement:.2f}"
    )
    return Section(
        "\n".join(lines),
        measured,
        "model < ½ for most metrics; the seed's table",
        "holds" if len(dominant) > len(variance) / 2 else "fails",
    )
