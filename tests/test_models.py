"""Every model of the zoo trains: finite, falling loss; its study hyperparameter is an override; it is scored."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from disent.config import load_config
from disent.models.regularizers import FactorVAELoss
from disent.run import train

MODELS = ["beta_vae", "annealed_vae", "dip_vae_i", "dip_vae_ii", "beta_tcvae", "factor_vae"]
STUDY_KNOBS = {
    "beta_vae": ("beta", 4),
    "annealed_vae": ("c_max", 10),
    "dip_vae_i": ("lambda_od", 2),
    "dip_vae_ii": ("lambda_od", 2),
    "beta_tcvae": ("beta", 4),
    "factor_vae": ("gamma", 20),
    "infogan": ("lambda_info", 2),
}
SMALL = [
    "model.net=mlp",
    "model.hidden_dim=64",
    "trainer.enable_progress_bar=false",
    "metrics=none",
    "figures=tiny",
    "model.optimizer.lr=0.001",
    "loader.batch_size=32",
]


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_each_model_trains_with_finite_falling_loss(model, tmp_path):
    extra = (
        ["model.discriminator.hidden_dim=64", "model.discriminator.num_layers=2"]
        if model == "factor_vae"
        else []
    )
    results = train(
        load_config([f"model={model}", "trainer.max_steps=150", *SMALL, *extra]), tmp_path / model
    )
    assert results["status"] == "completed" and results["steps"] == 150  # max_steps counts batches
    import pandas as pd

    losses = pd.read_csv(tmp_path / model / "metrics.csv")["train/loss"].dropna().to_numpy()
    assert np.isfinite(losses).all()
    assert losses[-2:].mean() < losses[:2].mean()
    knob, _ = STUDY_KNOBS[model]
    assert results["hyperparameter"]["name"] == knob


@pytest.mark.parametrize("model", [*MODELS, "infogan"])
def test_study_hyperparameter_is_a_plain_override(model):
    knob, value = STUDY_KNOBS[model]
    cfg = load_config([f"model={model}", f"model.{knob}={value}"])
    assert cfg.model[knob] == value and cfg.model.hyperparameter == knob


def test_tied_weights_follow_the_study_knob():
    assert load_config(["model=dip_vae_i", "model.lambda_od=5"]).model.lambda_d == 50
    assert load_config(["model=dip_vae_ii", "model.lambda_od=5"]).model.lambda_d == 5
    schedule = load_config(
        ["model=annealed_vae", "model.c_max=50", "model.iteration_threshold=10"]
    ).model
    assert (schedule.capacity_schedule.end, schedule.capacity_schedule.steps) == (50, 10)


@pytest.mark.slow
def test_factor_vae_logs_its_discriminator_and_sweeps_gamma(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "disent.train",
            "-m",
            "model=factor_vae",
            "model.gamma=10,20",
            "trainer.max_steps=4",
            "trainer.log_every_n_steps=1",
            "model.discriminator.hidden_dim=32",
            "model.discriminator.num_layers=2",
            *SMALL,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted((tmp_path / "outputs" / "multirun").glob("*/*/results.json"))
    assert [json.loads(p.read_text())["hyperparameter"]["value"] for p in jobs] == [10, 20]
    import pandas as pd

    logged = pd.read_csv(jobs[0].parent / "metrics.csv").columns
    assert {
        "train/total_correlation",
        "train/discriminator_accuracy",
        "train/discriminator_loss",
    } <= set(logged)


@pytest.mark.parametrize("permute", ["same", "second"])
def test_factor_vae_paper_variant_splits_the_batch(permute, tmp_path, monkeypatch):
    """permute=second: the VAE trains on the first half of the batch and the discriminator's permuted
    codes come from the second half; permute=same: both use the whole batch, the permutation its own
    codes."""
    seen = []
    discriminator_terms = FactorVAELoss.discriminator_terms

    def record(self, posterior, draws, second=None):
        seen.append(
            (
                len(posterior.z),
                None if second is None else len(second.z),
                second is not None and bool(torch.equal(second.z, posterior.z)),
                len(draws["order"]),
            )
        )
        return discriminator_terms(self, posterior, draws, second)

    monkeypatch.setattr(FactorVAELoss, "discriminator_terms", record)
    cfg = load_config(
        [
            "model=factor_vae",
            f"model.permute={permute}",
            "trainer.max_steps=3",
            *SMALL,
            "model.discriminator.hidden_dim=32",
            "model.discriminator.num_layers=2",
        ]
    )
    assert train(cfg, tmp_path / "job")["status"] == "completed"
    # loader.batch_size=32 in SMALL
    expected = (16, 16, False, 16) if permute == "second" else (32, None, False, 32)
    assert seen == [expected] * 3


@pytest.mark.slow
def test_infogan_trains_recovers_its_codes_and_is_scored(tmp_path):
    cfg = load_config(
        [
            "model=infogan",
            "trainer.max_steps=30",
            "trainer.log_every_n_steps=1",
            "loader.batch_size=32",
            "trainer.enable_progress_bar=false",
            "metrics=tiny_all",
            "model.noise_dim=8",
            "model.hidden_dim=64",
        ]
    )
    results = train(cfg, tmp_path / "job")
    assert results["status"] == "completed" and results["steps"] == 30
    import pandas as pd

    log = pd.read_csv(tmp_path / "job" / "metrics.csv")
    for column in [
        "train/generator_loss",
        "train/discriminator_loss",
        "train/mutual_info_lower_bound",
    ]:
        assert np.isfinite(log[column].dropna()).all()
    info = log["train/info_categorical"].dropna().to_numpy()
    assert info[-5:].mean() < info[:5].mean()  # Q learns to read the categorical code back
    # the representation is 4 continuous means + 3 categorical probabilities
    assert results["metrics"]["mean"]["factor_vae.num_active_dims"] <= 7
    assert np.isfinite(results["metrics"]["mean"]["mig"])
    assert (tmp_path / "job" / "figures" / "code_traversals.png").exists()


def test_load_model_rebuilds_the_model_from_its_checkpoint_without_its_data_set(
    tmp_path, monkeypatch
):
    import torch

    import disent.data
    from disent.checkpoints import load_model, read_checkpoint

    cfg = load_config(
        [
            "model=beta_tcvae",
            "trainer.max_steps=2",
            *SMALL,
            "figures.mi_num_points=100",
            "figures.heatmap_samples_per_cell=1",
        ]
    )
    train(cfg, tmp_path / "job")
    path = tmp_path / "job" / "checkpoints" / "last.ckpt"
    checkpoint = read_checkpoint(path)
    assert checkpoint["hyper_parameters"]["data"] == {
        "observation_shape": [1, 64, 64],
        "size": 737280,
    }
    built = []
    original = disent.data.build_dataset
    monkeypatch.setattr(
        disent.data, "build_dataset", lambda *a, **k: built.append(1) or original(*a, **k)
    )
    model, _ = load_model(path)
    assert not built and model.observation_shape == (1, 64, 64)
    assert model.regularizer.dataset_size == 737280  # β-TCVAE's estimator needs the data set's size
    del checkpoint["hyper_parameters"]["data"]  # a checkpoint from before the shape was kept
    torch.save(checkpoint, tmp_path / "old.ckpt")
    old, _ = load_model(tmp_path / "old.ckpt")
    assert built == [1] and old.observation_shape == (1, 64, 64)
    for name, value in model.state_dict().items():
        assert torch.equal(value, old.state_dict()[name]), name


def test_init_glorot_is_disentanglement_libs_and_null_keeps_pytorchs():
    from disent.checkpoints import resume_differences
    from disent.data import build_dataset
    from disent.models import build_model, encoder_of
    from disent.nets import INITS
    from disent.schema import VAE

    assert [f for f in VAE.__dataclass_fields__.values() if f.name == "init"][0].metadata[
        "choices"
    ] == list(INITS)
    spread = {}
    for init in ("glorot", "null"):
        torch.manual_seed(0)
        cfg = load_config(["model=factor_vae", f"model.init={init}"])
        model = build_model(cfg, (1, 64, 64), 1000)
        kinds = torch.nn.Linear | torch.nn.Conv2d | torch.nn.ConvTranspose2d
        layers = [m for m in model.modules() if isinstance(m, kinds)]
        assert len(layers) == 6 + 6 + 7  # encoder, decoder, FactorVAE's discriminator
        if init == "glorot":  # Glorot-uniform weights, zero biases, in every net
            for layer in layers:
                fan_in = layer.weight[0].numel()
                fan_out = layer.weight[:, 0].numel()
                bound = np.sqrt(6 / (fan_in + fan_out))
                assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
                assert not layer.bias.any()
        else:  # PyTorch's own: biases uniform in ±1/√fan_in
            assert all(layer.bias.any() for layer in layers)
        images = build_dataset(cfg.dataset).sample_observations(256, np.random.default_rng(0))
        mu, _ = encoder_of(model, 256)(images)
        spread[init] = mu.std(axis=0).mean()  # how much the untrained codes tell images apart
    assert spread["glorot"] > 4 * spread["null"]
    # a config saved before the key existed reads as null: it resumes under init=null only
    saved = {"model": {"name": "beta_vae", "beta": 1.0}}
    assert (
        resume_differences(saved, {"model": {"name": "beta_vae", "beta": 1.0, "init": None}}) == []
    )
    assert resume_differences(
        saved, {"model": {"name": "beta_vae", "beta": 1.0, "init": "glorot"}}
    ) == ["model.init: None -> 'glorot'"]
