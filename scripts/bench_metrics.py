"""Seconds per metric of the `study` suite on a trained dSprites model: grid cache vs per-batch
encoding.

Both paths score the same model with the same metric seed, one after the other in one process;
the cached path pays once for encoding the whole factor grid (printed on its own line). The values
of both paths are compared too (they must agree for the mean representation).

    python scripts/bench_metrics.py --checkpoint outputs/runs/<job>/checkpoints/last.ckpt
    python scripts/bench_metrics.py                     # trains a model for --train-steps first
    python scripts/bench_metrics.py --only beta_vae mig # a subset of the suite
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
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
