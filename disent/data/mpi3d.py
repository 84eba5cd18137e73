"""MPI3D (Gondal et al. 2019, "On the Transfer of Inductive Bias from Simulation to the Real
World"): 64x64 RGB images of an object on a robot arm's tip, read from the original .npz files.

Factors (row-major, vertical_axis fastest; the files' order and disentanglement_lib's `mpi3d.py`'s):
    object_color      6   white, green, red, blue, brown, olive (4 in the earlier release)
    object_shape      6   cone, cube, cylinder, hexagonal, pyramid, sphere (4 in the earlier one)
    object_size       2   small, large
    camera_height     3   top, center, bottom
    background_color  3   purple, sea green, salmon
    horizontal_axis  40   the arm's first degree of freedom
    vertical_axis    40   the arm's second degree of freedom

Three variants share this grid and format: `mpi3d_toy.npz` (simple renders), `mpi3d_realistic.npz`
(realistic renders) and `mpi3d_real.npz` (photographs of the real platform), from
https://github.com/rr-learning/disentanglement_dataset. Each holds one array, `images`: uint8
(N, 64, 64, 3) in grid order. The current release has 6 colours and 6 shapes in all three
(6*6*2*3*3*40*40 = 1,036,800 images, the dataset's README); disentanglement_lib reads toy and
realistic as the earlier release's 4 colours x 4 shapes (460,800 images) and real as 6 x 6. Both
layouts are accepted and told apart by the array's length: the colour and shape sizes follow the
file.

The images take 12.7 GB (6 x 6), so they are memory-mapped, not loaded: an .npz is a zip archive,
and a member stored uncompressed (np.savez) is a plain .npy inside it, whose data starts at a known
offset in the file. A compressed member (np.savez_compressed) cannot be mapped: then
`in_memory=true` loads it whole, or `unzip mpi3d_toy.npz images.npy` (streams, needs no RAM)
gives an .npy that `path` may point at instead. `in_memory=true` always loads the images into
RAM (fastest sampling).
"""

import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from disent.data.base import GroundTruthData
from disent.data.files import DataFile, DataFileError, DataFileNotFoundError, resolve_data_path

FACTOR_NAMES = (
    "object_color",
    "object_shape",
    "object_size",
    "camera_height",
    "background_color",
    "horizontal_axis",
    "vertical_axis",
)
VARIANTS = ("toy", "realistic", "real")
COLOR_SHAPE_SIZES = (6, 4)  # the current release's 6 colours x 6 shapes; the earlier one's 4 x 4
OTHER_SIZES = (2, 3, 3)  # object_size, camera_height, background_color
AXIS_SIZE = 40
IMAGE_SIZE = 64
MEMBER = "images.npy"  # np.savez's name for the array `images`
URL = "https://storage.googleapis.com/disentanglement_dataset/Final_Dataset"


def mpi3d_file(variant: str) -> DataFile:
    name = f"mpi3d_{variant}.npz"
    return DataFile(
        f"MPI3D-{variant} file",
        (name, f"mpi3d_{variant}.npy"),
        f"Expected the original {name} ({URL}/{name}, see "
        f"https://github.com/rr-learning/disentanglement_dataset), its `images` array as an .npy, "
        f"or a directory or archive (.zip, .tar, .tar.gz) holding it; set dataset.path to it",
    )


def grid_sizes(n: int, axis_size: int = AXIS_SIZE) -> tuple[int, ...] | None:
    """The factor sizes of an array of `n` images (6 x 6 or 4 x 4 colours x shapes), or None."""
    for colours in COLOR_SHAPE_SIZES:
        sizes = (colours, colours, *OTHER_SIZES, axis_size, axis_size)
        if n == math.prod(sizes):
            return sizes
    return None


def _member_header(file: Path, spec: DataFile) -> tuple[tuple, bool, np.dtype, int | None]:
    """(shape, fortran order, dtype, the data's offset in the file or None if it is compressed) of
    the .npz's `images` array, read from the headers alone."""
    with open(file, "rb") as f:
        if f.read(2) != b"PK":  # checked first: np.load would guess pickle and advise trusting it
            raise spec.error(file, "it is not an .npz (zip) archive")
    with zipfile.ZipFile(file) as archive:
        names = archive.namelist()
        if MEMBER not in names:
            found = sorted(n.removesuffix(".npy") for n in names)
            raise spec.error(file, f"it holds no array `images` (found {found})")
        info = archive.getinfo(MEMBER)
        with archive.open(info) as member:
            shape, fortran, dtype = _npy_header(member)
            header_length = member.tell()
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:  # compressed or encrypted
        return shape, fortran, dtype, None
    with open(file, "rb") as f:  # the member's data follows its local header (own extra field)
        f.seek(info.header_offset)
        local = f.read(30)
    if local[:4] != b"PK\x03\x04":
        raise spec.error(file, f"its member {MEMBER} has a damaged local header")
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    return (
        shape,
        fortran,
        dtype,
        info.header_offset + 30 + name_length + extra_length + header_length,
    )


def _npy_header(f) -> tuple[tuple, bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)  # 2.0, and 3.0 (the same, UTF-8 names)


class MPI3D(GroundTruthData):
    """MPI3D toy, realistic or real (`variant`), read from its original .npz; memory-mapped.

    The images are renders and photographs of a robot platform, so `path` is required: the .npz
    (or its `images` as an .npy), or a directory or archive holding `mpi3d_<variant>.npz`. `variant`
    names the file looked for in a directory or archive and the data set in messages; a file given
    directly is read whatever its name. `in_memory=True` loads the images whole (12.7 GB); False
    memory-maps them (see the module docstring). `axis_size` is the number of values of each arm
    axis the file must hold; leave it at 40: only tests pass a smaller grid (files written in the
    same layout), to exercise the loader without the download.
    """

    factor_names = FACTOR_NAMES
    factor_sizes = (6, 6, *OTHER_SIZES, AXIS_SIZE, AXIS_SIZE)
    observation_shape = (3, IMAGE_SIZE, IMAGE_SIZE)
    deterministic = True

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        variant: str = "toy",
        axis_size: int = AXIS_SIZE,
        in_memory: bool = False,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.variant = variant
        self.axis_size = int(axis_size)
        self.in_memory = bool(in_memory)
        self._spec = mpi3d_file(variant)
        if path is None:
            raise DataFileNotFoundError(
                f"MPI3D-{variant} needs its file: the images are renders and photographs of a "
                f"robot platform and cannot be made procedurally. Download mpi3d_{variant}.npz "
                f"({URL}/mpi3d_{variant}.npz) and set dataset.path to it"
            )
        if self.axis_size < 1:
            raise ValueError(f"axis_size must be positive, got {axis_size}")
        self.path = os.fspath(path)
        self._file = resolve_data_path(self.path, self._spec)
        self._offset: int | None = None  # where the mapped images start in the file
        self._images = self._load(self._file)

    # --- the original file -------------------------------------------------------------------

    def _load(self, file: Path) -> np.ndarray:
        """The images (N, 64, 64, 3) uint8: memory-mapped, or loaded if `in_memory`."""
        try:
            if file.suffix == ".npy":
                with open(file, "rb") as f:
                    shape, fortran, dtype = _npy_header(f)
                    offset = f.tell()
            else:
                shape, fortran, dtype, offset = _member_header(file, self._spec)
            self._check(file, shape, fortran, dtype)
            if self.in_memory:
                if file.suffix == ".npy":
                    return np.load(file, allow_pickle=False)
                with np.load(file, allow_pickle=False) as data:
                    return data["images"]
        except DataFileError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
            raise self._spec.error(
                file, f"it is damaged or truncated ({type(error).__name__}: {error})"
            ) from error
        if offset is None:
            raise self._spec.error(
                file,
                f"its images are stored compressed, so they cannot be memory-mapped: set "
                f"dataset.in_memory=true (loads all {len(self) * IMAGE_SIZE**2 * 3 / 1e9:.1f} GB), "
                f"or run `unzip {file.name} {MEMBER}` and point dataset.path at {MEMBER}",
            )
        needed = offset + len(self) * IMAGE_SIZE * IMAGE_SIZE * 3
        if file.stat().st_size < needed:
            raise self._spec.error(
                file, f"it is truncated: {file.stat().st_size} bytes, its images need {needed}"
            )
        self._offset = offset
        return self._map()

    def _check(self, file: Path, shape: tuple, fortran: bool, dtype: np.dtype) -> None:
        """The array must be uint8 (N, 64, 64, 3), C order, N one of the two layouts' sizes."""
        if dtype != np.uint8 or len(shape) != 4 or shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise self._spec.error(
                file,
                f"its images are {dtype} {shape}, not uint8 (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3)",
            )
        if fortran:
            raise self._spec.error(file, "its images are stored in Fortran order, not C order")
        sizes = grid_sizes(shape[0], self.axis_size)
        if sizes is None:
            layouts = " or ".join(
                f"{math.prod((c, c, *OTHER_SIZES, self.axis_size, self.axis_size)):,} "
                f"({c}x{c} colours x shapes)"
                for c in COLOR_SHAPE_SIZES
            )
            raise self._spec.error(
                file,
                f"it holds {shape[0]:,} images, but the grid needs {layouts} with "
                f"{self.axis_size} values per arm axis",
            )
        self.factor_sizes = sizes

    def _map(self) -> np.ndarray:
        shape = (len(self), IMAGE_SIZE, IMAGE_SIZE, 3)
        return np.memmap(self._file, np.uint8, mode="r", offset=self._offset, shape=shape)

    def __getstate__(self) -> dict:
        """Pickle a memory map as its file and offset (data loader workers map it again), not its
        12.7 GB of pixels."""
        state = dict(self.__dict__)
        if self._offset is not None:
            state["_images"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self._images is None:
            self._images = self._map()

    # --- observations ------------------------------------------------------------------------

    def sample_observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """(N, 7) factors -> (N, 3, 64, 64) float32 in [0, 1]; deterministic, `rng` unused."""
        images = self._images[self.factors_to_index(factors)]  # a copy, read from the map
        return images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
