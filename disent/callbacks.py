"""Lightning callbacks of `disent-train`: figures during and after training, periodic metrics.

Figures go to `<job dir>/figures/<name>_step<step>.png` every `figures.every_n_steps` steps, and as
`<job dir>/figures/<name>.png` (and `.gif`) at the end; they are also logged as images to loggers
that take them (W&B).
"""

import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from disent.job import check_pending, pending_signal, reclaim_signals
from disent.metrics.suite import evaluate, flatten
from disent.metrics.utils import (
    discrete_entropy,
    discrete_mutual_info,
    generate_batch_factor_code,
    histogram_discretize,
)
from disent.models import DisentModel, InfoGAN, encoder_of
from disent.viz import (
    code_traversals,
    image_grid,
    latent_traversals,
    reconstruction_rows,
    save_png,
    stack_vertically,
)
from disent.viz.figures import (
    capacity_figure,
    heatmap_figure,
    latent_heatmaps,
    mi_matrix_figure,
    prior_samples,
    save_gif,
    traversal_frames,
)


class PeriodicCheckpoint(ModelCheckpoint):
    """The full state to `<dirpath>/<name>.ckpt` every `every_n_train_steps` steps (0: never), and at no other
    time: a run (or a stack) writes its last step itself (its "final checkpoint" phase), so that step is written
    once, not two or three times (Lightning would also write it at the end of training, of an epoch, and at a
    multiple of n)."""

    def __init__(self, dirpath: Path, every_n_train_steps: int, name: str = "last"):
        super().__init__(
            dirpath=dirpath,
            save_top_k=0,
            save_last=True,
            every_n_train_steps=every_n_train_steps,
            every_n_epochs=0,
        )
        self.CHECKPOINT_NAME_LAST = name  # Lightning's name of the file save_last writes

    def on_train_batch_end(self, trainer: L.Trainer, *args, **kwargs) -> None:
        if trainer.max_steps < 0 or trainer.global_step < trainer.max_steps:
            super().on_train_batch_end(trainer, *args, **kwargs)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # the run's final checkpoint follows


class StopOnSignal(L.Callback):
    """A signal received during training (disent.job) stops it at the end of the current step, after
    writing that step's full checkpoint to `path`, so a pre-empted run loses no training and resumes
    exactly."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_start(self, trainer: L.Trainer, *args) -> None:
        reclaim_signals()  # Lightning's SIGTERM handler would stop the run before this step's checkpoint

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if pending_signal() is not None:
            trainer.save_checkpoint(self.path, weights_only=False)
            check_pending()


class Stopwatch(L.Callback):
    """A job's time across the processes that made it: each checkpoint carries the seconds spent up to
    it, and a resumed run starts from the seconds of the checkpoint it resumed from (work lost after
    that checkpoint and redone is counted once, as the redone work)."""

    def __init__(self):
        self.started = time.time()
        # the seconds of earlier processes, up to the checkpoint this run resumed from
        self.restored_s = 0.0

    def elapsed_s(self) -> float:
        return self.restored_s + time.time() - self.started

    def state_dict(self) -> dict:
        return {"elapsed_s": self.elapsed_s()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.restored_s = float(state_dict.get("elapsed_s", 0.0))
        self.started = time.time()


class PeriodicEvaluation(L.Callback):
    """Scores the `periodic_metrics` set every `every_n_steps` training steps and logs it."""

    def __init__(self, dataset, metrics_cfg: DictConfig):
        self.dataset = dataset
        self.metrics_cfg = metrics_cfg

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: DisentModel, *args) -> None:
        step = trainer.global_step
        # the last step: final set
        if step % self.metrics_cfg.every_n_steps == 0 and step < trainer.max_steps:
            values = evaluate(
                self.dataset,
                encoder_of(pl_module, self.metrics_cfg.encode_batch_size),
                self.metrics_cfg,
            )
            pl_module.train()
            for logger in trainer.loggers:
                logger.log_metrics(
                    {f"metrics/{k}": v for k, v in flatten(values).items()}, step=step
                )


def mutual_information_matrix(
    data, encode, num_points: int, rng: np.random.Generator
) -> np.ndarray:
    """I(z_j; v_k) / H(v_k) of the mean codes, (Z, K), with the metrics' 20-bin discretisation."""
    codes, factors = generate_batch_factor_code(data, lambda x: encode(x)[0], num_points, rng)
    return (
        discrete_mutual_info(histogram_discretize(codes, 20), factors)
        / discrete_entropy(factors)[None, :]
    )


def log_figures(logger, pictures: dict[str, np.ndarray], gif_paths: list[Path], step: int) -> None:
    """Figures to a logger that takes images (W&B: images, and the GIFs as videos; TensorBoard:
    images); the files on disk are written already, so a logger that fails here costs nothing but a
    warning."""
    try:
        if hasattr(logger.experiment, "add_image"):  # TensorBoard's SummaryWriter
            for name, picture in pictures.items():
                logger.experiment.add_image(f"figures/{name}", picture, step, dataformats="HWC")
            return
        if not hasattr(logger, "log_image"):
            return
        for name, picture in pictures.items():
            logger.log_image(key=f"figures/{name}", images=[picture], step=step)
        if gif_paths:
            import wandb

            logger.log_metrics(
                {f"figures/{p.stem}_gif": wandb.Video(str(p), format="gif") for p in gif_paths},
                step=step,
            )
    except Exception as error:  # noqa: BLE001 -- figures must never stop training
        warnings.warn(f"could not log figures to {type(logger).__name__}: {error}", stacklevel=2)


class FigureCallback(L.Callback):
    """Writes what a model learned: traversals (PNG and GIF), reconstructions, prior samples,
    latent-activation heatmaps, the factor–latent MI matrix and the per-latent KL over training."""

    def __init__(self, dataset, figures_cfg: DictConfig, job_dir: Path, seed: int):
        self.dataset = dataset
        self.cfg = figures_cfg
        self.dir = Path(job_dir) / "figures"
        self.seed = seed
        self.kl_steps: list[int] = []
        self.kl_history: list[list[float]] = []
        self.written: list[str] = []

    def state_dict(self) -> dict:
        # the capacity figure spans a resume
        return {"kl_steps": self.kl_steps, "kl_history": self.kl_history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.kl_steps = list(state_dict["kl_steps"])
        self.kl_history = list(state_dict["kl_history"])

    def record_kl(self, step: int, losses: dict[str, float]) -> None:
        """Keep the per-latent KL of `step`'s loss terms, every `kl_every_n_steps` steps (VAEs only)."""
        if "kl_z0" in losses and step % self.cfg.kl_every_n_steps == 0:
            self.kl_steps.append(step)
            self.kl_history.append(
                [value for name, value in losses.items() if name.startswith("kl_z")]
            )

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: DisentModel, *args) -> None:
        step = trainer.global_step
        self.record_kl(step, pl_module.recent_losses[-1] if pl_module.recent_losses else {})
        if (
            self.cfg.every_n_steps > 0
            and step % self.cfg.every_n_steps == 0
            and step < trainer.max_steps
        ):
            self.write(pl_module, trainer.loggers, step, suffix=f"_step{step:06d}")
            pl_module.train()

    def write(
        self, model: DisentModel, loggers: list = (), step: int = 0, suffix: str = ""
    ) -> list[str]:
        """Every figure of `model` into the figures directory, and to `loggers` at `step`; returns the
        paths relative to the job dir."""
        self.dir.mkdir(parents=True, exist_ok=True)
        model.eval()
        pictures, gifs = self.pictures(model)
        names = []
        for name, picture in pictures.items():
            save_png(picture, self.dir / f"{name}{suffix}.png")
            names.append(f"figures/{name}{suffix}.png")
        for name, frames in gifs.items():
            save_gif(frames, self.dir / f"{name}{suffix}.gif")
            names.append(f"figures/{name}{suffix}.gif")
        for logger in loggers:
            log_figures(logger, pictures, [self.dir / f"{name}{suffix}.gif" for name in gifs], step)
        self.written = names
        return names

    @torch.no_grad()
    def pictures(
        self, model: DisentModel
    ) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]]]:
        cfg, data = self.cfg, self.dataset
        # its own stream: figures never shift training's
        rng = np.random.default_rng([self.seed, 1])
        generator = torch.Generator().manual_seed(self.seed)
        encode = encoder_of(model, 256)
        mi = mutual_information_matrix(data, encode, cfg.mi_num_points, rng)  # (Z, K)
        pictures = {"mutual_information": mi_matrix_figure(mi, data.factor_names)}
        gifs = {}
        if isinstance(model, InfoGAN):
            noise = torch.randn(1, model.noise_dim, generator=generator).to(model.device)
            labels = torch.zeros(
                1, len(model.categorical_codes), dtype=torch.long, device=model.device
            )
            continuous = torch.zeros(1, model.continuous_codes, device=model.device)
            rows = code_traversals(
                model.generate,
                noise,
                labels,
                continuous,
                model.categorical_codes,
                cfg.traversal_range,
                cfg.traversal_steps,
            )
            pictures["code_traversals"] = stack_vertically([image_grid(row) for row in rows], gap=0)
        else:
            x = torch.from_numpy(data.sample_observations(max(cfg.num_examples, 64), rng)).to(
                model.device
            )
            traversals, _ = latent_traversals(
                x[:1], x, model.encode, model.decode, cfg.traversal_range, cfg.traversal_steps
            )
            pictures["traversals"] = image_grid(traversals)
            gifs["traversals"] = traversal_frames(traversals)
            pictures["reconstructions"] = image_grid(
                reconstruction_rows(x[: cfg.num_examples], model.encode, model.decode)
            )
            pictures["prior_samples"] = image_grid(
                prior_samples(
                    model.decode,
                    traversals.shape[0],
                    cfg.prior_rows,
                    cfg.num_examples,
                    generator,
                    model.device,
                )
            )
            if self.kl_history:
                carried = [data.factor_names[k] for k in mi.argmax(axis=1)]
                pictures["capacity"] = capacity_figure(
                    np.array(self.kl_steps),
                    np.array(self.kl_history),
                    carried,
                    cfg.capacity_active_kl,
                )
        if all(name in data.factor_names for name in cfg.heatmap_factors):
            x_factor, y_factor = (data.factor_names.index(name) for name in cfg.heatmap_factors)
            maps = latent_heatmaps(
                data, encode, x_factor, y_factor, cfg.heatmap_samples_per_cell, rng
            )
            pictures["latent_heatmaps"] = heatmap_figure(maps, *cfg.heatmap_factors)
        return pictures, gifs
