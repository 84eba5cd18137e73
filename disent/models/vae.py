"""The VAE family as one LightningModule: loss = reconstruction + regularizer(q(z|x)).

Reconstruction is summed over pixels and averaged over the batch, so β and the other loss weights
are on the scale of the papers (not per-pixel averaged).
"""

import torch
import torch.nn.functional as F
from torch import nn

from disent.models.base import DisentModel, adam
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
        raise ValueError(f"unknown reconstruction '{distribution}': choose one of {RECONSTRUCTIONS}")
    return per_pixel.flatten(1).sum(dim=1).mean()


def loss_terms(reconstruction: torch.Tensor, regularization: torch.Tensor, extra: dict[str, torch.Tensor],
               posterior: Posterior) -> dict[str, torch.Tensor]:
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
    terms.update({f"kl_z{i}": value for i, value in enumerate(kl_per_latent)})
    return terms


class VAE(DisentModel):
    """A Gaussian encoder, a decoder of logits, and a regularizer chosen by config."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, regularizer: Regularizer,
                 reconstruction: str, optimizer: dict, final_loss_window: int, config: dict | None = None,
                 discriminator_optimizer: dict | None = None):
        super().__init__(final_loss_window, config)
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"unknown reconstruction '{reconstruction}': choose one of {RECONSTRUCTIONS}")
        self.encoder, self.decoder, self.regularizer = encoder, decoder, regularizer
        self.reconstruction = reconstruction
        self.optimizer_settings = dict(optimizer)
        self.discriminator_optimizer_settings = dict(discriminator_optimizer or {})
        if getattr(regularizer, "discriminator", None) is not None:
            if not discriminator_optimizer:
                raise ValueError("a regularizer with a discriminator needs model.discriminator_optimizer settings")
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
    def posterior(self, x: torch.Tensor) -> Posterior:
        """q(z|x) for a batch x (B, C, H, W), with one reparameterised sample z."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return Posterior(mu=mu, logvar=logvar, z=z, kl_per_latent=gaussian_kl(mu, logvar))

    def compute_losses(self, x: torch.Tensor, posterior: Posterior | None = None) -> dict[str, torch.Tensor]:
        """All loss terms for a batch x (B, C, H, W); 'loss' is the one that is minimised."""
        posterior = posterior or self.posterior(x)
        reconstruction = reconstruction_loss(self.decode(posterior.z), x, self.reconstruction)
        regularization, extra = self.regularizer(posterior, self.global_step)
        return loss_terms(reconstruction, regularization, extra, posterior)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor | None:
        if self.automatic_optimization:
            terms = self.compute_losses(batch)
        else:
            terms = self._adversarial_step(batch)
        self.record(terms, batch.shape[0])
        return terms["loss"] if self.automatic_optimization else None

    def _adversarial_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One VAE step and one discriminator step on the same batch (FactorVAE)."""
        vae_optimizer, discriminator_optimizer = self.optimizers()
        second = None
        if getattr(self.regularizer, "permute", "same") == "second":  # the paper's two batches: halves
            batch, second_batch = batch.chunk(2)
            second = self.posterior(second_batch)
        posterior = self.posterior(batch)
        terms = self.compute_losses(batch, posterior)
        vae_optimizer.zero_grad()
        self.manual_backward(terms["loss"])
        vae_optimizer.step()
        # the discriminator's step goes to the raw optimizer so that Lightning's global_step counts
        # batches (as max_steps and the papers do), not optimizer steps
        discriminator_loss, extra = self.regularizer.discriminator_loss(posterior, second)
        discriminator_optimizer.zero_grad()
        self.manual_backward(discriminator_loss)
        discriminator_optimizer.optimizer.step()
        return {**terms, **extra}

    def configure_optimizers(self) -> torch.optim.Optimizer | list[torch.optim.Optimizer]:
        vae_parameters = [*self.encoder.parameters(), *self.decoder.parameters()]
        vae_optimizer = adam(vae_parameters, self.optimizer_settings)
        if getattr(self.regularizer, "discriminator", None) is None:
            return vae_optimizer
        return [vae_optimizer, adam(self.regularizer.discriminator.parameters(),
                                     self.discriminator_optimizer_settings)]

