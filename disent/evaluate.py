"""`disent-eval`: score a `disent-train` checkpoint, or codes computed anywhere (`codes=<file.npz>`),
with a metric set (`conf/metrics/`); the suite itself is disent/metrics/suite.py."""

import sys
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from disent.checkpoints import load_model
from disent.config import CONF_DIR
from disent.data import build_dataset
from disent.metrics.suite import check_metrics_config, evaluate, score_codes
from disent.models import encoder_of
from disent.results import write_json_atomic
from disent.run import save_shared_codes

# --- disent-eval ------------------------------------------------------------------------------
CODE_ARRAYS = ("codes_train", "factors_train", "codes_test", "factors_test")


def evaluate_codes(path: str | Path, metrics_cfg: DictConfig | dict) -> dict:
    """Score the representation stored in an .npz: `codes_train` (N, D) and `factors_train` (N, K)
    integer factors, `codes_test` and `factors_test` likewise (any model's codes, e.g. one trained
    elsewhere). The metrics that draw observations from a data set are skipped, and listed."""
    import numpy as np

    from disent.schema import ConfigError

    check_metrics_config(metrics_cfg)
    cfg = _as_dict(metrics_cfg)
    try:
        with np.load(path, allow_pickle=False) as stored:
            missing = [name for name in CODE_ARRAYS if name not in stored.files]
            if missing:
                raise ConfigError(
                    f"codes={path} lacks the arrays {missing} (it has {sorted(stored.files)}): "
                    f"save codes_train, factors_train, codes_test, factors_test with np.savez"
                )
            arrays = {name: stored[name] for name in CODE_ARRAYS}
    except (OSError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"codes={path} cannot be read as an .npz: {error}") from None
    for split in ("train", "test"):
        factors = arrays[f"factors_{split}"]
        if factors.ndim != 2 or not np.issubdtype(factors.dtype, np.integer):
            raise ConfigError(
                f"codes={path}: factors_{split} must be an (N, K) integer array, got "
                f"{factors.dtype} of shape {factors.shape}"
            )
    seconds: dict = {}
    start = time.time()
    try:
        values, skipped = score_codes(
            (arrays["codes_train"], arrays["factors_train"]),
            (arrays["codes_test"], arrays["factors_test"]),
            cfg["suite"] or {},
            cfg["seed"],
            cfg.get("dci_n_jobs"),
            seconds,
        )
    except ValueError as error:  # shapes that do not fit together
        raise ConfigError(f"codes={path}: {error}") from None
    return {
        "codes": str(Path(path).resolve()),
        "metrics_config": cfg,
        "skipped": skipped,  # metrics that draw observations themselves: they need a model
        "wall_time_s": round(time.time() - start, 3),
        "metric_seconds": {"codes": seconds},
        "metrics": {"codes": values},
    }


def evaluate_checkpoint(
    checkpoint: str | Path,
    metrics_cfg: DictConfig | dict,
    dataset_cfg: DictConfig | dict | None = None,
    shared_codes: Path | None = None,
) -> dict:
    """Score a `disent-train` checkpoint; the data set is the one it was trained on unless given.
    With `shared_codes` (a path) and a metric set that has `shared_codes`, the model's codes on the
    shared observations are saved there as well (UDR's input, as training saves them)."""
    from disent.schema import ConfigError

    check_metrics_config(metrics_cfg)
    model, run_cfg = load_model(checkpoint)
    dataset_cfg = dataset_cfg or run_cfg.dataset
    data = build_dataset(dataset_cfg)
    if tuple(data.observation_shape) != model.observation_shape:
        raise ConfigError(
            f"dataset={dataset_cfg['name']} has observations of shape {tuple(data.observation_shape)}, "
            f"but the model in {checkpoint} was trained on {run_cfg.dataset.name} with "
            f"{model.observation_shape}: score it on a data set of that shape (or leave dataset out "
            f"to use the one it was trained on)"
        )
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    start = time.time()
    seconds: dict = {}
    encode = encoder_of(model, metrics_cfg["encode_batch_size"])
    values = evaluate(data, encode, metrics_cfg, seconds)
    saved = None
    if shared_codes is not None and metrics_cfg.get("shared_codes"):
        saved = save_shared_codes(shared_codes, data, encode, metrics_cfg, seconds)
    return {
        "checkpoint": str(Path(checkpoint).resolve()),
        "model": run_cfg.model.name,
        "dataset": _as_dict(dataset_cfg),
        "metrics_config": _as_dict(metrics_cfg),
        "wall_time_s": round(time.time() - start, 3),
        "metric_seconds": seconds,  # each metric's, and the grid encoding's
        "metrics": values,
        **({"shared_codes": saved} if saved else {}),
    }


def shared_codes_path(output: Path) -> Path:
    """Where disent-eval saves the shared codes beside its report: `<report>.shared_codes.npz` (never a
    job's own shared_codes.npz, which its results.json describes)."""
    return output.with_name(f"{output.stem}.shared_codes.npz")


def default_output(checkpoint: Path) -> Path:
    """Where disent-eval writes without `output=`: `<job dir>/metrics.json` for a job's
    `checkpoints/last.ckpt`, else `<name>.metrics.json` beside the checkpoint, so that two
    checkpoints never share one file."""
    checkpoint = checkpoint.resolve()
    if checkpoint.name == "last.ckpt" and checkpoint.parent.name == "checkpoints":
        return checkpoint.parent.parent / "metrics.json"
    return checkpoint.with_name(f"{checkpoint.stem}.metrics.json")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
def main(cfg: DictConfig) -> None:
    """disent-eval checkpoint=PATH | codes=FILE.npz [metrics=study] [output=metrics.json]"""
    from disent.checkpoints import CheckpointError
    from disent.data import DataFileError
    from disent.results import os_reason
    from disent.schema import ConfigError, validate_metrics_config

    if (cfg.checkpoint is None) == (cfg.codes is None):
        _refuse(
            "give checkpoint=<a disent-train checkpoint> or codes=<an .npz of codes_train, "
            "factors_train, codes_test, factors_test>, one of them"
        )
    source = Path(cfg.checkpoint or cfg.codes)
    output = Path(cfg.output) if cfg.output else default_output(source)
    try:
        if output.is_dir():
            raise ConfigError(
                f"output={output} is a directory: give a file name, e.g. "
                f"output={output / 'metrics.json'}"
            )
        validate_metrics_config(cfg.metrics)
        _check_output(output)  # before the minutes of scoring, not after
        if cfg.codes is not None:
            report = evaluate_codes(source, cfg.metrics)
            if report["skipped"]:
                print(f"skipped (they draw observations from a data set): {report['skipped']}")
        else:
            report = evaluate_checkpoint(
                source, cfg.metrics, cfg.get("dataset"), shared_codes_path(output)
            )
    except (ConfigError, CheckpointError, DataFileError) as error:
        _refuse(str(error))
    for kind, values in report["metrics"].items():
        for name, value in values.items():
            print(f"{kind:8s} {name:45s} {value:.4f}")
    try:
        write_json_atomic(output, report)
    except OSError as error:  # the values are printed above: nothing computed is lost
        _refuse(
            f"cannot write the metrics to {output}: {os_reason(error)}; the values are printed above"
        )
    print(f"wrote {output}")


def _check_output(output: Path) -> None:
    """The output's directory exists (made if missing) and can be written, or one clear error."""
    from disent.results import os_reason, probe_writable
    from disent.schema import ConfigError

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        probe_writable(output.parent)
    except OSError as error:
        raise ConfigError(
            f"cannot write output={output} ({os_reason(error)}); choose another output=..."
        ) from None


def _refuse(message: str) -> None:
    print(f"disent-eval: {message}", file=sys.stderr)
    raise SystemExit(2) from None  # one message, no traceback: what to change is in it


def _as_dict(config) -> dict:
    """A config (or a plain mapping) as a plain dict."""
    if isinstance(config, DictConfig):
        return OmegaConf.to_container(config, resolve=True)
    return dict(config)


if __name__ == "__main__":
    main()
