"""InfoGAN (Chen et al. 2016): a GAN whose structured codes c must stay recoverable from G(z, c).

    min_G max_D  V(G, D) − λ·L_I(G, Q),   L_I = E_{c, x~G(z,c)}[−log Q(c|x)] ≥ H(c) − I(c; G(z, c))

Codes: categorical ones (k-way, uniform) and continuous ones (uniform in [−1, 1]); Q(c|x) is a
softmax for each categorical code and a factored Gaussian (mean, log-variance) for the continuous
ones. D and Q share the discriminator's body; D's step minimises its GAN loss + λ·L_I (updating the
body and both heads), G's step the non-saturating GAN loss + λ·L_I. The continuous part of L_I is
weighted by `continuous_weight` on top of λ (the paper uses a smaller λ for continuous codes).

The representation the metrics score is Q's continuous means followed by each categorical code's
probabilities; their "log-variance" is Q's for the continuous codes and −inf (no noise) for the
probabilities.
"""

import math

import lightning as L
import torch
import torch.nn.functional as F

from disent.models.base import DisentModel, MemberCalls, optimize
from disent.nets.gan import Discriminator, Generator


class InfoGAN(DisentModel):
    def __init__(
        self,
        net: str,
        observation_shape: tuple[int, int, int],
        hidden_dim: int,
        noise_dim: int,
        categorical_codes: list[int],
        continuous_codes: int,
        lambda_info: float,
        continuous_weight: float,
        generator_optimizer: dict,
        discriminator_optimizer: dict,
        final_loss_window: int,
        config: dict | None = None,
    ):
        super().__init__(final_loss_window, config)
        if not categorical_codes and continuous_codes <= 0:
            raise ValueError(
                "InfoGAN needs at least one code: set model.categorical_codes or model.continuous_codes"
            )
        self.noise_dim = noise_dim
        self.continuous_codes = continuous_codes
        self.categorical_codes = list(categorical_codes)
        # loss weights as buffers: a vmapped stack's members each have their own
        # (disent.models.stacked)
        self.register_buffer("lambda_info", torch.tensor(float(lambda_info)), persistent=False)
        self.register_buffer(
            "continuous_weight", torch.tensor(float(continuous_weight)), persistent=False
        )
        # one-hot codes + continuous codes
        self.code_dim = sum(self.categorical_codes) + continuous_codes
        self.generator = Generator(net, observation_shape, noise_dim + self.code_dim, hidden_dim)
        # logits, then means and log-variances
        code_outputs = sum(self.categorical_codes) + 2 * continuous_codes
        self.discriminator = Discriminator(net, observation_shape, code_outputs, hidden_dim)
        self.generator_settings = dict(generator_optimizer)
        self.discriminator_settings = dict(discriminator_optimizer)
        self.automatic_optimization = False  # two optimizers per step
        # H(c): log k per categorical code, log 2 per uniform [-1, 1] code (differential entropy)
        self.code_entropy = sum(
            math.log(k) for k in self.categorical_codes
        ) + continuous_codes * math.log(2.0)

    # --- codes -----------------------------------------------------------------------------------
    def draws(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """A batch's noise (B, noise_dim), categorical labels (B, n_categorical) and continuous codes
        (B, n_continuous), and the generator's input made of them (B, noise_dim + code_dim)."""
        batch, device = len(x), x.device
        noise = torch.randn(
            batch, self.noise_dim, generator=generator, device=device, dtype=x.dtype
        )
        labels = torch.zeros(batch, 0, dtype=torch.long, device=device)
        if self.categorical_codes:
            labels = torch.stack(
                [
                    torch.randint(k, (batch,), generator=generator, device=device)
                    for k in self.categorical_codes
                ],
                dim=1,
            )
        continuous = torch.rand(
            batch, self.continuous_codes, generator=generator, device=device, dtype=x.dtype
        )
        continuous = continuous * 2 - 1
        return {
            "labels": labels,
            "continuous": continuous,
            "latent": self.latent(noise, labels, continuous),
        }

    def latent(
        self, noise: torch.Tensor, labels: torch.Tensor, continuous: torch.Tensor
    ) -> torch.Tensor:
        """The generator's input: noise, one-hot categorical codes, continuous codes."""
        one_hots = [
            F.one_hot(labels[:, i], k).to(noise.dtype) for i, k in enumerate(self.categorical_codes)
        ]
        return torch.cat([noise, *one_hots, continuous], dim=1)

    def generate(
        self, noise: torch.Tensor, labels: torch.Tensor, continuous: torch.Tensor
    ) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] for the given noise and codes."""
        return self.generator(self.latent(noise, labels, continuous))

    def _split_code_head(
        self, head: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Q's outputs -> (logits per categorical code, continuous means, continuous log-variances)."""
        logits, start = [], 0
        for k in self.categorical_codes:
            logits.append(head[:, start : start + k])
            start += k
        mean, logvar = (
            head[:, start : start + self.continuous_codes],
            head[:, start + self.continuous_codes :],
        )
        return logits, mean, logvar.clamp(-8.0, 8.0)

    def info_loss(
        self, head: torch.Tensor, labels: torch.Tensor, continuous: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """L_I's parts: categorical cross-entropy and continuous Gaussian negative log-likelihood."""
        logits, mean, logvar = self._split_code_head(head)
        categorical = sum(
            (F.cross_entropy(l, labels[:, i]) for i, l in enumerate(logits)),
            torch.zeros((), device=head.device),
        )
        gaussian = 0.5 * (
            math.log(2 * math.pi) + logvar + (continuous - mean).pow(2) * torch.exp(-logvar)
        )
        continuous_nll = (
            gaussian.sum(dim=1).mean()
            if self.continuous_codes
            else torch.zeros((), device=head.device)
        )
        return {
            "info_categorical": categorical,
            "info_continuous": continuous_nll,
            "info_loss": self.lambda_info * (categorical + self.continuous_weight * continuous_nll),
        }

    # --- representation --------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> (Q's continuous means ++ categorical probabilities, their log-variances)."""
        _, head = self.discriminator(x)
        logits, mean, logvar = self._split_code_head(head)
        probabilities = [torch.softmax(l, dim=1) for l in logits]
        no_noise = [torch.full_like(p, -math.inf) for p in probabilities]
        return torch.cat([mean, *probabilities], dim=1), torch.cat([logvar, *no_noise], dim=1)

    # --- training --------------------------------------------------------------------------------
    def discriminator_terms(
        self, real: torch.Tensor, draws: dict[str, torch.Tensor], step: int
    ) -> dict[str, torch.Tensor]:
        """The discriminator's (and Q's) step: its GAN loss + λ·L_I on the generator's images, which
        are fixed here ('fake', with the generator's graph, goes on to generator_terms)."""
        fake = self.generator(draws["latent"])
        real_logit, _ = self.discriminator(real)
        fake_logit, fake_head = self.discriminator(fake.detach())
        gan = F.binary_cross_entropy_with_logits(
            real_logit, torch.ones_like(real_logit)
        ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        info = self.info_loss(fake_head, draws["labels"], draws["continuous"])
        return {
            "fake": fake,
            "objective": gan + info["info_loss"],
            "discriminator_loss": gan,
            "real_accuracy": (real_logit > 0).to(gan.dtype).mean(),
        }

    def generator_terms(
        self,
        real: torch.Tensor,
        draws: dict[str, torch.Tensor],
        discriminator: dict[str, torch.Tensor],
        step: int,
    ) -> dict[str, torch.Tensor]:
        """The generator's step, through the updated discriminator: the non-saturating GAN loss +
        λ·L_I, and every term the run logs ('loss' is the generator's)."""
        fake_logit, fake_head = self.discriminator(discriminator["fake"])
        gan = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
        info = self.info_loss(fake_head, draws["labels"], draws["continuous"])
        fake_accuracy = (fake_logit.detach() < 0).to(gan.dtype).mean()
        return {
            "loss": gan + info["info_loss"],
            "generator_loss": gan,
            "discriminator_loss": discriminator["discriminator_loss"].detach(),
            "discriminator_accuracy": 0.5 * (discriminator["real_accuracy"] + fake_accuracy),
            **info,
            # H(c) − L_I: the variational lower bound on I(c; G(z, c)) (Chen et al. 2016, lemma 5.1)
            "mutual_info_lower_bound": self.code_entropy
            - (info["info_categorical"] + info["info_continuous"]),
        }

    @staticmethod
    def train_step(host: L.LightningModule, calls: MemberCalls) -> None:
        """The discriminators' step, then the generators' through the updated discriminators."""
        generator_optimizer, discriminator_optimizer = host.optimizers()
        members = host.alive
        discriminator = calls("discriminator_terms")
        objective = torch.stack([discriminator[k]["objective"] for k in members]).sum()
        optimize(host, discriminator_optimizer, objective, counts_the_step=False)
        terms = calls("generator_terms", discriminator)
        loss = torch.stack([terms[k]["loss"] for k in members]).sum()
        optimize(host, generator_optimizer, loss, counts_the_step=True)
        host.keep(host.screen(terms, members), host.global_step)

    def optimizer_settings(self) -> list[dict]:
        return [self.generator_settings, self.discriminator_settings]

    def optimizer_of(self, parameter: str) -> int:
        return 0 if parameter.startswith("generator.") else 1
