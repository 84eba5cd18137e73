"""dSprites (Matthey et al. 2017): 64x64 binary images of one white sprite on black.

Factors (as in the original file, without its constant colour factor):
    shape        3   square, ellipse, heart
    scale        6   linspace(0.5, 1, 6)
    orientation 40   linspace(0, 2*pi, 40): BOTH endpoints, so orientation 0 and 39 are the same
                     rotation (the original has this duplicate too, and we keep its grid)
    posX        32   linspace(0, 1, 32)
    posY        32   linspace(0, 1, 32)

Without a file the images are rendered procedurally (no download); with `path` they are read from
the original `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`, or from a directory or archive
holding it (see `disent.data.files`).
"""

import functools
import os
import zipfile
import zlib

import numpy as np

from disent.data.base import GroundTruthData
from disent.data.files import DataFile, DataFileError, resolve_data_path

FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)  # radians, counter-clockwise on screen
POSITIONS = np.linspace(0.0, 1.0, 32)

IMAGE_SIZE = 64
# The sprite centre of position value v (grid index k = 31 v) is the centre of pixel 16 + k
# (continuous coordinate 16.5 + k): one-pixel steps, symmetric about the image centre 32.0. Each
# sprite is pre-rendered once into a PATCH x PATCH mask centred on its middle pixel, so image k's
# patch covers rows/cols k .. k + 32, always inside the frame, and placing it is plain indexing.
PATCH = 33
assert IMAGE_SIZE - PATCH + 1 == len(POSITIONS)
# Side of the scale-1 square in pixels; the ellipse's long axis and the heart's width are the
# same. Calibrated so the mean pixel over the whole grid matches the original file's published mean
# (0.04249; e.g. nmichlo/disent's data stats), i.e. the same ink on average.
SPRITE_SIZE = 21.2
ELLIPSE_ASPECT = 0.5  # short axis / long axis
SUPERSAMPLE = 4  # 4x4 samples per pixel; a pixel is on when at least half of them are inside
FILE_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_FILE = DataFile(
    "dSprites file",
    (FILE_NAME,),
    f"Expected the original {FILE_NAME} "
    f"(https://github.com/deepmind/dsprites-dataset), or a directory or archive (.zip, .tar, "
    f".tar.gz) holding it; set dataset.path=null to render the sprites procedurally",
)


def _unit_square() -> np.ndarray:
    """(4, 2) corners (x, y_up) of the unit square around the origin."""
    return np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])


def _unit_heart(num_vertices: int = 128) -> np.ndarray:
    """(V, 2) outline (x, y_up) of the classic parametric heart, width 1, tip down, area centroid at 0.

    x = 16 sin^3 t, y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t. The original's heart outline was
    never published, so this is a stand-in of the same kind (two lobes, a pointed tip).
    """
    t = np.linspace(0, 2 * np.pi, num_vertices, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y  # shoelace terms
    six_area = 3 * cross.sum()
    cx, cy = (
        ((x + np.roll(x, -1)) * cross).sum() / six_area,
        ((y + np.roll(y, -1)) * cross).sum() / six_area,
    )
    return np.stack([x - cx, y - cy], axis=1) / 32.0  # x spans [-16, 16]


def _rotate(points: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(V, 2) points (x, y_up) rotated counter-clockwise by each angle -> (A, V, 2)."""
    c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
    x, y = points[:, 0], points[:, 1]
    return np.stack([c * x - s * y, s * x + c * y], axis=-1)


def _fill_polygons(polygons: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(B, V, 2) polygons (x, y_up) in pixels -> (B, M, M) bool: is sample (row i, col j) inside?

    Samples sit at x = t[j], y_down = t[i]. Even-odd rule along each sample row: find where every
    edge crosses the row, sort the crossings, and count (with searchsorted) how many lie left of
    each sample; odd = inside. Vectorised over polygons and rows.
    """
    x0, y0 = polygons[..., 0], -polygons[..., 1]  # (B, V), y now points down like image rows
    x1, y1 = np.roll(x0, -1, axis=1), np.roll(y0, -1, axis=1)
    row = t[None, :, None]  # (1, M, 1)
    crosses = (y0[:, None] <= row) != (y1[:, None] <= row)  # (B, M, V)
    dy = np.where(y1 == y0, 1.0, y1 - y0)[:, None]
    xc = x0[:, None] + (row - y0[:, None]) * (x1 - x0)[:, None] / dy
    span = 2 * (np.abs(t).max() + 1)  # wider than any crossing or sample
    xc = np.sort(np.where(crosses, np.clip(xc, -span / 2, span / 2), span), axis=-1)  # (B, M, V)
    b, m, v = xc.shape
    offsets = np.arange(b * m, dtype=np.float64) * 2 * span  # keeps every row's keys apart
    keys = (xc.reshape(b * m, v) + offsets[:, None]).ravel()
    count = np.searchsorted(keys, (t[None, :] + offsets[:, None]).ravel()).reshape(b * m, m)
    count -= np.arange(b * m)[:, None] * v
    return (count % 2 == 1).reshape(b, m, m)


def _downsample(inside: np.ndarray) -> np.ndarray:
    """(B, M, M) bool samples -> (B, PATCH, PATCH) float32 {0, 1}: on when >= half the samples are."""
    b = inside.shape[0]
    coverage = inside.reshape(b, PATCH, SUPERSAMPLE, PATCH, SUPERSAMPLE).mean(axis=(2, 4))
    return (coverage >= 0.5).astype(np.float32)


@functools.cache  # 0.4 s a time; every data set a process builds (a sweep's jobs, a report's) shares one
def render_sprites() -> np.ndarray:
    """(3, 6, 40, PATCH, PATCH) float32 {0, 1} masks of every (shape, scale, orientation), centred; read-only."""
    # sample coordinates relative to the sprite centre, in pixels (the centre pixel spans [-0.5,
    # 0.5])
    t = (np.arange(PATCH * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - PATCH / 2  # (M,)
    sprites = np.zeros((3, len(SCALES), len(ORIENTATIONS), PATCH, PATCH), np.float32)
    for k, outline in ((0, _unit_square()), (2, _unit_heart())):
        for j, scale in enumerate(SCALES):
            polygons = _rotate(outline * SPRITE_SIZE * scale, ORIENTATIONS)  # (40, V, 2)
            sprites[k, j] = _downsample(_fill_polygons(polygons, t))
    # ellipse: long axis horizontal at orientation 0; test the inverse-rotated sample grid exactly
    x, y = t[None, None, :], -t[None, :, None]  # (1, 1, M), (1, M, 1); y up
    c, s = np.cos(ORIENTATIONS)[:, None, None], np.sin(ORIENTATIONS)[:, None, None]
    u, w = c * x + s * y, -s * x + c * y  # (40, M, M) coordinates in the ellipse's own frame
    for j, scale in enumerate(SCALES):
        a = SPRITE_SIZE * scale / 2
        sprites[1, j] = _downsample((u / a) ** 2 + (w / (a * ELLIPSE_ASPECT)) ** 2 <= 1)
    sprites.setflags(write=False)  # shared by every DSprites of the process
    return sprites


class DSprites(GroundTruthData):
    """dSprites, rendered procedurally or read from the original .npz.

    Procedural sprites follow the original grid of latent values and its geometry as far as it is
    known, but are not pixel-identical to the original images:
      * heart: the original outline was never published; we use the classic parametric heart
        (see `_unit_heart`), centred on its area centroid, tip down at orientation 0;
      * sizes: the scale-1 square is SPRITE_SIZE (21.2) px wide, the ellipse 21.2 x 10.6 px, the
        heart 21.2 px wide: chosen so the grid's mean intensity matches the original's (0.0425),
        not measured sprite by sprite;
      * positions: the sprite centre moves in exact one-pixel steps over pixels 16..47 (the original
        spans about the same middle half of the frame, but its sub-pixel offsets are not known);
      * rasterisation: 4x4 supersampling thresholded at half coverage (binary, no anti-aliasing);
        the original's exact pixel rule differs, so edge pixels differ;
      * conventions at orientation 0 (square axis-aligned, ellipse long axis horizontal, heart tip
        down) and the direction of rotation are our choice, not checked against the original.
    posY grows downwards (image rows); orientation turns counter-clockwise on screen.

    With `path`, observations are the file's images (about 3 GB of RAM once loaded). `factor_sizes`
    is the grid the file must hold; leave it at the real sizes: only tests pass a smaller grid
    (a file written in the same layout), to exercise the loader without the 26 MB download.
    """

    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = FACTOR_SIZES
    observation_shape = (1, IMAGE_SIZE, IMAGE_SIZE)
    deterministic = True

    def __init__(
        self, path: str | os.PathLike | None = None, factor_sizes: tuple[int, ...] = FACTOR_SIZES
    ):
        self.path = None if path is None else os.fspath(path)
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        if len(self.factor_sizes) != 5:
            raise ValueError(
                f"dSprites has 5 factors {self.factor_names}, got sizes {self.factor_sizes}"
            )
        self._imgs = self._sprites = None
        if self.path is None:
            if self.factor_sizes != FACTOR_SIZES:
                raise ValueError(
                    f"the procedural renderer draws the full grid {FACTOR_SIZES}; "
                    f"a smaller grid needs a file (`path`)"
                )
            self._sprites = render_sprites()  # (3, 6, 40, PATCH, PATCH)
        else:
            self._imgs = self._load(self.path)  # (N, 64, 64) uint8

    def _load(self, path: str) -> np.ndarray:
        """The file's (N, 64, 64) images, after checking that they are this grid in this order."""
        file = resolve_data_path(path, DSPRITES_FILE)
        try:
            with open(file, "rb") as f:
                # checked first: np.load would guess pickle and advise trusting it
                if f.read(2) != b"PK":
                    raise DSPRITES_FILE.error(file, "it is not an .npz (zip) archive")
            with np.load(file, allow_pickle=False) as data:
                missing = {"imgs", "latents_classes"} - set(data.files)
                if missing:
                    raise DSPRITES_FILE.error(
                        file, f"arrays {sorted(missing)} are missing (found {sorted(data.files)})"
                    )
                imgs, classes = data["imgs"], data["latents_classes"]
        except DataFileError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
            raise DSPRITES_FILE.error(
                file, f"it is damaged or truncated ({type(error).__name__}: {error})"
            ) from error
        n = len(self)
        if imgs.shape != (n, IMAGE_SIZE, IMAGE_SIZE):
            raise DSPRITES_FILE.error(
                file, f"imgs has shape {imgs.shape}, not {(n, IMAGE_SIZE, IMAGE_SIZE)}"
            )
        if classes.shape != (n, 6):
            raise DSPRITES_FILE.error(
                file, f"latents_classes has shape {classes.shape}, not {(n, 6)}"
            )
        if imgs[:: max(1, n // 1000)].max(initial=0) > 1:  # a spot check; the original stores 0/1
            raise DSPRITES_FILE.error(
                file, f"imgs must hold 0/1 pixels, found values up to {imgs.max()}"
            )
        # column 0 is the constant colour; the rest must enumerate the grid, last factor fastest
        if not np.array_equal(classes[:, 1:], self.index_to_factors(np.arange(n))):
            raise DSPRITES_FILE.error(
                file,
                f"latents_classes do not enumerate the grid {self.factor_sizes} "
                f"in row-major order (last factor fastest)",
            )
        return imgs

    def sample_observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """(N, 5) factors -> (N, 1, 64, 64) float32 in {0, 1}; deterministic, `rng` unused."""
        factors = self.check_factors(factors)
        if self._imgs is not None:
            return self._imgs[self.factors_to_index(factors)][:, None].astype(np.float32)
        shape, scale, orientation, x, y = factors.T
        n = len(factors)
        out = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), np.float32)
        r = np.arange(PATCH)
        # position index p puts the patch at rows/cols p .. p + 32, its centre pixel at 16 + p
        rows = (y[:, None] + r)[:, :, None]  # (N, P, 1)
        cols = (x[:, None] + r)[:, None, :]  # (N, 1, P)
        out[np.arange(n)[:, None, None], rows, cols] = self._sprites[shape, scale, orientation]
        return out[:, None]
