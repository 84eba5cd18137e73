"""Training with and without disent's glibc malloc settings (`malloc:` in conf/train.yaml), side by
side.

    python scripts/bench_malloc.py                  # β-VAE on dSprites, 400 steps, 2 rounds
    python scripts/bench_malloc.py --steps 1000 --rounds 3 model=factor_vae

malloc settings are per process, so each job is its own `disent-train` process; the two settings
alternate, round after round, so a machine that speeds up or slows down affects both alike. The
figure is a job's own wall time (results.json: training, checkpoint and figures; metrics=none), so
the training-only speed-up is somewhat larger than the printed ratio. Run it on an idle machine.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SETTINGS = {"malloc=null (glibc's defaults)": ["malloc=null"], "disent's malloc settings": []}


def job_seconds(overrides: list[str], job_dir: Path) -> tuple[float, int]:
    """(the job's wall seconds, its batch size)"""
    subprocess.run(
        [sys.executable, "-m", "disent.train", f"hydra.run.dir={job_dir}", *overrides],
        check=True,
        capture_output=True,
    )
    results = json.loads((job_dir / "results.json").read_text())
    assert results["status"] == "completed", results.get("error")
    return results["wall_time_s"], results["batch_size"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "overrides", nargs="*", help="more disent-train overrides, e.g. model=factor_vae"
    )
    args = parser.parse_args()
    common = [
        f"trainer.max_steps={args.steps}",
        "metrics=none",
        "trainer.enable_progress_bar=false",
        f"checkpoint.every_n_steps={args.steps}",
        *args.overrides,
    ]
    seconds: dict[str, list[float]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for i, (name, overrides) in enumerate(SETTINGS.items()):
                wall, batch_size = job_seconds(common + overrides, Path(tmp) / f"{round_}_{i}")
                seconds[name].append(wall)
                print(f"round {round_ + 1}: {name:32s} {seconds[name][-1]:6.1f} s", flush=True)
    images = args.steps * batch_size
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:32s} median {median:6.1f} s per job, {images / median:7.1f} images/s")
    default, tuned = (statistics.median(v) for v in seconds.values())
    print(f"disent's settings / glibc's defaults: {default / tuned:.2f}x faster jobs")


if __name__ == "__main__":
    main()
