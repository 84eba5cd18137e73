"""Sampling speed of every data set: images/s of `sample_observations(batch, rng)`, one after the
other.

Training draws about 1,000 images/s on a 2-core CPU (scripts/bench_train.py), so every data set
should sample far faster than that.

    python scripts/bench_data.py                 # all data sets in conf/dataset/
    python scripts/bench_data.py dsprites shapes3d --batches 500
"""

import argparse
import time

import numpy as np

from disent.config import CONF_DIR, load_config
from disent.data import build_dataset


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("datasets", nargs="*", help="conf/dataset names (default: all)")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    names = args.datasets or sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))
    print(f"{'dataset':18s} {'build s':>8s} {'images/s':>12s}  observation")
    for name in names:
        start = time.perf_counter()
        data = build_dataset(load_config([f"dataset={name}"]).dataset)
        built = time.perf_counter() - start
        rng = np.random.default_rng(0)
        data.sample_observations(args.batch_size, rng)  # warm-up
        start = time.perf_counter()
        for _ in range(args.batches):
            data.sample_observations(args.batch_size, rng)
        rate = args.batches * args.batch_size / (time.perf_counter() - start)
        print(f"{name:18s} {built:8.2f} {rate:12,.0f}  {data.observation_shape}", flush=True)


if __name__ == "__main__":
    main()
