"""What every model of disent shares: the run config in its checkpoint, and how losses are recorded."""

import math
from collections import deque
from collections.abc import Callable

import lightning as L
import numpy as np
import torch


class DisentModel(L.LightningModule):
    """A LightningModule that stops on non-finite losses and remembers recent ones for results.json."""

    def __init__(self, final_loss_window: int, config: dict | None = None):
        super().__init__()
        # the resolved run config travels inside the checkpoint, so a checkpoint alone can be rebuilt
        self.save_hyperparameters({"config": config or {}})
        self.noise_seed = int((config or {}).get("seed", 0))
        self.recent_losses: deque[dict[str, float]] = deque(maxlen=final_loss_window)
        self.loss_trace: list[float] = []  # total loss per step, for tests and quick plots

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # The random draws of step k (sampled z, InfoGAN's codes, FactorVAE's permutations) come from a
        # seed made of (run seed, k), as the data stream's batches do: a run resumed from a checkpoint
        # then draws exactly what the uninterrupted run drew, whatever ran in between.
        torch.manual_seed(int(np.random.SeedSequence([self.noise_seed, self.global_step]).generate_state(1)[0]))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["recent_losses"] = list(self.recent_losses)  # results.json's final losses span a resume

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.recent_losses.extend(checkpoint.get("recent_losses", []))

    def record(self, terms: dict[str, torch.Tensor], batch_size: int) -> None:
        """Stop on a non-finite loss term; keep the recent values; log every term under train/."""
        # one device->host copy for all terms, used for the NaN check and the results file
        values = dict(zip(terms, torch.stack([t.detach().float() for t in terms.values()]).tolist(), strict=True))
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        if bad:
            raise FloatingPointError(f"non-finite loss at step {self.global_step}: "
                                     + ", ".join(f"{name}={values[name]}" for name in bad))
        self.recent_losses.append(values)
        self.loss_trace.append(values["loss"])
        self.log_dict({f"train/{name}": value for name, value in terms.items()}, on_step=True, on_epoch=False,
                      batch_size=batch_size)

    def final_losses(self) -> dict[str, float]:
        """Each loss term averaged over the last `final_loss_window` steps."""
        if not self.recent_losses:
            return {}
        names = self.recent_losses[0].keys()
        return {name: sum(d[name] for d in self.recent_losses) / len(self.recent_losses) for name in names}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> (representation mean, its log-variance), each (B, D): what the metrics score."""
        raise NotImplementedError


def adam(parameters, settings: dict) -> torch.optim.Adam:
    """Adam from a YAML `optimizer` block (lr, betas, eps, weight_decay)."""
    return torch.optim.Adam(parameters, lr=settings["lr"], betas=tuple(settings["betas"]), eps=settings["eps"],
                            weight_decay=settings["weight_decay"])


def encoder_of(model: torch.nn.Module, batch_size: int) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The model as the metric suite's encoder (disent.metrics.suite): NumPy observations (N, C, H, W) ->
    (mu, logvar) NumPy (N, Z) each, in batches, without gradients, on the model's device."""
    device = next(model.parameters()).device

    @torch.no_grad()
    def encode(observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        model.eval()
        mus, logvars = [], []
        for i in range(0, len(observations), batch_size):
            x = torch.as_tensor(np.asarray(observations[i:i + batch_size], dtype=np.float32), device=device)
            mu, logvar = model.encode(x)
            mus.append(mu.float().cpu().numpy())
            logvars.append(logvar.float().cpu().numpy())
        return np.concatenate(mus), np.concatenate(logvars)

    return encode
