"""Composing the Hydra config outside the command line (tests, scripts, notebooks)."""

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from disent.train import CONF_DIR


def load_config(overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
    """The config `disent-train <overrides>` would run with, e.g. load_config(["model.beta=4"])."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides or []))
