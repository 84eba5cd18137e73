"""The VAE family as one LightningModule: loss = reconstruction + regularizer(q(z|x)).

Reconstruction is summed over pixels and averaged over the batch, so β and the other loss weights
are on the scale of the papers (not per-pixel averaged).
"""

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from disent.models.base import DisentModel, MemberCalls, optimize
from disent.models.regularizers import Posterior, Regularizer, gaussian_kl

RECONSTRUCTIONS = ("bernoulli", "gaussian")


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, distribution: str) -> torch.Tensor:
    """-log p(x|z) summed over pixels, averaged over the batch.

    bernoulli: binary cross-entropy on the decoder's logits (targets may be grey values in [0, 1]).
    gaussian: sum of squared errors of sigmoid(logits), disentanglement_lib's `l2` loss, i.e. a
        Gaussian of fixed variance 1/2 up to a constant.
    """
    if distribution == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    elif distribution == "gaussian":
        per_pixel = (torch.sigmoid(logits) - x).pow(2)
    else:
        raise ValueError(
            f"unknown reconstruction '{distribution}': choose one of {RECONSTRUCTIONS}"
        )
    return per_pixel.flatten(1).sum(dim=1).mean()


def loss_terms(
    reconstruction: torch.Tensor,
    regularization: torch.Tensor,
    extra: dict[str, torch.Tensor],
    posterior: Posterior,
) -> dict[str, torch.Tensor]:
    """Every term a VAE logs; 'loss' is the one that is minimised."""
    kl_per_latent = posterior.kl_per_latent.mean(dim=0)  # (Z,)
    terms = {
        "loss": reconstruction + regularization,
        "reconstruction": reconstruction,
        "kl": kl_per_latent.sum(),
        "regularization": regularization,
        "elbo": -(reconstruction + kl_per_latent.sum()),
        **extra,
    }
    terms.update({f"kl_z{i}": kl_per_latent[i] for i in range(len(kl_per_latent))})
    return terms


class VAE(DisentModel):
    """A Gaussian encoder, a decoder of logits, and a regularizer chosen by config."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        regularizer: Regularizer,
        reconstruction: str,
        optimizer: dict,
        final_loss_window: int,
        config: dict | None = None,
        discriminator_optimizer: dict | None = None,
    ):
        super().__init__(final_loss_window, config)
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(
                f"unknown reconstruction '{reconstruction}': choose one of {RECONSTRUCTIONS}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.regularizer = regularizer
        self.reconstruction = reconstruction
        self.adam_settings = [dict(optimizer)]
        self.adversarial = getattr(regularizer, "discriminator", None) is not None
        if self.adversarial:
            if not discriminator_optimizer:
                raise ValueError(
                    "a regularizer with a discriminator needs model.discriminator_optimizer settings"
                )
            self.adam_settings.append(dict(discriminator_optimizer))
            # two optimizers per step: Lightning 2.x needs manual optimization for that
            self.automatic_optimization = False

    # --- inference -------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> (mu, logvar), each (B, Z)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, Z) -> logits (B, C, H, W)."""
        return self.decoder(z)

    # --- training --------------------------------------------------------------------------------
    def draws(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The reparameterisation noise (B, Z), then the regularizer's own draws."""
        latent_dim = self.encoder.latent_dim
        noise = torch.randn(len(x), latent_dim, generator=generator, device=x.device, dtype=x.dtype)
        return {"noise": noise, **self.regularizer.draws(len(x), latent_dim, generator)}

    def posterior(self, x: torch.Tensor, noise: torch.Tensor) -> Posterior:
        """q(z|x) for a batch x (B, C, H, W), with the sample z = mu + noise * sigma."""
        mu, logvar = self.encode(x)
        z = mu + noise * (0.5 * logvar).exp()
        return Posterior(mu=mu, logvar=logvar, z=z, kl_per_latent=gaussian_kl(mu, logvar))

    def step_terms(
        self, x: torch.Tensor, draws: dict[str, torch.Tensor], step: int
    ) -> dict[str, torch.Tensor]:
        """All loss terms for a batch x (B, C, H, W) and the step's draws; 'loss' is the one that is
        minimised (and 'discriminator_loss' the discriminator's). Pure: a vmap stack runs it on its
        members at once."""
        posterior = self.posterior(x, draws["noise"])
        second = None
        # FactorVAE's paper variant: the second half only feeds the discriminator
        if self.regularizer.splits_batch:
            x = x.chunk(2)[0]
            posterior, second = posterior.halves()
        reconstruction = reconstruction_loss(self.decode(posterior.z), x, self.reconstruction)
        regularization, extra = self.regularizer(posterior, step)
        terms = loss_terms(reconstruction, regularization, extra, posterior)
        if self.adversarial:
            terms.update(self.regularizer.discriminator_terms(posterior, draws, second))
        return terms

    @staticmethod
    def train_step(host: L.LightningModule, calls: MemberCalls) -> torch.Tensor | None:
        """The VAE step of every model `calls` runs; with a discriminator (FactorVAE) the VAEs step
        first, then the discriminators, on the codes of the same forward pass."""
        terms = calls("step_terms")
        values = host.screen(terms, host.alive)
        loss = torch.stack([terms[k]["loss"] for k in values]).sum()
        if host.automatic_optimization:
            host.keep(values, host.global_step + 1)  # Lightning steps after this returns
            return loss
        vae_optimizer, discriminator_optimizer = host.optimizers()
        optimize(host, vae_optimizer, loss, counts_the_step=True)
        discriminator_loss = torch.stack([terms[k]["discriminator_loss"] for k in values]).sum()
        # the VAE's loss left gradients in the discriminators too: optimize() zeroes them first
        optimize(host, discriminator_optimizer, discriminator_loss, counts_the_step=False)
        host.keep(values, host.global_step)
        return None

    def optimizer_settings(self) -> list[dict]:
        return self.adam_settings

    def optimizer_of(self, parameter: str) -> int:
        return 1 if parameter.startswith("regularizer.discriminator.") else 0
