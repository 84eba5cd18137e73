"""Cars3D (Reed, Zhang, Zhang & Lee 2015, "Deep Visual Analogy-Making"): renders of 183 car models.

Factors (row-major, object fastest; the order of disentanglement_lib's `cars3d.py`):
    elevation   4   camera elevation
    azimuth    24   camera azimuth, 15 degrees apart
    object    183   which car model (an identity label, not ordered): one per file found

The original data is the `cars/` folder of `nips2015-analogy-data.tar.gz`
(http://www.scottreed.info/files/nips2015-analogy-data.tar.gz): one MATLAB v5 file per car,
`car_XXX_mesh.mat`, read with scipy.io.loadmat, whose `im` is uint8 (128, 128, 3, 24, 4) = (height,
width, RGB, azimuth, elevation) (its `mask` is not used). disentanglement_lib reads it the same way:
`einsum("abcde->deabc")` makes it (azimuth, elevation, H, W, RGB), and its factor tuples put the
size-24 axis on azimuth and the size-4 axis on elevation.

Object i is the i-th file in order of the number in its name (then the name). disentanglement_lib
numbers the files in directory-listing order instead, which the file system decides, so its object
indices may be a permutation of these; the folder's `list.txt`, when present, is only used to check
that every car it names is there. The number of objects is the number of files found (183 in the
original), so a partial folder gives a smaller grid; `conf/dataset/cars3d.yaml` declares 183, and
building it from the config then stops at the mismatch unless `dataset.factors.object` says
otherwise.

Images are resized 128 -> 64 with PIL's Lanczos filter on the uint8 image (disentanglement_lib's
`thumbnail(..., ANTIALIAS)`, the same filter, gives the same 64x64 image for a square picture), kept
in memory as uint8 (216 MB for 183 cars) and scaled to [0, 1] when sampled.
"""

import os
import re
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from disent.data.base import GroundTruthData
from disent.data.files import (
    READ_ERRORS,
    DataFile,
    DataFileNotFoundError,
    is_archive,
    resolve_data_path,
)

FACTOR_NAMES = ("elevation", "azimuth", "object")
NUM_ELEVATIONS, NUM_AZIMUTHS, NUM_OBJECTS = 4, 24, 183
SOURCE_SHAPE = (128, 128, 3, NUM_AZIMUTHS, NUM_ELEVATIONS)  # `im`: H, W, RGB, azimuth, elevation
IMAGE_SIZE = 64
CAR_FILE = re.compile(r"car_(\d+)_mesh\.mat")
LIST_FILE = "list.txt"  # the original folder's list of car names (without .mat)
HINT = (
    "Expected the original cars/ folder of nips2015-analogy-data.tar.gz "
    "(http://www.scottreed.info/files/nips2015-analogy-data.tar.gz): car_XXX_mesh.mat files, each "
    "holding `im` uint8 (128, 128, 3, 24, 4); point dataset.path at that folder, at the folder "
    "holding it, or at an archive (.zip, .tar, .tar.gz) holding the files"
)
CARS3D_FILES = DataFile("Cars3D data", (), HINT)


def _key(path: Path) -> tuple[int, str]:
    """Sort key: the car's number, then its name."""
    return int(CAR_FILE.fullmatch(path.name).group(1)), path.name


def _archive_names(archive: Path) -> list[str]:
    """The base names of the archive's car files (listing it reads a .tar.gz through once)."""
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as opened:
                names = opened.namelist()
        else:
            with tarfile.open(archive, "r:*") as opened:
                names = [m.name for m in opened.getmembers() if m.isreg()]
    except READ_ERRORS as error:
        raise CARS3D_FILES.error(
            archive, f"not a readable archive ({type(error).__name__}: {error})"
        ) from error
    return sorted({os.path.basename(n) for n in names if CAR_FILE.fullmatch(os.path.basename(n))})


def car_files(path: str | os.PathLike) -> list[Path]:
    """The car files of `path` (a folder, the folder holding `cars/`, or an archive), in object
    order."""
    path = Path(path).expanduser()
    if path.is_file() and is_archive(path):
        names = _archive_names(path)
        if not names:
            raise CARS3D_FILES.error(
                path, "the archive holds no car_XXX_mesh.mat", DataFileNotFoundError
            )
        # extracted flat into <archive>.extracted/ (once, reused while the archive is unchanged)
        path = resolve_data_path(path, DataFile("Cars3D data", tuple(names), HINT)).parent
        return sorted((path / name for name in names), key=_key)
    if not path.is_dir():
        raise CARS3D_FILES.error(
            path,
            "no such directory" if not path.exists() else "not a directory or an archive",
            DataFileNotFoundError,
        )
    if not any(path.glob("car_*_mesh.mat")) and (path / "cars").is_dir():
        path = path / "cars"  # the archive's data/ folder
    files = sorted((p for p in path.iterdir() if CAR_FILE.fullmatch(p.name)), key=_key)
    if not files:
        raise CARS3D_FILES.error(
            path, "this directory holds no car_XXX_mesh.mat", DataFileNotFoundError
        )
    _check_list(path, {p.stem for p in files})
    return files


def _check_list(directory: Path, found: set[str]) -> None:
    """Every car that the folder's list.txt names must be there (a partial copy is refused)."""
    listing = directory / LIST_FILE
    if not listing.is_file():
        return
    listed = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    missing = [name for name in listed if name not in found]
    if missing:
        raise CARS3D_FILES.error(
            listing,
            f"it names {len(listed)} cars, but {len(missing)} of them are not in {directory} "
            f"(e.g. {missing[0]}.mat)",
            DataFileNotFoundError,
        )


def load_car(path: Path) -> np.ndarray:
    """One car's `im`, checked: uint8 (128, 128, 3, 24, 4)."""
    try:
        contents = scipy.io.loadmat(path, variable_names=["im"])
    except (*READ_ERRORS, ValueError, TypeError, KeyError, IndexError, zlib.error) as error:
        # scipy raises ValueError for a file that is not MAT, and others for a damaged one
        raise CARS3D_FILES.error(
            path, f"not a readable MATLAB file ({type(error).__name__}: {error})"
        ) from error
    if "im" not in contents:
        raise CARS3D_FILES.error(path, "it holds no variable `im`")
    image = contents["im"]
    if image.shape != SOURCE_SHAPE or image.dtype != np.uint8:
        raise CARS3D_FILES.error(
            path, f"its `im` is {image.dtype} {image.shape}, not uint8 {SOURCE_SHAPE}"
        )
    return image


def _resize(image: np.ndarray) -> np.ndarray:
    """(128, 128, 3) uint8 -> (64, 64, 3) uint8: PIL's Lanczos filter, as disentanglement_lib."""
    resized = Image.fromarray(np.ascontiguousarray(image)).resize(
        (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS
    )
    return np.asarray(resized)


class Cars3D(GroundTruthData):
    """Cars3D, read from the original car_XXX_mesh.mat files, resized to 64x64 RGB.

    The renders cannot be reproduced here (the car meshes are not part of the data), so `path` is
    required: the `cars/` folder, the folder holding it, or an archive holding the files. The grid's
    object count is the number of car files found (see the module docstring).
    """

    factor_names = FACTOR_NAMES
    factor_sizes = (NUM_ELEVATIONS, NUM_AZIMUTHS, NUM_OBJECTS)
    observation_shape = (3, IMAGE_SIZE, IMAGE_SIZE)
    deterministic = True

    def __init__(self, path: str | os.PathLike | None = None):
        if path is None:
            raise DataFileNotFoundError(
                "Cars3D needs its files: the renders cannot be made procedurally. Download "
                "http://www.scottreed.info/files/nips2015-analogy-data.tar.gz and set dataset.path "
                "to the archive or to its extracted data/cars folder"
            )
        self.path = os.fspath(path)
        files = car_files(self.path)
        self.files = [p.name for p in files]
        self.factor_sizes = (NUM_ELEVATIONS, NUM_AZIMUTHS, len(files))
        # (elevation, azimuth, object, 64, 64, 3): row-major is the grid's order, object fastest
        images = np.empty(
            (NUM_ELEVATIONS, NUM_AZIMUTHS, len(files), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8
        )
        for k, file in enumerate(files):
            car = load_car(file)
            for elevation in range(NUM_ELEVATIONS):
                for azimuth in range(NUM_AZIMUTHS):
                    images[elevation, azimuth, k] = _resize(car[:, :, :, azimuth, elevation])
        self._images = images.reshape(len(self), IMAGE_SIZE, IMAGE_SIZE, 3)

    def sample_observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """(N, 3) factors -> (N, 3, 64, 64) float32 in [0, 1]; deterministic, `rng` unused."""
        images = self._images[self.factors_to_index(factors)]
        return images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
