"""The loggers of a job (`logger=csv|tensorboard|wandb`, each YAML naming its builder here): built,
finished, and never a reason for a job to fail: a logger that cannot start falls back to the CSV
logger with one warning; W&B runs offline unless asked."""

import csv
import logging
import sys
from pathlib import Path

from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from disent.config import run_name

log = logging.getLogger(__name__)


def build_logger(
    cfg: DictConfig, job_dir: Path, sweep_name: str | None, resumed_from_step: int | None = None
):
    """The Lightning logger that `logger._target_` builds (conf/logger/<name>.yaml names its function,
    called as f(cfg, job_dir, sweep_name, resumed_from_step); a logger of one's own is one YAML file
    and one such function). A logger that cannot start (W&B's directory cannot be made, tensorboard
    is not installed, ...) falls back to the CSV logger with one warning: training, checkpoints,
    figures and metrics never depend on a logger. `resumed_from_step`: the step a resumed job
    continues from (its CSV keeps the rows of the steps before it)."""
    try:
        build = get_method(cfg.logger._target_)
    except Exception as error:  # noqa: BLE001 -- hydra says why in its own words
        raise ValueError(
            f"logger._target_ = {cfg.logger._target_!r} cannot be imported: {error}"
        ) from None
    if build is csv_logger:
        return csv_logger(cfg, job_dir, sweep_name, resumed_from_step)
    try:
        return build(cfg, job_dir, sweep_name, resumed_from_step)
    except Exception as error:  # noqa: BLE001 -- any failure of the logger: keep training, log to CSV
        log.warning(
            "logger=%s could not start (%s: %s); logging to %s/metrics.csv instead",
            cfg.logger.name,
            type(error).__name__,
            error,
            job_dir,
        )
        _finish_wandb(exit_code=1)
        return csv_logger(cfg, job_dir, sweep_name, resumed_from_step)


def logger_builder(cfg: DictConfig):
    """The function `logger._target_` names; a ValueError saying why when it cannot be imported."""
    try:
        return get_method(cfg.logger._target_)
    except Exception as error:  # noqa: BLE001 -- hydra says why in its own words
        raise ValueError(
            f"logger._target_ = {cfg.logger._target_!r} cannot be imported ({error}); name a function "
            f"f(cfg, job_dir, sweep_name, resumed_from_step) on the Python path, or use logger=csv"
        ) from None


def csv_logger(
    cfg: DictConfig, job_dir: Path, sweep_name: str | None, resumed_from_step: int | None = None
):
    """Lightning's CSVLogger into `<job dir>/metrics.csv`. It deletes a metrics.csv it finds; a resumed
    job would lose the rows of its first process, so those of the steps before `resumed_from_step`
    are read first and written back with the new rows (the steps after the checkpoint are trained,
    and logged, again)."""
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(save_dir=job_dir, name="", version="")
    path = job_dir / "metrics.csv"
    if resumed_from_step and path.is_file():
        with path.open(newline="") as file:
            kept = [
                row
                for row in csv.DictReader(file)
                if _step(row, default=resumed_from_step) < resumed_from_step
            ]
        # the writer (made here) has deleted the file; its next save rewrites
        logger.experiment.metrics.extend(kept)
    return logger


def _step(row: dict, default: int) -> int:
    """The row's step; `default` for a row without one."""
    try:
        return int(float(row.get("step") or ""))
    except ValueError:
        return default


def tensorboard_logger(
    cfg: DictConfig, job_dir: Path, sweep_name: str | None, resumed_from_step: int | None = None
):
    """TensorBoard event files in <job dir>/tensorboard/."""
    from lightning.pytorch.loggers import TensorBoardLogger

    try:
        import tensorboard  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "logger=tensorboard needs the tensorboard package: pip install tensorboard"
        ) from error
    return TensorBoardLogger(
        save_dir=job_dir, name="tensorboard", version="", default_hp_metric=False
    )


def is_wandb(logger) -> bool:
    return type(logger).__name__ == "WandbLogger"


def finish_logger(logger, completed: bool) -> None:
    """End a job's W&B run (a multirun's next job must not log into it); other loggers need nothing."""
    if logger is not None and is_wandb(logger):
        _finish_wandb(exit_code=0 if completed else 1)


def _finish_wandb(exit_code: int) -> None:
    """End the W&B run of this process, if one was started; never fails the job."""
    if "wandb" not in sys.modules:
        return
    try:
        sys.modules["wandb"].finish(exit_code=exit_code)
    except Exception as error:  # noqa: BLE001 -- results.json is written; W&B must not fail the job
        log.warning("W&B could not finish its run cleanly: %s", error)


def wandb_logger(
    cfg: DictConfig, job_dir: Path, sweep_name: str | None, resumed_from_step: int | None = None
):
    """A W&B logger whose run starts now; an online run that cannot start falls back to offline."""
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    if cfg.logger.mode not in ("offline", "online"):
        raise ValueError(f"logger.mode must be 'offline' or 'online', got '{cfg.logger.mode}'")
    knob = cfg.model.get("hyperparameter")
    tags = [
        cfg.model.name,
        cfg.dataset.name,
        *([f"{knob}={cfg.model[knob]}"] if knob else []),
        *cfg.logger.tags,
    ]

    def start(offline: bool) -> WandbLogger:
        logger = WandbLogger(
            project=cfg.logger.project,
            entity=cfg.logger.entity,
            save_dir=str(job_dir),
            offline=offline,
            name=run_name(cfg),
            group=cfg.logger.group or cfg.study_name or sweep_name,
            job_type=cfg.model.name,
            tags=tags,
            config=OmegaConf.to_container(cfg, resolve=True),
            mode="offline"
            if offline
            else "online",  # explicit: wandb keeps settings of an earlier init
            settings=wandb.Settings(init_timeout=cfg.logger.init_timeout_s),
        )
        logger.experiment  # noqa: B018 -- starts the run here, where a failure can still be handled
        return logger

    if cfg.logger.mode == "offline":
        return start(offline=True)
    try:
        return start(offline=False)
    except Exception as error:  # no network, no API key, W&B down: training must not depend on it
        log.warning(
            "W&B could not start an online run (%s); logging offline to %s/wandb instead, "
            "upload later with `wandb sync`",
            error,
            job_dir,
        )
        wandb.finish(exit_code=1)
        return start(offline=True)


def wandb_summary(logger, final_metrics: dict[str, float]) -> None:
    """Final metrics into the W&B run summary and a table (metric, value); never fails the run."""
    try:
        logger.experiment.summary.update(final_metrics)
        logger.log_table(
            key="final_metrics",
            columns=["metric", "value"],
            data=[[name, value] for name, value in final_metrics.items()],
        )
    except Exception as error:  # noqa: BLE001 -- results.json already holds the metrics
        log.warning("could not write the final metrics to W&B: %s", error)
