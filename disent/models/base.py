"""What every model of disent shares: the run config in its checkpoint, and how losses are recorded."""

import math
from collections import deque
from collections.abc import Callable

import lightning as L
import numpy as np
import torch


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The generator of a run's random draws at `step` (sampled z, InfoGAN's codes, FactorVAE's
    permutation): seeded by (run seed, step), as the data stream's batches are, so a run resumed
    from a checkpoint draws exactly what the uninterrupted run drew, and a stack's member what its
    single run draws."""
    seed_of_step = int(np.random.SeedSequence([seed, step]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(seed_of_step)


class MemberCalls:
    """One training step's calls of its models' pure step methods, one model after another: the one
    model of a single run, or the members of a loop stack (a vmap stack calls them at once:
    disent.models.stacked).

    A step method is `method(x, draws, *per_member, step) -> {name: tensor}`; each model's draws are
    made once per step, by its `draws(x, generator)`, from step_generator(its seed, step)."""

    def __init__(self, models: list["DisentModel"], batches: list[torch.Tensor], step: int):
        self.models = models
        self.batches = batches  # one (B, C, H, W) batch per model
        self.step = step
        self.draws = [
            model.draws(x, step_generator(model.noise_seed, step, x.device))
            for model, x in zip(models, batches, strict=True)
        ]

    def __call__(self, method: str, *per_member: list) -> list[dict[str, torch.Tensor]]:
        """Each model's `method` on its batch and draws (and its item of each `per_member` list)."""
        outputs = []
        for k, model in enumerate(self.models):
            arguments = [values[k] for values in per_member]
            function = compiled(model, method, getattr(model, method))
            outputs.append(function(self.batches[k], self.draws[k], *arguments, self.step))
        return outputs


def compiled(model: "DisentModel", name: str, function: Callable) -> Callable:
    """`function` (the model's step method `name`, or a stack's vmapped call of it) torch.compile'd
    once, when the run config asks (compute.compile); as it is otherwise. The draws stay outside: they
    come from a torch.Generator, which compiled code does not take."""
    if not model.compile_step:
        return function
    if name not in model.compiled_steps:
        model.compiled_steps[name] = torch.compile(function)
    return model.compiled_steps[name]


class DisentModel(L.LightningModule):
    """A LightningModule that stops on non-finite losses and remembers recent ones for results.json.

    Its training step is its family's `train_step(host, calls)`, written once for a single run
    (host: the model, calls: MemberCalls of the model alone) and for a stack (host: the stack,
    calls: its members')."""

    def __init__(self, final_loss_window: int, config: dict | None = None):
        super().__init__()
        # the resolved run config travels inside the checkpoint, so a checkpoint alone can be
        # rebuilt
        self.save_hyperparameters({"config": config or {}})
        self.noise_seed = int((config or {}).get("seed", 0))
        # compute.compile: the step methods torch.compile'd on first use (`compiled`)
        self.compile_step = bool(((config or {}).get("compute") or {}).get("compile", False))
        self.compiled_steps: dict[str, Callable] = {}
        self.recent_losses: deque[dict[str, float]] = deque(maxlen=final_loss_window)
        self.loss_trace: list[float] = []  # total loss per step, for tests and quick plots

    # --- what a family defines
    # ----------------------------------------------------------------------
    @staticmethod
    def train_step(host: L.LightningModule, calls: MemberCalls) -> torch.Tensor | None:
        """One training step of every model `calls` runs: their losses, the optimizer steps (manual
        optimization) or the summed loss to minimise (automatic), and host.screen / host.keep."""
        raise NotImplementedError

    def draws(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Every random draw of one training step on the batch x, from `generator`."""
        raise NotImplementedError

    def optimizer_settings(self) -> list[dict]:
        """The `optimizer` block of each of the model's optimizers, in Lightning's order."""
        raise NotImplementedError

    def optimizer_of(self, parameter: str) -> int:
        """Which optimizer trains the parameter of this name."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> (representation mean, its log-variance), each (B, D): what the metrics score."""
        raise NotImplementedError

    # --- a single run
    # ---------------------------------------------------------------------------------
    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor | None:
        return self.train_step(self, MemberCalls([self], [batch], self.global_step))

    def configure_optimizers(self) -> torch.optim.Optimizer | list[torch.optim.Optimizer]:
        optimizers = build_optimizers([self.named_parameters()], self)
        return optimizers[0] if len(optimizers) == 1 else optimizers

    def screen(
        self, terms: list[dict[str, torch.Tensor]], members: list[int]
    ) -> dict[int, dict[str, float]]:
        """The step's loss terms as floats ({0: values}); a non-finite one stops the run."""
        values, failures = finite_terms(terms, members)
        if failures:
            raise FloatingPointError(f"non-finite loss at step {self.global_step}: {failures[0]}")
        return values

    @property
    def alive(self) -> list[int]:
        return [0]

    def keep(self, values: dict[int, dict[str, float]], done: int) -> None:
        """Remember the step's terms (results.json's final losses) and log them under train/."""
        self.recent_losses.append(values[0])
        self.loss_trace.append(values[0]["loss"])
        logged = {f"train/{name}": value for name, value in values[0].items()}
        # on_step only: no epoch mean to weight
        self.log_dict(logged, on_step=True, on_epoch=False, batch_size=1)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # results.json's final losses span a resume
        checkpoint["recent_losses"] = list(self.recent_losses)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.recent_losses.extend(checkpoint.get("recent_losses", []))

    def final_losses(self) -> dict[str, float]:
        """Each loss term averaged over the last `final_loss_window` steps."""
        if not self.recent_losses:
            return {}
        names = self.recent_losses[0].keys()
        return {
            name: sum(d[name] for d in self.recent_losses) / len(self.recent_losses)
            for name in names
        }


def finite_terms(
    terms: list[dict[str, torch.Tensor]], members: list[int]
) -> tuple[dict[int, dict[str, float]], dict[int, str]]:
    """`members`' terms as floats, in one device->host copy: those of the members whose terms are all
    finite, and for the others which terms are not ("loss=nan, kl=inf")."""
    flat = torch.stack([t.detach().float() for k in members for t in terms[k].values()]).tolist()
    finite, failures = {}, {}
    for k in members:
        values = dict(zip(terms[k], flat[: len(terms[k])], strict=True))
        flat = flat[len(terms[k]) :]
        bad = [f"{name}={value}" for name, value in values.items() if not math.isfinite(value)]
        if bad:
            failures[k] = ", ".join(bad)
        else:
            finite[k] = values
    return finite, failures


def optimize(host: L.LightningModule, optimizer, loss: torch.Tensor, counts_the_step: bool) -> None:
    """One optimizer's update in manual optimization: zero its gradients, backpropagate `loss`, step.
    Of a step's two optimizers one `counts_the_step`: its Lightning wrapper steps, so global_step
    counts batches (as max_steps and the papers do); the other steps the raw optimizer."""
    optimizer.zero_grad()
    host.manual_backward(loss)
    if counts_the_step:
        optimizer.step()
    else:
        optimizer.optimizer.step()


def build_optimizers(named_parameters: list, model: DisentModel) -> list[torch.optim.Adam]:
    """The model's Adams over the parameters of one or more members: `named_parameters` holds each
    member's (name, parameter) pairs, the names as in the model (`model.optimizer_of` picks each
    one's optimizer)."""
    settings = model.optimizer_settings()
    groups: list[list[torch.Tensor]] = [[] for _ in settings]
    for pairs in named_parameters:
        for name, parameter in pairs:
            groups[model.optimizer_of(name)].append(parameter)
    return [adam(group, setting) for group, setting in zip(groups, settings, strict=True)]


def adam(parameters, settings: dict) -> torch.optim.Adam:
    """Adam from a YAML `optimizer` block (lr, betas, eps, weight_decay)."""
    return torch.optim.Adam(
        parameters,
        lr=settings["lr"],
        betas=tuple(settings["betas"]),
        eps=settings["eps"],
        weight_decay=settings["weight_decay"],
    )


def encoder_of(
    model: torch.nn.Module, batch_size: int
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The model as the metric suite's encoder (disent.metrics.suite): NumPy observations (N, C, H, W)
    -> (mu, logvar) NumPy (N, Z) each, in batches, without gradients, on the model's device."""
    device = next(model.parameters()).device

    @torch.no_grad()
    def encode(observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        model.eval()
        mus, logvars = [], []
        for i in range(0, len(observations), batch_size):
            x = torch.as_tensor(
                np.asarray(observations[i : i + batch_size], dtype=np.float32), device=device
            )
            mu, logvar = model.encode(x)
            mus.append(mu.float().cpu().numpy())
            logvars.append(logvar.float().cpu().numpy())
        return np.concatenate(mus), np.concatenate(logvars)

    return encode
