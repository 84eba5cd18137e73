"""One tidy table from the job directories of one or more studies or multiruns: a row per job."""

import json
from pathlib import Path

import pandas as pd

COLUMNS = ["job_dir", "status", "error", "model", "dataset", "hyperparameter", "value", "seed", "study_name",
           "steps", "wall_time_s"]


def _job_dirs(root: Path) -> list[Path]:
    """Directories below `root` that Hydra made for a job (they hold .hydra/) or that hold results.json."""
    found = {p.parent for p in root.rglob("results.json")} | {p.parent for p in root.rglob(".hydra")}
    return sorted(d for d in found if d.name != "wandb")


def _row(job_dir: Path) -> dict:
    path = job_dir / "results.json"
    if not path.is_file():
        return {"job_dir": str(job_dir), "status": "missing", "error": "no results.json"}
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as error:  # written atomically, so this is a file from elsewhere
        return {"job_dir": str(job_dir), "status": "unreadable", "error": f"{path}: {error}"}
    row = {
        "job_dir": str(job_dir), "status": results.get("status"), "error": results.get("error"),
        "model": results.get("model"), "dataset": results.get("dataset"),
        "hyperparameter": (results.get("hyperparameter") or {}).get("name"),
        "value": (results.get("hyperparameter") or {}).get("value"),
        "seed": results.get("seed"), "study_name": results.get("study_name"), "steps": results.get("steps"),
        "wall_time_s": results.get("wall_time_s"),
    }
    for kind, values in (results.get("metrics") or {}).items():
        row |= {f"{kind}/{name}": value for name, value in values.items()}
    return row


def collect(paths: list[str | Path]) -> pd.DataFrame:
    """Every job under `paths`: status (completed, failed, running, missing, unreadable), model, data set,
    hyperparameter name and value, seed, and one column per metric ("mean/mig", "sampled/...")."""
    rows = [_row(job_dir) for root in paths for job_dir in _job_dirs(Path(root))]
    table = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in table:
            table[column] = None
    metric_columns = sorted(c for c in table.columns if c not in COLUMNS)
    return table[COLUMNS + metric_columns].drop_duplicates("job_dir").reset_index(drop=True)
