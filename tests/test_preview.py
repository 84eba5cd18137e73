"""disent-data: one row per factor plus random samples, for every data set."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import dataset_files
from PIL import Image

from disent.config import CONF_DIR, load_config
from disent.data import build_dataset
from disent.preview import factor_sweeps, preview


@pytest.mark.parametrize("dataset", sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml")))
def test_preview_has_a_row_per_factor_sweeping_only_that_factor(dataset, tmp_path):
    # the data sets read only from files get small ones (arrays: one that is not a full grid)
    path = dataset_files(dataset, tmp_path)
    data = build_dataset(load_config([f"dataset={dataset}", *path], config_name="data").dataset)
    rows = factor_sweeps(data, np.random.default_rng(0), max_columns=6)
    assert len(rows) == data.num_factors
    for row, size in zip(rows, data.factor_sizes, strict=True):
        assert row.shape[1] == min(size, 6) and row.shape[2:] == data.observation_shape
    picture = preview(data, np.random.default_rng(0), max_columns=6, sample_rows=2)
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3


def test_preview_labels_each_row_with_its_factor():
    """Left of each row, its factor's name in dark pixels; the label strip is as wide as the longest
    name, and a longer name makes it wider."""
    data = build_dataset(load_config(["dataset=dsprites"], config_name="data").dataset)
    picture = preview(data, np.random.default_rng(0), max_columns=6, sample_rows=1)
    rows = factor_sweeps(data, np.random.default_rng(0), max_columns=6)
    width = picture.shape[1] - (6 * 66 + 2)  # the label strip: the picture minus a 6-image row
    assert 40 < width < 200
    dark = picture[:, :width].min(axis=2) < 128  # text pixels in the strip
    top = 0
    for row in [*rows, None]:  # each factor's row, then the samples' row: text beside each
        height = 66 + 2
        assert dark[top : top + height].any()
        top += height + 6
    assert not dark[:, width - 3 :].any()  # the text stays left of the images
    short = type(data).__new__(type(data))
    short.__dict__.update(data.__dict__)
    short.factor_names = ("a", "b", "c", "d", "e")
    narrow = preview(short, np.random.default_rng(0), max_columns=6, sample_rows=1)
    assert narrow.shape[1] < picture.shape[1]


@pytest.mark.slow
def test_cli_writes_the_png(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "disent.preview", "dataset=dsprites", "output=dsprites.png"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "shape 3, scale 6, orientation 40, posX 32, posY 32" in done.stdout
    with Image.open(tmp_path / "dsprites.png") as image:
        width, height = image.size
    assert width > 64 * 9 and height > 64 * 7
    # no log files or output directories
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dsprites.png"]
