"""A researcher's own ground-truth data: images and their factor labels from an .npz or .h5 file.

    disent-train dataset=arrays dataset.path=my_data.npz

The file holds
    images        (N, H, W) grayscale or (N, H, W, C), C = 1 or 3: uint8 0..255, or float in [0, 1]
    factors       (N, K) integers: row i's value of each factor (any integers, e.g. 0, 5, 10 deg)
    factor_names  optional, K strings (default factor_0 .. factor_{K-1})
as written by `numpy.savez(path, images=..., factors=..., factor_names=...)` or as HDF5 datasets of
those names (h5py). Each column's distinct values, sorted, become the factor's grid positions
0..size-1 (`factor_values[k]` keeps the original values), so `factor_sizes` is the number of
distinct values per column. The rows need not form a full factor grid: some combinations may be
missing and others repeated.

What a data set that is not a full grid means for the GroundTruthData API (see `ArraysData`):
  * `sample_factors` draws ROWS uniformly, so the joint distribution of the factors is the file's,
    not a product of uniforms; `sample_observations_from_factors` picks, for each requested tuple,
    one of the rows holding it at random (several rows may share a tuple).
  * metrics that fix one factor and draw the others (BetaVAE, FactorVAE scores) may ask for
    combinations the file lacks: `with_fixed_factor` replaces each with a random row sharing the
    fixed factor's value, and warns once.
  * `len(data)` is the number of rows and `data[i]` is row i's image.
When the rows are a full grid (every combination exactly once, in any order) the data set behaves
exactly like the built-in grids: `deterministic` is true, indices are grid indices, and sampling
draws what the built-in data sets draw.
"""

import logging
import math
import operator
import os
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from disent.data.base import GroundTruthData, as_rng
from disent.data.digits import resize_matrix
from disent.data.files import DataFile, DataFileError, DataFileNotFoundError

log = logging.getLogger(__name__)

ARRAYS_FILE = DataFile(
    "arrays file",
    (),
    "Expected an .npz (numpy.savez) or HDF5 (.h5) file holding `images` (N, H, W) or (N, H, W, C) "
    "with C = 1 or 3, uint8 0..255 or float in [0, 1], `factors` (N, K) integers, and optionally "
    "`factor_names` (K strings); see disent/data/arrays.py",
)
KEYS = ("images", "factors")
CHUNK = 4096  # rows per read when an HDF5 file's float images are range-checked at load


class _Groups:
    """The rows of an (N, J) code array grouped by tuple: which rows hold each requested tuple.

    Tuples are keyed by their row-major grid index (the last column fastest), or, when the grid is
    too large for int64 keys, by their rank among the file's distinct tuples.
    """

    def __init__(self, codes: np.ndarray, sizes: Sequence[int]):
        self.sizes = tuple(int(s) for s in sizes)
        self.ranked = math.prod(self.sizes) >= 2**63
        if self.ranked:
            unique, keys = np.unique(codes, axis=0, return_inverse=True)
            self.rank = {row.tobytes(): i for i, row in enumerate(unique)}
            keys = keys.reshape(-1)
        else:
            keys = self._grid_keys(codes)
        self.order = np.argsort(keys, kind="stable")  # rows sorted by tuple, file order within one
        self.keys = keys[self.order]

    def _grid_keys(self, codes: np.ndarray) -> np.ndarray:
        return np.ravel_multi_index(tuple(codes.T), self.sizes).astype(np.int64)

    @property
    def distinct(self) -> int:
        return int(len(self.keys) and 1 + np.count_nonzero(np.diff(self.keys)))

    def find(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first position in `order`, number of rows) holding each of the (n, J) tuples `codes`."""
        if self.ranked:
            keys = np.array(
                [self.rank.get(np.ascontiguousarray(row).tobytes(), -1) for row in codes], np.int64
            )
        else:
            keys = self._grid_keys(codes)
        start = np.searchsorted(self.keys, keys, side="left")
        return start, np.searchsorted(self.keys, keys, side="right") - start


def _import_h5py():
    try:
        import h5py
    except ImportError as error:  # a dependency of disent; only a broken install lacks it
        raise ImportError("reading an .h5 arrays file needs h5py (pip install h5py)") from error
    return h5py


class ArraysData(GroundTruthData):
    """Images with factor labels from a file (module docstring): any ground-truth data, grid or not.

    Args:
        path: the .npz or .h5 file (recognised by its contents, not its name).
        size: side of the square observations: images of another size are resized (bilinear, as
            PIL; a non-square image is stretched, so crop it first if that matters) when they are
            read. 64 suits the conv nets of every model; null keeps the file's H x W (the conv nets
            need sides divisible by 16, `model.net=conv_small` of InfoGAN by 4, mlp any).
        in_memory: an .h5 file's images are loaded whole at start-up (fast sampling) when true, and
            read from the file per batch when false (for files larger than RAM). An .npz is always
            loaded whole (numpy cannot read part of a member).

    Choices for a data set that is not a full grid, and why:
      * `len(data)` = the number of rows: it is the data set's size (what the TC estimators of
        beta-TCVAE take as `dataset_size`), and a non-grid set has no grid to count. `data[i]` is
        row i's image and `index_to_factors(i)` row i's factors; `factors_to_index` gives the first
        row of each tuple (ValueError for a tuple no row holds).
      * `deterministic` is false, so nothing is looked up or cached by grid index (the metric
        suite's grid cache, `loader.on_device`): a tuple may have several images. `rng` is needed
        to choose among them.
      * `sample_factors` draws rows uniformly, so a tuple present twice is drawn twice as often:
        the metrics see the file's joint distribution, correlations between factors included.
      * `with_fixed_factor(factors, k, rng)` (see there) makes the fixed-factor metrics' requests
        exist. It warns once per data set, with the count of the first call;
        `requested_combinations` and `replaced_combinations` count every call.
    On a full grid (every combination exactly once, rows in any order) none of this applies:
    `deterministic` is true, indices are grid indices (row-major, last factor fastest: `data[i]` is
    the image of grid point i, whichever row holds it), and `sample_factors` and `with_fixed_factor`
    draw exactly what the built-in grids draw, so every metric is computed as on them.
    """

    def __init__(
        self, path: str | os.PathLike | None = None, size: int | None = 64, in_memory: bool = True
    ):
        if path is None:
            raise ValueError(
                "dataset=arrays reads your own file: set dataset.path=<file.npz or file.h5> "
                "(see disent/data/arrays.py for what it must hold)"
            )
        if size is not None and (isinstance(size, bool) or int(size) < 1):
            raise ValueError(f"size must be a positive integer or null, got {size!r}")
        self.size = None if size is None else int(size)
        self.in_memory = bool(in_memory)
        self.path = os.fspath(Path(path).expanduser())
        self._file = None  # (pid, open h5py.File) when reading an .h5 per batch
        images, factors, names = self._load(self.path)
        self._images = images  # (N, H, W[, C]) uint8 or float32 in memory, or None (read per batch)
        n, self._height, self._width = self._image_shape[:3]
        channels = 1 if len(self._image_shape) == 3 else self._image_shape[3]
        self.factor_names = names
        self.factor_values = tuple(np.unique(column) for column in factors.T)
        self.factor_sizes = tuple(len(values) for values in self.factor_values)
        self._codes = np.stack(
            [np.searchsorted(v, c) for v, c in zip(self.factor_values, factors.T, strict=True)],
            axis=1,
        ).astype(np.int64)  # (N, K) grid positions of each row
        self._rows = _Groups(self._codes, self.factor_sizes)
        self._fixed: dict[tuple[int, ...], _Groups] = {}  # fixed columns -> rows grouped by them
        self.num_rows = n
        self.num_combinations = self._rows.distinct
        self.full_grid = self.num_combinations == n == math.prod(self.factor_sizes)
        self.deterministic = self.full_grid
        side = (self._height, self._width) if self.size is None else (self.size, self.size)
        self.observation_shape = (channels, *side)
        self._resize = None
        if side != (self._height, self._width):
            self._resize = (
                resize_matrix(self._height, side[0]),
                resize_matrix(self._width, side[1]),
            )
            log.info(
                "arrays: resizing the %dx%d images of %s to %dx%d (dataset.size)",
                self._height,
                self._width,
                self.path,
                *side,
            )
        self.requested_combinations = 0
        self.replaced_combinations = 0
        self._warned: set[bool] = set()  # warned for one fixed factor (False), several (True)

    # --- the file ----------------------------------------------------------------------------

    def _load(self, path: str) -> tuple[np.ndarray | None, np.ndarray, tuple[str, ...]]:
        """(images in memory or None, (N, K) int64 factors, names), after checking the file."""
        file = Path(path)
        if file.is_dir():
            raise ARRAYS_FILE.error(
                file, "it is a directory; point dataset.path at the .npz or .h5 file itself"
            )
        if not file.is_file():
            raise ARRAYS_FILE.error(file, "no such file", DataFileNotFoundError)
        try:
            with open(file, "rb") as f:
                magic = f.read(8)
        except OSError as error:
            raise ARRAYS_FILE.error(file, f"it cannot be opened ({error})") from error
        if magic[:2] == b"PK":  # a zip: numpy.savez(_compressed)
            images, factors, names = self._read_npz(file)
        elif magic == b"\x89HDF\r\n\x1a\n":
            images, factors, names = self._read_h5(file)
        else:
            raise ARRAYS_FILE.error(file, "it is neither an .npz (zip) archive nor an HDF5 file")
        factors = self._check_factors(file, factors, self._image_shape[0])
        return images, factors, self._check_names(file, names, factors.shape[1])

    def _read_npz(self, file: Path):
        try:
            with np.load(file, allow_pickle=False) as data:
                missing = [key for key in KEYS if key not in data.files]
                if missing:
                    raise ARRAYS_FILE.error(
                        file, f"arrays {missing} are missing (found {sorted(data.files)})"
                    )
                images = data["images"]
                factors = data["factors"]
                names = None
                if "factor_names" in data.files:
                    try:
                        names = data["factor_names"]
                    except ValueError as error:  # an object array: numpy refuses to unpickle it
                        raise ARRAYS_FILE.error(
                            file,
                            f"factor_names cannot be read without pickle ({error}); save them as "
                            f"a string array, np.array(names, dtype=str)",
                        ) from error
        except DataFileError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
            raise ARRAYS_FILE.error(
                file, f"it is damaged or truncated ({type(error).__name__}: {error})"
            ) from error
        self._check_images(file, images.shape, images.dtype)
        return self._in_range(file, images), factors, names

    def _read_h5(self, file: Path):
        h5py = _import_h5py()
        try:
            with h5py.File(file, "r") as f:
                missing = [key for key in KEYS if f.get(key, getlink=True) is None]
                if missing:
                    raise ARRAYS_FILE.error(
                        file, f"datasets {missing} are missing (found {sorted(f.keys())})"
                    )
                images = self._h5_dataset(h5py, f, file, "images")
                self._check_images(file, images.shape, images.dtype)
                factors = self._h5_dataset(h5py, f, file, "factors")[()]
                names = None
                if f.get("factor_names", getlink=True) is not None:
                    names = self._h5_dataset(h5py, f, file, "factor_names")[()]
                if self.in_memory:
                    return self._in_range(file, images[()]), factors, names
                if np.issubdtype(images.dtype, np.floating):  # checked once, chunk by chunk
                    for start in range(0, len(images), CHUNK):
                        self._in_range(file, images[start : start + CHUNK], start)
                return None, factors, names
        except DataFileError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as error:
            raise ARRAYS_FILE.error(
                file, f"it is damaged or truncated ({type(error).__name__}: {error})"
            ) from error

    @staticmethod
    def _h5_dataset(h5py, f, file: Path, name: str):
        target = f.get(name)
        if not isinstance(target, h5py.Dataset):
            what = "a link to nothing" if target is None else f"an HDF5 {type(target).__name__}"
            raise ARRAYS_FILE.error(file, f"its {name!r} is {what}, not a dataset of arrays")
        return target

    def _check_images(self, file: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        if len(shape) not in (3, 4):
            raise ARRAYS_FILE.error(
                file, f"images have shape {shape}; they must be (N, H, W) or (N, H, W, C)"
            )
        if len(shape) == 4 and shape[3] not in (1, 3):
            hint = ""
            if shape[1] in (1, 3):
                hint = " (they look channels-first: save images.transpose(0, 2, 3, 1))"
            elif shape[3] == 4:
                hint = " (drop an alpha channel: images[..., :3])"
            raise ARRAYS_FILE.error(
                file,
                f"images have shape {shape}: {shape[3]} channels, but they must have 1 "
                f"(grayscale) or 3 (RGB), last{hint}",
            )
        if shape[0] == 0 or 0 in shape[1:3]:
            raise ARRAYS_FILE.error(file, f"images have shape {shape}: there are no pixels")
        if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
            raise ARRAYS_FILE.error(
                file,
                f"images are {dtype}; they must be uint8 (0..255) or float (0..1), e.g. "
                f"images.astype(np.uint8) if they hold 0..255",
            )
        self._image_shape = tuple(int(s) for s in shape)

    @staticmethod
    def _in_range(file: Path, images: np.ndarray, start: int = 0) -> np.ndarray:
        """`images` as kept in memory: uint8 as they are, floats as float32 checked in [0, 1]."""
        if images.dtype == np.uint8:
            return images
        images = images.astype(np.float32, copy=False)
        bad = ~((images >= 0) & (images <= 1))  # NaN fails both
        if bad.any():
            row = start + int(np.argwhere(bad)[0][0])
            raise ARRAYS_FILE.error(
                file,
                f"float images must lie in [0, 1], but image {row} holds "
                f"{images[row - start][bad[row - start]].flat[0]} (divide 0..255 images by 255, or "
                f"save them as uint8)",
            )
        return images

    def _check_factors(self, file: Path, factors: np.ndarray, n: int) -> np.ndarray:
        factors = np.asarray(factors)
        if factors.ndim != 2 or factors.shape[1] == 0:
            hint = " (for one factor save factors[:, None])" if factors.ndim == 1 else ""
            raise ARRAYS_FILE.error(
                file, f"factors have shape {factors.shape}; they must be (N, K), K >= 1{hint}"
            )
        if factors.shape[0] != n:
            raise ARRAYS_FILE.error(
                file, f"it holds {n} images but {factors.shape[0]} rows of factors"
            )
        if np.issubdtype(factors.dtype, np.floating):
            whole = np.isfinite(factors) & (factors == np.round(factors))
            if not whole.all():
                row, k = np.argwhere(~whole)[0]
                raise ARRAYS_FILE.error(
                    file,
                    f"factors must be integers, but factors[{row}, {k}] = {factors[row, k]} "
                    f"(bin a continuous factor into levels first)",
                )
            if np.abs(factors).max() >= 2**63:
                raise ARRAYS_FILE.error(file, "factors hold values beyond the int64 range")
        elif not (np.issubdtype(factors.dtype, np.integer) or factors.dtype == np.bool_):
            raise ARRAYS_FILE.error(
                file,
                f"factors are {factors.dtype}; they must be integers (number the categories of a "
                f"named factor first, e.g. with np.unique(..., return_inverse=True))",
            )
        factors = factors.astype(np.int64)
        for k in range(factors.shape[1]):
            if np.all(factors[:, k] == factors[0, k]):
                raise ARRAYS_FILE.error(
                    file,
                    f"factor column {k} takes one value only ({factors[0, k]}): a constant is no "
                    f"factor (the metrics' entropies would be 0); drop the column",
                )
        return factors

    @staticmethod
    def _check_names(file: Path, names, k: int) -> tuple[str, ...]:
        if names is None:
            return tuple(f"factor_{i}" for i in range(k))
        names = np.asarray(names)
        if names.dtype.kind not in "SUO" or names.shape != (k,):
            raise ARRAYS_FILE.error(
                file,
                f"factor_names must be {k} strings, one per factor column; got "
                f"{names.dtype} {names.shape}",
            )
        decoded = tuple(n.decode() if isinstance(n, bytes) else n for n in names.tolist())
        if not all(isinstance(n, str) and n.strip() for n in decoded):
            raise ARRAYS_FILE.error(file, f"factor_names must be non-empty strings, got {decoded}")
        if len(set(decoded)) != len(decoded):
            raise ARRAYS_FILE.error(
                file, f"factor_names must differ from each other, got {decoded}"
            )
        return decoded

    # --- indices: grid indices on a full grid, rows otherwise (class docstring) ---------------

    def __len__(self) -> int:
        return self.num_rows

    def index_to_factors(self, indices: np.ndarray) -> np.ndarray:
        if self.full_grid:
            return super().index_to_factors(indices)
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise ValueError(
                f"indices must be rows in [0, {len(self)}), got values in "
                f"[{indices.min()}, {indices.max()}]"
            )
        return self._codes[indices]

    def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
        if self.full_grid:
            return super().factors_to_index(factors)
        start, _ = self._find(self.check_factors(factors))
        return self._rows.order[start]  # the first row (in file order) of each tuple

    def __getitem__(self, index: int) -> np.ndarray:
        """(C, H, W) float32 image of grid point `index` on a full grid, else of row `index`."""
        index = operator.index(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} rows")
        row = self._rows.order[index] if self.full_grid else index
        return self._observations(np.array([row]))[0]

    def original_values(self, factors: np.ndarray) -> np.ndarray:
        """(N, K) grid positions -> (N, K) int64 values as the file's `factors` hold them."""
        factors = self.check_factors(factors)
        return np.stack(
            [values[column] for values, column in zip(self.factor_values, factors.T, strict=True)],
            axis=1,
        )

    def _find(self, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, count) of the rows holding each (checked) tuple; ValueError if one has none."""
        start, count = self._rows.find(factors)
        if not count.all():
            missing = self.original_values(factors[count == 0][:1])[0]
            shown = ", ".join(
                f"{name}={value}" for name, value in zip(self.factor_names, missing, strict=True)
            )
            raise ValueError(
                f"no row of {self.path} has the factors ({shown}) (of {int((count == 0).sum())} "
                f"requested combinations missing): it is not a full grid; draw factors with "
                f"sample_factors, and pass factors with a column overwritten through "
                f"with_fixed_factor first"
            )
        return start, count

    # --- sampling ----------------------------------------------------------------------------

    def sample_factors(self, n: int, rng: np.random.Generator | int) -> np.ndarray:
        """(n, K) factors of `n` rows drawn uniformly (a full grid: the built-in grids' draws)."""
        if self.full_grid:
            return super().sample_factors(n, rng)
        return self._codes[as_rng(rng).integers(0, self.num_rows, size=n)]

    def sample_observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """(N, K) factors -> (N, C, H, W) float32 in [0, 1]: for each tuple, one of the rows holding
        it, at random (from `rng`; on a full grid a tuple has one row and `rng` is unused)."""
        start, count = self._find(self.check_factors(factors))
        if not self.full_grid:
            if rng is None:
                raise TypeError(
                    "this arrays file is not a full grid: a tuple may have several rows, one is "
                    "drawn at random: pass rng (a numpy.random.Generator or an int seed)"
                )
            start = start + as_rng(rng).integers(0, count)
        return self._observations(self._rows.order[start])

    def with_fixed_factor(
        self, factors: np.ndarray, k: int | Sequence[int], rng: np.random.Generator | int
    ) -> np.ndarray:
        """`factors` with every combination the file lacks replaced by a random row of the file that
        has the same value of factor `k` (or of each of the factors `k`).

        For callers that overwrite column k of drawn factors (the BetaVAE and FactorVAE scores, the
        preview's sweeps): their pairs or batches keep sharing factor k, and the other factors of a
        replaced row follow the file's rows with that value. Rows that exist stay; on a full grid
        nothing is replaced and `rng` is not drawn from. With several columns `k` (the latent
        heatmaps' two factors) a row whose values of them occur together in no row of the file is
        returned as -1 in every column, for the caller to drop. Warns once per data set.
        """
        if self.full_grid:
            return factors
        factors = self.check_factors(factors).copy()
        columns = (int(k),) if np.ndim(k) == 0 else tuple(int(c) for c in k)
        _, count = self._rows.find(factors)
        missing = np.flatnonzero(count == 0)
        self.requested_combinations += len(factors)
        self.replaced_combinations += len(missing)
        if not len(missing):
            return factors
        if columns not in self._fixed:
            self._fixed[columns] = _Groups(
                self._codes[:, columns], [self.factor_sizes[c] for c in columns]
            )
        groups = self._fixed[columns]
        start, count = groups.find(factors[np.ix_(missing, columns)])
        found = count > 0
        pick = start[found] + as_rng(rng).integers(0, count[found])
        factors[missing[found]] = self._codes[groups.order[pick]]
        factors[missing[~found]] = -1
        several = len(columns) > 1  # warned once for one fixed factor, once for several
        if several not in self._warned:
            self._warned.add(several)
            names = " and ".join(f"'{self.factor_names[c]}'" for c in columns)
            dropped = (
                f" ({int((~found).sum())} whose {names} occur together in no row were dropped)"
                if several
                else ""
            )
            warnings.warn(
                f"dataset=arrays ({self.path}) is not a full factor grid: {len(missing)} of "
                f"{len(factors)} factor combinations requested with {names} held fixed do not "
                f"occur in it; each was replaced by a random row of the file with the same {names} "
                f"value{'s' if several else ''}{dropped}, so the rows still share "
                f"{'them' if several else 'it'} but their other factors follow the file's rows. "
                f"Warned once; data.replaced_combinations counts every replacement",
                stacklevel=2,
            )
        return factors

    # --- images ------------------------------------------------------------------------------

    def _read(self, rows: np.ndarray) -> np.ndarray:
        """(n,) rows -> their images as stored, from memory or the .h5 file."""
        if self._images is not None:
            return self._images[rows]
        unique, inverse = np.unique(rows, return_inverse=True)  # h5py reads sorted, distinct rows
        try:
            # h5py handles do not survive a fork
            if self._file is None or self._file[0] != os.getpid():
                self._file = (os.getpid(), _import_h5py().File(self.path, "r"))
            images = self._file[1]["images"][unique][inverse.reshape(-1)]
        except OSError as error:
            raise ARRAYS_FILE.error(self.path, f"reading images failed ({error})") from error
        return images if images.dtype == np.uint8 else images.astype(np.float32, copy=False)

    def _observations(self, rows: np.ndarray) -> np.ndarray:
        """(n,) rows -> (n, C, H, W) float32 in [0, 1], resized to `observation_shape`."""
        images = self._read(rows)
        x = images.astype(np.float32) / 255 if images.dtype == np.uint8 else images
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # (n, C, H, W)
        if self._resize is not None:
            rows_matrix, cols_matrix = self._resize
            x = np.clip(rows_matrix @ x @ cols_matrix.T, 0.0, 1.0)
        return np.ascontiguousarray(x, dtype=np.float32)

    def __getstate__(self) -> dict:
        """Pickle without the open .h5 file (data loader workers reopen it)."""
        return {**self.__dict__, "_file": None}
