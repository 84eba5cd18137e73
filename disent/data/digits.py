"""Handwritten digits with the label as the one known factor: InfoGAN's MNIST experiment, offline.

By default the images are scikit-learn's bundled digits (1,797 8x8 images, values 0..16; no
download); with `path`, MNIST's training set read from its IDX files. Either way they are scaled to
[0, 1] and resized (bilinear) to `size` x `size`.
"""

import gzip
import os
import zlib

import numpy as np
from PIL import Image

from disent.data.base import GroundTruthData, as_rng

IMAGES_FILE, LABELS_FILE = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # 0x0803 / 0x0801: unsigned bytes, 3 / 1 dimensions


def read_idx(path: str, magic: int) -> np.ndarray:
    """The uint8 array of an IDX file (gzipped or not), after checking its magic number and length.

    IDX: a big-endian int32 magic (0x00 0x00, type 0x08 = ubyte, number of dimensions), one big-endian
    int32 per dimension, then the values row-major.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MNIST file not found: '{path}'")
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":  # gzip, whatever the file is called
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"'{path}' could not be read as an IDX file: {error}") from error
    if len(data) < 4 or int.from_bytes(data[:4], "big") != magic:
        found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
        raise ValueError(f"'{path}' is not an IDX file of this kind: magic number {found}, expected {magic}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"'{path}' is truncated: {len(data)} bytes, its header alone needs {header}")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise ValueError(f"'{path}' has {len(data)} bytes, but its header {shape} needs {expected}"
                         f"{' (truncated)' if len(data) < expected else ''}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _beside(folder: str, *names: str) -> str | None:
    """The first of `names` that is a file in `folder`, or None."""
    return next((os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))), None)


def _mnist_files(path: str) -> tuple[str, str]:
    """(images file, labels file) for `path`: a directory holding them, or the images file itself."""
    hint = "drop `dataset.path` (null) to use scikit-learn's bundled digits instead"
    if os.path.isdir(path):
        folder, images = path, _beside(path, IMAGES_FILE, IMAGES_FILE + ".gz")
        if images is None:
            raise FileNotFoundError(f"no MNIST images file ({IMAGES_FILE}[.gz]) in '{path}'; {hint}")
    elif os.path.isfile(path):
        folder, images = os.path.split(path)[0], path
    else:
        raise FileNotFoundError(f"MNIST path not found: '{path}'; {hint}")
    twin = os.path.basename(images).replace("images-idx3", "labels-idx1")  # keeps the file's naming
    labels = _beside(folder, *dict.fromkeys([twin, LABELS_FILE, LABELS_FILE + ".gz"]))
    if labels is None:
        raise FileNotFoundError(f"no MNIST labels file ({LABELS_FILE}[.gz]) beside '{images}'; {hint}")
    return images, labels


def load_mnist(path: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's training set from IDX files: (N, 28, 28) uint8 images and (N,) labels in 0..9."""
    images_path, labels_path = _mnist_files(path)
    images, labels = read_idx(images_path, IMAGES_MAGIC), read_idx(labels_path, LABELS_MAGIC)
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(f"'{images_path}' must hold (N, H, W) images and '{labels_path}' (N,) labels, "
                         f"got shapes {images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"'{images_path}' holds {len(images)} images but '{labels_path}' {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"'{labels_path}': labels must be digits 0..9, found {labels.max()}")
    return images, labels


def resize_matrix(source: int, size: int) -> np.ndarray:
    """(size, source) float32 R such that R @ column resizes a column as PIL's bilinear resize does.

    PIL resizes separably (rows, then columns, each a fixed linear map; anti-aliased when shrinking),
    so an (h, w) image resizes to R_h @ image @ R_w.T: one batched matmul instead of N PIL calls.
    R is read off by resizing the identity: column i of R is the resize of the unit vector e_i.
    """
    identity = Image.fromarray(np.eye(source, dtype=np.float32))  # mode "F"
    return np.asarray(identity.resize((size, source), Image.Resampling.BILINEAR)).T.copy()


class Digits(GroundTruthData):
    """Handwritten digits; the one factor is the digit, the writer's style is unobserved noise.

    A GroundTruthData needs every factor tuple to map to observations, but a digit data set only
    labels the digit. So the grid is `digit` (10 values) and `sample_observations_from_factors`
    draws, for each requested digit, a uniformly random image of that digit from the data set (the
    style is the nuisance). Metrics that fix a factor and sample the others still work (the other
    "factors" are the drawn styles); `deterministic` is False, so nothing is cached by grid index,
    and `rng` is required. This is InfoGAN's MNIST setting (a 10-way categorical code for the
    digit) without a download.

    path: None uses scikit-learn's `load_digits` (1,797 8x8 images, values 0..16, divided by 16);
    otherwise MNIST's training set (60,000 28x28 images, /255) from a directory holding
    `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` (optionally `.gz`), or from the images
    file itself with the labels beside it. size: side of the (bilinear) resized square image;
    32 suits the conv nets (divisible by 4 and 16).
    """

    factor_names = ("digit",)
    factor_sizes = (10,)
    deterministic = False

    def __init__(self, size: int = 32, path: str | os.PathLike | None = None):
        self.size = int(size)
        if self.size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.path = None if path is None else os.fspath(path)
        self.observation_shape = (1, self.size, self.size)
        if self.path is None:
            from sklearn.datasets import load_digits  # imported here: only this needs scikit-learn

            digits = load_digits()
            self.images = digits.images.astype(np.float32) / 16.0  # (1797, 8, 8) in [0, 1]
            self.labels = digits.target.astype(np.int64)
        else:
            images, labels = load_mnist(self.path)
            self.images = images.astype(np.float32) / 255.0  # (N, 28, 28) in [0, 1]
            self.labels = labels.astype(np.int64)
        counts = np.bincount(self.labels, minlength=10)
        if (counts == 0).any():
            raise ValueError(f"{self.path or 'scikit-learn digits'}: no images of digit(s) "
                             f"{np.flatnonzero(counts == 0).tolist()}; every digit needs at least one")
        # images sorted by label: digit d's images are by_label[start[d] : start[d] + counts[d]]
        self._by_label = np.argsort(self.labels, kind="stable")
        self._start, self._counts = np.cumsum(counts) - counts, counts
        _, height, width = self.images.shape
        self._resize_rows, self._resize_cols = resize_matrix(height, self.size), resize_matrix(width, self.size)

    def render(self, indices: np.ndarray) -> np.ndarray:
        """(N,) indices into `images` -> (N, 1, size, size) float32 in [0, 1], resized."""
        resized = self._resize_rows @ self.images[indices] @ self._resize_cols.T  # (N, size, size)
        return np.clip(resized, 0.0, 1.0)[:, None]

    def sample_observations_from_factors(self, factors: np.ndarray,
                                         rng: np.random.Generator | int | None = None) -> np.ndarray:
        """(N, 1) digits -> (N, 1, size, size) float32 in [0, 1]: a random image of each digit."""
        if rng is None:
            raise TypeError("Digits draws a random image of each requested digit: pass rng "
                            "(a numpy.random.Generator or an int seed)")
        digit = self.check_factors(factors)[:, 0]
        pick = as_rng(rng).integers(0, self._counts[digit])  # (N,) position among that digit's images
        return self.render(self._by_label[self._start[digit] + pick])
