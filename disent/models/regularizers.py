"""The term that a VAE objective adds to the reconstruction loss.

Every VAE of the zoo is `loss = reconstruction + regularizer(posterior, step)`; the regularizer is
picked by `model.name` and built from the model's YAML keys of the same names as its fields, so a
new objective is one small class (here, or in a module of your own named in the config's `imports`),
registered with its schema by `register_objective`, and one YAML file in `conf/model/` (README: "A
new objective").
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Posterior:
    """What the encoder said about a batch: q(z|x) = N(mu, exp(logvar))."""

    mu: torch.Tensor  # (B, Z)
    logvar: torch.Tensor  # (B, Z)
    z: torch.Tensor  # (B, Z) one reparameterised sample
    kl_per_latent: torch.Tensor  # (B, Z) KL(q(z_i|x) || N(0, 1)), per sample and latent

    def halves(self) -> tuple["Posterior", "Posterior"]:
        """The posteriors of the batch's first and second half."""
        parts = [t.chunk(2) for t in (self.mu, self.logvar, self.z, self.kl_per_latent)]
        first = Posterior(*(part[0] for part in parts))
        second = Posterior(*(part[1] for part in parts))
        return first, second

    @property
    def kl(self) -> torch.Tensor:
        """KL(q(z|x) || p(z)) summed over latents, averaged over the batch: a scalar."""
        return self.kl_per_latent.sum(dim=1).mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) element-wise: 0.5 (mu^2 + sigma^2 - log sigma^2 - 1)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)


class Regularizer(nn.Module):
    """Base class: returns (the loss term that replaces the KL, named values to log).

    Loss weights (β, γ, λ_od, ...) are given to `__init__` by name and held as buffers, so that the
    members of a vmapped stack (disent.models.stacked) each train with their own; the rest of a
    regularizer (its variant, the data set size) is plain Python, equal within a stack. `forward`
    must be pure: any random draw it needs comes from `draws`, which the training step calls with
    the step's own generator.

    A regularizer with a `discriminator` submodule (FactorVAE) also implements
    `discriminator_terms`; the VAE then trains the discriminator with its own optimizer
    (`discriminator_optimizer`).
    """

    def __init__(self, **loss_weights: float):
        super().__init__()
        for name, value in loss_weights.items():
            # not persistent: the run config holds them, and a checkpoint's weights stay the nets'
            # own
            self.register_buffer(name, torch.tensor(float(value)), persistent=False)

    def forward(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    splits_batch = False  # FactorVAE's paper variant: the first half trains the VAE, the second the discriminator

    def draws(
        self, batch_size: int, latent_dim: int, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """The random draws of one step besides the posterior's noise (FactorVAE's permutation)."""
        return {}


class LinearSchedule(nn.Module):
    """A value that moves linearly from `start` to `end` over `steps` training steps, then stays at
    `end` (a tensor: its three numbers are loss weights, buffers of their own)."""

    def __init__(self, start: float, end: float, steps: int):
        super().__init__()
        for name, value in (("start", start), ("end", end), ("steps", steps)):
            self.register_buffer(name, torch.tensor(float(value)), persistent=False)

    def forward(self, step: int) -> torch.Tensor:
        progress = (step / self.steps.clamp(min=1)).clamp(max=1.0)
        # no steps: `end` at once
        progress = torch.where(self.steps > 0, progress, torch.ones_like(progress))
        return self.start + (self.end - self.start) * progress


class BetaVAELoss(Regularizer):
    """β-VAE (Higgins et al. 2017): β·KL(q(z|x) || p(z)). β = 1 is the plain VAE's ELBO."""

    def __init__(self, beta: float):
        super().__init__(beta=beta)

    def forward(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.beta * posterior.kl, {}


class AnnealedVAELoss(Regularizer):
    """Controlled capacity (Burgess et al. 2018, "AnnealedVAE" in Locatello et al.): γ·|KL − C(step)|.

    C follows `capacity_schedule` (disentanglement_lib: from 0 to c_max over iteration_threshold
    steps, then held), so the KL is pushed towards a capacity that grows during training.
    """

    def __init__(self, gamma: float, capacity_schedule: dict):
        super().__init__(gamma=gamma)
        self.capacity = LinearSchedule(**capacity_schedule)

    def forward(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        capacity = self.capacity(step)
        return self.gamma * (posterior.kl - capacity).abs(), {"capacity": capacity}


def dip_penalties(covariance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ_{i≠j} C_ij², Σ_i (C_ii − 1)²) of a (Z, Z) covariance matrix."""
    diagonal = torch.diagonal(covariance)
    off_diagonal = covariance - torch.diag(diagonal)
    return off_diagonal.pow(2).sum(), (diagonal - 1).pow(2).sum()


class DIPVAELoss(Regularizer):
    """DIP-VAE (Kumar et al. 2018): KL + λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)².

    dip_type "i": C = Cov_batch[μ(x)]. dip_type "ii": C = Cov_batch[μ(x)] + diag(mean_batch σ²(x)),
    the covariance of the aggregate posterior, whose encoder variances add to the diagonal only.
    Cov_batch is the biased batch covariance E[μμᵀ] − E[μ]E[μ]ᵀ, as in disentanglement_lib.
    """

    def __init__(self, lambda_od: float, lambda_d: float, dip_type: str):
        super().__init__(lambda_od=lambda_od, lambda_d=lambda_d)
        if dip_type not in ("i", "ii"):
            raise ValueError(f"dip_type must be 'i' or 'ii', got '{dip_type}'")
        self.dip_type = dip_type

    def forward(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mu = posterior.mu  # (B, Z)
        centred = mu - mu.mean(dim=0, keepdim=True)
        covariance = centred.T @ centred / mu.shape[0]  # (Z, Z)
        if self.dip_type == "ii":
            covariance = covariance + torch.diag(posterior.logvar.exp().mean(dim=0))
        off_diagonal, diagonal = dip_penalties(covariance)
        penalty = self.lambda_od * off_diagonal + self.lambda_d * diagonal
        return posterior.kl + penalty, {
            "dip_off_diagonal": off_diagonal,
            "dip_diagonal": diagonal,
            "dip_penalty": penalty,
        }


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) element-wise (broadcasting)."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def tc_decomposition(
    posterior: Posterior, dataset_size: int, estimator: str = "mws"
) -> dict[str, torch.Tensor]:
    """Chen et al. 2018's decomposition of E[KL(q(z|x) || p(z))] on a batch, from the sampled z.

    index-code MI  = E[log q(z|x) − log q(z)]
    total corr.    = E[log q(z) − Σ_d log q(z_d)]
    dimension KL   = E[Σ_d log q(z_d) − log p(z)]
    q(z) and q(z_d) are estimated from the batch with minibatch-weighted sampling ("mws":
    log q(z) ≈ logsumexp_j log q(z|x_j) − log(N·M), N the data set size, M the batch size) or
    minibatch-stratified sampling ("mss"). The three terms add up to the batch's single-sample
    estimate of the KL, E[log q(z|x) − log p(z)].
    """
    z, mu, logvar = posterior.z, posterior.mu, posterior.logvar
    batch = z.shape[0]
    log_qz_given_x = gaussian_log_density(z, mu, logvar).sum(dim=1)  # (B,)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=1)  # (B,)
    # pairwise[i, j, d] = log q(z_id | x_j)
    pairwise = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])  # (B, B, Z)
    if estimator == "mws":
        log_weights = torch.full(
            (batch, batch), -math.log(dataset_size * batch), device=z.device, dtype=z.dtype
        )
    elif estimator == "mss":
        log_weights = _stratified_log_weights(batch, dataset_size, z)
    else:
        raise ValueError(f"estimator must be 'mws' or 'mss', got '{estimator}'")
    log_qz = torch.logsumexp(pairwise.sum(dim=2) + log_weights, dim=1)  # (B,)
    log_qz_dims = torch.logsumexp(pairwise + log_weights[:, :, None], dim=1).sum(dim=1)  # (B,)
    return {
        "mutual_info": (log_qz_given_x - log_qz).mean(),
        "total_correlation": (log_qz - log_qz_dims).mean(),
        "dimension_kl": (log_qz_dims - log_pz).mean(),
    }


def _stratified_log_weights(batch: int, dataset_size: int, like: torch.Tensor) -> torch.Tensor:
    """Log importance weights of minibatch-stratified sampling (Chen et al. 2018, appendix)."""
    n, m = dataset_size, batch - 1
    strat_weight = (n - m) / (n * m)
    weights = torch.full((batch, batch), 1 / m, device=like.device, dtype=like.dtype)
    weights.view(-1)[:: m + 1] = 1 / n  # the sample's own posterior
    weights.view(-1)[1 :: m + 1] = strat_weight
    weights[m - 1, 0] = strat_weight
    return weights.log()


class BetaTCVAELoss(Regularizer):
    """β-TCVAE (Chen et al. 2018): KL + (β − 1)·TC, so the total correlation is weighted by β in all.

    disentanglement_lib leaves log(N·M) out of its estimator; that shifts its TC by a constant
    (D − 1)·log(N·M) and changes no gradient. Here the data set size is in the estimator, so the
    logged TC and decomposition are the estimator's values.
    """

    def __init__(self, beta: float, dataset_size: int, estimator: str):
        super().__init__(beta=beta)
        self.dataset_size = dataset_size
        self.estimator = estimator
        if estimator not in ("mws", "mss"):
            raise ValueError(f"estimator must be 'mws' or 'mss', got '{estimator}'")

    def forward(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = tc_decomposition(posterior, self.dataset_size, self.estimator)
        return posterior.kl + (self.beta - 1) * terms["total_correlation"], terms


def permutation_order(
    batch_size: int,
    latent_dim: int,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """(B, Z) indices: for each latent dimension its own random order of the batch."""
    return torch.argsort(
        torch.rand(batch_size, latent_dim, device=device, generator=generator), dim=0
    )


def permute_dims(z: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Each latent dimension of z (B, Z) shuffled across the batch by `order` (permutation_order):
    samples of Π_d q(z_d)."""
    return torch.gather(z, 0, order)


class Discriminator(nn.Module):
    """FactorVAE's discriminator: an MLP (6 x 1000, leaky ReLU 0.2) from z to 2 logits (joint, permuted)."""

    def __init__(self, latent_dim: int, hidden_dim: int = 1000, num_layers: int = 6):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers += [
                nn.Linear(latent_dim if i == 0 else hidden_dim, hidden_dim),
                nn.LeakyReLU(0.2),
            ]
        self.net = nn.Sequential(*layers, nn.Linear(hidden_dim, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class FactorVAELoss(Regularizer):
    """FactorVAE (Kim & Mnih 2018): KL + γ·TC with TC ≈ E[log D(z) − log(1 − D(z))] = E[logit_0 −
    logit_1].

    The discriminator learns to tell z ~ q(z) (class 0) from permuted codes ~ Π_d q(z_d) (class 1).
    permute: "same" permutes the batch's own codes (disentanglement_lib); "second" permutes the codes
    of a second batch, as the paper's algorithm: the batch is split in halves, the first trains the
    VAE and the second, permuted, the discriminator (so use twice the batch size).
    """

    def __init__(self, gamma: float, latent_dim: int, discriminator: dict, permute: str):
        super().__init__(gamma=gamma)
        if permute not in ("same", "second"):
            raise ValueError(f"permute must be 'same' or 'second', got '{permute}'")
        self.permute = permute
        self.splits_batch = permute == "second"  # the VAE trains on the first half only
        self.discriminator = Discriminator(
            latent_dim, discriminator["hidden_dim"], discriminator["num_layers"]
        )

    def forward(
        self, posterior: Posterior, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = self.discriminator(posterior.z)
        total_correlation = (logits[:, 0] - logits[:, 1]).mean()
        return posterior.kl + self.gamma * total_correlation, {
            "total_correlation": total_correlation
        }

    def draws(
        self, batch_size: int, latent_dim: int, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        # the second half, or the whole batch
        permuted = batch_size // 2 if self.splits_batch else batch_size
        return {"order": permutation_order(permuted, latent_dim, generator, generator.device)}

    def discriminator_terms(
        self, posterior: Posterior, draws: dict[str, torch.Tensor], second: Posterior | None = None
    ) -> dict[str, torch.Tensor]:
        """The discriminator's loss (cross-entropy of joint codes vs codes permuted by draws["order"],
        those of `second` if given) and accuracy; the codes are detached, so only the discriminator
        learns from it."""
        z = posterior.z.detach()
        permuted = permute_dims((second or posterior).z.detach(), draws["order"])
        logits_joint = self.discriminator(z)
        logits_permuted = self.discriminator(permuted)
        zeros = torch.zeros(len(z), dtype=torch.long, device=z.device)
        ones = torch.ones(len(permuted), dtype=torch.long, device=z.device)
        loss = 0.5 * (F.cross_entropy(logits_joint, zeros) + F.cross_entropy(logits_permuted, ones))
        joint_right = (logits_joint.argmax(1) == 0).float().mean()
        permuted_right = (logits_permuted.argmax(1) == 1).float().mean()
        return {
            "discriminator_loss": loss,
            "discriminator_accuracy": 0.5 * (joint_right + permuted_right),
        }


REGULARIZERS: dict[str, type[Regularizer]] = {
    "beta_vae": BetaVAELoss,
    "annealed_vae": AnnealedVAELoss,
    "dip_vae_i": DIPVAELoss,
    "dip_vae_ii": DIPVAELoss,
    "beta_tcvae": BetaTCVAELoss,
    "factor_vae": FactorVAELoss,
}


def register_objective(name: str, schema: type) -> Callable[[type[Regularizer]], type[Regularizer]]:
    """Class decorator: the VAE objective `model=<name>` is `loss = reconstruction + <the
    class>(posterior, step)`, its config checked by `schema` (a dataclass deriving
    disent.schema.VAE, with a field for each argument of the class; loss weights marked
    `spec(per_member=True)` may differ within a stack).

    The class is built from the model's YAML keys named like its arguments (and `dataset_size`, the
    data set's size, if it asks for it). It then trains alone, in multiruns and in stacks like the
    zoo's own objectives."""
    from disent.schema import MODELS, VAE

    if not (isinstance(schema, type) and issubclass(schema, VAE)):
        raise TypeError(
            f"register_objective({name!r}): the schema must be a dataclass deriving disent.schema.VAE"
        )

    def register(cls: type[Regularizer]) -> type[Regularizer]:
        if not issubclass(cls, Regularizer):
            raise TypeError(f"register_objective({name!r}): {cls.__name__} must derive Regularizer")
        if name in REGULARIZERS and REGULARIZERS[name].__qualname__ != cls.__qualname__:
            raise ValueError(
                f"the objective {name!r} is already registered ({REGULARIZERS[name].__name__})"
            )
        REGULARIZERS[name] = cls
        MODELS[name] = schema
        return cls

    return register
