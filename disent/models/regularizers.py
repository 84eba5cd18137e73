"""The term that a VAE objective adds to the reconstruction loss.

Every VAE of the zoo is `loss = reconstruction + regularizer(posterior, step)`; the regularizer is
picked by `model.name` and built from the model's YAML keys of the same names as its fields, so a
new objective is one small class here and one YAML file in `conf/model/`.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Posterior:
    """What the encoder said about a batch: q(z|x) = N(mu, exp(logvar))."""

    mu: torch.Tensor             # (B, Z)
    logvar: torch.Tensor         # (B, Z)
    z: torch.Tensor              # (B, Z) one reparameterised sample
    kl_per_latent: torch.Tensor  # (B, Z) KL(q(z_i|x) || N(0, 1)), per sample and latent

    @property
    def kl(self) -> torch.Tensor:
        """KL(q(z|x) || p(z)) summed over latents, averaged over the batch: a scalar."""
        return self.kl_per_latent.sum(dim=1).mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) element-wise: 0.5 (mu^2 + sigma^2 - log sigma^2 - 1)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)


class Regularizer(nn.Module):
    """Base class: returns (the loss term that replaces the KL, named values to log)."""

    def forward(self, posterior: Posterior, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError


class BetaVAELoss(Regularizer):
    """β-VAE (Higgins et al. 2017): β·KL(q(z|x) || p(z)). β = 1 is the plain VAE's ELBO."""

    def __init__(self, beta: float):
        super().__init__()
        self.beta = beta

    def forward(self, posterior: Posterior, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.beta * posterior.kl, {}


REGULARIZERS: dict[str, type[Regularizer]] = {
    "beta_vae": BetaVAELoss,
}
