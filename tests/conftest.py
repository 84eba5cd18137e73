"""Shared test settings. The suite runs on two pytest-xdist workers (pyproject.toml's addopts), so each
worker and every process it starts uses one thread: two workers with two threads each would
oversubscribe the cores, which slows training several-fold."""

import contextlib
import importlib
import io
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # inherited by the subprocesses and joblib workers the tests start
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread_each():
    """Some tests change torch's thread count; the next test on this worker starts from one thread again."""
    yield
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def run_in_process(
    module: str, *arguments: str, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """`python -m <module> <arguments>` run in this worker: the command's own `main()`, with its exit
    code, stdout and stderr, but without a new Python that imports torch and Lightning again (~6 s a
    command, more than the tiny runs cost). For tests of what a command does; a test of the process
    itself (signals, a kill, a clean interpreter, another working directory's imports) starts a real
    one. An exception that would end the process with a traceback is returned as exit code 1 with
    the traceback on stderr, as Python would."""
    from hydra.core.global_hydra import GlobalHydra

    entry = importlib.import_module(module).main
    argv, directory = sys.argv, os.getcwd()
    root = logging.getLogger()
    # Hydra configures logging for its run; put it back after
    handlers = root.handlers[:]
    level = root.level
    stdout, stderr = io.StringIO(), io.StringIO()
    sys.argv = [module, *arguments]
    GlobalHydra.instance().clear()
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                entry()
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
        os.chdir(directory)
        GlobalHydra.instance().clear()
        root.handlers[:] = handlers
        root.setLevel(level)
    return subprocess.CompletedProcess(
        [module, *arguments], code, stdout.getvalue(), stderr.getvalue()
    )


# a region of the dSprites grid (values: grid positions): 3 x 2 x 4 x 4 x 4 = 384 combinations
ARRAYS_REGION = ((0, 1, 2), (0, 5), (0, 10, 20, 30), (0, 10, 20, 31), (0, 10, 20, 31))


def write_arrays_file(
    path: Path, rows: int = 300, rgb: bool = False, seed: int = 0, kind: str = "npz"
) -> Path:
    """A `dataset=arrays` file that is NOT a full grid, rendered from procedural dSprites: `rows`
    rows drawn with replacement from 200 of the 384 combinations of ARRAYS_REGION (so some
    combinations are missing and others repeat), factor values as in ARRAYS_REGION (e.g.
    orientation 0, 10, 20, 30), each image marked with its row number in pixels (0, 0) and (0, 1)
    (row % 256, row // 256, in channel 0; see `arrays_rows`). Grayscale uint8 (N, 64, 64), or with
    `rgb` float32 (N, 64, 64, 3); `kind` "npz" or "h5"."""
    import numpy as np

    from disent.data import DSprites

    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*ARRAYS_REGION, indexing="ij"), -1).reshape(-1, 5)
    chosen = grid[rng.choice(len(grid), 200, replace=False)]
    factors = chosen[rng.integers(0, len(chosen), rows)]
    images = DSprites().sample_observations_from_factors(factors)[:, 0]  # (N, 64, 64) {0, 1}
    marks = np.stack([np.arange(rows) % 256, np.arange(rows) // 256], 1) / 255
    if rgb:
        images = images[..., None] * rng.uniform(0.3, 1.0, (rows, 1, 1, 3))
        images[:, 0, :2, 0] = marks
        images = images.astype(np.float32)
    else:
        images[:, 0, :2] = marks
        images = np.rint(images * 255).astype(np.uint8)
    names = ("shape", "scale", "orientation", "posX", "posY")
    if kind == "h5":
        import h5py

        with h5py.File(path, "w") as f:
            f["images"], f["factors"] = images, factors
            f["factor_names"] = np.array(names, dtype="S")
    else:
        np.savez(path, images=images, factors=factors, factor_names=np.array(names))
    return path


def arrays_rows(observations):
    """The row numbers `write_arrays_file` marked into (N, C, H, W) observations."""
    import numpy as np

    marks = np.rint(observations[:, 0, 0, :2] * 255).astype(int)
    return marks[:, 0] + 256 * marks[:, 1]


def dataset_files(dataset: str, directory: Path) -> list[str]:
    """The overrides a test that runs every conf/dataset/ file needs for `dataset`: none for the
    procedural ones; for those read only from files (arrays, smallnorb, cars3d, mpi3d), small files
    written under `directory` and `dataset.path` (and the reduced grid) pointing at them."""
    if dataset == "arrays":
        return [f"dataset.path={write_arrays_file(directory / 'a.npz')}"]
    if dataset in ("smallnorb", "cars3d", "mpi3d"):
        from test_data_originals import original_overrides

        return original_overrides(dataset, directory)
    return []
