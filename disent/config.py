"""Where the Hydra configs live, and composing them outside the command line (tests, scripts, notebooks)."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

# `${multiply:10,${.lambda_od}}`: ties one loss weight to another (DIP-VAE-I's λ_d = 10·λ_od)
OmegaConf.register_new_resolver("multiply", lambda a, b: float(a) * float(b), replace=True)


def _find_conf_dir() -> Path:
    """conf/ beside the package in a source checkout (editable install), else inside the package (wheel)."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir.parent / "conf", package_dir / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"disent's conf/ directory was not found next to {package_dir}")


CONF_DIR = _find_conf_dir()


def load_config(overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
    """The config `disent-train <overrides>` would run with, e.g. load_config(["model.beta=4"])."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides or []))


def run_name(cfg: DictConfig) -> str:
    """e.g. 'beta_vae_beta=4.0_seed=3'."""
    knob = cfg.model.get("hyperparameter")
    value = f"_{knob}={cfg.model[knob]}" if knob else ""
    return f"{cfg.model.name}{value}_seed={cfg.seed}"
