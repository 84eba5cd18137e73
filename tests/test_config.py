"""The Hydra configs compose, and bad overrides are refused with a message that names the problem."""

import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from disent.config import CONF_DIR, load_config


def test_default_config_is_the_study_beta_vae_on_dsprites():
    cfg = load_config()
    assert cfg.model.name == "beta_vae" and cfg.dataset.name == "dsprites"
    assert cfg.model.latent_dim == 10 and cfg.loader.batch_size == 64
    assert cfg.model.optimizer.lr == pytest.approx(1e-4)
    assert cfg.model.beta == 1.0 and cfg.logger.name == "csv"
    OmegaConf.resolve(cfg)  # every interpolation resolves


def test_overrides_reach_the_model():
    cfg = load_config(["model.beta=4", "trainer.max_steps=2000", "seed=3"])
    assert (cfg.model.beta, cfg.trainer.max_steps, cfg.seed) == (4, 2000, 3)


def test_study_trainer_has_the_papers_length():
    assert load_config(["trainer=study"]).trainer.max_steps == 300_000


def test_every_yaml_file_of_every_group_composes():
    # files of their own: tests/test_lecture.py, test_study.py
    not_groups = ("experiment", "study", "lecture")
    for group_dir in sorted(
        p for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in not_groups
    ):
        for option in sorted(group_dir.glob("*.yaml")):
            load_config([f"{group_dir.name}={option.stem}"])


def test_misspelt_key_is_refused():
    with pytest.raises(ConfigCompositionException, match="btea"):
        load_config(["model.btea=4"])


def test_unknown_model_lists_the_valid_options():
    with pytest.raises(ConfigCompositionException, match="beta_vae"):
        load_config(["model=foo"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "override, expected", [("model.btea=4", "btea"), ("model=foo", "beta_vae")]
)
def test_command_line_exits_non_zero_naming_the_problem(override, expected, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "disent.train", override],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert expected in done.stderr + done.stdout
    assert not (tmp_path / "outputs").exists() or not list(
        (tmp_path / "outputs").rglob("results.json")
    )
