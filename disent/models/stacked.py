"""K models of one family and architecture trained as one LightningModule, each member exactly as its
own run.

The members run their family's own training step (`train_step`, the one a single run runs) on their
own batches and draws, called in a loop (`vectorize=False`: on a CPU, which one small net already
keeps busy; the stack still shares one Lightning step, one data batch and one Adam call among its
members) or all at once with `torch.func.vmap` over their stacked parameters and buffers
(`vectorize=True`: on a GPU, which one small VAE at batch 64 leaves mostly idle), regularizers and
FactorVAE's discriminator included.

Each member keeps everything that makes it a run of its own: its initial weights (built from its own
seed), its loss weights (buffers: β, γ, c_max, λ_od, λ_info, ...), its data stream and its random
draws (from the generator of (its seed, step), as a single run's). The loss is the sum of the
members' losses, so each member's gradient is its own loss's gradient, and Adam, being element-wise,
updates each member as its own Adam would. A member trained in a stack therefore matches its single
run up to float rounding (vmap may pick other kernels).
"""

import copy
from collections import deque
from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from disent.models.base import DisentModel, MemberCalls, build_optimizers, compiled, finite_terms
from disent.schema import stack_fixed_keys


class _Method(nn.Module):
    """module.<name>(...) as a forward, so functional_call can run a method other than forward."""

    def __init__(self, module: nn.Module, name: str):
        super().__init__()
        self.module = module
        self.name = name

    def forward(self, *args):
        return getattr(self.module, self.name)(*args)


class _StackedState(nn.Module):
    """The parameters and buffers of K copies of one model, (K, ...) each, and a call of one of its
    methods for all K at once (vmap over the stacked state)."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        params, buffers = stack_module_state(models)
        self.parameter_names = list(params)
        self.buffer_names = list(buffers)
        # ParameterDict keys cannot hold dots
        self.stacked = nn.ParameterDict(
            {n.replace(".", "/"): nn.Parameter(p.detach()) for n, p in params.items()}
        )
        for name, value in buffers.items():
            self.register_buffer(name.replace(".", "/"), value)
        # the architecture only: the weights come from the stack
        template = copy.deepcopy(models[0]).to("meta")
        # in a list: not a submodule, so Lightning never moves or saves it
        self._template = [template]

    def named_member_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """The stacked parameters, named as in one member."""
        return [(n, self.stacked[n.replace(".", "/")]) for n in self.parameter_names]

    def member_state(self, k: int | None = None) -> dict[str, torch.Tensor]:
        """Every member's state (K, ...) or member k's, named as in one member."""
        state = {n: self.stacked[n.replace(".", "/")] for n in self.parameter_names}
        state |= {n: getattr(self, n.replace(".", "/")) for n in self.buffer_names}
        return state if k is None else {n: t[k] for n, t in state.items()}

    def call(self, method: str, step: int, *inputs) -> dict[str, torch.Tensor]:
        """model.<method>(*inputs, step) for every member: inputs (K, ...) each -> outputs (K, ...) each."""
        prefixed = {f"module.{n}": t for n, t in self.member_state().items()}
        function = compiled(self._template[0], f"vmapped {method}", self.vmapped(method))
        return function(prefixed, step, *inputs)

    def vmapped(self, method: str) -> Callable:
        """(stacked state, step, *inputs (K, ...)) -> model.<method> of each member, (K, ...) each."""
        function = _Method(self._template[0], method)

        def all_members(state, step, *inputs):
            def one(member_state, *member_inputs):
                return functional_call(function, member_state, (*member_inputs, step))

            return vmap(one)(state, *inputs)

        return all_members


def _stacked(values: list):
    """K per-member tensors (or dicts of tensors) -> one (K, ...) tensor (or a dict of them)."""
    if isinstance(values[0], dict):
        return {name: torch.stack([v[name] for v in values]) for name in values[0]}
    return torch.stack(values)


class _VmappedCalls(MemberCalls):
    """MemberCalls whose methods run for all members in one vmapped call over their stacked state."""

    def __init__(
        self,
        state: _StackedState,
        models: list[DisentModel],
        batches: list[torch.Tensor],
        step: int,
    ):
        super().__init__(models, batches, step)
        self.state = state

    def __call__(self, method: str, *per_member: list) -> list[dict[str, torch.Tensor]]:
        inputs = [_stacked(values) for values in (self.batches, self.draws, *per_member)]
        outputs = self.state.call(method, self.step, *inputs)
        return [
            {name: value[k] for name, value in outputs.items()} for k in range(len(self.models))
        ]


class ModelStack(L.LightningModule):
    """K members of one model family (same class, nets and plain settings) trained together on (K, B,
    C, H, W) batches; their failures (a non-finite loss) stop them alone, the others train on."""

    def __init__(
        self,
        members: list[DisentModel],
        final_loss_window: int,
        history_every: tuple[int, ...] = (),
        vectorize: bool = True,
    ):
        super().__init__()
        first = members[0]
        for member in members[1:]:
            if (
                type(member) is not type(first)
                or stack_fixed_keys(member.hparams["config"].get("model", {}))
                != stack_fixed_keys(first.hparams["config"].get("model", {}))
                or [p.shape for p in member.parameters()] != [p.shape for p in first.parameters()]
            ):
                raise ValueError(
                    "stacked members need the same model, nets and settings but for their loss weights"
                )
        # vmap the members' step (for GPUs), or call them one by one (CPUs)
        self.vectorize = vectorize
        self.automatic_optimization = first.automatic_optimization
        # a plain list: in a vmap stack their weights live in the stacked state
        self.members = members
        if vectorize:
            # vmap calls one template: only buffers differ per member
            _check_plain_values_agree(members)
            self.state = _StackedState(members)
        else:
            self.nets = nn.ModuleList(members)  # the members themselves, trained in place
        # the members' run configs travel in the stack's checkpoint (checked when a stack resumes)
        configs = [dict(m.hparams)["config"] for m in members]
        self.save_hyperparameters({"config": {"members": configs, "vectorize": vectorize}})
        self.recent_losses = [deque(maxlen=final_loss_window) for _ in members]
        # every member's loss terms after step s, for the steps s that are multiples of one of
        # `history_every` (what a single run's logger and figures would have recorded): member ->
        # [(s, {term: value})]
        self.history_every = tuple(history_every)
        self.history: list[list[tuple[int, dict[str, float]]]] = [[] for _ in members]
        self.failures: dict[
            int, str
        ] = {}  # member -> why it stopped (a non-finite loss); the others go on

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def alive(self) -> list[int]:
        return [k for k in range(self.size) if k not in self.failures]

    def calls(self, batch: torch.Tensor) -> MemberCalls:
        """The calls of the members' step methods on their batches of `batch` (K, B, C, H, W) at this step."""
        batches = list(batch.unbind(0))  # K x (B, C, H, W)
        if self.vectorize:
            return _VmappedCalls(self.state, self.members, batches, self.global_step)
        return MemberCalls(self.members, batches, self.global_step)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor | None:
        return self.members[0].train_step(self, self.calls(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer | list[torch.optim.Optimizer]:
        if self.vectorize:
            named = [self.state.named_member_parameters()]
        else:
            named = [member.named_parameters() for member in self.members]
        optimizers = build_optimizers(named, self.members[0])
        return optimizers[0] if len(optimizers) == 1 else optimizers

    def screen(
        self, terms: list[dict[str, torch.Tensor]], members: list[int]
    ) -> dict[int, dict[str, float]]:
        """The values of `members`' terms that are all finite; a member with a non-finite one fails
        alone (its loss leaves the sum, so the others train on untouched)."""
        finite, failures = finite_terms(terms, members)
        self.failures |= {
            k: f"non-finite loss at step {self.global_step}: {why}" for k, why in failures.items()
        }
        if not finite:
            raise FloatingPointError(
                "every member of the stack has failed: " + "; ".join(self.failures.values())
            )
        return finite

    def keep(self, values: dict[int, dict[str, float]], done: int) -> None:
        """Keep the members' values of the step that made the global step `done`."""
        for k, member_values in values.items():
            self.recent_losses[k].append(member_values)
            if any(done % every == 0 for every in self.history_every):
                self.history[k].append((done, member_values))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["members"] = {
            "recent_losses": [list(d) for d in self.recent_losses],
            "history": self.history,
            "failures": {str(k): why for k, why in self.failures.items()},
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["members"]
        for window, saved in zip(self.recent_losses, state["recent_losses"], strict=True):
            window.extend(saved)
        self.history = [[(step, values) for step, values in member] for member in state["history"]]
        self.failures = {int(k): why for k, why in state["failures"].items()}

    def unstack(self) -> list[DisentModel]:
        """The members, each holding its trained weights (on the CPU) and its recent losses."""
        for k, member in enumerate(self.members):
            if self.vectorize:
                weights = self.state.member_state(k)
                saved = member.state_dict()  # the loss weights are buffers, but not saved ones
                member.load_state_dict({n: weights[n].detach().cpu() for n in saved})
            member.cpu()
            member.recent_losses.clear()
            member.recent_losses.extend(self.recent_losses[k])
        return self.members


def _check_plain_values_agree(members: list[DisentModel]) -> None:
    """A vmapped stack runs every member's step on one template model, with each member's parameters and
    buffers: a plain Python number that differs between members (a loss weight kept as a float) would be
    the first member's for all. Refuse it, naming it."""

    def plain(model: DisentModel) -> dict[str, object]:
        values = {}
        for path, module in model.named_modules():
            for name, value in vars(module).items():
                if (
                    isinstance(value, int | float | str | bool)
                    and not name.startswith("_")
                    and name != "noise_seed"
                ):
                    values[f"{path}.{name}" if path else name] = value
        return values

    first = plain(members[0])
    for k, member in enumerate(members[1:], start=1):
        for name, value in plain(member).items():
            if first.get(name) != value:
                raise ValueError(
                    f"member {k}'s {name} = {value!r} differs from member 0's {first.get(name)!r}: "
                    "in a vmapped stack a value that differs per member must be a buffer (give loss "
                    "weights to Regularizer.__init__ by name), or stack with member_calls=loop"
                )
