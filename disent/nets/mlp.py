"""A small fully connected encoder/decoder pair, for tests and tiny images."""

import math

import torch
from torch import nn


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """x (B, C, H, W) -> (mu, logvar), each (B, latent_dim)."""

    def __init__(
        self, observation_shape: tuple[int, int, int], latent_dim: int, hidden_dim: int = 256
    ):
        super().__init__()
        self.latent_dim = latent_dim  # what the VAE draws its noise for
        self.net = nn.Sequential(
            nn.Flatten(),
            _mlp([math.prod(observation_shape), hidden_dim, hidden_dim, 2 * latent_dim]),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=-1)
        return mu, logvar


class MLPDecoder(nn.Module):
    """z (B, latent_dim) -> logits (B, C, H, W)."""

    def __init__(
        self, observation_shape: tuple[int, int, int], latent_dim: int, hidden_dim: int = 256
    ):
        super().__init__()
        self.net = nn.Sequential(
            _mlp([latent_dim, hidden_dim, hidden_dim, math.prod(observation_shape)]),
            nn.Unflatten(1, tuple(observation_shape)),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
