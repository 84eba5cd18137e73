"""Stacked training: K members in one model train exactly as K single runs would."""

import json
import os
import signal
import subprocess
import sys
import time

import lightning as L
import pandas as pd
import pytest
import torch
from conftest import run_in_process

from disent.checkpoints import read_checkpoint
from disent.config import load_config
from disent.data import build_dataset
from disent.data.datamodule import StackedDataModule
from disent.models import build_model
from disent.models.stacked import ModelStack
from disent.run import train

STEPS = 12
COMMON = [
    "trainer.enable_progress_bar=false",
    "loader.batch_size=16",
    "metrics=none",
    "figures=tiny",
    "trainer.log_every_n_steps=1",
]
MEMBERS = {  # (its loss weight, seed) per member
    "beta_vae": [("model.beta=1", 0), ("model.beta=4", 1), ("model.beta=8", 2)],
    "annealed_vae": [("model.c_max=5", 3), ("model.c_max=50", 4), ("model.c_max=25", 3)],
    "dip_vae_i": [("model.lambda_od=1", 0), ("model.lambda_od=20", 1)],
    "dip_vae_ii": [("model.lambda_od=2", 0), ("model.lambda_od=50", 1)],
    "beta_tcvae": [("model.beta=1", 0), ("model.beta=10", 1)],
    "factor_vae": [("model.gamma=10", 0), ("model.gamma=40", 1), ("model.gamma=100", 2)],
}
EXTRA = {
    "annealed_vae": ["model.iteration_threshold=6"],
    "factor_vae": ["model.discriminator.hidden_dim=32"],
    "beta_tcvae": ["model.estimator=mss"],
}


def _member(cfg):
    L.seed_everything(cfg.seed, verbose=False)  # as train() does before building the model
    dataset = build_dataset(cfg.dataset)
    return dataset, build_model(cfg, dataset.observation_shape, len(dataset))


# Vmapped convolutions run in float64: in float32 they call other kernels than a single run does
# (which ones depends on the CPU: CI's differed from ours), and Adam's first steps (g / |g|) amplify
# the rounding beyond 1e-4 in the first layer's weights in 12 steps (to ~1e-2 in the GAN game); in
# float64 a stacked member equals its single run. Called one by one, the members run the single
# runs' kernels, so float32 matches too. The study's conv nets in both ways of calling the members;
# the loss families on the quicker MLP nets.
@pytest.mark.slow
@pytest.mark.parametrize(
    "model, net, vectorize, precision, extra",
    [
        ("beta_vae", "conv", True, "64-true", []),
        ("beta_vae", "conv", False, "32-true", []),
        *[
            (model, "mlp", vectorize, "32-true", [])
            for model in sorted(MEMBERS)
            for vectorize in (True, False)
        ],
        # the paper's second batch
        ("factor_vae", "mlp", True, "32-true", ["model.permute=second"]),
        # the vmapped step compiled
        ("beta_tcvae", "mlp", True, "32-true", ["compute.compile=true"]),
        ("beta_vae", "mlp", False, "bf16-mixed", []),  # autocast: a GPU study's precision
        ("beta_vae", "mlp", True, "bf16-mixed", []),
    ],
)
def test_a_stack_trains_each_member_as_its_single_run(
    model, net, vectorize, precision, extra, tmp_path
):
    nets = ["model.net=mlp", "model.hidden_dim=32"] if net == "mlp" else []
    floats = [f"trainer.precision={precision}"]
    _same_as_single_runs(
        [
            COMMON
            + nets
            + floats
            + extra
            + [f"model={model}", knob, f"seed={seed}", *EXTRA.get(model, [])]
            for knob, seed in MEMBERS[model]
        ],
        tmp_path,
        vectorize,
        # bf16 keeps 3 significant digits: vmap's other kernels move the small terms (a KL of 0.05)
        # in the third digit, and the weights by ~1e-3
        rel=1e-3 if precision == "bf16-mixed" and vectorize else 1e-4,
    )


@pytest.mark.slow
@pytest.mark.parametrize("vectorize, precision", [(True, "64-true"), (False, "32-true")])
def test_a_stack_of_infogans_trains_each_member_as_its_single_run(vectorize, precision, tmp_path):
    infogan = [
        "model=infogan",
        "model.net=conv_small",
        "model.hidden_dim=64",
        "dataset=digits",
        "model.categorical_codes=[10]",
        "model.continuous_codes=2",
        f"trainer.precision={precision}",
    ]
    _same_as_single_runs(
        [
            COMMON + infogan + [f"model.lambda_info={weight}", f"seed={seed}"]
            for weight, seed in [(1.0, 0), (2.0, 1)]
        ],
        tmp_path,
        vectorize,
        steps=4,
    )


def _named(name: str):
    """assert_close's message: the tensor's name, then what differs (how many elements, by how much)."""
    return lambda detail: f"{name}: {detail}"


def _same_as_single_runs(
    overrides: list[list[str]], tmp_path, vectorize: bool, steps: int = STEPS, rel: float = 1e-4
) -> None:
    length = [f"trainer.max_steps={steps}", f"results.final_loss_window={steps}"]
    configs = [load_config(o + length) for o in overrides]
    built = [_member(cfg) for cfg in configs]
    stacked = ModelStack(
        [model for _, model in built], final_loss_window=steps, vectorize=vectorize
    )
    data = StackedDataModule(built[0][0], batch_size=16, seeds=[cfg.seed for cfg in configs])
    L.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=-1,
        precision=configs[0].trainer.precision,
    ).fit(stacked, datamodule=data)
    members = stacked.unstack()
    # loose (bf16): Adam's 12 steps of lr 1e-4 move a weight by 1.2e-3 at most, and a gradient
    # rounded otherwise can flip a step's sign; else as good as float32 allows
    weight_atol = 3e-3 if rel > 1e-4 else 1e-5
    # bf16: a small term (a KL of 0.3 nats, the sum of differences of order-1 terms over 10 latents)
    # keeps bf16's rounding of each, about 4% here; the loss itself agrees to `rel`
    term_atol = 0.05 if rel > 1e-4 else 10 * rel
    for k, cfg in enumerate(configs):
        single = train(cfg, tmp_path / str(k))
        trace = pd.read_csv(tmp_path / str(k) / "metrics.csv")["train/loss"].dropna().tolist()
        stacked_trace = [step["loss"] for step in members[k].recent_losses]
        assert len(trace) == len(stacked_trace) == steps
        assert stacked_trace == pytest.approx(trace, rel=rel)
        assert members[k].final_losses() == pytest.approx(
            single["final_losses"], rel=rel, abs=term_atol
        )
        weights = read_checkpoint(tmp_path / str(k) / "checkpoints" / "last.ckpt")["state_dict"]
        for name, value in members[k].state_dict().items():
            torch.testing.assert_close(
                value,
                weights[name],
                rtol=rel,
                atol=weight_atol,
                check_dtype=False,
                msg=_named(name),
            )


TINY_METRICS = ["metrics=tiny_all"]


def _command(*overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "disent.train",
        "-m",
        "hydra/launcher=stacked",
        "model.net=mlp",
        "model.hidden_dim=32",
        "trainer.max_steps=12",
        "trainer.log_every_n_steps=4",
        "figures=tiny",
        "figures.kl_every_n_steps=4",
        "metrics=none",
        "trainer.enable_progress_bar=false",
        *overrides,
    ]


def _run(tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    # the killed one is a process
    return run_in_process("disent.train", *_command(*overrides)[3:], cwd=tmp_path)


@pytest.mark.slow
def test_the_stacked_launcher_writes_every_job_as_a_single_run_and_isolates_a_failing_member(
    tmp_path,
):
    sweep = tmp_path / "sweep"
    # jobs 1 and 3 diverge at once
    grid = ["hydra.launcher.stack_size=2", "seed=0,1", "model.beta=4,1e39"]
    done = _run(
        tmp_path,
        f"hydra.sweep.dir={sweep}",
        *grid,
        "logger=wandb",
        "study_name=stacked_study",
        "hydra.launcher.member_calls=vmap",
        *TINY_METRICS,
    )
    assert "4 in 2 stack(s) of at most 2" in done.stderr + done.stdout, done.stderr[-3000:]
    # the other launcher tests run members in a loop
    assert "as one stack (vmap)" in done.stderr + done.stdout
    from disent.study.collect import collect

    table = collect([sweep]).sort_values("job_dir")
    assert table["status"].tolist() == ["completed", "failed"] * 2, table[["status", "error"]]
    assert (
        table[table["status"] == "failed"]["error"].str.contains("non-finite loss at step 0").all()
    )
    for job in range(4):
        job_dir = sweep / str(job)
        results = json.loads((job_dir / "results.json").read_text())
        assert (
            results["stack"] == {"size": 2, "member": job % 2}
            and results["study_name"] == "stacked_study"
        )
        # each job finished its own W&B run
        assert len(list((job_dir / "wandb").glob("offline-run-*"))) == 1
        if results["status"] == "completed":
            assert (job_dir / "figures" / "capacity.png").exists() and (
                job_dir / "figures" / "traversals.png"
            ).exists()
            logged = (
                pd.read_csv(job_dir / "metrics.csv") if (job_dir / "metrics.csv").exists() else None
            )
            assert logged is None  # logger=wandb: no CSV
    # a completed member's checkpoint is what disent-eval reads, and a finished job is not trained
    # again
    from disent.checkpoints import load_model

    model, cfg = load_model(sweep / "0" / "checkpoints" / "last.ckpt")
    assert cfg.seed == json.loads((sweep / "0" / "results.json").read_text())["seed"]
    # the members were scored together (each drawn image rendered once); alone, each scores the same
    from disent.evaluate import evaluate_checkpoint

    threads = torch.get_num_threads()
    # as the launcher's process (OMP_NUM_THREADS=1): float sums depend on the thread count
    torch.set_num_threads(1)
    try:
        alone = {
            job: evaluate_checkpoint(sweep / str(job) / "checkpoints" / "last.ckpt", cfg.metrics)[
                "metrics"
            ]
            for job in (0, 2)
        }
    finally:
        torch.set_num_threads(threads)
    for job in (0, 2):  # each shared its stack with a member that failed
        results = json.loads((sweep / str(job) / "results.json").read_text())
        assert set(results["metrics"]["mean"]) >= {
            "mig",
            "sap",
            "beta_vae.eval_accuracy",
            "dci.disentanglement",
        }
        assert results["metrics"] == alone[job]
    again = _run(
        tmp_path,
        f"hydra.sweep.dir={sweep}",
        *grid,
        "logger=wandb",
        "study_name=stacked_study",
        *TINY_METRICS,
    )
    assert again.stdout.count("already completed") + again.stderr.count("already completed") == 2


@pytest.mark.slow
def test_jobs_whose_nets_differ_train_in_stacks_of_their_own(tmp_path):
    sweep = tmp_path / "sweep"
    done = _run(
        tmp_path,
        f"hydra.sweep.dir={sweep}",
        "model=factor_vae",
        "model.gamma=10,20",
        "model.latent_dim=4,6",
        "model.discriminator.hidden_dim=16",
        "model.permute=second",
        "loader.batch_size=32",
    )
    assert "4 in 2 stack(s) of at most 8, 0 alone" in done.stderr + done.stdout, done.stderr[-3000:]
    for job in range(4):
        results = json.loads((sweep / str(job) / "results.json").read_text())
        assert results["status"] == "completed" and results["stack"]["size"] == 2


@pytest.mark.slow
def test_a_killed_stack_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    grid = ["model.beta=1,4", "seed=0,1", "trainer.max_steps=60", "checkpoint.every_n_steps=20"]
    _run(tmp_path, "hydra.sweep.dir=whole", *grid)
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _command(f"hydra.sweep.dir={killed}", *grid),
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while (
        not list(killed.glob(".stacks/*.ckpt"))
        and process.poll() is None
        and time.time() < deadline
    ):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert all(
        json.loads(p.read_text())["status"] == "running" for p in killed.glob("*/results.json")
    )
    resumed = _run(tmp_path, f"hydra.sweep.dir={killed}", *grid)
    assert "resumed from" in resumed.stdout + resumed.stderr
    for job in range(4):
        results = json.loads((killed / str(job) / "results.json").read_text())
        whole = json.loads((tmp_path / "whole" / str(job) / "results.json").read_text())
        assert results["status"] == "completed" and results["final_losses"] == whole["final_losses"]
        weights = read_checkpoint(killed / str(job) / "checkpoints" / "last.ckpt")["state_dict"]
        expected = read_checkpoint(tmp_path / "whole" / str(job) / "checkpoints" / "last.ckpt")[
            "state_dict"
        ]
        for name, value in expected.items():
            torch.testing.assert_close(weights[name], value, rtol=0, atol=0, msg=_named(name))
    # removed once every member has its own checkpoint
    assert not list(killed.glob(".stacks/*.ckpt"))


def test_jobs_stack_when_they_differ_only_in_seed_and_the_keys_the_schema_marks_per_member():
    from disent.schema import MODELS
    from disent.stack import stack_key

    def key(*overrides):
        return stack_key(load_config(list(overrides)))

    assert key("model=beta_vae", "model.beta=1", "seed=0") == key(
        "model=beta_vae", "model.beta=16", "seed=3"
    )
    assert key("model=annealed_vae", "model.c_max=5") == key(
        "model=annealed_vae", "model.c_max=25", "model.iteration_threshold=1000"
    )
    assert key("model=beta_vae", "model.latent_dim=5") != key("model=beta_vae")  # the nets differ
    assert key("model=beta_tcvae", "model.estimator=mss") != key(
        "model=beta_tcvae", "model.estimator=mws"
    )
    assert key("model=beta_vae", "loader.batch_size=32") != key("model=beta_vae")
    assert key("model=factor_vae", "model.permute=second") != key("model=factor_vae")
    assert all(key(f"model={name}") is not None for name in MODELS)
    assert MODELS["dip_vae_i"].per_member_keys() == ["hyperparameter", "lambda_od", "lambda_d"]


def test_a_vmapped_stack_refuses_members_whose_plain_numbers_differ():
    built = [
        _member(load_config(COMMON + ["model.net=mlp", "model.hidden_dim=8", f"seed={seed}"]))[1]
        for seed in (0, 1)
    ]
    for value, member in zip((1.0, 2.0), built, strict=True):
        # a loss weight kept as a float: vmap would give both members the first's
        member.regularizer.scale = value
    ModelStack(built, final_loss_window=1, vectorize=False)  # a loop calls each member's own module
    with pytest.raises(
        ValueError, match=r"member 1's regularizer.scale = 2.0 differs from member 0's 1.0"
    ):
        ModelStack(built, final_loss_window=1, vectorize=True)
