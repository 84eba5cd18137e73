"""SmallNORB (LeCun, Huang & Bottou 2004): photographs of 50 toys, read from the original files.

Factors (row-major, lighting fastest; the order of disentanglement_lib's `norb.py`):
    category    5   four-legged animal, human figure, airplane, truck, car
    instance   10   which toy of its category (NOT a generative factor: see below)
    elevation   9   camera elevation 30..70 degrees in steps of 5
    azimuth    18   0, 20, ..., 340 degrees (stored as 0, 2, ..., 34)
    lighting    6   lighting condition

The files are the NORB distribution's binary "matrix" format (not MATLAB, despite `.mat`): a
little-endian int32 magic number (0x1E3D4C55: uint8 "byte matrix", 0x1E3D4C54: int32 "integer
matrix"), an int32 ndim, max(3, ndim) int32 dimensions (the unused ones are padding), then the
values row-major. Each split (training: instances 4, 6, 7, 8, 9; testing: 0, 1, 2, 3, 5) is three
files:
    smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat   uint8 (24300, 2, 96, 96): two cameras
    smallnorb-5x46789x9x18x6x2x96x96-training-cat.mat   int32 (24300,): category 0..4
    smallnorb-5x46789x9x18x6x2x96x96-training-info.mat  int32 (24300, 4): instance 0..9,
                                  elevation 0..8, azimuth 0, 2, ..., 34, lighting 0..5
and likewise `smallnorb-5x01235x9x18x6x2x96x96-testing-*`; each may be gzipped (`.mat.gz`, as
distributed). As in disentanglement_lib, both splits are used together (48,600 images, every factor
tuple once) and only camera 0.

Each factor's grid index is the rank of its value among the values in the files: on the full data
set that is the value itself, and azimuth / 2 (disentanglement_lib's remapping). The instance id
(0..9) is global, so the two splits' instances together fill all 10 values of every category.

What is not a ground-truth factor: the instance. Instance k of one category has nothing to do with
instance k of another (a particular toy lion vs a particular toy truck); it is an identity label,
neither ordered nor shared across categories. As in disentanglement_lib (whose SmallNORB has
`latent_factor_indices = [0, 2, 3, 4]`), the factors are therefore category, elevation, azimuth and
lighting, and each observation's instance is drawn at random among the 10 of its category; the data
set is then not deterministic (the metrics encode their samples batch by batch) and its scores are
comparable with the study's. `instance_factor=True` keeps the instance as a fifth factor of the grid
instead (deterministic: every grid point one image).

Images are resized 96 -> 64 with PIL's Lanczos filter on the uint8 image (PIL's `ANTIALIAS`, which
disentanglement_lib uses, is this filter under its old name), so they equal disentanglement_lib's
resized images; they are kept as uint8 (200 MB) and scaled to [0, 1] when sampled.
"""

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from disent.data.base import GroundTruthData, as_rng
from disent.data.files import DataFile, DataFileNotFoundError, resolve_data_path

FACTOR_NAMES = ("category", "instance", "elevation", "azimuth", "lighting")  # the files' five
FACTOR_SIZES = (5, 10, 9, 18, 6)
INSTANCE = 1  # the instance's column among them
SPLITS = ("5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing")
PARTS = ("dat", "cat", "info")
IMAGE_SIZE = 64  # the source images are 96x96
SOURCE_SIZE = 96
BYTE_MAGIC, INT_MAGIC = 0x1E3D4C55, 0x1E3D4C54
# the NORB format's other matrix types, named in errors (this loader reads none of them)
OTHER_MAGICS = {0x1E3D4C51: "float", 0x1E3D4C53: "double", 0x1E3D4C56: "short"}
# per part: (magic, dtype, ndim, the dimensions after the first (the number of images))
LAYOUT = {
    "dat": (BYTE_MAGIC, np.dtype("<u1"), 4, (2, SOURCE_SIZE, SOURCE_SIZE)),
    "cat": (INT_MAGIC, np.dtype("<i4"), 1, ()),
    "info": (INT_MAGIC, np.dtype("<i4"), 2, (4,)),
}
CHUNK = 1024  # images resized per read of the (memory-mapped) file


def file_name(split: str, part: str) -> str:
    return f"smallnorb-{split}-{part}.mat"


SMALLNORB_FILES = DataFile(
    "SmallNORB file",
    (file_name(SPLITS[0], "dat"), file_name(SPLITS[0], "dat") + ".gz"),
    "Expected the six original files smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat,info}.mat "
    "and smallnorb-5x01235x9x18x6x2x96x96-testing-{dat,cat,info}.mat (optionally .gz, as "
    "distributed at https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/), or a directory or archive "
    "(.zip, .tar, .tar.gz) holding them; set dataset.path to it",
    companions=tuple(
        file_name(split, part) + gz
        for split in SPLITS
        for part in PARTS
        for gz in ("", ".gz")
        if (split, part) != (SPLITS[0], "dat")
    ),
)


def _magic_name(magic: int) -> str:
    names = {BYTE_MAGIC: "byte", INT_MAGIC: "integer", **OTHER_MAGICS}
    return f"0x{magic:08X} ({names[magic]} matrix)" if magic in names else f"0x{magic:08X}"


def read_matrix(path: str | os.PathLike, part: str) -> np.ndarray:
    """The array of one NORB binary-matrix file (`part`: dat, cat or info), after checking its magic
    number, dimensions and length. An uncompressed file is memory-mapped (the 448 MB `dat` files are
    then read a chunk at a time); a gzipped one is decompressed into memory."""
    magic, dtype, ndim, tail = LAYOUT[part]
    path = Path(path)
    data, size = _open_matrix(path)
    length, shape = _header(path, data, size, magic, ndim)
    if shape[1:] != tail:
        want = "(N" + "".join(f", {d}" for d in tail) + ")"
        raise SMALLNORB_FILES.error(path, f"its dimensions are {shape}, not {want}")
    expected = length + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if size != expected:
        raise SMALLNORB_FILES.error(
            path,
            f"it has {size} bytes, but its header {shape} needs {expected}"
            f"{' (truncated)' if size < expected else ''}",
        )
    if isinstance(data, bytes):
        return np.frombuffer(data, dtype, offset=length).reshape(shape)
    if not math.prod(shape):  # nothing to map (mmap refuses an empty range)
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype, mode="r", offset=length, shape=shape)


def _open_matrix(path: Path) -> tuple[bytes | None, int]:
    """(a gzipped file's decompressed bytes or None for a plain one, the matrix's byte size)."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != b"\x1f\x8b":  # not gzip, whatever the file is called
                return None, os.fstat(f.fileno()).st_size
            f.seek(0)
            data = gzip.decompress(f.read())
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise SMALLNORB_FILES.error(
            path, f"it is damaged or truncated ({type(error).__name__}: {error})"
        ) from error
    return data, len(data)


def _header(
    path: Path, data: bytes | None, size: int, magic: int, ndim: int
) -> tuple[int, tuple[int, ...]]:
    """(the header's length in bytes, the dimensions), checked against `magic` and `ndim`."""
    if data is None:
        with open(path, "rb") as f:
            head = f.read(8 + 4 * max(3, ndim))
    else:
        head = data[: 8 + 4 * max(3, ndim)]
    if len(head) < 8:
        raise SMALLNORB_FILES.error(path, f"it is truncated: {size} bytes, no header")
    found, found_ndim = struct.unpack("<ii", head[:8])
    if found != magic:
        raise SMALLNORB_FILES.error(
            path,
            f"magic number {_magic_name(found & 0xFFFFFFFF)}, expected {_magic_name(magic)}: "
            f"not a NORB binary matrix of this kind",
        )
    if found_ndim != ndim:
        raise SMALLNORB_FILES.error(path, f"it has {found_ndim} dimensions, expected {ndim}")
    length = 8 + 4 * max(3, ndim)  # at least three dimensions are always stored
    if len(head) < length:
        raise SMALLNORB_FILES.error(
            path, f"it is truncated: {size} bytes, its header needs {length}"
        )
    dims = struct.unpack(f"<{ndim}i", head[8 : 8 + 4 * ndim])
    if min(dims) < 0:
        raise SMALLNORB_FILES.error(path, f"its header has negative dimensions {dims}")
    return length, dims


def _companion(directory: Path, split: str, part: str) -> Path:
    """The file of (`split`, `part`) in `directory`: plain preferred, else gzipped."""
    name = file_name(split, part)
    for candidate in (directory / name, directory / (name + ".gz")):
        if candidate.is_file():
            return candidate
    raise SMALLNORB_FILES.error(
        directory / name, "no such file (nor .gz) beside the others", DataFileNotFoundError
    )


def _resize(images: np.ndarray) -> np.ndarray:
    """(N, 96, 96) uint8 -> (N, 64, 64) uint8 with PIL's Lanczos filter, as disentanglement_lib."""
    return np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(image)).resize(
                    (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS
                )
            )
            for image in images
        ]
    ).reshape(len(images), IMAGE_SIZE, IMAGE_SIZE)


class SmallNORB(GroundTruthData):
    """SmallNORB, read from the six original files (both splits, camera 0), resized to 64x64.

    SmallNORB's images are photographs: they cannot be rendered, so `path` is required. It may be
    the training `dat` file (the others beside it), a directory holding the six files, or an archive
    holding them. All images are resized once when the data set is built (5-10 s for the full set)
    and kept in memory as uint8 (200 MB); the 96x96 originals are memory-mapped while they are read,
    not loaded whole (gzipped files are decompressed into memory first).

    The files' grid (category, instance, elevation, azimuth, lighting) has its sizes read off the
    files (the distinct values of each), and the images must cover it exactly once. The factors
    are that grid without the instance (drawn at random per observation, as disentanglement_lib),
    or with it when `instance_factor`; `build_dataset` checks them against `factors` in
    conf/dataset/smallnorb.yaml, so only a test that writes a smaller grid in the same format
    changes them.
    """

    # disentanglement_lib's factors (the instance drawn per observation); __init__ sets them from
    # the files, and adds the instance with `instance_factor`
    factor_names = ("category", "elevation", "azimuth", "lighting")
    factor_sizes = (5, 9, 18, 6)
    observation_shape = (1, IMAGE_SIZE, IMAGE_SIZE)
    deterministic = False

    def __init__(self, path: str | os.PathLike | None = None, instance_factor: bool = False):
        if path is None:
            raise DataFileNotFoundError(
                "SmallNORB needs its files: its images are photographs and cannot be rendered "
                "procedurally. Download the six smallnorb-*-{dat,cat,info}.mat.gz files from "
                "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/ and set dataset.path to their "
                "directory (or an archive holding them)"
            )
        self.path = os.fspath(path)
        self.instance_factor = instance_factor
        self._grid_sizes = FACTOR_SIZES  # the files' five, set from the files by _load
        self._images = self._load(self.path)  # (N, 64, 64) uint8 in the files' grid order
        kept = [k for k in range(len(FACTOR_NAMES)) if instance_factor or k != INSTANCE]
        self.factor_names = tuple(FACTOR_NAMES[k] for k in kept)
        self.factor_sizes = tuple(self._grid_sizes[k] for k in kept)
        self.deterministic = instance_factor  # else each observation draws its instance

    def _load(self, path: str) -> np.ndarray:
        first = resolve_data_path(path, SMALLNORB_FILES)
        splits = [
            {part: _companion(first.parent, split, part) for part in PARTS} for split in SPLITS
        ]
        factors, sources = [], []
        for files in splits:
            arrays = {part: read_matrix(files[part], part) for part in PARTS}
            counts = {part: len(array) for part, array in arrays.items()}
            if len(set(counts.values())) != 1:
                raise SMALLNORB_FILES.error(
                    files["dat"],
                    "its split's files disagree on the number of images: "
                    + ", ".join(f"{files[p].name} {n}" for p, n in counts.items()),
                )
            factors.append(np.column_stack([arrays["cat"], arrays["info"]]).astype(np.int64))
            sources.append(arrays["dat"])
        grid = self._grid_indices(splits[0]["dat"], np.concatenate(factors))
        images = np.empty((math.prod(self._grid_sizes), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        start = 0
        for dat in sources:
            for chunk in range(0, len(dat), CHUNK):
                part = dat[chunk : chunk + CHUNK, 0]  # camera 0 only
                images[grid[start + chunk : start + chunk + len(part)]] = _resize(part)
            start += len(dat)
        return images

    def _grid_indices(self, path: Path, features: np.ndarray) -> np.ndarray:
        """(N,) grid index of each image from its (N, 5) raw (category, instance, elevation,
        azimuth, lighting), the grid's sizes set from their distinct values; a DataFileError unless
        the images cover the grid exactly once."""
        ranks = np.empty_like(features)
        sizes = []
        for k in range(len(FACTOR_NAMES)):
            values, ranks[:, k] = np.unique(features[:, k], return_inverse=True)
            sizes.append(len(values))
        self._grid_sizes = tuple(sizes)
        if len(features) != math.prod(sizes):
            raise SMALLNORB_FILES.error(
                path,
                f"the two splits hold {len(features)} images, but their factors' values span a "
                f"grid of {self._grid_sizes} = {math.prod(sizes)} tuples",
            )
        grid = np.ravel_multi_index(tuple(ranks.T), self._grid_sizes)
        seen = np.bincount(grid, minlength=math.prod(sizes))
        if (seen != 1).any():
            missing = np.unravel_index(np.flatnonzero(seen == 0)[0], self._grid_sizes)
            raw = [np.unique(features[:, k])[v] for k, v in enumerate(missing)]
            raise SMALLNORB_FILES.error(
                path,
                f"the factor grid is incomplete: no image of "
                f"({', '.join(f'{n}={v}' for n, v in zip(FACTOR_NAMES, raw, strict=True))}) "
                f"while other tuples appear more than once",
            )
        return grid

    def sample_observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """(N, K) factors -> (N, 1, 64, 64) float32 in [0, 1]. Without the instance as a factor,
        each observation's instance is drawn from `rng` (required then); with it, `rng` is unused."""
        factors = self.check_factors(factors)
        if not self.instance_factor:
            instances = as_rng(rng).integers(0, self._grid_sizes[INSTANCE], len(factors))
            factors = np.insert(factors, INSTANCE, instances, axis=1)  # (N, 5)
        images = self._images[np.ravel_multi_index(tuple(factors.T), self._grid_sizes)]
        return images[:, None].astype(np.float32) / np.float32(255)
