"""One tidy table from the job directories of one or more studies or multiruns: a row per job.

A study of hundreds of jobs must survive a few bad ones: a results.json that cannot be read (binary
garbage, broken JSON, JSON of the wrong shape) makes its job's row `unreadable`, with the path and
the reason in `error`; a metric value that is not a finite number (NaN, a string) is a missing
value; a hyperparameter value of any type (a string, a list) is kept, lists as their JSON text.
"""

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

COLUMNS = [
    "job_dir",
    "status",
    "error",
    "model",
    "dataset",
    "hyperparameter",
    "value",
    "seed",
    "study_name",
    "steps",
    "wall_time_s",
]
TEXT_COLUMNS = ["status", "error", "model", "dataset", "hyperparameter", "study_name"]
NUMBER_COLUMNS = ["seed", "steps", "wall_time_s"]


def _job_dirs(root: Path) -> list[Path]:
    """Directories below `root` that Hydra made for a job (they hold .hydra/) or that hold results.json."""
    found = {p.parent for p in root.rglob("results.json")} | {
        p.parent for p in root.rglob(".hydra")
    }
    return sorted(d for d in found if d.name != "wandb")


def _text(value: Any) -> str | None:
    """A text column's value: strings as they are, anything else (but null) as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _number(value: Any) -> float:
    """A metric's (or a count's) value as a float: NaN unless it is a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return float("nan")
    return float(value)


def _strength(value: Any) -> Any:
    """The swept value as the table keeps it: numbers and strings as they are, anything else as JSON text."""
    if (
        value is None
        or isinstance(value, str)
        or (isinstance(value, int | float) and not isinstance(value, bool))
    ):
        return value
    return json.dumps(value, default=str)


def _unreadable(job_dir: Path, why: str) -> dict:
    return {
        "job_dir": str(job_dir),
        "status": "unreadable",
        "error": f"{job_dir / 'results.json'}: {why}",
    }


def _row(job_dir: Path) -> dict:
    path = job_dir / "results.json"
    if not path.is_file():
        return {"job_dir": str(job_dir), "status": "missing", "error": "no results.json"}
    try:
        results = json.loads(path.read_bytes().decode("utf-8"))
    except (
        OSError,
        UnicodeDecodeError,
        ValueError,
    ) as error:  # results.json is written atomically: not ours
        return _unreadable(job_dir, f"not a JSON file ({type(error).__name__}: {error})")
    if not isinstance(results, dict):
        return _unreadable(job_dir, f"holds a JSON {type(results).__name__}, not an object")
    hyperparameter = results.get("hyperparameter")
    metrics = results.get("metrics")
    if not isinstance(results.get("status"), str):
        return _unreadable(job_dir, "has no `status` string")
    if hyperparameter is not None and not isinstance(hyperparameter, dict):
        return _unreadable(
            job_dir, f"its `hyperparameter` is a {type(hyperparameter).__name__}, not an object"
        )
    if metrics is not None and not (
        isinstance(metrics, dict) and all(isinstance(v, dict) for v in metrics.values())
    ):
        return _unreadable(
            job_dir, "its `metrics` is not an object of objects ({representation: {metric: value}})"
        )
    hyperparameter = hyperparameter or {}
    row = {
        "job_dir": str(job_dir),
        "status": results["status"],
        "error": results.get("error"),
        "model": results.get("model"),
        "dataset": results.get("dataset"),
        "hyperparameter": hyperparameter.get("name"),
        "value": _strength(hyperparameter.get("value")),
        "seed": results.get("seed"),
        "study_name": results.get("study_name"),
        "steps": results.get("steps"),
        "wall_time_s": results.get("wall_time_s"),
    }
    row |= {key: _text(row[key]) for key in TEXT_COLUMNS}
    row |= {key: _number(row[key]) for key in NUMBER_COLUMNS}
    for kind, values in (metrics or {}).items():
        row |= {f"{kind}/{name}": _number(value) for name, value in values.items()}
    return row


def collect(paths: list[str | Path]) -> pd.DataFrame:
    """Every job under `paths`: status (completed, failed, interrupted, running, missing, unreadable),
    model, data set, hyperparameter name and value, seed, and one float column per metric
    ("mean/mig", ...)."""
    rows = [_row(job_dir) for root in paths for job_dir in _job_dirs(Path(root))]
    table = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in table:
            table[column] = None
    metric_columns = sorted(c for c in table.columns if c not in COLUMNS)
    table[metric_columns + NUMBER_COLUMNS] = table[metric_columns + NUMBER_COLUMNS].astype(float)
    for column in ("seed", "steps"):  # whole numbers (or missing) read as such
        values = table[column]
        if values.dropna().map(float.is_integer).all():
            table[column] = values.astype("Int64")
    return table[COLUMNS + metric_columns].drop_duplicates("job_dir").reset_index(drop=True)
