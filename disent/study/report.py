"""`disent-study run --preset cpu --out DIR`: a study preset (conf/study/), one Hydra multirun per
model. `disent-study report <study or multirun dirs...> --out DIR`: the study's table, tables and
figures. `disent-study udr <dirs...> --out DIR`: every job's UDR from the codes the jobs saved on
shared observations (udr.csv, udr_cells.{csv,md}).

Writes into DIR: `table.csv` and `table.parquet` (one row per job),
`correlation_<dataset>.{csv,md,png}` (the metrics' Spearman rank correlation x100),
`variance.{csv,md}` (the shares of each metric's variance explained by model, strength and seed),
`better_beats_worse.{csv,md}`, `strengths_<metric>.png` (each metric across each model's strengths,
seeds as the spread), `tc_sampled_vs_mean.png` (when the unsupervised scores of both representations
were computed), `udr_cells.{csv,md}` (when the jobs saved shared codes: UDR, Duan et al. 2020, is then
a column of the table and of the correlation and variance tables) and `report.md` tying them together.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from disent.results import save_figure_atomic, write_atomic  # noqa: E402
from disent.schema import MODELS  # noqa: E402
from disent.study.analysis import (  # noqa: E402
    better_beats_worse,
    completed,
    rank_correlation,
    reported_metrics,
    variance_explained,
)
from disent.study.collect import collect  # noqa: E402
from disent.study.udr import POOLS, UDR_COLUMNS, udr_scores, with_udr  # noqa: E402

TC = "unsupervised.gaussian_total_correlation"


def strength_order(value) -> tuple:
    """Sort key of swept values: numbers by size, then anything else (a string, a list's JSON) as text."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def strength_label(value) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def markdown(frame: pd.DataFrame, index: bool = True) -> str:
    """A GitHub markdown table (no extra dependency)."""
    columns = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for label, row in frame.iterrows():
        cells = ([str(label)] if index else []) + [
            f"{v:.3f}" if isinstance(v, float) else str(v) for v in row
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def correlation_heatmap(correlation: pd.DataFrame, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    values = correlation.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="RdBu_r", vmin=-100, vmax=100)
    ax.set_xticks(range(len(correlation)), correlation.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(correlation)), correlation.index)
    for (i, j), value in np.ndenumerate(values):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=9)
    fig.colorbar(image, ax=ax, label="Spearman ×100")
    ax.set_title(title)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)


def strengths_figure(jobs: pd.DataFrame, name: str, column: str, path: Path) -> None:
    """Box plots of one metric per model across its strengths; each box is the spread over seeds."""
    models = sorted(jobs["model"].dropna().unique())
    fig, axes = plt.subplots(
        1, len(models), figsize=(3.2 * len(models), 3.2), squeeze=False, sharey=True
    )
    for ax, model in zip(axes[0], models, strict=True):
        runs = jobs[jobs["model"] == model]
        strengths = sorted(runs["value"].unique(), key=strength_order)
        ax.boxplot(
            [runs[runs["value"] == s][column].astype(float).dropna() for s in strengths],
            tick_labels=[strength_label(s) for s in strengths],
        )
        ax.set_title(model, fontsize=9)
        ax.set_xlabel(runs["hyperparameter"].iloc[0] if len(runs) else "")
    axes[0][0].set_ylabel(name)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)


def tc_figure(jobs: pd.DataFrame, path: Path) -> None:
    """Total correlation of the sampled vs the mean representation, against strength, per model."""
    models = sorted(jobs["model"].dropna().unique())
    fig, axes = plt.subplots(1, len(models), figsize=(3.2 * len(models), 3.2), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        runs = jobs[jobs["model"] == model].assign(
            value=lambda f: pd.to_numeric(f["value"], errors="coerce")
        )
        runs = runs[runs["value"] > 0]  # a log axis: numeric, positive strengths only
        for kind, style in (("sampled", "o-"), ("mean", "s--")):
            means = runs.groupby("value")[f"{kind}/{TC}"].mean()
            ax.plot(means.index, means.to_numpy(), style, label=kind)
        ax.set_xscale("log")
        ax.minorticks_off()
        strengths = sorted(runs["value"].unique())
        ax.set_xticks(strengths, [f"{v:g}" for v in strengths])
        ax.set_title(model, fontsize=9)
        knob = runs["hyperparameter"].iloc[0] if len(runs) else ""
        if model in MODELS and not MODELS[model].stronger_when_larger(knob):
            ax.invert_xaxis()  # regularisation still rises to the right
            knob = f"{knob} (reversed: stronger →)"
        ax.set_xlabel(knob)
    axes[0][0].set_ylabel("Gaussian total correlation")
    axes[0][0].legend()
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)


def report(paths: list[str | Path], out: str | Path) -> Path:
    """Write every table and figure of the study under `paths` into `out`; returns report.md's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = with_udr(collect(paths))  # UDR columns when the jobs saved shared codes
    write_atomic(out / "table.csv", table.to_csv(index=False))
    # a hyperparameter's values may mix types (numbers, strings): parquet stores that column as text
    write_atomic(
        out / "table.parquet",
        lambda file: table.astype({"value": "string"}).to_parquet(file, index=False),
    )
    jobs = completed(table)
    counts = table["status"].value_counts().to_dict()
    lines = [
        "# Study report",
        "",
        f"Sources: {', '.join(str(p) for p in paths)}",
        "",
        "Jobs: "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + f" ({len(table)} in all)",
        "",
        "Models and strengths:",
        "",
    ]
    for model, runs in jobs.groupby("model"):
        strengths = ", ".join(
            strength_label(v) for v in sorted(runs["value"].unique(), key=strength_order)
        )
        seeds = sorted(int(s) for s in runs["seed"].dropna().unique())
        datasets = sorted(str(d) for d in runs["dataset"].unique())
        lines.append(
            f"- {model}: {runs['hyperparameter'].iloc[0]} ∈ {{{strengths}}}, seeds {seeds}, "
            f"data sets {datasets}"
        )
    failed = table[table["status"] != "completed"]
    if len(failed):
        lines += [
            "",
            "## Jobs that did not complete",
            "",
            markdown(failed[["job_dir", "status", "error"]], index=False),
        ]

    metrics = reported_metrics(jobs)  # the six, and the extended set's when they were scored
    present = {name: column for name, column in metrics.items() if column in jobs}
    lines += ["", "## Do the metrics agree? Spearman rank correlation ×100", ""]
    for dataset in sorted(jobs["dataset"].dropna().unique()):
        correlation = rank_correlation(table, dataset, metrics)
        write_atomic(out / f"correlation_{dataset}.csv", correlation.to_csv())
        write_atomic(out / f"correlation_{dataset}.md", markdown(correlation))
        correlation_heatmap(correlation, dataset, out / f"correlation_{dataset}.png")
        lines += [
            f"### {dataset}",
            "",
            markdown(correlation),
            f"![](correlation_{dataset}.png)",
            "",
        ]

    variance = pd.DataFrame(
        {name: variance_explained(table, column) for name, column in present.items()}
    ).T
    variance.index.name = "metric"
    write_atomic(out / "variance.csv", variance.to_csv())
    write_atomic(out / "variance.md", markdown(variance))
    beats = pd.DataFrame(
        {name: better_beats_worse(table, column) for name, column in present.items()}
    ).T
    beats.index.name = "metric"
    write_atomic(out / "better_beats_worse.csv", beats.to_csv())
    write_atomic(out / "better_beats_worse.md", markdown(beats))
    lines += [
        "## What matters: model, strength or seed?",
        "",
        "Share of each metric's variance explained by the model, by the regularization strength within "
        "the model, and by the seed (the rest):",
        "",
        markdown(variance),
        "Probability that a run with the better of two strengths scores higher than one with the worse, "
        "seeds random (0.5: the strength does not matter beside the seed):",
        "",
        markdown(beats),
    ]
    for name, column in present.items():
        figure = f"strengths_{column.split('/')[-1]}.png"
        strengths_figure(jobs, name, column, out / figure)
        lines.append(f"![{name}]({figure})")
    if UDR_COLUMNS["lasso"] in jobs:
        lines += udr_section(table, metrics, out)
    if f"sampled/{TC}" in jobs and f"mean/{TC}" in jobs:
        tc_figure(jobs, out / "tc_sampled_vs_mean.png")
        lines += [
            "",
            "## Uncorrelated samples, correlated means",
            "",
            "![](tc_sampled_vs_mean.png)",
        ]
    write_atomic(out / "report.md", "\n".join(lines) + "\n")
    return out / "report.md"


def udr_cells(table: pd.DataFrame) -> pd.DataFrame:
    """Mean UDR of each (data set, model, strength) cell, and how many jobs it has."""
    jobs = completed(table).dropna(subset=[UDR_COLUMNS["lasso"]])
    cells = jobs.groupby(["dataset", "model", "hyperparameter", "value"], dropna=False)
    means = cells[list(UDR_COLUMNS.values())].mean().round(3)
    means["jobs"] = cells.size()
    return means.reset_index()


def write_udr_cells(table: pd.DataFrame, out: Path) -> pd.DataFrame:
    """`udr_cells` of the table, written as udr_cells.{csv,md} into `out`."""
    cells = udr_cells(table)
    write_atomic(out / "udr_cells.csv", cells.to_csv(index=False))
    write_atomic(out / "udr_cells.md", markdown(cells, index=False))
    return cells


def udr_section(table: pd.DataFrame, metrics: dict[str, str], out: Path) -> list[str]:
    """The report's UDR part: its rank correlation with the supervised metrics (Duan et al. 2020's
    headline table) per data set, and each cell's mean UDR; writes udr_cells.{csv,md}."""
    cells = write_udr_cells(table, out)
    names = [name for name, column in metrics.items() if column in UDR_COLUMNS.values()]
    lines = [
        "",
        "## Unsupervised model selection: UDR",
        "",
        "UDR (Duan et al. 2020) of each job against the other seeds of its cell (same model and strength), "
        "from the codes the jobs saved on shared observations; disentanglement_lib's Lasso and Spearman "
        "variants. Spearman rank correlation ×100 of UDR with each metric:",
        "",
    ]
    for dataset in sorted(completed(table)["dataset"].dropna().unique()):
        correlation = rank_correlation(table, dataset, metrics)
        rows = correlation.loc[[n for n in names if n in correlation.index]]
        lines += [f"### {dataset}", "", markdown(rows.drop(columns=names, errors="ignore")), ""]
    lines += ["Mean UDR per cell:", "", markdown(cells, index=False)]
    return lines


def write_udr(paths: list[str | Path], out: Path, pool: str) -> Path:
    """`disent-study udr`: every job's UDR (udr.csv) and each cell's mean (udr_cells.{csv,md})."""
    table = collect(paths)
    scores = udr_scores(table, pool)
    if scores.empty:
        raise SystemExit(
            "disent-study udr: no pool of two or more completed jobs with shared codes under "
            f"{', '.join(str(p) for p in paths)}; train with a metric set that saves them "
            "(metrics.shared_codes, on in metrics=study and metrics=tiny)"
        )
    identity = ["job_dir", "dataset", "model", "hyperparameter", "value", "seed"]
    scores = table[identity].merge(scores, on="job_dir")
    write_atomic(out / "udr.csv", scores.to_csv(index=False))
    cells = write_udr_cells(
        table.merge(scores[["job_dir", *UDR_COLUMNS.values()]], on="job_dir"), out
    )
    print(markdown(cells, index=False))
    return out / "udr.csv"


def study_commands(preset: dict, out: Path, extra: list[str]) -> list[list[str]]:
    """One `disent-train -m` command per model of a study preset (conf/study/*.yaml), all writing into
    `out`: the union of the per-model grids, each swept and launched by Hydra."""
    seeds = ",".join(str(s) for s in preset["seeds"])
    commands = []
    for model, grid in preset["models"].items():
        values = ",".join(str(v) for v in grid["values"])
        commands.append(
            [
                sys.executable,
                "-m",
                "disent.train",
                "-m",
                f"model={model}",
                f"model.{grid['knob']}={values}",
                f"seed={seeds}",
                f"dataset={preset['dataset']}",
                f"hydra/launcher={preset['launcher']}",
                f"study_name={preset['name']}",
                f"hydra.sweep.dir={out / model}",
                *preset.get("overrides", []),
                *grid.get("overrides", []),
                *extra,
            ]
        )
    return commands


def run_study(preset_name: str, out: Path, extra: list[str], dry_run: bool) -> int:
    """Run every job of a preset (a name in conf/study/ or a YAML path); returns how many sweeps failed."""
    from omegaconf import OmegaConf

    from disent.config import CONF_DIR
    from disent.schema import ConfigError, validate_study_preset

    path = (
        Path(preset_name)
        if preset_name.endswith(".yaml")
        else CONF_DIR / "study" / f"{preset_name}.yaml"
    )
    if not path.is_file():
        choices = sorted(p.stem for p in (CONF_DIR / "study").glob("*.yaml"))
        raise SystemExit(
            f"disent-study: no study preset '{preset_name}': choose one of {choices} or a .yaml path"
        )
    preset = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    try:
        validate_study_preset(preset)
    except ConfigError as error:
        raise SystemExit(f"disent-study: {path}: {error}") from None
    failures = 0
    for command in study_commands(preset, out, extra):
        print(" ".join(command[2:]), flush=True)
        if not dry_run:
            # a failed job must not stop the other models
            failures += subprocess.run(command).returncode != 0
    return failures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="disent-study", description="Run and analyse studies of disent-train jobs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run a study preset: one Hydra multirun per model")
    run_parser.add_argument(
        "--preset", required=True, help="conf/study/<name>.yaml (cpu, full) or a YAML path"
    )
    run_parser.add_argument(
        "--out", required=True, type=Path, help="the study directory (one subdirectory per model)"
    )
    run_parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    run_parser.add_argument(
        "overrides", nargs="*", help="extra disent-train overrides for every job"
    )
    report_parser = commands.add_parser(
        "report", help="collect the jobs and write the tables and figures"
    )
    report_parser.add_argument(
        "paths", nargs="+", help="study or multirun directories (searched recursively)"
    )
    report_parser.add_argument("--out", required=True, help="directory for the report")
    udr_parser = commands.add_parser(
        "udr",
        help="UDR of every job from its shared codes (Duan et al. 2020), and each cell's mean",
    )
    udr_parser.add_argument(
        "paths", nargs="+", help="study or multirun directories (searched recursively)"
    )
    udr_parser.add_argument(
        "--out", required=True, help="directory for udr.csv and udr_cells.{csv,md}"
    )
    udr_parser.add_argument(
        "--pool",
        choices=POOLS,
        default="cell",
        help="compare each job with the other seeds of its cell (the paper's UDR) or every job on its data set",
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        failures = run_study(args.preset, args.out, args.overrides, args.dry_run)
        if failures:
            print(
                f"disent-study: {failures} model sweep(s) had failed jobs; see their results.json "
                f"(disent-study report {args.out} --out ...)"
            )
        raise SystemExit(1 if failures else 0)
    missing = [p for p in args.paths if not Path(p).is_dir()]
    if missing:
        parser.error(f"not a directory: {', '.join(missing)}")
    _check_out(parser, Path(args.out))
    if args.command == "udr":
        print(f"wrote {write_udr(args.paths, Path(args.out), args.pool)}")
        return
    path = report(args.paths, args.out)
    print(f"wrote {path}")


def _check_out(parser: argparse.ArgumentParser, out: Path) -> None:
    """--out must be a directory disent can make and write in: one clear error (exit code 2) otherwise."""
    from disent.results import os_reason, probe_writable

    try:
        out.mkdir(parents=True, exist_ok=True)
        probe_writable(out)
    except OSError as error:
        parser.error(
            f"cannot write the report into --out {out} ({os_reason(error)}); choose another directory"
        )


if __name__ == "__main__":
    main()
