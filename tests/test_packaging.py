"""A built wheel carries the configs: `disent-train` works outside the source tree."""

import subprocess
import sys
import zipfile

import pytest


@pytest.mark.slow
def test_wheel_ships_conf_and_finds_it(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", ".", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=__file__.rsplit("/tests/", 1)[0],
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("disent-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    assert "disent/conf/train.yaml" in names and "disent/conf/model/beta_vae.yaml" in names
    # the stacked launcher is a Hydra plugin: Hydra only looks for plugins in the hydra_plugins
    # package
    assert "hydra_plugins/disent_stacked_launcher/stacked_launcher.py" in names
    # a namespace package, shared
    assert not any(name == "hydra_plugins/__init__.py" for name in names)
    probe = (
        "import disent.train as t; from disent.config import load_config; "
        "print(t.CONF_DIR); print(load_config(['model.beta=4']).model.beta)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    conf_dir, beta = done.stdout.split()
    assert conf_dir == str(site / "disent" / "conf") and float(beta) == 4.0
