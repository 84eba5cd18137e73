"""The jobs of a lecture item's sweeps, as its analysis reads them: results.json, the checkpoint, the figures."""

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from disent.lecture import sweep_dir


@dataclass
class Job:
    """One job directory of a sweep."""

    dir: Path
    results: dict

    @property
    def status(self) -> str:
        return self.results.get("status", "missing")

    @property
    def seed(self) -> int:
        return self.results["seed"]

    @property
    def value(self):
        """The swept strength (results.json's hyperparameter value)."""
        return (self.results.get("hyperparameter") or {}).get("value")

    def hyperparameter(self, key: str):
        return (self.results.get("hyperparameters") or {}).get(key)

    def metric(self, name: str, kind: str = "mean") -> float:
        value = ((self.results.get("metrics") or {}).get(kind) or {}).get(name)
        return float(value) if isinstance(value, int | float) else float("nan")

    @cached_property
    def config(self) -> DictConfig:
        return OmegaConf.load(self.dir / ".hydra" / "config.yaml")

    def load(self):
        """(the trained model in eval mode, its run config)."""
        from disent.models import load_model

        return load_model(self.dir / "checkpoints" / "last.ckpt")

    def figure(self, name: str) -> np.ndarray:
        """A figure the run wrote at its end (figures/<name>.png) as a uint8 RGB array."""
        from PIL import Image

        with Image.open(self.dir / "figures" / f"{name}.png") as image:
            return np.asarray(image.convert("RGB"))


@dataclass
class Runs:
    """The jobs of an item's experiments under `out` for one preset."""

    out: Path
    preset: str
    experiments: list[str]
    commands: dict[str, list[str]] = field(default_factory=dict)  # experiment -> the command that runs it
    settings: dict = field(default_factory=dict)  # the item's analysis sizes (its YAML's `analysis`)

    def setting(self, name: str):
        """One of the item's analysis settings (conf/lecture/<item>.yaml: `analysis`, and `analysis_tiny` under the
        tiny preset); a clear error when the item's file lacks it."""
        if name not in self.settings:
            raise KeyError(f"the item's conf/lecture file has no analysis setting {name!r} "
                           f"(it has {sorted(self.settings)})")
        return self.settings[name]

    def jobs(self, experiment: str, completed: bool = True) -> list[Job]:
        """The experiment's jobs, sorted by directory name; only the completed ones unless `completed=False`."""
        root = sweep_dir(self.out, experiment, self.preset)
        jobs = []
        for path in sorted(root.glob("*/results.json")):
            try:
                results = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            if isinstance(results, dict) and (results.get("status") == "completed" or not completed):
                jobs.append(Job(path.parent, results))
        return jobs

    def by_value(self, experiment: str) -> dict:
        """{swept value: [jobs, by seed]} of an experiment's completed jobs."""
        groups: dict = {}
        for job in sorted(self.jobs(experiment), key=lambda j: j.seed):
            groups.setdefault(job.value, []).append(job)
        return dict(sorted(groups.items(), key=lambda item: float(item[0])))

    def all_jobs(self, completed: bool = False) -> list[Job]:
        return [job for experiment in self.experiments for job in self.jobs(experiment, completed)]
