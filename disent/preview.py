"""`disent-data dataset=<name>`: a PNG of a data set's factors, to look at the data before training on
it.

One row per factor, sweeping that factor over (up to `max_columns` of) its values with the others
fixed at a random grid point, then rows of random samples. On a data set that is not a full grid
(`dataset=arrays`), a combination of the sweep that the data lacks shows a random image with the
swept value instead (`GroundTruthData.with_fixed_factor`).
"""

from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from disent.config import CONF_DIR
from disent.data import GroundTruthData, build_dataset
from disent.viz import image_grid, labelled_rows, save_png


def factor_sweeps(
    data: GroundTruthData, rng: np.random.Generator, max_columns: int
) -> list[np.ndarray]:
    """One (1, columns, C, H, W) row per factor: that factor swept, the others fixed."""
    base = data.sample_factors(1, rng)[0]
    rows = []
    for k, size in enumerate(data.factor_sizes):
        values = np.unique(
            np.linspace(0, size - 1, min(size, max_columns)).round().astype(np.int64)
        )
        factors = np.repeat(base[None], len(values), axis=0)
        factors[:, k] = values
        factors = data.with_fixed_factor(factors, k, rng)  # a grid: unchanged, nothing drawn
        rows.append(data.sample_observations_from_factors(factors, rng)[None])
    return rows


def preview(
    data: GroundTruthData, rng: np.random.Generator, max_columns: int, sample_rows: int
) -> np.ndarray:
    """The preview picture as a uint8 RGB array: each factor's row labelled with its name and size,
    then the random samples."""
    samples = data.sample_observations(sample_rows * max_columns, rng)
    samples = samples.reshape(sample_rows, max_columns, *samples.shape[1:])
    sweeps = factor_sweeps(data, rng, max_columns)
    labels = [
        f"{name} ({size})" for name, size in zip(data.factor_names, data.factor_sizes, strict=True)
    ]
    return labelled_rows(
        [image_grid(row) for row in sweeps] + [image_grid(samples)], [*labels, "samples"]
    )


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="data")
def main(cfg: DictConfig) -> None:
    from disent.data import DataFileError
    from disent.results import os_reason, probe_writable
    from disent.schema import ConfigError, validate_dataset_config

    output = Path(cfg.output or f"{cfg.dataset.name}_preview.png")
    try:
        validate_dataset_config(cfg.dataset)
        output.parent.mkdir(parents=True, exist_ok=True)
        probe_writable(output.parent)
        data = build_dataset(cfg.dataset)
        picture = preview(data, np.random.default_rng(cfg.seed), cfg.max_columns, cfg.sample_rows)
        save_png(picture, output)
    except (ConfigError, DataFileError) as error:
        _refuse(str(error))
    except OSError as error:
        _refuse(
            f"cannot write the preview to {output}: {os_reason(error)}; choose another output=..."
        )
    sizes = ", ".join(
        f"{name} {size}" for name, size in zip(data.factor_names, data.factor_sizes, strict=True)
    )
    points = "grid points" if getattr(data, "full_grid", True) else "rows, not a full grid"
    shape = data.observation_shape
    print(f"{cfg.dataset.name}: {len(data):,} {points} ({sizes}); observations {shape}")
    print(f"rows: one per factor ({', '.join(data.factor_names)}), then random samples -> {output}")


def _refuse(message: str) -> None:
    import sys

    print(f"disent-data: {message}", file=sys.stderr)
    raise SystemExit(2) from None  # one message, no traceback: what to change is in it


if __name__ == "__main__":
    main()
