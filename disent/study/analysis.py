"""The analyses of Locatello et al. 2019 on a study table (one row per job, from `collect`).

1. The metrics agree only partly: Spearman rank correlation between the six metrics, per data set.
2. Hyperparameters and seeds matter more than the model: how much of each metric's variance the model,
   the regularization strength within the model, and the seed explain; and how often a better strength
   beats a worse one when the seeds are random.
"""

from itertools import combinations

import numpy as np
import pandas as pd

# the paper's names for the six metrics, and the column each is read from (the mean representation)
STUDY_METRICS = {
    "BetaVAE score": "mean/beta_vae.eval_accuracy",
    "FactorVAE score": "mean/factor_vae.eval_accuracy",
    "MIG": "mean/mig",
    "DCI Disentanglement": "mean/dci.disentanglement",
    "Modularity": "mean/modularity",
    "SAP": "mean/sap",
}


# the metrics after the study (metrics=extended), reported beside the six when the table has them
EXTENDED_METRICS = {
    "IRS": "mean/irs",
    "MCC": "mean/mcc",
    "DCI-ES Explicitness": "mean/dci_es.explicitness",
    "InfoM": "mean/infomec.infom",
    "InfoC": "mean/infomec.infoc",
    "InfoE": "mean/infomec.infoe",
    "Downstream LR accuracy": "mean/downstream_logistic.10000:mean_test_accuracy",
    "Downstream LR efficiency": "mean/downstream_logistic.sample_efficiency",
    "Downstream GBT accuracy": "mean/downstream_gbt.10000:mean_test_accuracy",
    "Downstream GBT efficiency": "mean/downstream_gbt.sample_efficiency",
    "UDR (Lasso)": "udr/lasso",  # unsupervised, study-level: disent.study.udr
    "UDR (Spearman)": "udr/spearman",
}


def reported_metrics(table: pd.DataFrame) -> dict[str, str]:
    """The six metrics, and those of EXTENDED_METRICS that the table has: name -> column."""
    extended = {name: column for name, column in EXTENDED_METRICS.items() if column in table}
    return {**STUDY_METRICS, **extended}


def completed(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["status"] == "completed"]


def rank_correlation(
    table: pd.DataFrame, dataset: str, metrics: dict[str, str] = STUDY_METRICS
) -> pd.DataFrame:
    """Spearman rank correlation ×100, rounded, between the metrics over the completed jobs on `dataset`."""
    jobs = completed(table)
    jobs = jobs[jobs["dataset"] == dataset]
    present = {name: column for name, column in metrics.items() if column in jobs}
    frame = (
        jobs[list(present.values())]
        .astype(float)
        .rename(columns={c: n for n, c in present.items()})
    )
    return (frame.corr(method="spearman") * 100).round().astype("Int64")


def variance_explained(table: pd.DataFrame, column: str) -> dict[str, float]:
    """Shares of a metric's variance (sums of squares) explained by the model, by the strength within
    the model, and by what is left: the seed. They add up to 1."""
    jobs = completed(table).dropna(subset=[column])
    values = jobs[column].astype(float)
    grand = values.mean()
    total = ((values - grand) ** 2).sum()
    if total == 0:
        return {"model": 0.0, "strength": 0.0, "seed": 0.0}
    model_means = values.groupby(jobs["model"]).transform("mean")
    cell_means = values.groupby([jobs["model"], jobs["value"].astype(str)]).transform("mean")
    by_model = ((model_means - grand) ** 2).sum() / total
    by_strength = ((cell_means - model_means) ** 2).sum() / total
    return {
        "model": float(by_model),
        "strength": float(by_strength),
        "seed": float(1 - by_model - by_strength),
    }


def better_beats_worse(table: pd.DataFrame, column: str) -> pd.Series:
    """Per model: the probability that a run with the better of two strengths (higher mean metric)
    scores higher than a run with the worse one, both with random seeds; averaged over all pairs of
    strengths (ties count one half). 0.5 means the strength does not matter beside the seed."""
    jobs = completed(table).dropna(subset=[column])
    out = {}
    for model, runs in jobs.groupby("model"):
        groups = [
            g[column].astype(float).to_numpy() for _, g in runs.groupby(runs["value"].astype(str))
        ]
        probabilities = []
        for a, b in combinations(groups, 2):
            better, worse = (a, b) if a.mean() >= b.mean() else (b, a)
            wins = (better[:, None] > worse[None, :]).mean() + 0.5 * (
                better[:, None] == worse[None, :]
            ).mean()
            probabilities.append(wins)
        out[model] = float(np.mean(probabilities)) if probabilities else float("nan")
    return pd.Series(out, name=column)
