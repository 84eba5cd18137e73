"""Sampling speed of every data set: images/s of `sample_observations(batch, rng)`, one after the
other, and the time to build it.

Training draws about 1,000 images/s on a 2-core CPU (scripts/bench_train.py), so every data set
should sample far faster than that.

The data sets read only from files (SmallNORB, Cars3D, MPI3D, arrays) cannot be downloaded here, so
the bench writes files in their original formats, filled with random pixels, into a temporary
directory (or `--files DIR`, kept for the next run): SmallNORB and Cars3D at their full sizes
(48,600 and 17,568 images), MPI3D at a reduced arm grid (`--mpi3d-axis 10`: 64,800 of its
1,036,800 images; the full file is 12.7 GB) and arrays as 20,000 rows of a non-grid file. Pixels do
not change the loaders' cost; the layout does, and it is the original one.

    python scripts/bench_data.py                 # all data sets in conf/dataset/
    python scripts/bench_data.py dsprites shapes3d --batches 500
    python scripts/bench_data.py smallnorb --files /tmp/originals
"""

import argparse
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from disent.config import CONF_DIR, load_config
from disent.data import build_dataset
from disent.data.smallnorb import BYTE_MAGIC, INT_MAGIC, SPLITS, file_name


def norb_matrix(path: Path, array: np.ndarray, magic: int) -> None:
    """A NORB binary-matrix file: magic, ndim, max(3, ndim) dimensions (int32, little-endian), data."""
    dims = list(array.shape) + [1] * (3 - array.ndim)
    with open(path, "wb") as f:
        f.write(struct.pack(f"<{2 + len(dims)}i", magic, array.ndim, *dims))
        f.write(array.tobytes())


def write_smallnorb(directory: Path, rng: np.random.Generator) -> list[str]:
    """Both splits: 5 categories x 5 instances x 9 elevations x 18 azimuths x 6 lightings each."""
    for split, instances in zip(SPLITS, ((4, 6, 7, 8, 9), (0, 1, 2, 3, 5)), strict=True):
        grid = np.stack(
            np.meshgrid(range(5), instances, range(9), range(0, 36, 2), range(6), indexing="ij"), -1
        ).reshape(-1, 5)
        n = len(grid)
        images = rng.integers(0, 256, (n, 2, 96, 96), dtype=np.uint8)
        norb_matrix(directory / file_name(split, "dat"), images, BYTE_MAGIC)
        norb_matrix(directory / file_name(split, "cat"), grid[:, 0].astype("<i4"), INT_MAGIC)
        norb_matrix(directory / file_name(split, "info"), grid[:, 1:].astype("<i4"), INT_MAGIC)
    return [f"dataset.path={directory}"]


def write_cars3d(directory: Path, rng: np.random.Generator) -> list[str]:
    import scipy.io

    for car in range(183):
        # H, W, RGB, azimuth, elevation
        im = rng.integers(0, 256, (128, 128, 3, 24, 4), dtype=np.uint8)
        scipy.io.savemat(directory / f"car_{car + 1:03d}_mesh.mat", {"im": im})
    return [f"dataset.path={directory}"]


def write_mpi3d(directory: Path, rng: np.random.Generator, axis: int) -> list[str]:
    n = 6 * 6 * 2 * 3 * 3 * axis * axis
    path = directory / "mpi3d_toy.npz"
    np.savez(path, images=rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8))  # uncompressed
    return [
        f"dataset.path={path}",
        f"dataset.axis_size={axis}",
        f"dataset.factors.horizontal_axis={axis}",
        f"dataset.factors.vertical_axis={axis}",
    ]


def write_arrays(directory: Path, rng: np.random.Generator) -> list[str]:
    rows = 20000
    path = directory / "arrays.npz"
    factors = np.stack([rng.integers(0, s, rows) for s in (3, 6, 40, 32, 32)], 1)  # not a grid
    images = rng.integers(0, 256, (rows, 64, 64), dtype=np.uint8)
    np.savez(path, images=images, factors=factors)
    return [f"dataset.path={path}"]


def file_overrides(name: str, root: Path, mpi3d_axis: int) -> list[str]:
    """The overrides that point a file-only data set at files written (once) under `root`."""
    writers = {
        "smallnorb": write_smallnorb,
        "cars3d": write_cars3d,
        "mpi3d": lambda d, rng: write_mpi3d(d, rng, mpi3d_axis),
        "arrays": write_arrays,
    }
    if name not in writers:
        return []
    directory = root / (f"{name}_axis{mpi3d_axis}" if name == "mpi3d" else name)
    done = directory / ".written"
    if not done.exists():  # a run stopped halfway writes it again
        directory.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        overrides = writers[name](directory, np.random.default_rng(0))
        done.write_text("\n".join(overrides))
        print(f"  (wrote {name}'s files in {time.perf_counter() - start:.0f} s: {directory})")
    return done.read_text().splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("datasets", nargs="*", help="conf/dataset names (default: all)")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--files", type=Path, help="where to write (and keep) the file-only data sets"
    )
    parser.add_argument("--mpi3d-axis", type=int, default=10, help="MPI3D's values per arm axis")
    args = parser.parse_args()
    names = args.datasets or sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))
    with tempfile.TemporaryDirectory() as scratch:
        root = args.files or Path(scratch)
        print(f"{'dataset':18s} {'build s':>8s} {'images/s':>12s}  observation")
        for name in names:
            overrides = file_overrides(name, root, args.mpi3d_axis)
            start = time.perf_counter()
            data = build_dataset(load_config([f"dataset={name}", *overrides]).dataset)
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
