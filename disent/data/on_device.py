"""A deterministic data set's factor grid resident on the training device (`loader.on_device=true`).

On a GPU the CPU is the bottleneck of a small model's training: a stack of 64 β-VAEs at batch 64
asks for 4,096 rendered 64x64 images a step. With the grid on the device, the data stream only draws
factors on the CPU (a few hundred integers a step) and the device looks their images up, so a batch
is the same one the CPU would have rendered, bit for bit.

- Procedural dSprites keeps its 720 sprite masks (3 MB) on the device and places them there.
- Any other deterministic data set is encoded once, whole: every grid image, as uint8 when its pixels
  are multiples of 1/255 (dSprites' file: 737,280 x 4 KB = 3.0 GB; Shapes3D: 5.9 GB), else float32.
Data sets with observation noise (`deterministic = False`) cannot be looked up and are refused.
"""

import numpy as np
import torch

from disent.data.base import GroundTruthData
from disent.data.dsprites import IMAGE_SIZE, PATCH, DSprites, render_sprites

# grid points rendered per CPU chunk while the whole grid is copied to the device
CHUNK = 4096


class DeviceGrid:
    """factors (..., K) int64 on the device -> observations (..., C, H, W) float32 on the device."""

    def __init__(self, dataset: GroundTruthData, device: torch.device):
        self.check(dataset)
        self.device = torch.device(device)
        self.shape = tuple(dataset.observation_shape)
        # row-major strides, last factor fastest (GroundTruthData's grid order)
        strides = np.cumprod((1, *dataset.factor_sizes[:0:-1]))[::-1].copy()
        self.strides = torch.from_numpy(strides).to(self.device)
        self.sprites = None
        self.images = None
        if isinstance(dataset, DSprites) and dataset.path is None:
            # a copy: theirs is read-only
            self.sprites = torch.tensor(render_sprites(), device=self.device)
        else:
            self.images = _whole_grid(dataset, self.device)

    @staticmethod
    def check(dataset: GroundTruthData) -> None:
        """Refuse a data set whose images are not a function of their factors."""
        if not dataset.deterministic:
            raise ValueError(
                f"loader.on_device=true needs a deterministic data set, but "
                f"{type(dataset).__name__} draws observation noise on the CPU for every image: "
                f"set loader.on_device=false"
            )

    def __call__(self, factors: torch.Tensor) -> torch.Tensor:
        flat = factors.reshape(-1, factors.shape[-1])  # (N, K)
        if self.sprites is not None:
            images = self._place_sprites(flat)
        else:
            stored = self.images[(flat * self.strides).sum(dim=1)]  # (N, C, H, W)
            images = stored.float() / 255 if stored.dtype == torch.uint8 else stored
        return images.reshape(*factors.shape[:-1], *self.shape)

    def _place_sprites(self, factors: torch.Tensor) -> torch.Tensor:
        """dSprites' renderer (DSprites.sample_observations_from_factors) on the device."""
        shape, scale, orientation, x, y = factors.unbind(dim=1)
        n = len(factors)
        out = torch.zeros(n, IMAGE_SIZE, IMAGE_SIZE, device=self.device)
        r = torch.arange(PATCH, device=self.device)
        rows = (y[:, None] + r)[:, :, None]  # (N, P, 1)
        cols = (x[:, None] + r)[:, None, :]  # (N, 1, P)
        batch = torch.arange(n, device=self.device)[:, None, None]
        out[batch, rows, cols] = self.sprites[shape, scale, orientation]
        return out[:, None]


def _whole_grid(dataset: GroundTruthData, device: torch.device) -> torch.Tensor:
    """Every grid image, in grid order, on `device`: (N, C, H, W) uint8 levels if the pixels allow it
    exactly, else float32. Refused after its first chunk (which says the dtype) when the device has
    not the room."""
    pixels = int(np.prod(dataset.observation_shape))
    first_indices = np.arange(min(CHUNK, len(dataset)))
    first = dataset.sample_observations_from_factors(dataset.index_to_factors(first_indices))
    exact_bytes = bool(np.array_equal(np.rint(first * 255) / 255, first))
    dtype = torch.uint8 if exact_bytes else torch.float32
    needed = len(dataset) * pixels * (1 if exact_bytes else 4)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if needed > 0.8 * free:
            raise ValueError(
                f"loader.on_device=true: the {type(dataset).__name__} grid needs "
                f"{needed / 2**30:.1f} GiB on {device}, which has {free / 2**30:.1f} GiB free: set "
                f"loader.on_device=false"
            )
    images = torch.empty(len(dataset), *dataset.observation_shape, dtype=dtype, device=device)
    for start in range(0, len(dataset), CHUNK):
        indices = np.arange(start, min(start + CHUNK, len(dataset)))
        chunk = dataset.sample_observations_from_factors(dataset.index_to_factors(indices))
        if exact_bytes:
            levels = np.rint(chunk * 255)
            if not np.array_equal(levels / 255, chunk):
                raise ValueError(
                    f"{type(dataset).__name__}'s grid images {start}..{indices[-1]} are not multiples "
                    f"of 1/255 as the first ones were; set loader.on_device=false"
                )
            chunk = levels.astype(np.uint8)
        images[start : start + len(indices)] = torch.from_numpy(chunk).to(device)
    return images
