"""K InfoGANs of one architecture trained as one model: generators and discriminators stacked along a
member dimension and run with vmap, each member with its own λ, seed, codes and data stream (see
disent.models.stacked for why a stacked member matches its single run)."""

import torch
import torch.nn.functional as F

from disent.models.base import adam
from disent.models.infogan import InfoGAN
from disent.models.stacked import StackedModel, _Stack, step_generator


class StackedInfoGAN(StackedModel):
    """K InfoGAN members (same nets, codes and optimizer settings) trained together; batches (K, B, C, H, W)."""

    def __init__(self, members: list[InfoGAN], final_loss_window: int, history_every: tuple[int, ...] = (),
                 vectorize: bool = True):
        super().__init__(members, final_loss_window, history_every, vectorize)
        first = members[0]
        for member in members[1:]:
            if (member.categorical_codes != first.categorical_codes or member.continuous_codes != first.continuous_codes
                    or member.noise_dim != first.noise_dim or member.generator_settings != first.generator_settings
                    or member.discriminator_settings != first.discriminator_settings
                    or any(a.shape != b.shape for a, b in zip(member.parameters(), first.parameters(), strict=True))):
                raise ValueError("stacked InfoGAN members need the same nets, codes and optimizer settings")
        self.automatic_optimization = False
        self.generators = _Stack([m.generator for m in members], vectorize)
        self.discriminators = _Stack([m.discriminator for m in members], vectorize)

    def sample_codes(self, batch: int, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Member k's (noise, labels, continuous codes) of this step: its single run's draws, in its order."""
        member, device = self.members[k], self.device
        generator = step_generator(self.seeds[k], self.global_step, device)
        noise = torch.randn(batch, member.noise_dim, generator=generator, device=device)
        labels = torch.stack([torch.randint(n, (batch,), generator=generator, device=device)
                              for n in member.categorical_codes], dim=1) \
            if member.categorical_codes else torch.zeros(batch, 0, dtype=torch.long, device=device)
        continuous = torch.rand(batch, member.continuous_codes, generator=generator, device=device) * 2 - 1
        return noise, labels, continuous

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        generator_optimizer, discriminator_optimizer = self.optimizers()
        real, members, size = batch, self.alive, batch.shape[1]                  # real (K, B, C, H, W)
        codes = [self.sample_codes(size, k) for k in range(self.size)]
        inputs = []
        for k, (noise, labels, continuous) in enumerate(codes):
            one_hots = [F.one_hot(labels[:, i], n).float() for i, n in enumerate(self.members[k].categorical_codes)]
            inputs.append(torch.cat([noise, *one_hots, continuous], dim=1))
        fake = self.generators(torch.stack(inputs))                              # (K, B, C, H, W)
        ones, zeros = torch.ones(size, device=self.device), torch.zeros(size, device=self.device)

        # discriminator (and Q) step, as InfoGAN.training_step for every member at once
        real_logit, _ = self.discriminators(real)
        fake_logit, fake_head = self.discriminators(fake.detach())
        discriminator_gan, info_d = {}, {}
        for k in members:
            discriminator_gan[k] = F.binary_cross_entropy_with_logits(real_logit[k], ones) \
                + F.binary_cross_entropy_with_logits(fake_logit[k], zeros)
            info_d[k] = self.members[k].info_loss(fake_head[k], *codes[k][1:])
        discriminator_optimizer.zero_grad()
        self.manual_backward(torch.stack([discriminator_gan[k] + info_d[k]["info_loss"] for k in members]).sum())
        discriminator_optimizer.optimizer.step()

        # generator step through the updated discriminators
        fake_logit, fake_head = self.discriminators(fake)
        terms: list[dict[str, torch.Tensor] | None] = [None] * self.size
        generator_losses = []
        for k in members:
            member = self.members[k]
            generator_gan = F.binary_cross_entropy_with_logits(fake_logit[k], ones)
            info_g = member.info_loss(fake_head[k], *codes[k][1:])
            generator_losses.append(generator_gan + info_g["info_loss"])
            accuracy = 0.5 * ((real_logit[k] > 0).float().mean() + (fake_logit[k].detach() < 0).float().mean())
            terms[k] = {"loss": generator_gan + info_g["info_loss"], "generator_loss": generator_gan,
                        "discriminator_loss": discriminator_gan[k], "discriminator_accuracy": accuracy, **info_g,
                        "mutual_info_lower_bound": member.code_entropy
                        - (info_g["info_categorical"] + info_g["info_continuous"])}
        generator_optimizer.zero_grad()
        self.manual_backward(torch.stack(generator_losses).sum())
        generator_optimizer.step()
        self._record(self._screen(terms, members), self.global_step)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        first = self.members[0]
        return [adam(self.generators.parameters(), first.generator_settings),
                adam(self.discriminators.parameters(), first.discriminator_settings)]

    def unstack(self) -> list[InfoGAN]:
        """The members, each holding its trained weights (on the CPU)."""
        for k, member in enumerate(self.members):
            self._unstack_into(k, [(member.generator, self.generators), (member.discriminator, self.discriminators)])
        return self.members
