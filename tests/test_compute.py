"""The knobs a GPU study turns (loader.on_device, compute.*) change how fast a run is, not what it
computes: the same batches bit for bit, the same losses up to float rounding."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from test_data import SMALL, Tiny, fit, same, write_small_npz

from disent.config import load_config
from disent.data import DSprites, NoisyDSprites
from disent.data.datamodule import BatchStream, GroundTruthDataModule, StackedDataModule
from disent.data.on_device import DeviceGrid
from disent.run import seeded_model, train

# the grid's device: a GPU where there is one (scripts/gpu_check.sh runs these tests there)
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def test_sprites_placed_on_the_device_are_the_cpu_renderers_images():
    dsprites = DSprites()
    grid = DeviceGrid(dsprites, DEVICE)
    assert grid.images is None and grid.sprites.shape == (3, 6, 40, 33, 33)  # no grid copied
    for seed, i in [(0, 0), (3, 7), (11, 2)]:
        images = BatchStream(dsprites, 32, seed).batch(i)
        factors = BatchStream(dsprites, 32, seed, factors_only=True).batch(i)
        assert factors.shape == (32, 5) and factors.dtype == torch.int64
        assert torch.equal(grid(factors.to(DEVICE)).cpu(), images)
    stacked = torch.stack([factors, factors.flip(0)])  # (K, B, 5) -> (K, B, 1, 64, 64)
    assert torch.equal(grid(stacked.to(DEVICE)).cpu(), torch.stack([images, images.flip(0)]))


def test_a_file_grid_is_kept_whole_in_bytes_and_a_grey_grid_in_float32(tmp_path):
    write_small_npz(tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
    from_file = DSprites(tmp_path, factor_sizes=SMALL)
    grey = Tiny()  # pixels 1/3, 1/2, ...: not multiples of 1/255
    for dataset, dtype in [(from_file, torch.uint8), (grey, torch.float32)]:
        grid = DeviceGrid(dataset, DEVICE)
        assert grid.images.dtype == dtype and len(grid.images) == len(dataset)
        factors = dataset.sample_factors(40, np.random.default_rng(1))
        expected = torch.from_numpy(dataset.sample_observations_from_factors(factors))
        assert torch.equal(grid(torch.from_numpy(factors).to(DEVICE)).cpu(), expected)


def test_a_noisy_data_set_is_refused_when_the_datamodule_is_built():
    with pytest.raises(ValueError, match="NoisyDSprites draws observation noise.*on_device=false"):
        GroundTruthDataModule(NoisyDSprites(), batch_size=8, on_device=True)


def test_the_trainer_sees_the_cpu_streams_batches_from_the_device_grid(tmp_path):
    """Through Lightning's hooks: the loader yields factors, the datamodule turns them into images."""
    dsprites = DSprites()
    model, _ = fit(GroundTruthDataModule(dsprites, 8, seed=2, on_device=True), 3, tmp_path)
    assert same(model.seen, [BatchStream(dsprites, 8, 2).batch(i) for i in range(3)])
    stacked = StackedDataModule(dsprites, 8, [4, 5], on_device=True)
    model, _ = fit(stacked, 2, tmp_path)
    expected = [
        torch.stack([BatchStream(dsprites, 8, s).batch(i) for s in (4, 5)]) for i in range(2)
    ]
    assert same(model.seen, expected)


def _losses(tmp_path, name: str, *overrides: str) -> list[float]:
    cfg = load_config(
        [
            "model.net=mlp",
            "model.hidden_dim=32",
            "trainer.enable_progress_bar=false",
            "loader.batch_size=16",
            "metrics=none",
            "figures=tiny",
            "trainer.max_steps=6",
            "trainer.log_every_n_steps=1",
            *overrides,
        ]
    )
    assert train(cfg, tmp_path / name)["status"] == "completed"
    return pd.read_csv(tmp_path / name / "metrics.csv")["train/loss"].dropna().tolist()


def test_a_run_with_the_grid_on_the_device_repeats_the_cpu_run(tmp_path):
    assert _losses(tmp_path, "device", "loader.on_device=true") == _losses(tmp_path, "cpu")


@pytest.mark.slow  # compiling takes 15-30 s on this CPU
def test_a_compiled_run_repeats_the_uncompiled_run(tmp_path):
    compiled = _losses(tmp_path, "compiled", "compute.compile=true", "model=annealed_vae")
    plain = _losses(tmp_path, "plain", "model=annealed_vae")  # its capacity changes every step
    assert compiled == pytest.approx(plain, rel=1e-5)


def test_float32_matmul_precision_is_set_before_the_model_is_built():
    before = torch.get_float32_matmul_precision()
    try:
        seeded_model(load_config(["model.net=mlp", "compute.float32_matmul_precision=high"]))
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)


@pytest.mark.slow
def test_threads_limits_torch_and_the_metrics_thread_pools_too():
    """`threads=1`: torch and the OpenMP/BLAS pools of scikit-learn and NumPy use one thread each (two
    one-thread jobs on 2 cores would otherwise evaluate with 4). A clean interpreter, no
    OMP_NUM_THREADS: what a job started by a launcher sees."""
    code = (
        "import json, torch, threadpoolctl\n"
        "from disent.config import load_config\n"
        "from disent.run import seeded_model\n"
        "seeded_model(load_config(['threads=1', 'model.hidden_dim=64']))\n"
        "pools = {p['internal_api']: p['num_threads'] for p in threadpoolctl.threadpool_info()}\n"
        "print(json.dumps([torch.get_num_threads(), pools]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    torch_threads, pools = json.loads(done.stdout.strip().splitlines()[-1])
    assert torch_threads == 1 and "openmp" in pools and set(pools.values()) == {1}, pools
