"""LightningModules, one model family per file, and `build_model` that makes one from config."""

import inspect
import zipfile
from pathlib import Path

import torch
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


def load_model(checkpoint_path: str | Path) -> tuple[VAE, DictConfig]:
    """The model saved in a `disent-train` checkpoint, and the run config it was trained with.

    Loads with `weights_only=True`: a checkpoint cannot run pickled code.
    """
    path = Path(checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (pass the checkpoints/last.ckpt of a disent-train job)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        cfg = OmegaConf.create(checkpoint["hyper_parameters"]["config"])
        state_dict = checkpoint["state_dict"]
    except (RuntimeError, EOFError, OSError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read the checkpoint {path}: {type(error).__name__}: {error}. Is the file complete "
                         f"and written by disent-train? Re-run or resume the job to write it again.") from error
    from disent.data import build_dataset

    model = build_model(cfg, build_dataset(cfg.dataset).observation_shape)
    model.load_state_dict(state_dict)
    return model.eval(), cfg


__all__ = ["VAE", "build_model", "build_regularizer", "load_model", "MODEL_NAMES"]
