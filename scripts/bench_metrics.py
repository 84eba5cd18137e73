"""Seconds per metric of the `study` suite on a trained dSprites model: grid cache vs per-batch
encoding.

Both paths score the same model with the same metric seed, one after the other in one process;
the cached path pays once for encoding the whole factor grid (printed on its own line). The values
of both paths are compared too (they must agree for the mean representation).

    python scripts/bench_metrics.py --checkpoint outputs/runs/<job>/checkpoints/last.ckpt
    python scripts/bench_metrics.py                     # trains a model for --train-steps first
    python scripts/bench_metrics.py --only beta_vae mig # a subset of the suite
    python scripts/bench_metrics.py --dci               # DCI: exact GBT vs hist_gbt on five representations

`--dci` needs no model: it scores representations of dSprites' factors from perfect to random (the
study's 10,000 train / 5,000 test points, `--dci-points` to change) with both estimators, one after the
other in one process, and prints a markdown table of seconds and the differences in D, C and I.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from disent.checkpoints import load_model
from disent.config import load_config
from disent.data import build_dataset
from disent.metrics.dci_score import dci
from disent.metrics.suite import encode_grid, representation, score
from disent.models import encoder_of
from disent.run import train


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkpoint", type=Path, help="a disent-train checkpoint of a dSprites model"
    )
    parser.add_argument(
        "--train-steps", type=int, default=1000, help="steps to train when no checkpoint is given"
    )
    parser.add_argument("--only", nargs="*", help="metrics to run (default: the whole study suite)")
    parser.add_argument(
        "--dci-n-jobs", type=int, default=None, help="processes for DCI's classifiers"
    )
    parser.add_argument(
        "--dci", action="store_true", help="only compare DCI's exact and fast estimators"
    )
    parser.add_argument(
        "--dci-points",
        type=int,
        nargs=2,
        default=[10000, 5000],
        metavar=("TRAIN", "TEST"),
        help="points of --dci's representations",
    )
    args = parser.parse_args()
    if args.dci:
        compare_dci(*args.dci_points, args.dci_n_jobs)
        return

    checkpoint = args.checkpoint
    if checkpoint is None:
        job_dir = Path(tempfile.mkdtemp(prefix="bench_metrics_"))
        overrides = [
            f"trainer.max_steps={args.train_steps}",
            "metrics=none",
            "trainer.enable_progress_bar=false",
        ]
        cfg = load_config(overrides)
        train(cfg, job_dir)
        checkpoint = job_dir / "checkpoints" / "last.ckpt"
    model, run_cfg = load_model(checkpoint)
    data = build_dataset(run_cfg.dataset)
    suite_cfg = load_config(["metrics=study"]).metrics
    suite = OmegaConf.to_container(suite_cfg.suite)
    if args.only:
        suite = {name: suite[name] for name in args.only}
    encode = encoder_of(model, suite_cfg.encode_batch_size)
    seed = suite_cfg.seed

    start = time.perf_counter()
    grid = encode_grid(data, encode)
    grid_seconds = time.perf_counter() - start
    rows = []
    for name, settings in suite.items():
        timed = {}
        for path, cached_grid in (("cached", grid), ("per_batch", None)):
            view, represent = representation(
                data, encode, "mean", np.random.default_rng(0), cached_grid
            )
            start = time.perf_counter()
            timed[path] = (
                score(view, represent, {name: settings}, seed, args.dci_n_jobs),
                time.perf_counter() - start,
            )
        difference = max(
            abs(timed["cached"][0][k] - timed["per_batch"][0][k]) for k in timed["cached"][0]
        )
        rows.append((name, timed["cached"][1], timed["per_batch"][1], difference))
        print(
            f"  {name}: cached {timed['cached'][1]:.1f} s, per-batch {timed['per_batch'][1]:.1f} s",
            flush=True,
        )

    print(
        f"\nstudy suite on {checkpoint} ({len(data):,}-image grid, {model.encoder.__class__.__name__})"
    )
    print(
        f"{'metric':14s} {'cached s':>10s} {'per-batch s':>12s} {'speed-up':>9s} {'max |diff|':>11s}"
    )
    for name, cached, per_batch, difference in rows:
        print(
            f"{name:14s} {cached:10.2f} {per_batch:12.2f} {per_batch / cached:8.1f}x {difference:11.2e}"
        )
    total_cached = grid_seconds + sum(r[1] for r in rows)
    total_per_batch = sum(r[2] for r in rows)
    print(f"{'grid encoding':14s} {grid_seconds:10.2f} {'-':>12s}")
    print(
        f"{'total':14s} {total_cached:10.2f} {total_per_batch:12.2f} {total_per_batch / total_cached:8.1f}x"
    )


def dci_representations(num_points: int, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """dSprites' factors (N, 5) and codes of them from perfect to random: (N, D) each."""
    rng = np.random.default_rng(seed)
    data = build_dataset(load_config([]).dataset)
    factors = data.sample_factors(num_points, rng)
    scaled = factors / (np.array(data.factor_sizes) - 1)  # (N, 5) in [0, 1]
    noise = rng.normal(size=(num_points, 5))
    mixing = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    return factors, {
        "perfect": scaled,
        "perfect + 5 noise dims": np.c_[scaled, noise],
        "noisy (sd 0.1)": scaled + 0.1 * noise,
        "two factors mixed": np.c_[scaled[:, :3], scaled[:, 3:] @ [[0.7, 0.7], [-0.7, 0.7]]],
        "rotated": scaled @ mixing,
        "random": noise,
    }


def compare_dci(num_train: int, num_test: int, n_jobs: int | None) -> None:
    """A markdown table: DCI with the exact GBT and with hist_gbt, seconds and differences."""
    factors, codes = dci_representations(num_train + num_test)
    print(f"DCI on dSprites factors, {num_train} train / {num_test} test points, n_jobs={n_jobs}")
    print(
        "| representation | exact s | fast s | speed-up | D exact | ΔD | C exact | ΔC | I exact | ΔI |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, code in codes.items():
        split = (code[:num_train], factors[:num_train], code[num_train:], factors[num_train:])
        values, seconds = {}, {}
        for estimator in ("gbt", "hist_gbt"):
            start = time.perf_counter()
            values[estimator] = dci(*split, n_jobs=n_jobs, estimator=estimator)
            seconds[estimator] = time.perf_counter() - start
        exact, fast = values["gbt"], values["hist_gbt"]
        cells = [
            f"{exact[k]:.3f} | {fast[k] - exact[k]:+.3f}"
            for k in ("disentanglement", "completeness", "informativeness_test")
        ]
        print(
            f"| {name} | {seconds['gbt']:.1f} | {seconds['hist_gbt']:.1f} | "
            f"{seconds['gbt'] / seconds['hist_gbt']:.0f}x | " + " | ".join(cells) + " |",
            flush=True,
        )


if __name__ == "__main__":
    main()
