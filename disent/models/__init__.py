"""LightningModules, one model family per file, and `build_model` that makes one from config."""

import importlib
import inspect

from omegaconf import DictConfig, OmegaConf

from disent.models.base import DisentModel, encoder_of
from disent.models.infogan import InfoGAN
from disent.models.regularizers import REGULARIZERS, Regularizer
from disent.models.vae import VAE
from disent.nets import build_encoder_decoder, initialise


def model_names() -> list[str]:
    """Every model `model=<name>` may build: the zoo's, and the objectives registered by `imports` modules."""
    return sorted([*REGULARIZERS, "infogan"])


def import_user_modules(modules: list[str] | None) -> None:
    """Import the config's `imports` (modules where objectives of one's own register themselves) before
    the config is checked; a module that cannot be imported is one ValueError naming it."""
    for module in modules or []:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(
                f"imports: cannot import {module!r} ({error}); put the module on the Python path "
                f"(pip install -e it, or set PYTHONPATH) or remove it from `imports`"
            ) from None


def _arguments(cls: type, available: dict, what: str) -> dict:
    """The entries of `available` named like the arguments of `cls`; a clear error for missing ones."""
    names = [
        n
        for n in inspect.signature(cls.__init__).parameters
        if n not in ("self", "final_loss_window", "config")
    ]
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(f"{what} needs the config keys {missing} (model.<key>=...)")
    return {n: available[n] for n in names}


def build_regularizer(model_cfg: DictConfig, dataset_size: int) -> Regularizer:
    """The regularizer named `model_cfg.name`, built from the config keys named like its arguments
    (the data set's size, which β-TCVAE's estimator needs, comes from the data set itself)."""
    available = {**OmegaConf.to_container(model_cfg, resolve=True), "dataset_size": dataset_size}
    cls = REGULARIZERS[model_cfg.name]
    return cls(**_arguments(cls, available, f"model '{model_cfg.name}'"))


def build_model(
    cfg: DictConfig, observation_shape: tuple[int, int, int], dataset_size: int
) -> DisentModel:
    """The LightningModule described by the run config `cfg` (uses cfg.model and cfg.results)."""
    model_cfg = cfg.model
    if model_cfg.name not in model_names():
        raise ValueError(f"unknown model '{model_cfg.name}': choose one of {model_names()}")
    model = _build(cfg, model_cfg, observation_shape, dataset_size)
    # what it encodes: disent-eval checks other data against it
    model.observation_shape = tuple(observation_shape)
    # saved in its checkpoints, so that load_model rebuilds it without building (or finding) its
    # data set
    model.hparams["data"] = {
        "observation_shape": list(observation_shape),
        "size": int(dataset_size),
    }
    return model


def _build(
    cfg: DictConfig,
    model_cfg: DictConfig,
    observation_shape: tuple[int, int, int],
    dataset_size: int,
) -> DisentModel:
    if model_cfg.name == "infogan":
        available = {
            **OmegaConf.to_container(model_cfg, resolve=True),
            "observation_shape": tuple(observation_shape),
        }
        arguments = _arguments(InfoGAN, available, "model 'infogan'")
        return InfoGAN(
            **arguments,
            final_loss_window=cfg.results.final_loss_window,
            config=OmegaConf.to_container(cfg, resolve=True),
        )
    encoder, decoder = build_encoder_decoder(
        model_cfg.net, observation_shape, model_cfg.latent_dim, hidden_dim=model_cfg.hidden_dim
    )
    settings = OmegaConf.to_container(model_cfg, resolve=True)
    model = VAE(
        encoder,
        decoder,
        build_regularizer(model_cfg, dataset_size),
        reconstruction=model_cfg.reconstruction,
        optimizer=settings["optimizer"],
        discriminator_optimizer=settings.get("discriminator_optimizer"),
        final_loss_window=cfg.results.final_loss_window,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    # every net of the model (FactorVAE's discriminator too); a config from before the key: null
    initialise(model, settings.get("init"))
    return model


__all__ = [
    "DisentModel",
    "InfoGAN",
    "VAE",
    "build_model",
    "build_regularizer",
    "encoder_of",
    "import_user_modules",
    "model_names",
]
