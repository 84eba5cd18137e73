"""The convolutional encoder and decoder of Locatello et al. 2019 (disentanglement_lib's
`conv_encoder` / `deconv_decoder`), used by every model of their study.

Encoder: 4 convs (32, 32, 64, 64 channels, 4x4 kernels, stride 2) -> FC 256 -> (mu, logvar).
Decoder: FC 256 -> FC 64*h*w -> 4 transposed convs (64, 32, 32, C) back to the image, as logits.
For 64x64 inputs the bottleneck is 64x4x4 = 1024 features, as in the paper; any H, W divisible by
16 works (32x32 gives 64x2x2).
"""

import torch
from torch import nn


def _check_divisible(observation_shape: tuple[int, int, int]) -> tuple[int, int]:
    _, height, width = observation_shape
    if height % 16 or width % 16:
        raise ValueError(
            f"the conv nets halve the image 4 times, so height and width must be divisible by 16; "
            f"got {height}x{width}: use model.net=mlp or resize the data set"
        )
    return height // 16, width // 16


class ConvEncoder(nn.Module):
    """x (B, C, H, W) -> (mu, logvar), each (B, latent_dim)."""

    def __init__(
        self, observation_shape: tuple[int, int, int], latent_dim: int, hidden_dim: int = 256
    ):
        super().__init__()
        self.latent_dim = latent_dim  # what the VAE draws its noise for
        channels = observation_shape[0]
        h, w = _check_divisible(observation_shape)
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 4, stride=2, padding=1),
            nn.ReLU(),  # (B, 32, H/2, W/2)
            nn.Conv2d(32, 32, 4, stride=2, padding=1),
            nn.ReLU(),  # (B, 32, H/4, W/4)
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),  # (B, 64, H/8, W/8)
            nn.Conv2d(64, 64, 4, stride=2, padding=1),
            nn.ReLU(),  # (B, 64, H/16, W/16)
            nn.Flatten(),
            nn.Linear(64 * h * w, hidden_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden_dim, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(x)).chunk(2, dim=-1)
        return mu, logvar


class ConvDecoder(nn.Module):
    """z (B, latent_dim) -> logits (B, C, H, W)."""

    def __init__(
        self, observation_shape: tuple[int, int, int], latent_dim: int, hidden_dim: int = 256
    ):
        super().__init__()
        channels = observation_shape[0]
        h, w = _check_divisible(observation_shape)
        self.body = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, 64 * h * w),
            nn.ReLU(),
            nn.Unflatten(1, (64, h, w)),
            nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1),
            nn.ReLU(),  # (B, 64, H/8, W/8)
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),  # (B, 32, H/4, W/4)
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1),
            nn.ReLU(),  # (B, 32, H/2, W/2)
            nn.ConvTranspose2d(32, channels, 4, stride=2, padding=1),  # (B, C, H, W)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)
