"""K VAEs of one architecture trained as one model: the members' parameters stacked along a leading
member dimension and run with `torch.func.vmap` (on a GPU, which one small VAE at batch 64 leaves mostly
idle) or one member after another (on a CPU, which one VAE already keeps busy: there the stack still
shares one Lightning step, one data batch and one Adam call among its members).

Each member keeps everything that makes it a run of its own: its initial weights (built from its own
seed), its loss weights (its own regularizer: β, γ, c_max, λ_od, ...), its data stream and its random
draws (seeded by (its seed, step), as a single run's are). The loss is the sum of the members' losses,
so each member's gradient is its own loss's gradient, and Adam, being element-wise, updates each slice
of a stacked parameter exactly as K separate Adams would. A member trained in a stack therefore matches
its single run up to float rounding (vmap may pick other kernels).
"""

import copy
import math
from collections import deque

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from disent.models.base import adam
from disent.models.regularizers import Posterior, gaussian_kl
from disent.models.vae import VAE, loss_terms, reconstruction_loss


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The generator of a run's random draws at `step`: what DisentModel.on_train_batch_start seeds."""
    return torch.Generator(device=device).manual_seed(
        int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))


class _Stack(nn.Module):
    """The parameters of K copies of one module, (K, ...) each, and a call that runs all K: at once with
    vmap (`vectorize`), or one member after another on its slice of the stack."""

    def __init__(self, modules: list[nn.Module], vectorize: bool = True):
        super().__init__()
        self.vectorize = vectorize
        params, buffers = stack_module_state(modules)
        self.names = list(params)
        # ParameterDict keys cannot hold dots
        self.stacked = nn.ParameterDict({n.replace(".", "/"): nn.Parameter(p.detach()) for n, p in params.items()})
        for name, value in buffers.items():
            self.register_buffer(name.replace(".", "/"), value)
        self.buffer_names = list(buffers)
        template = copy.deepcopy(modules[0]).to("meta")  # the architecture only; weights come from the stack
        self._template = [template]  # in a list: not a submodule, so Lightning never moves or saves it

    def forward(self, *inputs: torch.Tensor):
        """inputs (K, ...) each -> the module's outputs for each member, (K, ...)."""
        state = {n: self.stacked[n.replace(".", "/")] for n in self.names}
        state |= {n: getattr(self, n.replace(".", "/")) for n in self.buffer_names}

        def one(member_state, *member_inputs):
            return functional_call(self._template[0], member_state, member_inputs)

        if self.vectorize:
            return vmap(one)(state, *inputs)
        # unbind, not [k]: its backward writes all K slices' gradients into the stack in one copy
        slices = {n: t.unbind(0) for n, t in state.items()}
        member_inputs = [x.unbind(0) for x in inputs]
        outputs = [one({n: s[k] for n, s in slices.items()}, *(x[k] for x in member_inputs))
                   for k in range(len(member_inputs[0]))]
        if isinstance(outputs[0], tuple):
            return tuple(torch.stack(parts) for parts in zip(*outputs, strict=True))
        return torch.stack(outputs)

    def member_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weights, named as in the original module."""
        state = {n: self.stacked[n.replace(".", "/")][k] for n in self.names}
        return state | {n: getattr(self, n.replace(".", "/"))[k] for n in self.buffer_names}


class _Method(nn.Module):
    """module.<name>(...) as a forward, so functional_call can run a method other than forward."""

    def __init__(self, module: nn.Module, name: str):
        super().__init__()
        self.module, self.name = module, name

    def forward(self, *args):
        return getattr(self.module, self.name)(*args)


def _use_generator(generator: torch.Generator) -> None:
    """Continue the global RNG of the generator's device from `generator`'s state (what a single run's
    draws after its z would come from)."""
    if generator.device.type == "cuda":
        torch.cuda.set_rng_state(generator.get_state(), generator.device)
    else:
        torch.set_rng_state(generator.get_state())


class StackedModel(L.LightningModule):
    """What every stacked model shares: its members, their recent losses and logged history, the members
    that have failed, and the checkpoint state for all of these."""

    def __init__(self, members: list[nn.Module], final_loss_window: int, history_every: tuple[int, ...],
                 vectorize: bool):
        super().__init__()
        self.vectorize = vectorize  # vmap the members' nets (for GPUs), or call them one by one (CPUs)
        self.members = members  # a plain list: their weights live in the stacks while training
        # the members' run configs travel in the stack's checkpoint (checked when a stack resumes)
        self.save_hyperparameters({"config": {"members": [dict(m.hparams)["config"] for m in members]}})
        self.seeds = [m.noise_seed for m in members]
        self.recent_losses = [deque(maxlen=final_loss_window) for _ in members]
        # every member's loss terms after step s, for the steps s that are multiples of one of `history_every`
        # (what a single run's logger and figures would have recorded): member -> [(s, {term: value})]
        self.history_every = tuple(history_every)
        self.history: list[list[tuple[int, dict[str, float]]]] = [[] for _ in members]
        self.failures: dict[int, str] = {}  # member -> why it stopped (a non-finite loss); the others go on

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def alive(self) -> list[int]:
        return [k for k in range(self.size) if k not in self.failures]

    def _screen(self, terms: list[dict[str, torch.Tensor]], members: list[int]) -> dict[int, dict[str, float]]:
        """The values of `members`' terms that are all finite; a member with a non-finite one fails."""
        # one device->host copy of every member's terms
        flat = torch.stack([t.detach().float() for k in members for t in terms[k].values()]).tolist()
        finite = {}
        for k in members:
            values = dict(zip(terms[k], flat[:len(terms[k])], strict=True))
            flat = flat[len(terms[k]):]
            bad = [name for name, value in values.items() if not math.isfinite(value)]
            if bad:  # this member's job fails; its loss leaves the sum, so the others train on untouched
                self.failures[k] = (f"non-finite loss at step {self.global_step}: "
                                    + ", ".join(f"{name}={values[name]}" for name in bad))
            else:
                finite[k] = values
        if not finite:
            raise FloatingPointError("every member of the stack has failed: " + "; ".join(self.failures.values()))
        return finite

    def _record(self, values: dict[int, dict[str, float]], done: int) -> None:
        """Keep the members' values of the step that made the global step `done`."""
        for k, member_values in values.items():
            self.recent_losses[k].append(member_values)
            if any(done % every == 0 for every in self.history_every):
                self.history[k].append((done, member_values))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["members"] = {"recent_losses": [list(d) for d in self.recent_losses], "history": self.history,
                                 "failures": {str(k): why for k, why in self.failures.items()}}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["members"]
        for window, saved in zip(self.recent_losses, state["recent_losses"], strict=True):
            window.extend(saved)
        self.history = [[(step, values) for step, values in member] for member in state["history"]]
        self.failures = {int(k): why for k, why in state["failures"].items()}

    def _unstack_into(self, k: int, pairs: list[tuple[nn.Module, "_Stack"]]) -> None:
        """Member k's weights from each stack into its module, and its recent losses."""
        for module, stack in pairs:
            module.load_state_dict({n: t.detach().cpu() for n, t in stack.member_state_dict(k).items()})
        self.members[k].recent_losses.clear()
        self.members[k].recent_losses.extend(self.recent_losses[k])


class StackedVAE(StackedModel):
    """K VAE members (same encoder/decoder architecture, reconstruction and optimizer settings) trained
    together; FactorVAE members' discriminators are stacked too. Batches are (K, B, C, H, W)."""

    def __init__(self, members: list[VAE], final_loss_window: int, history_every: tuple[int, ...] = (),
                 vectorize: bool = True):
        super().__init__(members, final_loss_window, history_every, vectorize)
        first = members[0]
        for member in members[1:]:
            if (member.reconstruction != first.reconstruction or member.optimizer_settings != first.optimizer_settings
                    or member.discriminator_optimizer_settings != first.discriminator_optimizer_settings
                    or type(member.regularizer) is not type(first.regularizer)
                    or any(a.shape != b.shape for a, b in zip(member.parameters(), first.parameters(), strict=True))):
                raise ValueError("stacked members need the same nets, regularizer family, reconstruction and "
                                 "optimizer settings")
        if getattr(first.regularizer, "permute", "same") != "same":
            raise ValueError("FactorVAE with permute=second cannot be stacked: use permute=same")
        self.encoders, self.decoders = _Stack([m.encoder for m in members], vectorize), \
            _Stack([m.decoder for m in members], vectorize)
        # a plain list: a regularizer's weights (FactorVAE's discriminator) are used from the stack below
        self.regularizers = [m.regularizer for m in members]
        self.adversarial = not first.automatic_optimization
        if self.adversarial:
            self.automatic_optimization = False
            self.discriminators = _Stack([m.regularizer.discriminator for m in members], vectorize)
            self.discriminator_optimizer_settings = first.discriminator_optimizer_settings
        self.reconstruction, self.optimizer_settings = first.reconstruction, first.optimizer_settings

    def _regularizer_call(self, k: int, method: str, *args):
        """Member k's regularizer `method`, with its discriminator's weights taken from the stack."""
        regularizer = self.regularizers[k]
        if not self.adversarial:
            return getattr(regularizer, method)(*args)
        state = {f"module.discriminator.{n}": t for n, t in self.discriminators.member_state_dict(k).items()}
        return functional_call(_Method(regularizer, method), state, args)

    def compute_losses(self, batch: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Each member's loss terms for its batch: batch (K, B, C, H, W) -> K dicts as VAE.compute_losses."""
        mu, logvar = self.encoders(batch)                                     # (K, B, Z) each
        self._generators = [step_generator(seed, self.global_step, mu.device) for seed in self.seeds]
        noise = torch.stack([torch.randn(mu.shape[1:], generator=g, device=mu.device, dtype=mu.dtype)
                             for g in self._generators])
        z = mu + noise * (0.5 * logvar).exp()                                 # (K, B, Z)
        logits = self.decoders(z)                                             # (K, B, C, H, W)
        terms, self._posteriors = [], []
        for k in range(self.size):
            posterior = Posterior(mu=mu[k], logvar=logvar[k], z=z[k], kl_per_latent=gaussian_kl(mu[k], logvar[k]))
            reconstruction = reconstruction_loss(logits[k], batch[k], self.reconstruction)
            regularization, extra = self._regularizer_call(k, "forward", posterior, self.global_step)
            terms.append(loss_terms(reconstruction, regularization, extra, posterior))
            self._posteriors.append(posterior)
        return terms

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor | None:
        terms = self.compute_losses(batch)
        alive = self._screen(terms, self.alive)
        loss = torch.stack([terms[k]["loss"] for k in alive]).sum()
        if self.adversarial:  # as VAE._adversarial_step, for every member at once
            vae_optimizer, discriminator_optimizer = self.optimizers()
            vae_optimizer.zero_grad()
            self.manual_backward(loss)
            vae_optimizer.step()
            discriminator_losses = []
            for k in alive:
                _use_generator(self._generators[k])  # the permutation draws of member k's single run
                discriminator_loss, extra = self._regularizer_call(k, "discriminator_loss", self._posteriors[k])
                terms[k].update(extra)
                discriminator_losses.append(discriminator_loss)
            discriminator_optimizer.zero_grad()
            self.manual_backward(torch.stack(discriminator_losses).sum())
            discriminator_optimizer.optimizer.step()  # the raw optimizer: global_step counts batches
            alive = self._screen(terms, list(alive))
        self._record(alive, self.global_step + (0 if self.adversarial else 1))  # manual: stepped already
        return None if self.adversarial else loss

    def configure_optimizers(self) -> torch.optim.Optimizer | list[torch.optim.Optimizer]:
        vae_optimizer = adam([*self.encoders.parameters(), *self.decoders.parameters()], self.optimizer_settings)
        if not self.adversarial:
            return vae_optimizer
        return [vae_optimizer, adam(self.discriminators.parameters(), self.discriminator_optimizer_settings)]

    def unstack(self) -> list[VAE]:
        """The members, each holding its trained weights (on the CPU)."""
        for k, member in enumerate(self.members):
            pairs = [(member.encoder, self.encoders), (member.decoder, self.decoders)]
            if self.adversarial:
                pairs.append((member.regularizer.discriminator, self.discriminators))
            self._unstack_into(k, pairs)
        return self.members
