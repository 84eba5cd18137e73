"""`disent-eval`: score a `disent-train` checkpoint with a metric set (`conf/metrics/`); the suite
itself is disent/metrics/suite.py."""

import sys
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from disent.checkpoints import load_model
from disent.config import CONF_DIR
from disent.data import build_dataset
from disent.metrics.suite import check_metrics_config, evaluate
from disent.models import encoder_of
from disent.results import write_json_atomic


# --- disent-eval ------------------------------------------------------------------------------
def evaluate_checkpoint(
    checkpoint: str | Path,
    metrics_cfg: DictConfig | dict,
    dataset_cfg: DictConfig | dict | None = None,
) -> dict:
    """Score a `disent-train` checkpoint; the data set is the one it was trained on unless given."""
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
    return {
        "checkpoint": str(Path(checkpoint).resolve()),
        "model": run_cfg.model.name,
        "dataset": _as_dict(dataset_cfg),
        "metrics_config": _as_dict(metrics_cfg),
        "wall_time_s": round(time.time() - start, 3),
        "metric_seconds": seconds,  # each metric's, and the grid encoding's
        "metrics": values,
    }


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
    """disent-eval checkpoint=PATH [metrics=study] [output=metrics.json]"""
    from disent.checkpoints import CheckpointError
    from disent.data import DataFileError
    from disent.results import os_reason
    from disent.schema import ConfigError, validate_metrics_config

    checkpoint = Path(cfg.checkpoint)
    output = Path(cfg.output) if cfg.output else default_output(checkpoint)
    try:
        if output.is_dir():
            raise ConfigError(
                f"output={output} is a directory: give a file name, e.g. "
                f"output={output / 'metrics.json'}"
            )
        validate_metrics_config(cfg.metrics)
        _check_output(output)  # before the minutes of scoring, not after
        report = evaluate_checkpoint(checkpoint, cfg.metrics, cfg.get("dataset"))
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
