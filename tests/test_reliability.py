"""Reliability: killed runs resume to the same result, failures lose nothing, bad files give clear errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import run_in_process

from disent.checkpoints import read_checkpoint
from disent.config import load_config
from disent.run import train
from disent.schema import ConfigError

COMMON = [
    "trainer.enable_progress_bar=false",
    "loader.batch_size=16",
    "metrics=none",
    "figures=tiny",
    "figures.kl_every_n_steps=5",
]
MLP = ["model.net=mlp", "model.hidden_dim=32"]
SMALL = COMMON + MLP
# all six metrics on a few points: the resumed and the uninterrupted run must agree on them too
TINY_METRICS = ["metrics=tiny_all", "metrics.representations=[mean,sampled]"]
# one model per kind of state to restore: the capacity schedule, a second optimizer, InfoGAN's two
# nets
RESUMABLE = {
    "annealed_vae": ["model=annealed_vae", *MLP, "model.iteration_threshold=15"],
    "factor_vae": ["model=factor_vae", *MLP, "model.discriminator.hidden_dim=32"],
    "infogan": [
        "model=infogan",
        "model.net=conv_small",
        "model.hidden_dim=64",
        "dataset=digits",
        "model.categorical_codes=[10]",
        "model.continuous_codes=2",
    ],
}


def _weights(job_dir: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(job_dir / "checkpoints" / "last.ckpt")["state_dict"]


def _same_weights(a: Path, b: Path) -> None:
    first, second = _weights(a), _weights(b)
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=0, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(RESUMABLE))
def test_a_run_continued_from_its_checkpoint_ends_where_the_uninterrupted_run_ends(model, tmp_path):
    base = COMMON + RESUMABLE[model] + ["checkpoint.every_n_steps=5", "trainer.log_every_n_steps=1"]
    whole = train(load_config(base + ["trainer.max_steps=20"]), tmp_path / "whole")
    # stops between two checkpoints
    first = train(load_config(base + ["trainer.max_steps=13"]), tmp_path / "parts")
    parts = train(load_config(base + ["trainer.max_steps=20"]), tmp_path / "parts")  # resume=auto
    assert parts["resumed_from_step"] == 13 and parts["steps"] == whole["steps"] == 20
    # the job's time counts both processes: the first one's up to its final checkpoint, then the
    # second's
    assert (
        0 < parts["job_time_s"] - parts["wall_time_s"] < first["wall_time_s"] == first["job_time_s"]
    )
    _same_weights(tmp_path / "whole", tmp_path / "parts")
    assert parts["final_losses"] == pytest.approx(whole["final_losses"], rel=1e-6)
    whole_state, parts_state = (
        read_checkpoint(tmp_path / d / "checkpoints" / "last.ckpt") for d in ("whole", "parts")
    )
    for first, second in zip(
        whole_state["optimizer_states"], parts_state["optimizer_states"], strict=True
    ):
        for key in first["state"]:
            torch.testing.assert_close(first["state"][key], second["state"][key], rtol=0, atol=0)
    assert whole_state["callbacks"]["FigureCallback"] == parts_state["callbacks"]["FigureCallback"]
    # the CSV keeps the first process's rows (Lightning's CSVLogger deletes the file it finds)
    whole_log, parts_log = (pd.read_csv(tmp_path / d / "metrics.csv") for d in ("whole", "parts"))
    # none lost, none twice
    assert sorted(parts_log["step"].dropna()) == sorted(whole_log["step"].dropna())
    for column in [c for c in whole_log.columns if c.startswith("train/")]:
        assert parts_log[column].dropna().tolist() == pytest.approx(
            whole_log[column].dropna().tolist(), rel=1e-6
        )


def _command(job_dir: Path, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "disent.train",
        f"hydra.run.dir={job_dir}",
        *SMALL,
        "model=annealed_vae",
        "model.iteration_threshold=40",
        "trainer.max_steps=100",
        "checkpoint.every_n_steps=25",
        *TINY_METRICS,
        *extra,
    ]


@pytest.mark.slow
def test_a_run_killed_by_a_signal_resumes_to_the_same_weights_and_metrics(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert run_in_process("disent.train", *_command(tmp_path / "whole", [])[3:]).returncode == 0
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _command(killed, []), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while (
        not (killed / "checkpoints" / "last.ckpt").exists()
        and process.poll() is None
        and time.time() < deadline
    ):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    interrupted = json.loads((killed / "results.json").read_text())
    assert interrupted["status"] == "running"  # killed mid-way, before it could finish
    assert run_in_process("disent.train", *_command(killed, [])[3:]).returncode == 0
    whole, resumed = (
        json.loads((tmp_path / d / "results.json").read_text()) for d in ("whole", "killed")
    )
    assert resumed["status"] == "completed" and 25 <= resumed["resumed_from_step"] < 100
    _same_weights(tmp_path / "whole", killed)
    assert (
        resumed["metrics"] == whole["metrics"] and resumed["final_losses"] == whole["final_losses"]
    )


def test_a_finished_job_is_not_run_again_and_resume_true_needs_a_checkpoint(tmp_path):
    cfg = load_config(SMALL + ["trainer.max_steps=5"])
    first = train(cfg, tmp_path / "job")
    checkpoint_time = (tmp_path / "job" / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    assert train(cfg, tmp_path / "job") == json.loads(json.dumps(first))
    assert (tmp_path / "job" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == checkpoint_time
    with pytest.raises(ConfigError, match="resume=true, but there is no checkpoint"):
        train(load_config(SMALL + ["resume=true"]), tmp_path / "new")
    with pytest.raises(ConfigError, match="resume=false, but .* already has a checkpoint"):
        train(load_config(SMALL + ["trainer.max_steps=5", "resume=false"]), tmp_path / "job")
    with pytest.raises(ConfigError, match=r"another config:\n  model.beta: 1.0 -> 4.0"):
        train(load_config(SMALL + ["trainer.max_steps=5", "model.beta=4.0"]), tmp_path / "job")
    # nothing lost
    assert json.loads((tmp_path / "job" / "results.json").read_text())["status"] == "completed"


def test_a_truncated_or_foreign_checkpoint_gives_one_clear_error_naming_it(tmp_path):
    train(load_config(SMALL + ["trainer.max_steps=3"]), tmp_path / "job")
    path = tmp_path / "job" / "checkpoints" / "last.ckpt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"cannot read the checkpoint {path}"):
        read_checkpoint(path)
    # auto-resume must not start over silently
    with pytest.raises(ValueError, match="cannot read the checkpoint"):
        train(load_config(SMALL + ["trainer.max_steps=6"]), tmp_path / "job")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="no state_dict"):
        read_checkpoint(foreign)


def test_a_checkpoint_that_would_run_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save(
        {
            "state_dict": {},
            "hyper_parameters": {"config": {}},
            "payload": _Evil(tmp_path / "pwned"),
        },
        path,
    )
    with pytest.raises(ValueError, match="cannot read the checkpoint"):
        read_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


class _Evil:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# (overrides, what the message must contain): each refused before training
BAD_INPUTS = [
    (["model.beta=-1"], "model.beta = -1: must be a number >= 0"),
    (["model=factor_vae", "model.gamma=-10"], "model.gamma = -10: must be a number >= 0"),
    (["model=annealed_vae", "model.c_max=-5"], "model.c_max = -5: must be a number >= 0"),
    (["loader.batch_size=0"], "loader.batch_size = 0: must be an integer >= 1"),
    (["model.latent_dim=0"], "model.latent_dim = 0: must be an integer >= 1"),
    (
        ["+metrics.suite.mig_score={num_train:10}"],
        "metrics.suite.mig_score = {'num_train': 10}: unknown metric",
    ),
    (
        ["model.net=conv", "dataset=digits", "dataset.size=40"],
        "dataset.size = 40: model.net=conv needs image sides divisible by 16",
    ),
    (["model.beta=four"], "model.beta = 'four': must be a number >= 0"),
    (["+model.bta=4"], "model.bta = 4: unknown key for model 'beta_vae' (did you mean 'beta'?"),
]


@pytest.mark.parametrize("overrides, message", BAD_INPUTS, ids=[" ".join(o) for o, _ in BAD_INPUTS])
def test_a_bad_config_is_refused_before_training_with_key_value_and_range(
    overrides, message, tmp_path
):
    with pytest.raises(ConfigError) as error:
        train(load_config(SMALL + ["trainer.max_steps=3", *overrides]), tmp_path / "job")
    assert message in str(error.value)
    results = json.loads((tmp_path / "job" / "results.json").read_text())
    assert results["status"] == "failed" and message in results["error"]
    assert not (tmp_path / "job" / "checkpoints").exists()


@pytest.mark.slow
def test_the_cli_prints_one_message_and_exits_non_zero(tmp_path):
    job = tmp_path / "job"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "disent.train",
            f"hydra.run.dir={job}",
            "model.beta=-1",
            "loader.batch_size=0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert (
        "invalid config (2 problems)" in done.stderr + done.stdout
        and "Traceback" not in done.stderr
    )
    assert json.loads((job / "results.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_a_sweep_goes_on_past_a_bad_value_and_a_diverging_job_and_the_analysis_lists_both(tmp_path):
    sweep = tmp_path / "sweep"
    done = run_in_process(
        "disent.train",
        "-m",
        f"hydra.sweep.dir={sweep}",
        *SMALL,
        "trainer.max_steps=4",
        "model.beta=-1,1,2",
        "model.optimizer.lr=1e-4,1e30",
    )
    # the sweep says that jobs failed ...
    assert done.returncode != 0 and "model.beta = -1" in done.stderr
    from disent.study.collect import collect

    table = collect([sweep])
    assert len(table) == 6
    assert table["status"].value_counts().to_dict() == {"failed": 4, "completed": 2}, table[
        ["status", "error"]
    ]
    assert sorted(table.loc[table["status"] == "completed", "value"]) == [1.0, 2.0]
    failed = table[table["status"] == "failed"]
    refused = failed[
        failed["error"].str.contains("model.beta = -1: must be a number >= 0", regex=False)
    ]
    assert (
        len(refused) == 2
        and (refused["value"] == -1).all()
        and (refused["model"] == "beta_vae").all()
    )
    assert failed["error"].str.contains("non-finite loss at step").sum() == 2


def test_a_checkpoint_write_that_fails_leaves_the_previous_checkpoint_whole(tmp_path):
    from disent.checkpoints import AtomicCheckpointIO

    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint(
        {"state_dict": {"w": torch.ones(3)}, "hyper_parameters": {"config": {}}}, path
    )
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017,PT011 -- whatever torch.save raises for a lambda
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "broken": lambda: None}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    torch.testing.assert_close(read_checkpoint(path)["state_dict"]["w"], torch.ones(3))
