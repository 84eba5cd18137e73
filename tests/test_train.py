"""End-to-end training: the loss falls, seeds repeat, and the job directory holds what it should."""

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import dataset_files, run_in_process

from disent.config import CONF_DIR, load_config
from disent.run import train
from disent.schema import ConfigError

SMALL = [
    "model.net=mlp",
    "model.hidden_dim=64",
    "trainer.enable_progress_bar=false",
    "loader.batch_size=32",
    "metrics=none",
    "figures=tiny",
]


TINY_MLP = [
    "trainer.enable_progress_bar=false",
    "model.net=mlp",
    "model.hidden_dim=32",
    "metrics=none",
    "figures=tiny",
]


def _train(tmp_path: Path, overrides: list[str], name: str = "job") -> dict:
    cfg = load_config(SMALL + overrides)
    return train(cfg, tmp_path / name)


@pytest.mark.slow
def test_300_steps_lower_the_loss(tmp_path):
    results = _train(tmp_path, ["trainer.max_steps=300", "model.optimizer.lr=0.001"])
    assert results["status"] == "completed" and results["steps"] == 300
    trace = json.loads((tmp_path / "job" / "results.json").read_text())
    assert trace["final_losses"]["loss"] < 0.8 * _first_losses(tmp_path / "job")


def _first_losses(job_dir: Path) -> float:
    """Mean loss of the first logged steps, read back from the CSV logger's file."""
    import pandas as pd

    frame = pd.read_csv(job_dir / "metrics.csv").dropna(subset=["train/loss"])
    return float(frame["train/loss"].iloc[:2].mean())


def test_same_seed_same_losses_other_seed_other_losses(tmp_path):
    def losses(seed: int, name: str) -> list[float]:
        import pandas as pd

        _train(
            tmp_path, ["trainer.max_steps=20", "trainer.log_every_n_steps=1", f"seed={seed}"], name
        )
        return pd.read_csv(tmp_path / name / "metrics.csv")["train/loss"].dropna().tolist()

    first, again, other = losses(5, "a"), losses(5, "b"), losses(6, "c")
    assert len(first) == 20 and first == again and first != other


def test_job_directory_holds_results_checkpoint_and_figure(tmp_path):
    results = _train(
        tmp_path, ["trainer.max_steps=5", "model.beta=4", "seed=2", "figures.kl_every_n_steps=1"]
    )
    job = tmp_path / "job"
    on_disk = json.loads((job / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert (
        on_disk["model"] == "beta_vae" and on_disk["dataset"] == "dsprites" and on_disk["seed"] == 2
    )
    assert on_disk["hyperparameter"] == {"name": "beta", "value": 4.0}
    assert {"loss", "reconstruction", "kl", "elbo", "kl_z0"} <= set(on_disk["final_losses"])
    assert on_disk["wall_time_s"] > 0
    assert (job / "checkpoints" / "last.ckpt").stat().st_size > 0
    for name in [
        "traversals.png",
        "traversals.gif",
        "reconstructions.png",
        "prior_samples.png",
        "capacity.png",
        "latent_heatmaps.png",
        "mutual_information.png",
    ]:
        assert (job / "figures" / name).stat().st_size > 0, name
    assert sorted(on_disk["figures"]) == sorted(
        f"figures/{p.name}" for p in (job / "figures").iterdir()
    )


def _cli() -> list[str]:
    exe = shutil.which("disent-train")
    return [exe] if exe else [sys.executable, "-m", "disent.train"]


@pytest.mark.slow
def test_cli_from_another_directory_writes_results_and_png(tmp_path):
    done = subprocess.run(
        _cli()
        + [
            "trainer.max_steps=3",
            "trainer.enable_progress_bar=false",
            "metrics=none",
            "figures=tiny",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = list((tmp_path / "outputs" / "runs").glob("*/results.json"))
    assert json.loads(results.read_text())["status"] == "completed"
    assert (results.parent / "figures" / "traversals.png").exists()
    assert (results.parent / ".hydra" / "config.yaml").exists()


@pytest.mark.slow
def test_multirun_with_wandb_writes_one_offline_run_per_job(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    done = run_in_process(
        "disent.train",
        "-m",
        "model.beta=1,4",
        "seed=0,1",
        "trainer.max_steps=3",
        "logger=wandb",
        *TINY_MLP,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted((tmp_path / "outputs" / "multirun").glob("*/*/results.json"))
    assert len(jobs) == 4
    seen = set()
    for path in jobs:
        results = json.loads(path.read_text())
        assert results["status"] == "completed"
        seen.add((results["hyperparameter"]["value"], results["seed"]))
        runs = list((path.parent / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, f"{path.parent} should hold its own offline W&B run"
        assert list(runs[0].glob("*.wandb")), "the W&B run wrote no data file"
    assert seen == {(1.0, 0), (1.0, 1), (4.0, 0), (4.0, 1)}


def test_a_diverging_run_stops_and_says_failed_with_the_step(tmp_path):
    cfg = load_config(SMALL + ["trainer.max_steps=5", "model.optimizer.lr=1e30"])
    with pytest.raises(FloatingPointError, match="step"):
        train(cfg, tmp_path / "job")
    results = json.loads((tmp_path / "job" / "results.json").read_text())
    assert results["status"] == "failed" and "non-finite loss at step" in results["error"]


@pytest.mark.slow
def test_wandb_online_without_network_or_key_falls_back_to_offline(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        HOME=str(tmp_path),
        WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"),
        NETRC=str(tmp_path / "netrc"),
    )
    done = subprocess.run(
        _cli() + ["trainer.max_steps=2", "logger=wandb", "logger.mode=online", *TINY_MLP],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "logging offline" in done.stderr + done.stdout
    (results,) = list((tmp_path / "outputs" / "runs").glob("*/results.json"))
    assert json.loads(results.read_text())["status"] == "completed"
    assert list((results.parent / "wandb").glob("offline-run-*"))


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml")))
def test_default_model_trains_on_every_data_set(dataset, tmp_path):
    """The conv nets adapt to each data set's channels and image size."""
    path = dataset_files(dataset, tmp_path)
    cfg = load_config(
        [
            f"dataset={dataset}",
            *path,
            "trainer.max_steps=3",
            "trainer.enable_progress_bar=false",
            "metrics=none",
            "figures=tiny",
            "loader.batch_size=16",
        ]
    )
    results = train(cfg, tmp_path / dataset)
    assert results["status"] == "completed" and results["dataset"] == dataset
    assert (tmp_path / dataset / "figures" / "traversals.png").exists()


def test_figures_are_written_at_the_configured_steps(tmp_path):
    _train(
        tmp_path, ["trainer.max_steps=5", "figures.every_n_steps=2", "figures.mi_num_points=500"]
    )
    names = {p.name for p in (tmp_path / "job" / "figures").iterdir()}
    for step in (2, 4):
        assert {
            f"traversals_step{step:06d}.png",
            f"traversals_step{step:06d}.gif",
            f"mutual_information_step{step:06d}.png",
        } <= names
    # the end: no step suffix
    assert "traversals_step000005.png" not in names and "traversals.png" in names


def test_tensorboard_receives_the_scalars_and_figures(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _train(
        tmp_path,
        [
            "trainer.max_steps=4",
            "trainer.log_every_n_steps=1",
            "logger=tensorboard",
            "figures.mi_num_points=300",
        ],
    )
    events = EventAccumulator(
        str(tmp_path / "job" / "tensorboard"), size_guidance={"images": 0}
    ).Reload()
    assert {"train/loss", "train/kl", "train/kl_z0"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("train/loss")) == 4
    assert {"figures/traversals", "figures/mutual_information"} <= set(events.Tags()["images"])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc settings apply to glibc only")
def test_malloc_settings_are_taken_by_glibc_and_out_of_range_values_are_refused():
    from disent.malloc import keep_freed_memory

    defaults = load_config([]).malloc
    assert keep_freed_memory(defaults.trim_threshold_mb, defaults.mmap_threshold_mb) is True
    # would wrap around in a C int
    with pytest.raises(ValueError, match="trim_threshold_mb = 4096 must be in"):
        keep_freed_memory(4096, 32)


def test_a_logger_of_ones_own_is_a_function_named_by_logger_target(tmp_path, monkeypatch):
    (tmp_path / "my_loggers.py").write_text(
        "from lightning.pytorch.loggers import CSVLogger\n\n"
        "def elsewhere(cfg, job_dir, sweep_name, resumed_from_step):\n"
        "    return CSVLogger(save_dir=job_dir / 'mine', name='', version='')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    results = _train(
        tmp_path,
        [
            "trainer.max_steps=2",
            "trainer.log_every_n_steps=1",
            "logger._target_=my_loggers.elsewhere",
        ],
    )
    assert results["status"] == "completed"
    assert (tmp_path / "job" / "mine" / "metrics.csv").exists()
    assert not (tmp_path / "job" / "metrics.csv").exists()
    with pytest.raises(
        ConfigError, match="logger._target_ = 'my_loggers.nowhere' cannot be imported"
    ):
        _train(tmp_path, ["trainer.max_steps=2", "logger._target_=my_loggers.nowhere"], "bad")
    failed = json.loads((tmp_path / "bad" / "results.json").read_text())
    # before any training
    assert failed["status"] == "failed" and "use logger=csv" in failed["error"]
