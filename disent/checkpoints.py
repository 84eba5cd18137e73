"""Checkpoints that are written atomically, read without running pickled code, and resumed safely.

A job directory's `checkpoints/last.ckpt` is what a killed or pre-empted job continues from
(`resume=true`, or `resume=auto` when the directory already has one).
"""

import io
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from disent.results import write_bytes_atomic

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from disent.models import DisentModel

# what must be equal for a checkpoint to be continued: anything else (training length, metrics,
# loggers, threads) may change between the killed run and the resumed one
RESUME_KEYS = ("model", "dataset", "seed", "loader.batch_size")


class CheckpointError(ValueError):
    """A checkpoint that is missing, damaged, unsafe or not written by disent-train."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save into memory, then a temporary file renamed over the checkpoint: a crash mid-write
    leaves the previous checkpoint, never a truncated one."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path, storage_options: Any | None = None
    ) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes_atomic(path, buffer.getvalue())

    def load_checkpoint(
        self, path, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict:
        return read_checkpoint(path, map_location=map_location or "cpu")


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A disent-train checkpoint as a dict, loaded with `weights_only=True` (it cannot run pickled
    code); one clear error naming the path when the file is missing, truncated or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path} (pass the checkpoints/last.ckpt of a disent-train job)"
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        if (
            not isinstance(checkpoint, dict)
            or "state_dict" not in checkpoint
            or "config" not in checkpoint.get("hyper_parameters", {})
        ):
            raise KeyError("no state_dict and hyper_parameters.config")
    except (
        RuntimeError,
        EOFError,
        OSError,
        KeyError,
        TypeError,
        ValueError,
        zipfile.BadZipFile,
        pickle.UnpicklingError,
    ) as error:
        reason = f"{type(error).__name__}: {str(error).rstrip('.')}"
        raise CheckpointError(
            f"cannot read the checkpoint {path}: {reason}. Is the file complete and written by "
            f"disent-train? Re-run the job (in a new directory, or delete this one) to write it "
            f"again."
        ) from error
    return checkpoint


def _select(config: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        config = config.get(part) if isinstance(config, dict) else None
    return config


def resume_differences(saved: dict, current: dict) -> list[str]:
    """The RESUME_KEYS on which a checkpoint's run config and the current one differ, as 'key: old -> new'."""
    differences = []
    for key in RESUME_KEYS:
        old, new = _select(saved, key), _select(current, key)
        if old != new:
            if isinstance(old, dict) and isinstance(new, dict):
                differences += [
                    f"{key}.{k}: {old.get(k)!r} -> {new.get(k)!r}"
                    for k in sorted(set(old) | set(new))
                    if old.get(k) != new.get(k)
                ]
            else:
                differences.append(f"{key}: {old!r} -> {new!r}")
    return differences


def load_model(checkpoint_path: str | Path) -> tuple["DisentModel", "DictConfig"]:
    """The model saved in a `disent-train` checkpoint, and the run config it was trained with.

    Loads with `weights_only=True`: a checkpoint cannot run pickled code. A checkpoint whose config
    or weights are not a disent model's is one CheckpointError naming the file.
    """
    from omegaconf import OmegaConf

    from disent.models import build_model, import_user_modules
    from disent.schema import ConfigError, validate_saved_config

    checkpoint = read_checkpoint(checkpoint_path)
    saved = checkpoint["hyper_parameters"]["config"]
    try:
        # objectives of one's own
        import_user_modules(saved.get("imports") if isinstance(saved, dict) else None)
    except ValueError as error:
        raise CheckpointError(f"the checkpoint {checkpoint_path} needs {error}") from None
    try:
        validate_saved_config(saved)
    except ConfigError as error:
        raise CheckpointError(
            f"the checkpoint {checkpoint_path} was not written by disent-train (or by a version "
            f"whose configs this one cannot read): its {error}"
        ) from None
    cfg = OmegaConf.create(saved)
    data = checkpoint["hyper_parameters"].get("data")
    if data is None:  # written before checkpoints kept the data shape: learn it from the data set
        from disent.data import build_dataset

        dataset = build_dataset(cfg.dataset)
        data = {"observation_shape": dataset.observation_shape, "size": len(dataset)}
    model = build_model(cfg, tuple(data["observation_shape"]), int(data["size"]))
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()
        reason = " ".join(line.strip() for line in first[:3])
        raise CheckpointError(
            f"the weights in {checkpoint_path} do not fit the {cfg.model.name} its config "
            f"describes ({reason}); was it written by disent-train?"
        ) from None
    return model.eval(), cfg
