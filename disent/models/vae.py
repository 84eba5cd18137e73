"""The VAE family as one LightningModule: loss = reconstruction + regularizer(q(z|x)).

Reconstruction is summed over pixels and averaged over the batch, so β and the other loss weights
are on the scale of the papers (not per-pixel averaged).
"""

import math
from collections import deque

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

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


class VAE(L.LightningModule):
    """A Gaussian encoder, a decoder of logits, and a regularizer chosen by config."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, regularizer: Regularizer,
                 reconstruction: str, optimizer: dict, final_loss_window: int, config: dict | None = None):
        super().__init__()
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"unknown reconstruction '{reconstruction}': choose one of {RECONSTRUCTIONS}")
        self.encoder, self.decoder, self.regularizer = encoder, decoder, regularizer
        self.reconstruction = reconstruction
        self.optimizer_settings = dict(optimizer)
        # the resolved run config travels inside the checkpoint, so a checkpoint alone can be rebuilt
        self.save_hyperparameters({"config": config or {}})
        self.recent_losses: deque[dict[str, float]] = deque(maxlen=final_loss_window)
        self.loss_trace: list[float] = []  # total loss per step, for tests and quick plots

    # --- inference -------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> (mu, logvar), each (B, Z)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, Z) -> logits (B, C, H, W)."""
        return self.decoder(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean reconstruction, as pixel intensities in [0, 1]."""
        mu, _ = self.encode(x)
        return torch.sigmoid(self.decode(mu))

    # --- training --------------------------------------------------------------------------------
    def compute_losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """All loss terms for a batch x (B, C, H, W); 'loss' is the one that is minimised."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        posterior = Posterior(mu=mu, logvar=logvar, z=z, kl_per_latent=gaussian_kl(mu, logvar))
        reconstruction = reconstruction_loss(self.decode(z), x, self.reconstruction)
        regularization, extra = self.regularizer(posterior, self.global_step)
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

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        terms = self.compute_losses(batch)
        # one device->host copy for all terms, used for the NaN check and the results file
        values = dict(zip(terms, torch.stack([t.detach().float() for t in terms.values()]).tolist(), strict=True))
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        if bad:
            raise FloatingPointError(
                f"non-finite loss at step {self.global_step}: "
                + ", ".join(f"{name}={values[name]}" for name in bad)
            )
        self.recent_losses.append(values)
        self.loss_trace.append(values["loss"])
        self.log_dict({f"train/{name}": value for name, value in terms.items()}, on_step=True,
                      on_epoch=False, batch_size=batch.shape[0])
        return terms["loss"]

    def final_losses(self) -> dict[str, float]:
        """Each loss term averaged over the last `final_loss_window` steps."""
        if not self.recent_losses:
            return {}
        names = self.recent_losses[0].keys()
        return {name: sum(d[name] for d in self.recent_losses) / len(self.recent_losses) for name in names}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        settings = self.optimizer_settings
        return torch.optim.Adam(self.parameters(), lr=settings["lr"], betas=tuple(settings["betas"]),
                                eps=settings["eps"], weight_decay=settings["weight_decay"])
