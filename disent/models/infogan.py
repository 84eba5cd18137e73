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

import torch
import torch.nn.functional as F

from disent.models.base import DisentModel, adam
from disent.nets.gan import Discriminator, Generator


class InfoGAN(DisentModel):
    def __init__(self, net: str, observation_shape: tuple[int, int, int], hidden_dim: int, noise_dim: int,
                 categorical_codes: list[int], continuous_codes: int, lambda_info: float, continuous_weight: float,
                 generator_optimizer: dict, discriminator_optimizer: dict, final_loss_window: int,
                 config: dict | None = None):
        super().__init__(final_loss_window, config)
        if not categorical_codes and continuous_codes <= 0:
            raise ValueError("InfoGAN needs at least one code: set model.categorical_codes or model.continuous_codes")
        self.noise_dim, self.continuous_codes = noise_dim, continuous_codes
        self.categorical_codes = list(categorical_codes)
        self.lambda_info, self.continuous_weight = lambda_info, continuous_weight
        self.code_dim = sum(self.categorical_codes) + continuous_codes  # one-hot codes + continuous codes
        self.generator = Generator(net, observation_shape, noise_dim + self.code_dim, hidden_dim)
        code_outputs = sum(self.categorical_codes) + 2 * continuous_codes  # logits, then means and log-variances
        self.discriminator = Discriminator(net, observation_shape, code_outputs, hidden_dim)
        self.generator_settings, self.discriminator_settings = dict(generator_optimizer), dict(discriminator_optimizer)
        self.automatic_optimization = False  # two optimizers per step
        # H(c): log k per categorical code, log 2 per uniform [-1, 1] code (differential entropy)
        self.code_entropy = sum(math.log(k) for k in self.categorical_codes) + continuous_codes * math.log(2.0)

    # --- codes -----------------------------------------------------------------------------------
    def sample_codes(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(noise (B, noise_dim), categorical labels (B, n_categorical), continuous codes (B, n_continuous))."""
        noise = torch.randn(batch, self.noise_dim, device=self.device)
        labels = torch.stack([torch.randint(k, (batch,), device=self.device) for k in self.categorical_codes], dim=1) \
            if self.categorical_codes else torch.zeros(batch, 0, dtype=torch.long, device=self.device)
        continuous = torch.rand(batch, self.continuous_codes, device=self.device) * 2 - 1
        return noise, labels, continuous

    def generate(self, noise: torch.Tensor, labels: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] for the given noise and codes."""
        one_hots = [F.one_hot(labels[:, i], k).float() for i, k in enumerate(self.categorical_codes)]
        return self.generator(torch.cat([noise, *one_hots, continuous], dim=1))

    def _split_code_head(self, head: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Q's outputs -> (logits per categorical code, continuous means, continuous log-variances)."""
        logits, start = [], 0
        for k in self.categorical_codes:
            logits.append(head[:, start:start + k])
            start += k
        mean, logvar = head[:, start:start + self.continuous_codes], head[:, start + self.continuous_codes:]
        return logits, mean, logvar.clamp(-8.0, 8.0)

    def info_loss(self, head: torch.Tensor, labels: torch.Tensor, continuous: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_I's parts: categorical cross-entropy and continuous Gaussian negative log-likelihood."""
        logits, mean, logvar = self._split_code_head(head)
        categorical = sum((F.cross_entropy(l, labels[:, i]) for i, l in enumerate(logits)),
                          torch.zeros((), device=head.device))
        gaussian = 0.5 * (math.log(2 * math.pi) + logvar + (continuous - mean).pow(2) * torch.exp(-logvar))
        continuous_nll = gaussian.sum(dim=1).mean() if self.continuous_codes else torch.zeros((), device=head.device)
        return {"info_categorical": categorical, "info_continuous": continuous_nll,
                "info_loss": self.lambda_info * (categorical + self.continuous_weight * continuous_nll)}

    # --- representation --------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> (Q's continuous means ++ categorical probabilities, their log-variances)."""
        _, head = self.discriminator(x)
        logits, mean, logvar = self._split_code_head(head)
        probabilities = [torch.softmax(l, dim=1) for l in logits]
        no_noise = [torch.full_like(p, -math.inf) for p in probabilities]
        return torch.cat([mean, *probabilities], dim=1), torch.cat([logvar, *no_noise], dim=1)

    # --- training --------------------------------------------------------------------------------
    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        generator_optimizer, discriminator_optimizer = self.optimizers()
        real = batch
        noise, labels, continuous = self.sample_codes(real.shape[0])
        fake = self.generate(noise, labels, continuous)
        ones, zeros = torch.ones(len(real), device=self.device), torch.zeros(len(real), device=self.device)

        # discriminator (and Q) step: the generator's images are fixed here
        real_logit, _ = self.discriminator(real)
        fake_logit, fake_head = self.discriminator(fake.detach())
        discriminator_gan = F.binary_cross_entropy_with_logits(real_logit, ones) \
            + F.binary_cross_entropy_with_logits(fake_logit, zeros)
        info_d = self.info_loss(fake_head, labels, continuous)
        discriminator_optimizer.zero_grad()
        self.manual_backward(discriminator_gan + info_d["info_loss"])
        # the raw optimizer: Lightning's global_step then counts batches (one generator step each)
        discriminator_optimizer.optimizer.step()

        # generator step: non-saturating GAN loss + λ·L_I through the updated discriminator
        fake_logit, fake_head = self.discriminator(fake)
        generator_gan = F.binary_cross_entropy_with_logits(fake_logit, ones)
        info_g = self.info_loss(fake_head, labels, continuous)
        generator_optimizer.zero_grad()
        self.manual_backward(generator_gan + info_g["info_loss"])
        generator_optimizer.step()

        accuracy = 0.5 * ((real_logit > 0).float().mean() + (fake_logit.detach() < 0).float().mean())
        terms = {
            "loss": generator_gan + info_g["info_loss"],
            "generator_loss": generator_gan,
            "discriminator_loss": discriminator_gan,
            "discriminator_accuracy": accuracy,
            **info_g,
            # H(c) − L_I: the variational lower bound on I(c; G(z, c)) (Chen et al. 2016, lemma 5.1)
            "mutual_info_lower_bound": self.code_entropy - (info_g["info_categorical"] + info_g["info_continuous"]),
        }
        self.record({k: v.detach() for k, v in terms.items()}, real.shape[0])

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [adam(self.generator.parameters(), self.generator_settings),
                adam(self.discriminator.parameters(), self.discriminator_settings)]
