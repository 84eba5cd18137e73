"""Faults and hostile input from outside: signals at every phase, symlinks and stale files, two
writers, a study with bad jobs, and every bad input getting one clear error (exit code 2, no
traceback)."""

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_in_process

import disent.run
import disent.stack
from disent.callbacks import FigureCallback, StopOnSignal
from disent.checkpoints import AtomicCheckpointIO, read_checkpoint
from disent.config import load_config
from disent.job import SIGNALS, JobDirError, JobInterrupted, job_lock
from disent.results import write_atomic, write_json_atomic
from disent.run import train
from disent.stack import stack_checkpoint, train_stack

SMALL = [
    "trainer.enable_progress_bar=false",
    "loader.batch_size=16",
    "model.net=mlp",
    "model.hidden_dim=32",
    "figures.kl_every_n_steps=5",
    "figures=tiny",
    "metrics=tiny",
]
STEPS = ["trainer.max_steps=30", "checkpoint.every_n_steps=7"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _results(job_dir: Path) -> dict:
    return json.loads((job_dir / "results.json").read_text())


def _weights(job_dir: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(job_dir / "checkpoints" / "last.ckpt")["state_dict"]


def _assert_same_run(a: Path, b: Path) -> None:
    first, second = _weights(a), _weights(b)
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=0, msg=name)
    assert _results(a)["metrics"] == _results(b)["metrics"]


def _kill_self(signum: int) -> None:
    os.kill(os.getpid(), signum)  # the handler runs before the next line of Python


def _signal_at(monkeypatch, where: str, signum: int, step: int) -> None:
    """Send `signum` to this process once, at `where`: a training step, the final checkpoint, figures, metrics."""
    sent = []

    def once() -> None:
        if not sent:
            sent.append(True)
            _kill_self(signum)

    # at the end of the step, just before StopOnSignal looks (single runs and stacks)
    if where == "training":

        def on_train_batch_end(self, trainer, *args, check=StopOnSignal.on_train_batch_end):
            if trainer.global_step == step:
                once()
            check(self, trainer, *args)

        monkeypatch.setattr(StopOnSignal, "on_train_batch_end", on_train_batch_end)
    elif where == "final checkpoint":
        save = AtomicCheckpointIO.save_checkpoint

        def save_checkpoint(self, checkpoint, path, storage_options=None):
            if SIGNALS.phase == "final checkpoint":
                once()
            save(self, checkpoint, path, storage_options)

        monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", save_checkpoint)
    elif where == "figures":
        write = FigureCallback.write
        monkeypatch.setattr(
            FigureCallback, "write", lambda self, *a, **k: (once(), write(self, *a, **k))[1]
        )
    elif where == "metrics":
        for module in (disent.run, disent.stack):
            name = "evaluate" if module is disent.run else "evaluate_many"
            original = getattr(module, name)
            monkeypatch.setattr(
                module, name, lambda *a, original=original, **k: (once(), original(*a, **k))[1]
            )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    job = tmp_path_factory.mktemp("whole") / "job"
    train(load_config(SMALL + STEPS), job)
    return job


# where the signal comes, which signal, the step it leaves in results.json, the step a rerun
# continues from
PHASES = [
    ("training", signal.SIGTERM, 13, 13),
    ("final checkpoint", signal.SIGINT, 30, 28),
    ("figures", signal.SIGTERM, 30, 30),
    ("metrics", signal.SIGINT, 30, 30),
]


@pytest.mark.slow
@pytest.mark.parametrize("where, signum, step, resumed", PHASES, ids=[p[0] for p in PHASES])
def test_a_signal_in_any_phase_leaves_the_job_interrupted_and_a_rerun_ends_as_the_uninterrupted_run(
    where, signum, step, resumed, uninterrupted, tmp_path, monkeypatch
):
    job = tmp_path / "job"
    cfg = load_config(SMALL + STEPS)
    _signal_at(monkeypatch, where, signum, step)
    with pytest.raises(JobInterrupted) as stopped:
        train(cfg, job)
    assert (stopped.value.signum, stopped.value.phase, stopped.value.exit_code) == (
        signum,
        where,
        128 + signum,
    )
    results = _results(job)
    assert results["status"] == "interrupted" and "traceback" not in results
    assert results["interrupted"] == {
        "signal": signal.Signals(signum).name,
        "phase": where,
        "step": step,
    }
    assert "run the same command again" in results["error"]
    monkeypatch.undo()
    again = train(cfg, job)  # resume=auto
    assert again["status"] == "completed" and again["resumed_from_step"] == resumed
    _assert_same_run(uninterrupted, job)


@pytest.mark.slow
def test_a_sigterm_after_the_steps_own_check_waits_for_the_next_step_not_for_lightnings_exit(
    uninterrupted, tmp_path, monkeypatch
):
    """Lightning's SIGTERM handler, chained before disent's, would raise its SIGTERMException (exit
    status 0) at the end of the step, after StopOnSignal had looked: the step unsaved and a
    scheduler reading success."""
    step = 13
    record = StopOnSignal.on_train_batch_end

    def on_train_batch_end(self, trainer, *args):
        record(self, trainer, *args)
        if trainer.global_step == step and SIGNALS.pending is None:
            _kill_self(signal.SIGTERM)

    monkeypatch.setattr(StopOnSignal, "on_train_batch_end", on_train_batch_end)
    cfg = load_config(SMALL + STEPS)
    with pytest.raises(JobInterrupted) as stopped:
        train(cfg, tmp_path / "job")
    assert (stopped.value.phase, stopped.value.exit_code) == ("training", 143)
    # the next step, checkpointed
    assert _results(tmp_path / "job")["interrupted"]["step"] == step + 1
    monkeypatch.undo()
    assert train(cfg, tmp_path / "job")["resumed_from_step"] == step + 1
    _assert_same_run(uninterrupted, tmp_path / "job")


def test_a_signal_while_the_results_are_written_keeps_them_and_stops_the_process_after(
    tmp_path, monkeypatch
):
    write = disent.run.write_json_atomic

    def write_json(path, data):
        if data.get("status") == "completed":
            # arrives in the closing phase: waits until results.json is written
            _kill_self(signal.SIGTERM)
        return write(path, data)

    monkeypatch.setattr(disent.run, "write_json_atomic", write_json)
    with pytest.raises(JobInterrupted, match="SIGTERM during closing"):
        train(load_config(SMALL + ["trainer.max_steps=5"]), tmp_path / "job")
    assert _results(tmp_path / "job")["status"] == "completed"


def _stack_jobs(root: Path) -> list:
    return [
        (load_config(SMALL + STEPS + [f"model.beta={beta}", "seed=1"]), root / str(k), "sweep")
        for k, beta in enumerate((1, 4))
    ]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["training", "metrics"])
def test_a_signal_interrupts_every_member_of_a_stack_and_a_rerun_resumes_the_same_stack(
    where, tmp_path, monkeypatch, caplog
):
    jobs = _stack_jobs(tmp_path / "sweep")
    _signal_at(monkeypatch, where, signal.SIGTERM, 13)
    with pytest.raises(JobInterrupted):
        train_stack(jobs, "loop")
    step = 13 if where == "training" else 30
    for _, job_dir, _ in jobs:
        results = _results(job_dir)
        assert results["status"] == "interrupted"
        assert results["interrupted"] == {"signal": "SIGTERM", "phase": where, "step": step}
    # the stack resumes from here
    assert read_checkpoint(stack_checkpoint(jobs))["global_step"] == step
    monkeypatch.undo()
    caplog.set_level("INFO", logger="disent.stack")
    outcomes = train_stack(_stack_jobs(tmp_path / "sweep"), "loop")
    assert [o["status"] for o in outcomes] == [
        "completed",
        "completed",
    ] and "resumed from" in caplog.text
    assert not stack_checkpoint(jobs).exists()


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m <module> ...` in this worker (the reruns and the refusals; a signal goes to a real
    process, and tests/test_config.py and test_reliability.py refuse bad input in one)."""
    assert args[0] == "-m", args
    return run_in_process(args[1], *args[2:], cwd=cwd)


def _interrupt_when_training(
    command: list[str], checkpoint: Path, signum: int
) -> subprocess.CompletedProcess:
    """Start `command`, send `signum` once `checkpoint` exists (training is under way), wait for the exit."""
    process = subprocess.Popen(
        [sys.executable, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    deadline = time.time() + 300
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.slow
def test_sigterm_during_a_run_exits_143_with_its_step_checkpointed_and_the_rerun_continues_there(
    tmp_path,
):
    job = tmp_path / "job"
    command = [
        "-m",
        "disent.train",
        f"hydra.run.dir={job}",
        *SMALL,
        "trainer.max_steps=3000",
        "checkpoint.every_n_steps=20",
    ]
    done = _interrupt_when_training(command, job / "checkpoints" / "last.ckpt", signal.SIGTERM)
    assert done.returncode == 143, done.stderr[-2000:]
    assert "disent-train: interrupted by SIGTERM during training" in done.stderr
    assert "Traceback" not in done.stderr
    results = _results(job)
    step = results["interrupted"]["step"]
    assert results["status"] == "interrupted" and step >= 20
    # nothing trained is lost
    assert read_checkpoint(job / "checkpoints" / "last.ckpt")["global_step"] == step
    again = _run(
        *command[:-2], "trainer.max_steps=" + str(step + 10), "checkpoint.every_n_steps=20"
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert _results(job)["status"] == "completed" and _results(job)["resumed_from_step"] == step


@pytest.mark.slow
def test_ctrl_c_in_a_multirun_exits_130_leaves_the_job_interrupted_and_the_rerun_runs_every_job(
    tmp_path,
):
    sweep = tmp_path / "sweep"
    command = [
        "-m",
        "disent.train",
        "-m",
        f"hydra.sweep.dir={sweep}",
        *SMALL,
        "seed=0,1",
        "trainer.max_steps=2000",
        "checkpoint.every_n_steps=20",
        "metrics=none",
    ]
    done = _interrupt_when_training(
        command, sweep / "0" / "checkpoints" / "last.ckpt", signal.SIGINT
    )
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert _results(sweep / "0")["status"] == "interrupted" and not (sweep / "1").exists()
    step = _results(sweep / "0")["interrupted"]["step"]
    again = _run(
        *command[:-3],
        f"trainer.max_steps={step + 5}",
        "checkpoint.every_n_steps=20",
        "metrics=none",
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert [_results(sweep / str(k))["status"] for k in (0, 1)] == ["completed", "completed"]


@pytest.mark.slow
def test_a_sigterm_to_a_joblib_multirun_interrupts_the_jobs_in_its_workers_and_the_rerun_finishes_them(
    tmp_path,
):
    # SIGINT takes the same path (checked by hand: exit 130, both jobs interrupted)
    signum = signal.SIGTERM
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    command = [
        "-m",
        "disent.train",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep}",
        *SMALL,
        "seed=0,1,2",
        "trainer.max_steps=3000",
        "checkpoint.every_n_steps=20",
        "metrics=none",
    ]
    process = subprocess.Popen(
        [sys.executable, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    deadline = time.time() + 300
    # both workers are training
    checkpoints = [sweep / str(k) / "checkpoints" / "last.ckpt" for k in (0, 1)]
    while (
        not all(c.exists() for c in checkpoints)
        and process.poll() is None
        and time.time() < deadline
    ):
        time.sleep(0.05)
    # to the parent only, as `kill` or a scheduler that signals the main process does
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signum and "Traceback" not in stderr, stderr[-3000:]
    for k in (0, 1):
        results = _results(sweep / str(k))
        assert results["status"] == "interrupted", results
        assert results["interrupted"]["signal"] == signal.Signals(signum).name
        assert results["interrupted"]["phase"] == "training" and results["interrupted"]["step"] > 0
    assert not (sweep / "2" / "results.json").exists()  # the sweep's next job never started
    command[command.index("trainer.max_steps=3000")] = "trainer.max_steps=60"
    again = _run(*command)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [_results(sweep / str(k))["status"] for k in (0, 1, 2)] == ["completed"] * 3


# --- files: symlinks, temporary files, the lock
# ----------------------------------------------------
def test_planted_symlinks_are_replaced_never_written_through(tmp_path):
    job = tmp_path / "job"
    (job / "checkpoints").mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    pid = os.getpid()
    planted = [
        job / "results.json",
        job / f".results.json.{pid}.tmp",
        job / "checkpoints" / f".last.ckpt.{pid}.tmp",
        job / "figures" / "traversals.png",
        job / "figures" / "traversals.png.tmp",
    ]
    (job / "figures").mkdir()
    for path in planted:
        path.symlink_to(victim)
    train(load_config(SMALL + ["trainer.max_steps=5"]), job)
    assert victim.read_text() == "precious"
    assert not (job / "results.json").is_symlink() and _results(job)["status"] == "completed"
    assert not (job / "figures" / "traversals.png").is_symlink()


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    write_json_atomic(path, {"status": "completed"})

    def fail(file):
        file.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, fail)
    assert json.loads(path.read_text()) == {"status": "completed"} and os.listdir(tmp_path) == [
        "results.json"
    ]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # a file-size limit (Python ignores SIGXFSZ)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    try:
        with pytest.raises(OSError):
            AtomicCheckpointIO().save_checkpoint(
                {"state_dict": {"w": torch.zeros(100_000)}}, tmp_path / "last.ckpt"
            )
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert sorted(os.listdir(tmp_path)) == ["results.json"]


@pytest.mark.slow
def test_a_second_writer_of_a_job_directory_is_refused_and_writes_nothing(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom disent.job import job_lock\n"
            f"with job_lock({str(job)!r}):\n    print('locked', flush=True)\n    time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(
            JobDirError, match=f"another disent process \\(pid {holder.pid}\\) is writing"
        ):
            train(load_config(SMALL + ["trainer.max_steps=3"]), job)
        done = _run("-m", "disent.train", f"hydra.run.dir={job}", *SMALL, "trainer.max_steps=3")
        assert (
            done.returncode == 2
            and "another disent process" in done.stderr
            and "Traceback" not in done.stderr
        )
        # no results, no checkpoint
        assert sorted(p.name for p in job.iterdir()) == [".hydra", ".lock", "train.log"]
    finally:
        holder.kill()
        holder.wait()
    with job_lock(job):  # the kernel released the dead holder's lock
        pass
    assert train(load_config(SMALL + ["trainer.max_steps=3"]), job)["status"] == "completed"


# --- the study report survives bad jobs
# -------------------------------------------------------------
@pytest.mark.slow
def test_the_report_lists_unreadable_jobs_and_reports_the_good_ones(tmp_path):
    from disent.study import STUDY_METRICS
    from disent.study.report import main

    study = tmp_path / "study"
    rng = np.random.default_rng(0)
    good = {
        "status": "completed",
        "model": "beta_vae",
        "dataset": "dsprites",
        "study_name": "s",
        "steps": 10,
    }
    # numbers, strings, a list: one column of mixed types
    values = [1, 4.0, "16", [2, 3], "high", 1, 4.0, "16"]
    for k, value in enumerate(values):
        metrics = {c.removeprefix("mean/"): float(rng.random()) for c in STUDY_METRICS.values()}
        if k == 0:
            metrics["mig"] = "nan"  # how results.json stores a NaN
        write_json_atomic(
            study / str(k) / "results.json",
            {
                **good,
                "hyperparameter": {"name": "beta", "value": value},
                "seed": k,
                "metrics": {"mean": metrics},
            },
        )
    bad = {
        "garbage": b"\x00\xff\xfe binary",
        "list": b"[1, 2]",
        "shape": b'{"status": "completed", "metrics": [1]}',
        "text": b"{not json",
    }
    for name, content in bad.items():
        (study / name).mkdir()
        (study / name / "results.json").write_bytes(content)
    main(["report", str(study), "--out", str(tmp_path / "report")])
    import pandas as pd

    table = pd.read_parquet(tmp_path / "report" / "table.parquet")
    assert (table["status"] == "completed").sum() == len(values) and (
        table["status"] == "unreadable"
    ).sum() == 4
    assert np.isnan(table.loc[table["seed"] == 0, "mean/mig"].iloc[0])
    text = (tmp_path / "report" / "report.md").read_text()
    assert "8 completed" in text and "4 unreadable" in text and "not a JSON file" in text
    assert "holds a JSON list" in text and "`metrics` is not an object" in text
    assert (tmp_path / "report" / "strengths_mig.png").exists()
    (tmp_path / "a file").write_text("")
    done = _run(
        "-m",
        "disent.study.report",
        "report",
        str(study),
        "--out",
        str(tmp_path / "a file" / "report"),
    )
    assert done.returncode == 2 and "cannot write the report into --out" in done.stderr
    assert "Traceback" not in done.stderr


# --- bad input: one clear error, exit code 2, no traceback
# -----------------------------------------
def _refused(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    for fragment in fragments:
        assert fragment in done.stderr, (fragment, done.stderr[-3000:])


@pytest.mark.slow
def test_trainer_keys_and_values_are_checked_before_training(tmp_path):
    done = _run(
        "-m",
        "disent.train",
        f"hydra.run.dir={tmp_path / 'job'}",
        *SMALL,
        "+trainer.max_step=5",
        "trainer.accelerator=gpu",
        "trainer.precision=banana",
        "+trainer.callbacks=[]",
    )
    _refused(
        done,
        "invalid config (4 problems)",
        "trainer.max_step = 5: unknown key for trainer (did you mean 'max_steps'?",
        "trainer.precision = 'banana': must be one of [64, 32, 16,",
        "trainer.accelerator = 'gpu': this machine has no GPU",
        "use trainer.accelerator=auto",
        "disent sets logger, callbacks",
    )


def _unwritable(path: Path) -> None:
    """Make the directory `path` unwritable, even for root (chattr +i) where chmod does not suffice."""
    path.chmod(0o555)
    probe = path / ".probe"
    try:
        probe.touch()
    except OSError:
        return
    probe.unlink()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a directory unwritable here (root, and no chattr)")


def _writable(path: Path) -> None:
    subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    path.chmod(0o755)


@pytest.mark.slow
def test_a_job_directory_that_cannot_be_written_is_refused_before_training(tmp_path):
    (tmp_path / "file").write_text("")
    done = _run("-m", "disent.train", f"hydra.run.dir={tmp_path / 'file'}", *SMALL)
    _refused(
        done,
        f"cannot write the run directory {tmp_path / 'file'}: a file stands where the directory goes",
    )
    parent, job = tmp_path / "parent", tmp_path / "job"
    parent.mkdir()
    train(load_config(SMALL + ["trainer.max_steps=3"]), job)
    # a finished job, made read-only, rerun longer: Hydra would fail writing its log there
    _unwritable(job)
    try:
        done = _run("-m", "disent.train", f"hydra.run.dir={job}", *SMALL, "trainer.max_steps=6")
    finally:
        _writable(job)
    _refused(done, f"disent-train: cannot write in {job} (")
    for directory, target in ((parent, parent / "job"), (job / "checkpoints", job)):
        _unwritable(directory)
        try:
            with pytest.raises(
                JobDirError, match=f"cannot (create the job directory|write in) {directory}"
            ):
                train(load_config(SMALL + ["trainer.max_steps=6"]), target)
        finally:
            _writable(directory)
    assert _results(job)["steps"] == 3  # the finished job is as it was


def test_a_logger_that_cannot_start_falls_back_to_csv_and_training_goes_on(tmp_path, caplog):
    job = tmp_path / "job"
    job.mkdir()
    (job / "wandb").write_text("a file where W&B's directory goes")
    results = train(load_config(SMALL + ["trainer.max_steps=5", "logger=wandb"]), job)
    assert results["status"] == "completed" and results["metrics"]["mean"]
    assert "logger=wandb could not start" in caplog.text and (job / "metrics.csv").exists()


@pytest.mark.slow
def test_disent_eval_refuses_foreign_checkpoints_and_wrong_data_and_writes_beside_each_checkpoint(
    tmp_path,
):
    from disent.checkpoints import CheckpointError
    from disent.evaluate import _check_output, default_output, evaluate_checkpoint
    from disent.schema import ConfigError

    job = tmp_path / "job"
    train(load_config(SMALL + ["trainer.max_steps=3"]), job)
    checkpoint = read_checkpoint(job / "checkpoints" / "last.ckpt")
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save(
        {"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {"config": {"seed": 0}}},
        folder / "a.ckpt",
    )
    torch.save({**checkpoint, "state_dict": {"w": torch.zeros(2)}}, folder / "b.ckpt")
    metrics = load_config(SMALL).metrics
    with pytest.raises(
        CheckpointError, match="was not written by disent-train .*\n  model: missing"
    ):
        evaluate_checkpoint(folder / "a.ckpt", metrics)
    with pytest.raises(CheckpointError, match="do not fit the beta_vae its config describes"):
        evaluate_checkpoint(folder / "b.ckpt", metrics)
    with pytest.raises(
        ConfigError, match=r"dataset=noisy_dsprites has observations of shape \(3, 64, 64\), but"
    ):
        evaluate_checkpoint(
            job / "checkpoints" / "last.ckpt",
            metrics,
            load_config(["dataset=noisy_dsprites"]).dataset,
        )
    assert default_output(job / "checkpoints" / "last.ckpt") == job / "metrics.json"
    assert default_output(folder / "a.ckpt") != default_output(folder / "b.ckpt")
    done = _run("-m", "disent.evaluate", f"checkpoint={folder / 'b.ckpt'}", "metrics=tiny")
    _refused(done, f"disent-eval: the weights in {folder / 'b.ckpt'} do not fit")
    # an output in a missing directory: it is made
    _check_output(tmp_path / "new" / "dir" / "m.json")
    assert (tmp_path / "new" / "dir").is_dir()
    (tmp_path / "a file").write_text("")
    with pytest.raises(
        ConfigError, match="cannot write output=.*a file stands where a directory goes"
    ):
        _check_output(tmp_path / "a file" / "m.json")


@pytest.mark.slow
def test_disent_data_and_the_loaders_report_bad_files_as_one_data_file_error(tmp_path):
    import h5py

    from disent.data import DataFileError, Digits, ScreamDSprites, Shapes3D

    with pytest.raises(DataFileError, match="background picture .*missing.png: no such file"):
        ScreamDSprites(image_path=tmp_path / "missing.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataFileError, match="not a readable image"):
        ScreamDSprites(image_path=tmp_path / "broken.png")
    for name, build in {
        "group": lambda f: f.create_group("images"),
        "dangling": lambda f: f.__setitem__("images", h5py.SoftLink("/nowhere")),
    }.items():
        path = tmp_path / name / "3dshapes.h5"
        path.parent.mkdir()
        with h5py.File(path, "w") as f:
            build(f)
            f["labels"] = np.zeros((2, 6))
        with pytest.raises(DataFileError, match="its 'images' is (an HDF5 Group|a link)"):
            Shapes3D(path)
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    huge = (2**32 - 1).to_bytes(4, "big")
    (mnist / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + huge * 3 + bytes(16))
    (mnist / "train-labels-idx1-ubyte").write_bytes(
        b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + bytes(2)
    )
    with pytest.raises(DataFileError, match="its header .* needs 79228162458924105385300197391"):
        Digits(path=mnist)
    done = _run(
        "-m",
        "disent.preview",
        "dataset=scream_dsprites",
        f"dataset.image_path={tmp_path / 'missing.png'}",
        cwd=tmp_path,
    )
    _refused(done, "disent-data: cannot read the background picture")
