"""UDR (Duan et al. 2020) of a study's jobs, from the codes each job saved on the shared observations
(`metrics.shared_codes`: shared_codes.npz beside results.json).

A job's UDR compares it with the other jobs of its pool: by default its cell (the same data set,
model and strength: the paper's P seeds of one hyperparameter setting), or every job on its data set
(`pool="dataset"`, the paper's UDR_A2A-like all-to-all variant). Jobs whose codes were drawn with
other settings (number of points, seed) or have another latent size are never pooled together.

Reads results files only (and calls the NumPy metric, disent.metrics.udr).
"""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from disent.metrics.udr import gaussian_kl, udr
from disent.study.analysis import completed

log = logging.getLogger(__name__)

UDR_COLUMNS = {"lasso": "udr/lasso", "spearman": "udr/spearman"}  # correlation -> table column
POOLS = ("cell", "dataset")


def _shared_codes(job_dir: str) -> tuple[tuple, np.ndarray, np.ndarray] | None:
    """(the codes' settings, mu, logvar) of a job, or None (with a warning) when it saved none or
    they cannot be read."""
    try:
        results = json.loads(Path(job_dir, "results.json").read_text())
        info = results.get("shared_codes")
        if not info:
            return None
        with np.load(Path(job_dir, info["file"])) as codes:
            mu = codes["mu"]
            logvar = codes["logvar"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.warning("UDR: skipping %s: its shared codes cannot be read (%s)", job_dir, error)
        return None
    if mu.ndim != 2 or mu.shape != logvar.shape:
        log.warning(
            "UDR: skipping %s: its shared codes are %s and %s, not two (N, Z) arrays",
            job_dir,
            mu.shape,
            logvar.shape,
        )
        return None
    return (info.get("num_points"), info.get("seed"), mu.shape[1]), mu, logvar


def udr_scores(table: pd.DataFrame, pool: str = "cell") -> pd.DataFrame:
    """One row per completed job that saved shared codes and has at least one partner in its pool:
    job_dir, pool size, and its UDR with the Lasso ("udr/lasso") and the Spearman ("udr/spearman")
    similarity (disentanglement_lib's two variants, default settings)."""
    if pool not in POOLS:
        raise ValueError(f"UDR pool must be one of {POOLS}, got {pool!r}")
    by_pool: dict[tuple, list] = {}
    for row in completed(table).itertuples(index=False):
        codes = _shared_codes(row.job_dir)
        if codes is None:
            continue
        settings, mu, logvar = codes
        key = (row.dataset, *settings)
        if pool == "cell":
            key += (row.model, row.hyperparameter, str(row.value))
        by_pool.setdefault(key, []).append((row.job_dir, mu, gaussian_kl(mu, logvar)))
    rows = []
    for jobs in by_pool.values():
        if len(jobs) < 2:
            continue
        means = [mu for _, mu, _ in jobs]
        kls = [kl for _, _, kl in jobs]
        scores = {
            column: udr(means, kls, correlation)["scores"]
            for correlation, column in UDR_COLUMNS.items()
        }
        for k, (job_dir, _, _) in enumerate(jobs):
            rows.append(
                {
                    "job_dir": job_dir,
                    "udr_pool_size": len(jobs),
                    **{c: float(s[k]) for c, s in scores.items()},
                }
            )
    return pd.DataFrame(rows, columns=["job_dir", "udr_pool_size", *UDR_COLUMNS.values()])


def with_udr(table: pd.DataFrame, pool: str = "cell") -> pd.DataFrame:
    """The study table with the UDR columns added (NaN for the jobs that have none)."""
    scores = udr_scores(table, pool)
    if scores.empty:
        return table
    return table.merge(scores, on="job_dir", how="left")
