"""The dSprites variants of Locatello et al.'s study (disentanglement_lib): colour, noise, a picture.

Each wraps a `DSprites` (procedural, or the original npz via `path`) and turns its binary sprite
into an RGB image with per-image randomness. The randomness is nuisance, not a factor: the five
factors and their grid are dSprites', so these data sets are not deterministic (`deterministic =
False`: metrics never cache observations by grid index) and need an explicit `rng`.

Definitions follow `disentanglement_lib/data/ground_truth/dsprites.py` (ColorDSprites,
NoisyDSprites, ScreamDSprites); the code is ours, vectorised over the batch.
"""

import os

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, UnidentifiedImageError

from disent.data.base import GroundTruthData, as_rng
from disent.data.dsprites import IMAGE_SIZE, DSprites
from disent.data.files import DataFile, DataFileNotFoundError

# disentanglement_lib shrinks The Scream to fit in 350 x 274 (PIL thumbnail, aspect kept)
PICTURE_MAX_SIZE = (350, 274)  # (width, height)
DEFAULT_PICTURE = "china.jpg"  # shipped with scikit-learn (sklearn.datasets.load_sample_image)


class _DSpritesVariant(GroundTruthData):
    """dSprites' factors and grid, RGB observations made from its binary sprite plus noise."""

    observation_shape = (3, IMAGE_SIZE, IMAGE_SIZE)
    deterministic = False

    def __init__(self, path: str | os.PathLike | None = None):
        self.dsprites = DSprites(path)
        self.factor_names = self.dsprites.factor_names
        self.factor_sizes = self.dsprites.factor_sizes

    def sample_observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """(N, 5) factors -> (N, 3, 64, 64) float32 in [0, 1]; the noise is drawn from `rng`."""
        if rng is None:
            raise TypeError(
                f"{type(self).__name__} draws random noise for every observation: "
                f"pass rng (a numpy.random.Generator or an int seed)"
            )
        rng = as_rng(rng)
        # (N, 1, 64, 64) in {0, 1}
        sprites = self.dsprites.sample_observations_from_factors(factors)
        return self._decorate(sprites, rng).astype(np.float32, copy=False)

    def _decorate(self, sprites: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(N, 1, 64, 64) binary sprites -> (N, 3, 64, 64) observations."""
        raise NotImplementedError


class ColorDSprites(_DSpritesVariant):
    """dSprites with the sprite painted in a random colour, on black.

    x = sprite * c, with c ~ Uniform[0.5, 1)^3 drawn once per image (one colour for all of its
    sprite pixels); the background stays exactly 0. As disentanglement_lib's ColorDSprites
    (`np.repeat` the sprite to RGB, multiply by `uniform(0.5, 1, [N, 1, 1, 3])`). The colour is
    noise, not a factor.
    """

    def _decorate(self, sprites: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # (N, 3, 1, 1)
        colour = rng.uniform(0.5, 1.0, size=(len(sprites), 3, 1, 1)).astype(np.float32)
        return sprites * colour  # (N, 3, 64, 64) by broadcasting the one channel


class NoisyDSprites(_DSpritesVariant):
    """dSprites with a white sprite on a background of uniform noise.

    x = min(sprite + u, 1), u ~ Uniform[0, 1) independently per image, pixel and channel: sprite
    pixels are exactly 1, background pixels are the noise. As disentanglement_lib's NoisyDSprites
    (`np.minimum(observations + uniform(0, 1, [N, 64, 64, 3]), 1.)`).
    """

    def _decorate(self, sprites: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = rng.random((len(sprites), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        return np.minimum(sprites + noise, 1.0)


PICTURE_FILE = DataFile(
    "background picture",
    hint="Set dataset.image_path to an image file (PNG, JPEG, ...), or "
    "to null for scikit-learn's sample photograph",
)


def load_picture(image_path: str | os.PathLike | None = None) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]: the background picture, shrunk to fit in 350 x 274 as DL does.

    None loads scikit-learn's sample photograph. A missing, unreadable or too small picture is a
    DataFileError naming the path (DataFileNotFoundError, also a FileNotFoundError, when it is
    missing).
    """
    if image_path is None:
        # imported here: only this needs scikit-learn
        from sklearn.datasets import load_sample_image

        picture, name = Image.fromarray(load_sample_image(DEFAULT_PICTURE)), DEFAULT_PICTURE
    else:
        name = os.fspath(image_path)
        if not os.path.isfile(name):
            raise PICTURE_FILE.error(name, "no such file", DataFileNotFoundError)
        try:
            with Image.open(name) as opened:
                picture = opened.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
            raise PICTURE_FILE.error(
                name, f"it is not a readable image ({type(error).__name__}: {error})"
            ) from error
    picture.thumbnail(PICTURE_MAX_SIZE)  # only ever shrinks
    if min(picture.size) < IMAGE_SIZE:
        raise PICTURE_FILE.error(
            name,
            f"it is {picture.size[0]}x{picture.size[1]} after shrinking to fit "
            f"{PICTURE_MAX_SIZE}; a {IMAGE_SIZE}x{IMAGE_SIZE} crop needs more",
        )
    return np.asarray(picture, dtype=np.float32) / 255.0


class ScreamDSprites(_DSpritesVariant):
    """dSprites embedded in a random patch of a picture, by inverting the patch's colours.

    Per image: b = (p + o) / 2, with p a uniformly random 64x64 crop of the picture (values in [0,
    1]) and o ~ Uniform[0, 1)^3 one offset per channel; then x = 1 - b on sprite pixels and x = b
    elsewhere. As disentanglement_lib's ScreamDSprites (`(patch + uniform(0, 1, size=3)) / 2.`, then
    `background[mask] = 1 - background[mask]` with `mask = observations == 1`).

    Differences from disentanglement_lib:
      * the picture: DL uses Munch's "The Scream", which cannot be downloaded here. By default we use
        scikit-learn's bundled sample photograph (china.jpg, 640x427); `image_path` points to any
        image file (read with PIL, converted to RGB), e.g. a copy of The Scream. As in DL, the
        picture is shrunk to fit in 350 x 274 keeping its aspect ratio (china.jpg: 350 x 234).
      * crops: every top-left corner 0 .. H - 64 (inclusive) is equally likely; DL's
        `randint(0, H - 64)` never picks the last row or column of corners.
    """

    def __init__(
        self, path: str | os.PathLike | None = None, image_path: str | os.PathLike | None = None
    ):
        super().__init__(path)
        self.image_path = None if image_path is None else os.fspath(image_path)
        self.picture = load_picture(self.image_path)  # (H, W, 3) float32 in [0, 1]
        # every 64x64 crop, as a view (no copy): _crops[top, left] is the (3, 64, 64) patch there
        self._crops = sliding_window_view(self.picture, (IMAGE_SIZE, IMAGE_SIZE), axis=(0, 1))

    def _decorate(self, sprites: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, (height, width, _) = len(sprites), self.picture.shape
        top = rng.integers(0, height - IMAGE_SIZE + 1, size=n)
        left = rng.integers(0, width - IMAGE_SIZE + 1, size=n)
        offset = rng.uniform(0.0, 1.0, size=(n, 3, 1, 1)).astype(np.float32)
        background = (self._crops[top, left] + offset) / 2  # (N, 3, 64, 64)
        return np.where(sprites == 1, 1 - background, background)
