"""Item 4: ELBO surgery (the lecture's slide; the decomposition of β-TCVAE, Chen et al. 2018). The KL term of a
VAE, averaged over the data, splits into the index-code mutual information I(x; z), the total correlation
KL(q(z) || Π q(z_j)) and the dimension-wise KL Σ KL(q(z_j) || p(z_j)). For β-VAEs across β, each term is
estimated with minibatch-stratified sampling over large batches, beside the reconstruction error. The claim:
raising β lowers the mutual information too (not only the total correlation), which hurts reconstruction.
"""

from pathlib import Path

import numpy as np
import torch

from disent.data import build_dataset
from disent.lecture.page import Section, mean_sd, table
from disent.lecture.runs import Job, JobGone, Runs
from disent.models.regularizers import Posterior, gaussian_kl, tc_decomposition

EXPERIMENTS = ["beta_traversals", "elbo_betas"]


def decomposition(job: Job, batch: int, batches: int) -> dict[str, float]:
    """The three terms (nats), each the mean of `batches` estimates on batches of `batch` images (kept
    in the job's measures)."""
    key = f"tc_decomposition(batch={batch},batches={batches})"
    return job.measure(key, lambda: _decomposition(job, batch, batches))


@torch.no_grad()
def _decomposition(job: Job, batch: int, batches: int) -> dict[str, float]:
    model, cfg = job.load()
    data = build_dataset(cfg.dataset)
    rng = np.random.default_rng(0)
    terms = []
    for _ in range(batches):
        x = torch.from_numpy(data.sample_observations(batch, rng))
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(
            mu.shape, generator=torch.Generator().manual_seed(len(terms))
        )
        posterior = Posterior(mu=mu, logvar=logvar, z=z, kl_per_latent=gaussian_kl(mu, logvar))
        estimate = tc_decomposition(posterior, len(data), estimator="mss")
        terms.append({name: float(value) for name, value in estimate.items()})
    return {name: float(np.mean([t[name] for t in terms])) for name in terms[0]}


def analyze(runs: Runs, out: Path) -> Section:
    by_beta: dict[float, list[Job]] = {}
    for experiment in EXPERIMENTS:
        for beta, jobs in runs.by_value(experiment).items():
            by_beta.setdefault(float(beta), []).extend(jobs)
    by_beta = dict(sorted(by_beta.items()))
    if len(by_beta) < 2:
        return Section("Not enough completed jobs yet (two strengths at least).\n")
    batch, batches = runs.setting("batch"), runs.setting("batches")
    estimates: dict[float, list[dict[str, float]]] = {}
    unmeasured = []  # completed jobs known only by a record taken before this measurement
    for beta, jobs in by_beta.items():
        measured_jobs = []
        for job in jobs:
            try:
                estimates.setdefault(beta, []).append(decomposition(job, batch, batches))
                measured_jobs.append(job)
            except JobGone:
                unmeasured.append(job.name)
        by_beta[beta] = measured_jobs
    by_beta = {beta: jobs for beta, jobs in by_beta.items() if jobs}
    if len(by_beta) < 2:
        return Section("Not enough measured jobs yet (two strengths at least).\n")
    rows = []
    for beta, jobs in by_beta.items():
        terms = estimates[beta]
        reconstruction = mean_sd(
            [job.results["final_losses"]["reconstruction"] for job in jobs], digits=1
        )
        parts = [
            mean_sd([t[name] for t in terms])
            for name in ("mutual_info", "total_correlation", "dimension_kl")
        ]
        rows.append(
            [
                f"{beta:g}",
                len(jobs),
                reconstruction,
                *parts,
                mean_sd([sum(t.values()) for t in terms]),
            ]
        )
    mi = [np.mean([t["mutual_info"] for t in estimates[beta]]) for beta in by_beta]
    falls = all(a >= b for a, b in zip(mi[:-1], mi[1:], strict=True))
    lines = [
        f"Each term estimated with minibatch-stratified sampling (Chen et al. 2018) on {batches} batches of "
        f"{batch:,} images (nats); reconstruction error as each run logged it (nats per image):",
        "",
        table(
            [
                "β",
                "seeds",
                "reconstruction",
                "index-code MI I(x; z)",
                "total correlation",
                "dimension-wise KL",
                "sum (≈ KL term)",
            ],
            rows,
        ),
        f"Claim: raising β lowers the mutual information term too: **{'holds' if falls else 'fails'}** (mean MI "
        + " → ".join(f"{v:.2f}" for v in mi)
        + " for β = "
        + ", ".join(f"{b:g}" for b in by_beta)
        + ").",
    ]
    if unmeasured:
        lines += [
            "",
            f"Left out: {', '.join(sorted(unmeasured))}, known here only by records kept before this "
            "measurement was taken (their checkpoints are on the machine that trained them).",
        ]
    measured = (
        "I(x; z) "
        + " → ".join(f"{v:.2f}" for v in mi)
        + " nats for β = "
        + ", ".join(f"{b:g}" for b in by_beta)
    )
    return Section(
        "\n".join(lines), measured, "the MI term falls as β rises", "holds" if falls else "fails"
    )
