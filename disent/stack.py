"""Train several disent-train jobs as one stacked model (`hydra/launcher=stacked`), then write each
job's directory exactly as `disent-train` would have: results.json, checkpoint, figures, metrics,
logs.

Jobs stack when they differ only in their seed and their loss weights (the model's keys other than
its architecture and optimizer): same model family, nets, data set, batch size, training length,
metrics and loggers. `stack_key` says which jobs may share a stack.
"""

import functools
import hashlib
import io
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from disent.callbacks import FigureCallback, PeriodicCheckpoint, StopOnSignal, Stopwatch
from disent.checkpoints import read_checkpoint, resume_differences
from disent.data.datamodule import StackedDataModule
from disent.job import (
    check_pending,
    check_writable,
    handle_signals,
    job_lock,
    reset_signals,
    set_phase,
)
from disent.loggers import build_logger, finish_logger
from disent.metrics.suite import evaluate_many
from disent.models import encoder_of, import_user_modules
from disent.models.stacked import ModelStack
from disent.results import write_bytes_atomic
from disent.run import (
    build_trainer,
    close_job,
    finish_job,
    quiet_lightning,
    seeded_model,
    start_job,
    stop_after_closing,
    train,
)
from disent.schema import ConfigError, stack_fixed_keys

log = logging.getLogger(__name__)

MEMBER_CALLS = ("auto", "vmap", "loop")  # see vectorize()


def stack_key(cfg: DictConfig) -> str | None:
    """Equal for jobs that may train in one stack; None for a job that must run alone. Jobs stack when
    their configs are equal but for the seed and the model keys its schema marks `per_member` (loss
    weights)."""
    try:
        # where an objective of one's own registers
        import_user_modules(list(cfg.get("imports") or []))
    except ValueError:
        return None  # the job runs alone, and its start says what cannot be imported
    config = OmegaConf.to_container(cfg, resolve=False)
    config.pop("seed")
    config["model"] = stack_fixed_keys(config["model"])
    if config["model"] is None:
        return None
    return repr(config)


def _member_checkpoint(model, step: int) -> bytes:
    """A checkpoint that disent-eval and `load_model` read like a single run's (weights and config; the
    optimizer state stays with the stack)."""
    buffer = io.BytesIO()
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "global_step": step,
            "recent_losses": list(model.recent_losses),
            "stacked": True,
        },
        buffer,
    )
    return buffer.getvalue()


def vectorize(member_calls: str) -> bool:
    """Whether a stack runs its members' nets in one vmapped call ("vmap") or one after another
    ("loop"). "auto": vmap on a GPU, where one small net leaves the device idle; loop on a CPU,
    where one net's convolutions already fill the cores and vmap's grouped convolutions ran at 0.5x
    (scripts/bench_sweep.py), while the loop still gains from one Lightning step, one data batch and
    one Adam call for all members."""
    if member_calls not in MEMBER_CALLS:
        raise ValueError(
            f"hydra.launcher.member_calls = {member_calls!r}: must be one of {list(MEMBER_CALLS)}"
        )
    return member_calls == "vmap" or (member_calls == "auto" and torch.cuda.is_available())


def train_stack(
    jobs: list[tuple[DictConfig, Path, str | None]], member_calls: str = "auto"
) -> list[dict | BaseException]:
    """Train `jobs` (config, job directory, sweep name), which share a `stack_key`, as one stacked
    model whose nets run as `member_calls` says (see `vectorize`). Returns each job's results.json
    dict, or the exception that failed it; one member's failure (a non-finite loss) fails that job
    only. Every job's directory is locked while the stack runs; a signal interrupts all of them
    (disent.job)."""
    vectorized = vectorize(member_calls)
    outcomes: list[dict | BaseException | None] = [None] * len(jobs)
    members: list[int] = []
    alone: list[int] = []
    started: dict[int, dict] = {}
    with handle_signals(), ExitStack() as locks:
        reset_signals()
        for i, (cfg, job_dir, sweep_name) in enumerate(jobs):
            try:
                locks.enter_context(job_lock(check_writable(job_dir)))
                results, finished = start_job(cfg, job_dir, sweep_name, stacked=True)
            except Exception as error:  # noqa: BLE001 -- a bad config or a locked directory fails its own job only
                outcomes[i] = error
                continue
            if finished:
                outcomes[i] = results
            elif "resumed_from_step" in results:
                alone.append(i)  # a single run's checkpoint is there: it continues alone
            else:
                members.append(i)
                started[i] = results
        if len(members) > 1 and vectorized and not torch.cuda.is_available():
            log.warning(
                "vmapping the nets of %d stacked jobs on a CPU: on 2 cores this measured half the speed "
                "of member_calls=loop (scripts/bench_sweep.py)",
                len(members),
            )
        if len(members) == 1:
            alone += members
        elif members:
            trained = _train_members(
                [jobs[i] for i in members], [started[i] for i in members], vectorized
            )
            for i, outcome in zip(members, trained, strict=True):
                outcomes[i] = outcome
        for i in sorted(alone):
            outcomes[i] = _train_alone(*jobs[i])
    stop_after_closing()
    return outcomes


def _train_alone(cfg: DictConfig, job_dir: Path, sweep_name: str | None) -> dict | BaseException:
    try:
        return train(cfg, job_dir, sweep_name)
    except Exception as error:  # noqa: BLE001 -- reported as this job's failure
        return error


def _train_members(
    jobs: list[tuple[DictConfig, Path, str | None]], results: list[dict], vectorized: bool
) -> list[dict | BaseException]:
    """Train the stack, then write each member's directory. No member reads `completed` before all are
    written: a stack interrupted (or killed) while writing its members resumes as the same stack,
    from its checkpoint at the last step, instead of training the unwritten members again."""
    start = time.time()
    # the stack's time, restored with its checkpoint; each member's job_time_s is the stack's
    stopwatch = Stopwatch()
    first = jobs[0][0]
    trainer = None

    def close_members(errors: list[BaseException | None], step: int | None) -> None:
        """Each member's final results.json (disent.run.close_job), with its error or none."""
        for (cfg, job_dir, _), job_results, error in zip(jobs, results, errors, strict=True):
            close_job(cfg, job_dir, job_results, start, None, error, step, stopwatch.restored_s)

    for k, job_results in enumerate(results):
        job_results["stack"] = {"size": len(jobs), "member": k}
    try:
        set_phase("building")
        built = [seeded_model(cfg) for cfg, _, _ in jobs]
        dataset = built[0][0]
        every = (first.trainer.log_every_n_steps, first.figures.kl_every_n_steps)
        stacked = ModelStack(
            [model for _, model in built],
            first.results.final_loss_window,
            history_every=every,
            vectorize=vectorized,
        )
        data = StackedDataModule(
            dataset,
            first.loader.batch_size,
            [cfg.seed for cfg, _, _ in jobs],
            num_workers=first.loader.num_workers,
            on_device=first.loader.on_device,
        )
        path = stack_checkpoint(jobs)
        resume_from = _check_stack_checkpoint(path, [cfg for cfg, _, _ in jobs], vectorized)
        # to resume a kill
        every = PeriodicCheckpoint(path.parent, first.checkpoint.every_n_steps, name=path.stem)
        trainer = build_trainer(first, jobs[0][1], False, [every, StopOnSignal(path), stopwatch])
        log.info(
            "training %d jobs as one stack (%s)%s: %s",
            len(jobs),
            "vmap" if vectorized else "loop",
            f", resumed from {path}" if resume_from else "",
            ", ".join(str(job_dir) for _, job_dir, _ in jobs),
        )
        set_phase("training")
        with quiet_lightning():
            trainer.fit(stacked, datamodule=data, ckpt_path=resume_from, weights_only=True)
        set_phase("final checkpoint")
        # members not yet written resume from here
        trainer.save_checkpoint(path, weights_only=False)
        check_pending()
        models = stacked.unstack()
    except BaseException as error:
        close_members([error] * len(jobs), trainer.global_step if trainer is not None else None)
        if not isinstance(error, Exception):
            raise
        return [error] * len(jobs)
    device = trainer.strategy.root_device
    metrics_of = shared_metrics(first.metrics, dataset, models, stacked.alive, device)
    failures: list[Exception | None] = []  # each member's, once it is written
    try:
        for k, ((cfg, job_dir, sweep_name), job_results) in enumerate(
            zip(jobs, results, strict=True)
        ):
            failures.append(
                _write_member(
                    k,
                    stacked,
                    models[k],
                    dataset,
                    trainer.global_step,
                    cfg,
                    job_dir,
                    sweep_name,
                    job_results,
                    device,
                    metrics_of,
                )
            )
    except BaseException as error:  # a signal: every member is interrupted, none completed
        close_members([error] * len(jobs), trainer.global_step)
        raise
    for job_results, failure in zip(results, failures, strict=True):
        if failure is None:
            job_results["status"] = "completed"
    close_members(failures, trainer.global_step)
    if not any(failures):
        path.unlink(missing_ok=True)  # every member has its own checkpoint now
    return [failure or job_results for failure, job_results in zip(failures, results, strict=True)]


def stack_checkpoint(jobs: list[tuple[DictConfig, Path, str | None]]) -> Path:
    """Where a stack of these jobs keeps its checkpoint: <sweep dir>/.stacks/<digest of the job dirs>.ckpt."""
    digest = hashlib.sha1(
        "\n".join(str(job_dir.resolve()) for _, job_dir, _ in jobs).encode()
    ).hexdigest()[:16]
    return jobs[0][1].parent / ".stacks" / f"{digest}.ckpt"


def _check_stack_checkpoint(path: Path, configs: list[DictConfig], vectorized: bool) -> Path | None:
    """`path` when it is a stack checkpoint of these members' configs (to resume from), None when absent."""
    if not path.exists():
        return None
    saved = read_checkpoint(path)["hyper_parameters"]["config"]
    current = [OmegaConf.to_container(cfg, resolve=True) for cfg in configs]
    differences = [
        f"member {k}: {d}"
        for k, (old, new) in enumerate(zip(saved["members"], current, strict=True))
        for d in resume_differences(old, new)
    ]
    if differences:
        raise ConfigError(
            f"cannot resume the stack {path}: its members were trained with other configs:\n  "
            + "\n  ".join(differences)
            + "\nDelete it to train these jobs from the start."
        )
    if saved.get("vectorize") != vectorized:  # the two keep their members' weights in other layouts
        calls = "vmap" if saved.get("vectorize") else "loop"
        raise ConfigError(
            f"cannot resume the stack {path}: it was trained with hydra.launcher.member_calls={calls}; "
            f"resume it with member_calls={calls}, or delete it to train these jobs from the start."
        )
    return path


def shared_metrics(
    metrics_cfg: DictConfig, dataset, models: list, members: list[int], device: torch.device
) -> Callable[[int, dict], dict]:
    """`of(k, seconds)`: member k's metric values. All `members` (those that trained to the end) are
    scored together on the first request (`evaluate_many`: every image the metrics draw is rendered
    once for all), when the requesting member's checkpoint and losses are already written; an error
    there is every member's."""
    seconds: dict = {}  # the evaluation's wall times, all members together

    @functools.cache
    def evaluated() -> dict[int, dict] | Exception:
        batch = metrics_cfg.encode_batch_size
        encoders = [encoder_of(models[m].float().to(device), batch) for m in members]
        try:
            values = evaluate_many(dataset, encoders, metrics_cfg, seconds)
        except Exception as error:  # noqa: BLE001 -- every member's job reports it
            return error
        return dict(zip(members, values, strict=True))

    def of(k: int, job_seconds: dict) -> dict:
        values = evaluated()
        if isinstance(values, Exception):
            raise values
        job_seconds.update(seconds)
        return values[k]

    return of


def _write_member(
    k: int,
    stacked: ModelStack,
    model,
    dataset,
    step: int,
    cfg: DictConfig,
    job_dir: Path,
    sweep_name: str | None,
    results: dict,
    device: torch.device,
    metrics_of: Callable[[int, dict], dict],
) -> Exception | None:
    """Member k's job directory, as a single run would have written it, but for its final results.json
    (the caller writes every member's once all are written). Returns its failure, or None."""
    logger, failure = None, None
    try:
        # what a single run would have logged, replayed
        logger = build_logger(cfg, job_dir, sweep_name)
        figures = FigureCallback(dataset, cfg.figures, job_dir, cfg.seed)
        for logged_step, values in stacked.history[k]:
            figures.record_kl(logged_step, values)
            if logged_step % cfg.trainer.log_every_n_steps == 0:
                logger.log_metrics(
                    {f"train/{name}": value for name, value in values.items()}, step=logged_step - 1
                )
        if k in stacked.failures:
            logger.save()
            raise FloatingPointError(stacked.failures[k])
        write_bytes_atomic(job_dir / "checkpoints" / "last.ckpt", _member_checkpoint(model, step))
        with quiet_lightning():
            finish_job(
                cfg,
                job_dir,
                model,
                dataset,
                figures,
                loggers=[logger],
                step=step,
                results=results,
                device=device,
                metrics=functools.partial(metrics_of, k),  # scored with the other members
            )
        results["status"] = "running"  # completed once every member is written
    except Exception as error:  # noqa: BLE001 -- this member's job fails; the others are written on
        failure = error
    finally:
        # each member's W&B run ends before the next member's starts
        finish_logger(logger, failure is None)
    return failure
