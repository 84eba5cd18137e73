"""Item 5: DIP-VAE-I and -II (Kumar et al. 2018): how the covariance penalties respond to λ_od (the
off-diagonal terms Σ_{i≠j} C_ij² and the diagonal terms Σ_i (C_ii − 1)² of the regularised
covariance, at the end of training), with reconstruction and MIG, and the traversals of each type at
its largest λ_od."""

from pathlib import Path

from disent.lecture.page import Section, job_picture, table
from disent.lecture.runs import Runs

EXPERIMENTS = {
    "dip_vae_i": "DIP-VAE-I (C = Cov[μ(x)])",
    "dip_vae_ii": "DIP-VAE-II (C = Cov[μ(x)] + E diag σ²(x))",
}


def analyze(runs: Runs, out: Path) -> Section:
    groups = {e: runs.by_value(e) for e in EXPERIMENTS}
    if not any(groups.values()):
        return Section("No completed jobs yet.\n")
    rows, verdicts, cells, fell = [], [], [], []
    for experiment, label in EXPERIMENTS.items():
        by_value = groups[experiment]
        if not by_value:
            continue
        off = {}
        for value, jobs in by_value.items():
            losses = jobs[0].results["final_losses"]
            off[value] = losses["dip_off_diagonal"]
            rows.append(
                [
                    label,
                    f"{value:g}",
                    f"{jobs[0].hyperparameter('lambda_d'):g}",
                    losses["dip_off_diagonal"],
                    losses["dip_diagonal"],
                    f"{losses['reconstruction']:.1f}",
                    jobs[0].metric("mig"),
                ]
            )
        values = sorted(off)
        falls = all(off[a] >= off[b] for a, b in zip(values[:-1], values[1:], strict=True))
        fell.append(falls)
        verdicts.append(
            f"{label.split(' (')[0]}: the off-diagonal penalty {'falls' if falls else 'does not fall'} "
            f"as λ_od rises ({', '.join(f'{off[v]:.3g}' for v in values)})"
        )
        job = by_value[values[-1]][0]
        name = job_picture(
            job, ["reconstructions", "traversals"], out / f"{experiment}_traversals.png"
        )
        cells.append((f"{label.split(' (')[0]}, λ_od = {values[-1]:g}", f"![{experiment}]({name})"))
    lines = [
        "Penalties as logged by the run (the mean of its last 50 training steps), one seed:",
        "",
        table(
            [
                "model",
                "λ_od",
                "λ_d",
                "off-diagonal Σ C_ij²",
                "diagonal Σ (C_ii − 1)²",
                "reconstruction",
                "MIG",
            ],
            rows,
        ),
        "; ".join(verdicts) + ".",
        "",
        "| " + " | ".join(title for title, _ in cells) + " |",
        "|" + "---|" * len(cells),
        "| " + " | ".join(picture for _, picture in cells) + " |",
    ]
    measured = "; ".join(
        verdict.replace("the off-diagonal penalty ", "off-diagonal ") for verdict in verdicts
    )
    return Section(
        "\n".join(lines),
        measured,
        "the penalty falls as λ_od rises",
        "holds" if all(fell) else "fails",
    )
