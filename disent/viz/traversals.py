"""Reconstructions and latent traversals (Higgins et al. 2017, fig. 1 style).

The functions take `encode` (x -> (mu, logvar)) and `decode` (z -> logits) callables, so they work
for any model with a Gaussian encoder and know nothing about training.
"""

from collections.abc import Callable

import numpy as np
import torch

Encode = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Decode = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def reconstruction_rows(x: torch.Tensor, encode: Encode, decode: Decode) -> np.ndarray:
    """Inputs above their mean reconstructions: (2, B, C, H, W) in [0, 1]."""
    mu, _ = encode(x)
    reconstructions = torch.sigmoid(decode(mu))
    return torch.stack([x, reconstructions]).cpu().numpy()


@torch.no_grad()
def latent_traversals(
    x_ref: torch.Tensor,
    x_batch: torch.Tensor,
    encode: Encode,
    decode: Decode,
    traversal_range: float,
    steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One row per latent, sweeping it over [-range, range] around the code of `x_ref` (1, C, H, W).

    Rows are ordered by the latent's average KL to the prior over `x_batch`, most informative first.
    Returns (images (Z, steps, C, H, W) in [0, 1], the average KL per row (Z,)).
    """
    mu_ref, _ = encode(x_ref)  # (1, Z)
    mu, logvar = encode(x_batch)
    kl = (0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)).mean(dim=0)  # (Z,)
    order = torch.argsort(kl, descending=True)
    values = torch.linspace(-traversal_range, traversal_range, steps, device=mu_ref.device)
    rows = []
    for latent in order:
        z = mu_ref.repeat(steps, 1)  # (steps, Z)
        z[:, latent] = values
        rows.append(torch.sigmoid(decode(z)))
    return torch.stack(rows).cpu().numpy(), kl[order].cpu().numpy()


@torch.no_grad()
def code_traversals(
    generate: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    noise: torch.Tensor,
    labels: torch.Tensor,
    continuous: torch.Tensor,
    categorical_codes: list[int],
    traversal_range: float,
    steps: int,
) -> list[np.ndarray]:
    """InfoGAN's traversals around one (noise (1, N), labels (1, n_cat), continuous (1, n_cont))
    sample.

    One row per categorical code showing each of its values, then one row per continuous code swept
    over [-range, range]; returns a list of rows, each (1, columns, C, H, W) in [0, 1].
    """
    rows = []
    for i, k in enumerate(categorical_codes):
        row_labels = labels.repeat(k, 1)
        row_labels[:, i] = torch.arange(k, device=labels.device)
        rows.append(generate(noise.repeat(k, 1), row_labels, continuous.repeat(k, 1)))
    values = torch.linspace(-traversal_range, traversal_range, steps, device=noise.device)
    for j in range(continuous.shape[1]):
        row_continuous = continuous.repeat(steps, 1)
        row_continuous[:, j] = values
        rows.append(generate(noise.repeat(steps, 1), labels.repeat(steps, 1), row_continuous))
    return [row.cpu().numpy()[None] for row in rows]
