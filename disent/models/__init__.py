"""LightningModules, one model family per file, and `build_model` that makes one from config."""

import inspect
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from disent.checkpoints import CheckpointError, read_checkpoint
from disent.models.base import DisentModel, encoder_of
from disent.models.infogan import InfoGAN
from disent.models.regularizers import REGULARIZERS, Regularizer
from disent.models.vae import VAE
from disent.nets import build_encoder_decoder

MODEL_NAMES = sorted([*REGULARIZERS, "infogan"])


def _arguments(cls: type, available: dict, what: str) -> dict:
    """The entries of `available` named like the arguments of `cls`; a clear error for missing ones."""
    names = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "final_loss_window", "config")]
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


def build_model(cfg: DictConfig, observation_shape: tuple[int, int, int], dataset_size: int) -> DisentModel:
    """The LightningModule described by the run config `cfg` (uses cfg.model and cfg.results)."""
    model_cfg = cfg.model
    if model_cfg.name not in MODEL_NAMES:
        raise ValueError(f"unknown model '{model_cfg.name}': choose one of {MODEL_NAMES}")
    model = _build(cfg, model_cfg, observation_shape, dataset_size)
    model.observation_shape = tuple(observation_shape)  # what it encodes: disent-eval checks other data against it
    # saved in its checkpoints, so that load_model rebuilds it without building (or finding) its data set
    model.hparams["data"] = {"observation_shape": list(observation_shape), "size": int(dataset_size)}
    return model


def _build(cfg: DictConfig, model_cfg: DictConfig, observation_shape: tuple[int, int, int],
           dataset_size: int) -> DisentModel:
    if model_cfg.name == "infogan":
        available = {**OmegaConf.to_container(model_cfg, resolve=True), "observation_shape": tuple(observation_shape)}
        arguments = _arguments(InfoGAN, available, "model 'infogan'")
        return InfoGAN(**arguments, final_loss_window=cfg.results.final_loss_window,
                       config=OmegaConf.to_container(cfg, resolve=True))
    encoder, decoder = build_encoder_decoder(model_cfg.net, observation_shape, model_cfg.latent_dim,
                                             hidden_dim=model_cfg.hidden_dim)
    settings = OmegaConf.to_container(model_cfg, resolve=True)
    return VAE(encoder, decoder, build_regularizer(model_cfg, dataset_size), reconstruction=model_cfg.reconstruction,
               optimizer=settings["optimizer"], discriminator_optimizer=settings.get("discriminator_optimizer"),
               final_loss_window=cfg.results.final_loss_window,
               config=OmegaConf.to_container(cfg, resolve=True))


def load_model(checkpoint_path: str | Path) -> tuple[DisentModel, DictConfig]:
    """The model saved in a `disent-train` checkpoint, and the run config it was trained with.

    Loads with `weights_only=True`: a checkpoint cannot run pickled code. A checkpoint whose config or
    weights are not a disent model's is one CheckpointError naming the file.
    """
    from disent.schema import ConfigError, validate_saved_config

    checkpoint = read_checkpoint(checkpoint_path)
    saved = checkpoint["hyper_parameters"]["config"]
    try:
        validate_saved_config(saved)
    except ConfigError as error:
        raise CheckpointError(f"the checkpoint {checkpoint_path} was not written by disent-train (or by a version "
                              f"whose configs this one cannot read): its {error}") from None
    cfg = OmegaConf.create(saved)
    data = checkpoint["hyper_parameters"].get("data")
    if data is None:  # written before checkpoints kept the data shape: learn it from the data set
        from disent.data import build_dataset

        dataset = build_dataset(cfg.dataset)
        data = {"observation_shape": dataset.observation_shape, "size": len(dataset)}
    model = build_model(cfg, tuple(data["observation_shape"]), int(data["size"]))
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()
        reason = " ".join(line.strip() for line in first[:3])
        raise CheckpointError(f"the weights in {checkpoint_path} do not fit the {cfg.model.name} its config "
                              f"describes ({reason}); was it written by disent-train?") from None
    return model.eval(), cfg


__all__ = ["DisentModel", "InfoGAN", "VAE", "build_model", "build_regularizer", "encoder_of", "load_model",
           "MODEL_NAMES"]
