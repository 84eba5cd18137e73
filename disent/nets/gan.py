"""InfoGAN's generator and discriminator (Chen et al. 2016), sized for 64x64 or 32x32 images.

`conv` (64x64, or any size divisible by 16): the generator is FC hidden -> FC 128*(H/16)*(W/16) -> 4
transposed convs (128, 64, 64, 32 -> C), doubling each time; the discriminator mirrors it with
strided convs. `conv_small` (32x32, or any size divisible by 4) is the paper's MNIST architecture:
FC hidden -> FC 128*(H/4)*(W/4) -> 2 transposed convs (64 -> C). The paper's hidden width is 1024
(`model.hidden_dim`); the two FC layers hold most of the parameters (17M at 32x32). Batch norm and
leaky ReLU (0.1) as in the paper. The discriminator's body is shared by the real/fake head D and the
code head Q.
"""

import torch
from torch import nn

CHANNELS = {"conv": [128, 64, 64, 32], "conv_small": [128, 64]}


def _base_size(net: str, observation_shape: tuple[int, int, int]) -> tuple[int, int]:
    if net not in CHANNELS:
        raise ValueError(f"unknown InfoGAN net '{net}': choose one of {sorted(CHANNELS)}")
    factor = 2 ** len(CHANNELS[net])
    _, height, width = observation_shape
    if height % factor or width % factor:
        raise ValueError(
            f"net '{net}' halves the image {len(CHANNELS[net])} times: height and width must be "
            f"divisible by {factor}, got {height}x{width}"
        )
    return height // factor, width // factor


class Generator(nn.Module):
    """(noise, codes) concatenated (B, input_dim) -> images (B, C, H, W) in [0, 1]."""

    def __init__(
        self, net: str, observation_shape: tuple[int, int, int], input_dim: int, hidden_dim: int
    ):
        super().__init__()
        h, w = _base_size(net, observation_shape)
        channels = CHANNELS[net]
        layers: list[nn.Module] = [
            nn.Linear(input_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, channels[0] * h * w),
            nn.BatchNorm1d(channels[0] * h * w),
            nn.ReLU(),
            nn.Unflatten(1, (channels[0], h, w)),
        ]
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        layers += [
            nn.ConvTranspose2d(channels[-1], observation_shape[0], 4, stride=2, padding=1),
            nn.Sigmoid(),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent)


class Discriminator(nn.Module):
    """images (B, C, H, W) -> (real/fake logit (B,), code-head outputs (B, code_outputs))."""

    def __init__(
        self, net: str, observation_shape: tuple[int, int, int], code_outputs: int, hidden_dim: int
    ):
        super().__init__()
        h, w = _base_size(net, observation_shape)
        channels = list(reversed(CHANNELS[net]))
        layers: list[nn.Module] = [
            nn.Conv2d(observation_shape[0], channels[0], 4, stride=2, padding=1),
            nn.LeakyReLU(0.1),
        ]
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [
                nn.Conv2d(c_in, c_out, 4, stride=2, padding=1),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.1),
            ]
        layers += [
            nn.Flatten(),
            nn.Linear(channels[-1] * h * w, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.LeakyReLU(0.1),
        ]
        self.body = nn.Sequential(*layers)
        self.real_fake = nn.Linear(hidden_dim, 1)
        self.code_head = nn.Sequential(
            nn.Linear(hidden_dim, 128),
            nn.BatchNorm1d(128),
            nn.LeakyReLU(0.1),
            nn.Linear(128, code_outputs),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return self.real_fake(features).squeeze(1), self.code_head(features)
