"""Item 2: traversals ordered by KL, reconstructions and posX/posY heatmaps of β = 1 against a high β,
and the numbers behind them: per factor, the latent with the highest normalised mutual information
and its gap to the next one (the MI matrix), and MIG, for every seed.

The claim: a higher β gives a higher MIG than β = 1, seed for seed.
"""

from pathlib import Path

import numpy as np

from disent.lecture.measures import factor_gaps, mi_matrix
from disent.lecture.page import Section, job_picture, mean_sd, table
from disent.lecture.runs import Runs

EXPERIMENT = "beta_traversals"


def analyze(runs: Runs, out: Path) -> Section:
    groups = runs.by_value(EXPERIMENT)
    if len(groups) < 2:
        return Section("Not enough completed jobs yet (both strengths are needed).\n")
    lines = []
    matrices = {
        beta: [mi_matrix(job, runs.setting("mi_points")) for job in jobs]
        for beta, jobs in groups.items()
    }
    names = matrices[next(iter(matrices))][0][2]
    for beta, jobs in groups.items():  # the slide's picture, for the first seed of each β
        job_picture(
            jobs[0], ["reconstructions", "traversals"], out / f"beta{beta:g}_traversals.png"
        )
        job_picture(
            jobs[0], ["latent_heatmaps"], out / f"beta{beta:g}_heatmaps.png", max_width=1000
        )
    lines += [
        "| "
        + " | ".join(f"β = {beta:g} (seed {jobs[0].seed})" for beta, jobs in groups.items())
        + " |",
        "|" + "---|" * len(groups),
        "| " + " | ".join(f"![β={beta:g}](beta{beta:g}_traversals.png)" for beta in groups) + " |",
        "| "
        + " | ".join(f"![β={beta:g} heatmaps](beta{beta:g}_heatmaps.png)" for beta in groups)
        + " |",
        "",
        "Top two rows: inputs and their reconstructions; then one row per latent, swept over [−2, 2] around "
        "the first input's code, ordered by the latent's mean KL to the prior. Heatmaps: each latent's mean "
        "code over posX × posY (the other factors random).",
        "",
    ]
    low, high = min(groups), max(groups)
    seeds = sorted({job.seed for jobs in groups.values() for job in jobs})
    mig = {beta: {job.seed: job.metric("mig") for job in jobs} for beta, jobs in groups.items()}
    # seeds with both strengths
    paired = [seed for seed in seeds if seed in mig[low] and seed in mig[high]]

    def higher(seed: int) -> str:
        if seed not in paired:
            return "not yet"
        return "yes" if mig[high][seed] > mig[low][seed] else "no"

    rows = [[seed, *[mig[beta].get(seed, "—") for beta in groups], higher(seed)] for seed in seeds]
    rows.append(
        ["mean ± sd", *[mean_sd(list(mig[beta].values()), digits=3) for beta in groups], ""]
    )
    wins = sum(row[-1] == "yes" for row in rows[:-1])
    holds = "—"  # no seed with both strengths yet
    if paired:
        holds = "holds" if wins == len(paired) else "fails"
    unpaired = [str(seed) for seed in seeds if seed not in paired]
    suite = groups[low][0].config.metrics
    lines += [
        f"**MIG** (the run's `metrics={suite.name}` value, {suite.suite.mig.num_train:,} points):",
        "",
        table(["seed", *[f"β = {beta:g}" for beta in groups], f"β = {high:g} higher?"], rows),
        f"Claim, a higher β gives a higher MIG on each seed: **{holds}** ({wins} of {len(paired)} seeds with "
        f"both strengths trained)."
        + (f" Not paired yet: seed {', '.join(unpaired)}." if unpaired else ""),
        "",
    ]
    header = ["factor"] + [
        f"β = {beta:g}: {what}" for beta in groups for what in ("best latent", "I/H", "gap")
    ]
    rows = []
    for k, name in enumerate(names):
        row = [name]
        for beta in groups:
            best, top, gap = zip(
                *[[part[k] for part in factor_gaps(mi)] for mi, _, _ in matrices[beta]], strict=True
            )
            row += [", ".join(f"z{b}" for b in best), mean_sd(top), mean_sd(gap)]
        rows.append(row)
    recomputed = {
        beta: [factor_gaps(mi)[2].mean() for mi, _, _ in matrices[beta]] for beta in groups
    }
    lines += [
        "**Per factor**: the latent with the highest normalised mutual information I(z_j; v_k)/H(v_k) (one "
        "per seed), that value and its gap to the second best latent (mean ± sd over seeds; MIG is the mean "
        "gap over factors):",
        "",
        table(header, rows),
        "MIG recomputed from these matrices: "
        + ", ".join(
            f"β = {beta:g}: {mean_sd(values, digits=3)}" for beta, values in recomputed.items()
        )
        + ".",
        "",
    ]
    kl_rows = [
        [f"β = {beta:g}", " ".join(f"{v:.2f}" for v in np.sort(kl)[::-1]), int((kl > 0.1).sum())]
        for beta, ((_, kl, _), *_) in matrices.items()
    ]
    lines += [
        "Mean KL of each latent to the prior (nats, first seed; the traversals' row order), and how many "
        "latents carry more than 0.1 nat:",
        "",
        table(["", "KL per latent, sorted", "active"], kl_rows),
    ]
    measured = f"MIG β = {low:g} / {high:g}: " + " / ".join(
        mean_sd(list(mig[b].values()), digits=3) for b in (low, high)
    )
    return Section(
        "\n".join(lines),
        f"{measured}; higher on {wins} of {len(paired)} paired seeds",
        "a higher β disentangles more (figure 7)",
        holds,
    )
