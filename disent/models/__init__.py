"""LightningModules, one model family per file, and `build_model` that makes one from config."""

import inspect

from omegaconf import DictConfig, OmegaConf

from disent.models.regularizers import REGULARIZERS, Regularizer
from disent.models.vae import VAE
from disent.nets import build_encoder_decoder

MODEL_NAMES = sorted(REGULARIZERS)


def build_regularizer(model_cfg: DictConfig) -> Regularizer:
    """The regularizer named `model_cfg.name`, built from the config keys named like its arguments."""
    cls = REGULARIZERS[model_cfg.name]
    arguments = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
    missing = [name for name in arguments if name not in model_cfg]
    if missing:
        raise ValueError(f"model '{model_cfg.name}' needs the config keys {missing} (model.<key>=...)")
    return cls(**{name: model_cfg[name] for name in arguments})


def build_model(cfg: DictConfig, observation_shape: tuple[int, int, int]) -> VAE:
    """The LightningModule described by the run config `cfg` (uses cfg.model and cfg.results)."""
    model_cfg = cfg.model
    if model_cfg.name not in REGULARIZERS:
        raise ValueError(f"unknown model '{model_cfg.name}': choose one of {MODEL_NAMES}")
    encoder, decoder = build_encoder_decoder(model_cfg.net, observation_shape, model_cfg.latent_dim,
                                             hidden_dim=model_cfg.hidden_dim)
    return VAE(encoder, decoder, build_regularizer(model_cfg), reconstruction=model_cfg.reconstruction,
               optimizer=OmegaConf.to_container(model_cfg.optimizer, resolve=True),
               final_loss_window=cfg.results.final_loss_window,
               config=OmegaConf.to_container(cfg, resolve=True))


__all__ = ["VAE", "build_model", "build_regularizer", "MODEL_NAMES"]
