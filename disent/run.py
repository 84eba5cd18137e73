"""A job's life, for single runs (`disent-train`) and stacks (disent/stack.py) alike: who it is
(results.json's identity), whether it resumes or has nothing left to do, its start, its training,
its figures and metrics, and its close, whatever stopped it (`completed`, `failed` or `interrupted`,
disent/job.py).

A job directory holds `.hydra/config.yaml` (the resolved config), `checkpoints/last.ckpt`,
`results.json` (losses and metrics), `figures/` (what the model learned) and the logger's files.
"""

import json
import logging
import time
import traceback
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from threadpoolctl import threadpool_limits

from disent.callbacks import (
    FigureCallback,
    PeriodicCheckpoint,
    PeriodicEvaluation,
    StopOnSignal,
    Stopwatch,
)
from disent.checkpoints import AtomicCheckpointIO, read_checkpoint, resume_differences
from disent.config import run_name
from disent.data import build_dataset
from disent.data.base import GroundTruthData
from disent.data.datamodule import GroundTruthDataModule
from disent.job import (
    SIGNALS,
    JobInterrupted,
    check_pending,
    check_writable,
    handle_signals,
    interruption,
    job_lock,
    reset_signals,
    set_phase,
)
from disent.loggers import build_logger, finish_logger, is_wandb, logger_builder, wandb_summary
from disent.malloc import keep_freed_memory
from disent.metrics.suite import encode_shared, evaluate, flatten
from disent.models import DisentModel, build_model, encoder_of, import_user_modules
from disent.results import code_version, write_atomic, write_json_atomic
from disent.schema import ConfigError, validate_train_config

log = logging.getLogger(__name__)
SHARED_CODES = "shared_codes.npz"  # a job's codes on the shared observations (metrics.shared_codes)


def hydra_job_info() -> tuple[Path, str | None]:
    """(the job's output directory, the multirun directory's name or None for a single run)."""
    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    sweep_name = Path(hydra_cfg.sweep.dir).name if hydra_cfg.mode == RunMode.MULTIRUN else None
    return job_dir, sweep_name


def job_identity(cfg: DictConfig, sweep_name: str | None) -> dict:
    """What results.json says about the job besides its outcome; read leniently, so that a job refused
    for a bad config is still listed with its model, hyperparameter and seed."""

    def get(key: str):
        return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)

    knob = get("model.hyperparameter")
    try:
        hyperparameters = OmegaConf.to_container(cfg.model, resolve=True)
    except Exception:  # noqa: BLE001 -- a bad interpolation: keep it as written
        hyperparameters = OmegaConf.to_container(cfg.model, resolve=False)
    return {
        "model": get("model.name"),
        "dataset": get("dataset.name"),
        "hyperparameter": {
            "name": knob,
            "value": get(f"model.{knob}") if isinstance(knob, str) else None,
        },
        "hyperparameters": hyperparameters,
        "seed": get("seed"),
        "batch_size": get("loader.batch_size"),
        "max_steps": get("trainer.max_steps"),
        "study_name": get("study_name") or sweep_name,
        "code": code_version(),
    }


def resume_point(
    cfg: DictConfig, job_dir: Path, stacked: bool = False
) -> tuple[dict | None, dict | None]:
    """(the checkpoint to continue from, or None; the job's results.json when it already finished with
    this config, so there is nothing to do, or None), following `cfg.resume`. `stacked`: the caller
    is a stack, which continues a member's stacked checkpoint from the stack's own (never the
    member's)."""
    path = job_dir / "checkpoints" / "last.ckpt"
    if not path.exists():
        if cfg.resume is True:
            raise ConfigError(
                f"resume=true, but there is no checkpoint {path}: point hydra.run.dir (a single "
                f"run) or hydra.sweep.dir (a multirun) at the job directory to continue"
            )
        return None, None
    if cfg.resume is False:
        raise ConfigError(
            f"resume=false, but {job_dir} already has a checkpoint ({path}): resume=auto "
            f"continues it; to start over, choose another directory or delete this one"
        )
    checkpoint = read_checkpoint(path)
    saved, current = (
        checkpoint["hyper_parameters"]["config"],
        OmegaConf.to_container(cfg, resolve=True),
    )
    differences = resume_differences(saved, current)
    if differences:
        raise ConfigError(
            f"cannot resume {path}: it was trained with another config:\n  "
            + "\n  ".join(differences)
            + "\nChoose another directory for the new config (or delete the old job)."
        )
    try:
        previous = json.loads((job_dir / "results.json").read_bytes())
    except (OSError, ValueError):
        # missing, or not JSON (UnicodeDecodeError and JSONDecodeError are ValueErrors)
        previous = {}
    finished = (
        isinstance(previous, dict)
        and previous.get("status") == "completed"
        and checkpoint["global_step"] >= cfg.trainer.max_steps
        and saved.get("metrics") == current["metrics"]
    )
    if not finished and checkpoint.get("stacked") and stacked:
        return None, None
    if not finished and checkpoint.get("stacked"):
        raise ConfigError(
            f"cannot resume {path}: it was written by hydra/launcher=stacked, which keeps no optimizer "
            f"state per job; train this config in a new directory (or delete the old job)"
        )
    return checkpoint, previous if finished else None


def _import_what_the_config_names(cfg: DictConfig) -> None:
    """The config's `imports`, imported before it is checked (objectives of one's own register there),
    and the function its logger names."""
    try:
        import_user_modules(list(cfg.get("imports") or []))
        logger_builder(cfg)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def start_job(
    cfg: DictConfig, job_dir: Path, sweep_name: str | None, stacked: bool = False
) -> tuple[dict, bool]:
    """Check the config, then mark the job running in results.json. The caller holds the job's lock
    (`job_lock`) and has checked that the directory can be written (`check_writable`).

    Returns (results.json's dict, whether the job had already finished: then that dict is its
    results). A bad config raises ConfigError, after writing a failed results.json unless one is
    there already. `stacked`: see `resume_point`.
    """
    try:
        _import_what_the_config_names(cfg)
        validate_train_config(cfg)
        checkpoint, finished = resume_point(cfg, job_dir, stacked)
    except ConfigError as error:  # refused before training; a finished job's results.json is kept
        if not (job_dir / "results.json").exists():
            write_json_atomic(
                job_dir / "results.json",
                {
                    "status": "failed",
                    "error": f"ConfigError: {error}",
                    **job_identity(cfg, sweep_name),
                },
            )
        raise
    if finished is not None:
        log.info("%s: already completed in %s; nothing to do (resume=auto)", run_name(cfg), job_dir)
        return finished, True
    results = {"status": "running", **job_identity(cfg, sweep_name)}
    if checkpoint is not None:
        results["resumed_from_step"] = checkpoint["global_step"]
    write_json_atomic(job_dir / "results.json", results)
    return results, False


def finish_job(
    cfg: DictConfig,
    job_dir: Path,
    model: DisentModel,
    dataset,
    figures: FigureCallback,
    loggers: list,
    step: int,
    results: dict,
    device: torch.device,
    metrics: Callable[[dict], dict] | None = None,
) -> None:
    """After training: the final losses, then the figures and the metrics into results.json and the
    loggers. Figures and metrics run on `device`, where the model trained (Lightning hands it back
    on the CPU); `metrics(seconds)` gives the model's metric values when they are computed elsewhere
    (a stack scores its members together), and fills `seconds` with their wall times."""
    results.update(
        steps=step, final_losses=model.final_losses(), checkpoint="checkpoints/last.ckpt"
    )
    # the losses are safe before evaluation starts
    write_json_atomic(job_dir / "results.json", results)
    # float32: figures and metrics feed float32 images, whatever trainer.precision trained in
    # (64-true, 16-true)
    model.float().to(device)
    set_phase("figures")
    results["figures"] = figures.write(model, loggers, step)
    set_phase("metrics")
    seconds: dict = {}  # where the evaluation's time went (suite.evaluate_many)
    encode = encoder_of(model, cfg.metrics.encode_batch_size)
    if metrics is not None:
        results["metrics"] = metrics(seconds)
    else:
        results["metrics"] = evaluate(dataset, encode, cfg.metrics, seconds)
    if cfg.metrics.get("shared_codes"):
        results["shared_codes"] = save_shared_codes(
            job_dir / SHARED_CODES, dataset, encode, cfg.metrics, seconds
        )
    results["metric_seconds"] = seconds
    set_phase("logging")
    final = {f"metrics/{k}": v for k, v in flatten(results["metrics"]).items()}
    for logger in loggers:
        if final:
            logger.log_metrics(final, step=step)
            if is_wandb(logger):
                wandb_summary(logger, final)
        logger.save()
    results["status"] = "completed"


def save_shared_codes(
    path: Path, dataset, encode, metrics_cfg: DictConfig | dict, seconds: dict
) -> dict:
    """The model's (mu, logvar) on the metric set's shared observations (`suite.encode_shared`) as an
    .npz at `path` (a job's shared_codes.npz), for UDR; returns what results.json records of them
    (the file's name, relative to the results file beside it)."""
    start = time.perf_counter()
    num_points = metrics_cfg["shared_codes"]["num_points"]
    mu, logvar = encode_shared(dataset, encode, num_points, metrics_cfg["seed"])
    write_atomic(path, lambda file: np.savez(file, mu=mu, logvar=logvar))
    seconds["shared_codes"] = round(time.perf_counter() - start, 3)
    return {"file": path.name, "num_points": num_points, "seed": metrics_cfg["seed"]}


def close_job(
    cfg: DictConfig,
    job_dir: Path,
    results: dict,
    start: float,
    logger,
    error: BaseException | None,
    step: int | None = None,
    earlier_s: float = 0.0,
) -> None:
    """Write the job's final results.json and finish its W&B run: `interrupted` (with the signal, the
    phase and the step) when `error` is an interruption, `failed` (with the error) for any other
    error. `wall_time_s` is this process's time; `job_time_s` adds `earlier_s`, the earlier
    processes' time up to the checkpoint this one resumed from (the job's whole cost, whatever
    interrupted it)."""
    # before "closing": it reads the phase
    stopped = interruption(error) if error is not None else None
    SIGNALS.phase = "closing"  # a signal now waits until results.json is written
    if stopped is not None:
        stopped["step"] = step
        results.pop("traceback", None)
        results.update(
            status="interrupted",
            interrupted=stopped,
            error=f"interrupted by {stopped['signal']} during {stopped['phase']}"
            f"{f' (step {step})' if step is not None else ''}; run the same command again to "
            f"continue (resume=auto)",
        )
    elif error is not None:
        results.update(
            status="failed",
            error=f"{type(error).__name__}: {error}",
            traceback="".join(traceback.format_exception(error)),
        )
    results["wall_time_s"] = round(time.time() - start, 3)
    results["job_time_s"] = round(earlier_s + results["wall_time_s"], 3)
    write_json_atomic(job_dir / "results.json", results)
    finish_logger(logger, results["status"] == "completed")
    log.info(
        "%s: %s in %.1f s -> %s", run_name(cfg), results["status"], results["wall_time_s"], job_dir
    )


def seeded_model(cfg: DictConfig) -> tuple[GroundTruthData, DisentModel]:
    """The data set and the freshly initialised model of a run, built after seeding from `cfg.seed`."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
        # the metrics' scikit-learn and NumPy (OpenMP, BLAS) too: two one-thread jobs on 2 cores
        # otherwise run their evaluations with 4 threads, and HistGradientBoosting 10-60x slower
        threadpool_limits(cfg.threads)
    if cfg.malloc:
        keep_freed_memory(cfg.malloc.trim_threshold_mb, cfg.malloc.mmap_threshold_mb)
    torch.set_float32_matmul_precision(cfg.compute.float32_matmul_precision)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dataset = build_dataset(cfg.dataset)
    return dataset, build_model(cfg, dataset.observation_shape, len(dataset))


def build_trainer(cfg: DictConfig, job_dir: Path, logger, callbacks: list) -> L.Trainer:
    """The Lightning Trainer of a run or a stack (logger=False: its members log on their own);
    settings Lightning refuses (which the schema did not catch) are one ConfigError naming the
    trainer group."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        return L.Trainer(
            **OmegaConf.to_container(cfg.trainer, resolve=True),
            logger=logger,
            callbacks=callbacks,
            default_root_dir=job_dir,
            max_epochs=-1,
            plugins=[AtomicCheckpointIO()],
        )
    except (MisconfigurationException, ValueError, TypeError, RuntimeError) as error:
        raise ConfigError(f"Lightning refused the trainer settings (trainer.*): {error}") from None


def train(cfg: DictConfig, job_dir: Path, sweep_name: str | None = None) -> dict:
    """Train the model described by `cfg`, writing everything into `job_dir`; returns results.json's
    dict.

    The job holds the directory's lock throughout; a signal stops it as `interrupted` (disent.job).
    """
    with handle_signals(), job_lock(check_writable(job_dir)):
        reset_signals()
        results, finished = start_job(cfg, job_dir, sweep_name)
        if finished:
            return results
        start, logger, trainer, failure = time.time(), None, None, None
        stopwatch = Stopwatch()  # restored from the checkpoint a resumed run starts from
        last = job_dir / "checkpoints" / "last.ckpt"
        try:
            set_phase("building")
            dataset, model = seeded_model(cfg)
            datamodule = GroundTruthDataModule(
                dataset,
                batch_size=cfg.loader.batch_size,
                num_workers=cfg.loader.num_workers,
                seed=cfg.seed,
                on_device=cfg.loader.on_device,
            )
            logger = build_logger(cfg, job_dir, sweep_name, results.get("resumed_from_step"))
            checkpoint = PeriodicCheckpoint(job_dir / "checkpoints", cfg.checkpoint.every_n_steps)
            figures = FigureCallback(dataset, cfg.figures, job_dir, cfg.seed)
            callbacks = [checkpoint, figures, stopwatch]
            if cfg.periodic_metrics.suite and cfg.periodic_metrics.every_n_steps > 0:
                callbacks.append(PeriodicEvaluation(dataset, cfg.periodic_metrics))
            # after the others have recorded the step (the checkpoint is last)
            callbacks.append(StopOnSignal(last))
            trainer = build_trainer(cfg, job_dir, logger, callbacks)
            set_phase("training")
            with quiet_lightning():
                resume_from = last if "resumed_from_step" in results else None
                trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
            set_phase("final checkpoint")
            trainer.save_checkpoint(last, weights_only=False)  # the full state: resumable
            check_pending()  # a signal during the last step: its checkpoint is the one just written
            step = trainer.global_step
            device = trainer.strategy.root_device
            finish_job(
                cfg, job_dir, model, dataset, figures, trainer.loggers, step, results, device
            )
        except BaseException as error:
            failure = error
            raise
        finally:
            close_job(
                cfg,
                job_dir,
                results,
                start,
                logger,
                failure,
                trainer.global_step if trainer else None,
                stopwatch.restored_s,
            )
    stop_after_closing()
    return results


def stop_after_closing() -> None:
    """A signal that arrived while a job wrote its final results stops the process now (the job keeps
    what it wrote): a multirun must not start its next job."""
    SIGNALS.phase = "start-up"
    if SIGNALS.pending is not None:
        signum = SIGNALS.pending
        SIGNALS.pending = None
        raise JobInterrupted(signum, "closing")


@contextmanager
def quiet_lightning():
    """Lightning warnings that do not apply to disent's runs."""
    with warnings.catch_warnings():
        # Lightning suggests worker processes; on a 2-core CPU rendering in-process is faster.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # the CSV logger shares the job directory with results.json on purpose
        warnings.filterwarnings(
            "ignore", message="Experiment logs directory .* exists and is not empty"
        )
        # manual optimization (FactorVAE, InfoGAN) checkpoints the state after the step: what
        # resuming needs
        warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
        yield
