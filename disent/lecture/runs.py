"""The jobs of a lecture item's sweeps, as its analysis reads them: results.json, the checkpoint, the
figures.

A job lives in two places. Its directory (`<out>/<experiment>/<preset>/<job>`) holds everything,
checkpoints and figures included, but stays on the machine that trained it. Its *record*
(`<records>/<experiment>/<preset>/<job>`, committed beside the page: docs/lecture/jobs/) keeps what
the analyses read from a completed job in a few kB: results.json, the run's config and
`measures.json`, the measurements the analyses took on its trained model (an MI matrix, a capacity
history, ...). A report reads the job directories there are, then the records of the jobs that are
not on this machine, so that an item's seeds add up across machines and sessions, and a fresh clone
rewrites the page from the records alone.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from disent.lecture import sweep_dir
from disent.results import write_atomic

# what makes a completed job one of a plan's, beside its length (disent.checkpoints.RESUME_KEYS but
# the seed, which the plan's grid covers)
PLANNED_KEYS = ("model", "dataset", "loader.batch_size")

RECORD_FILES = {
    "results.json": "results.json",
    ".hydra/config.yaml": "config.yaml",
    "measures.json": "measures.json",
}


class JobGone(LookupError):
    """An analysis needs what only a job's directory holds (its checkpoint, a figure, a measurement its
    record lacks), and only the record is on this machine."""


@dataclass(frozen=True)
class Plan:
    """What an experiment's sweep runs under some overrides."""

    jobs: int
    steps: int
    seeds: list[int]
    grid: dict[str, list[str]]  # swept key -> its values, as the sweeper expands them
    fixed: dict = field(default_factory=dict)  # dotted key -> the value every job of it has

    @staticmethod
    def fixed_keys(config: DictConfig, grid: dict) -> dict:
        """The PLANNED_KEYS values of a composed experiment `config` that its `grid` does not sweep, one
        entry per leaf (`model.beta`, `model.init`, `model.optimizer.lr`, ...). A leaf written as an
        interpolation (`lambda_d: ${multiply:10,${.lambda_od}}`) is left out: it follows its source."""
        fixed = {}
        for key in PLANNED_KEYS:
            if key in grid:
                continue
            node = OmegaConf.select(config, key, default=None)
            if not isinstance(node, DictConfig):
                fixed[key] = node
                continue
            written = OmegaConf.to_container(node, resolve=False)
            resolved = OmegaConf.to_container(node, resolve=True)
            leaves = _leaves(written, resolved, key)
            fixed |= {leaf: value for leaf, value in leaves.items() if leaf not in grid}
        return fixed

    def fits(self, job: "Job") -> bool:
        """Whether a job (or its record) was trained as this plan trains it now: its length, and its
        config's values of the keys the plan fixes (a key the job's config lacks reads as null, as
        disent read it then). A job trained before an experiment's file changed is not the plan's."""
        if job.results.get("max_steps") != self.steps:
            return False
        if not self.fixed:
            return True
        config = job.config
        for key, value in self.fixed.items():
            found = OmegaConf.select(config, key, default=None)
            if isinstance(found, DictConfig | ListConfig):
                found = OmegaConf.to_container(found, resolve=True)
            if found != value:
                return False
        return True


def _leaves(written: dict, resolved: dict, prefix: str) -> dict:
    """{dotted key: resolved value} of a config's leaves but those written as interpolations."""
    leaves = {}
    for name, value in written.items():
        key = f"{prefix}.{name}"
        if isinstance(value, dict):
            leaves |= _leaves(value, resolved[name], key)
        elif not (isinstance(value, str) and "${" in value):
            leaves[key] = resolved[name]
    return leaves


@dataclass
class Job:
    """One job of a sweep: its directory, or its record when the directory is not on this machine."""

    dir: Path
    results: dict
    trained: bool = True  # the job directory itself (checkpoints, figures), not a record

    @property
    def name(self) -> str:
        return self.dir.name

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
        return OmegaConf.load(self.dir / (".hydra/config.yaml" if self.trained else "config.yaml"))

    def gone(self, what: str) -> JobGone:
        """The error for an analysis that needs `what`, which only the job's own directory holds."""
        return JobGone(
            f"{self.dir}: the analysis needs {what}, which only the job's own directory holds, and only "
            "its record is here; train the job again (`disent-lecture run <item>`) or report on the "
            "machine that trained it"
        )

    def load(self):
        """(the trained model in eval mode, its run config)."""
        from disent.checkpoints import load_model

        if not self.trained:
            raise self.gone("its checkpoint")
        return load_model(self.dir / "checkpoints" / "last.ckpt")

    def figure(self, name: str) -> np.ndarray | None:
        """A figure the run wrote at its end (figures/<name>.png) as a uint8 RGB array; None for a record."""
        from PIL import Image

        if not self.trained:
            return None
        with Image.open(self.dir / "figures" / f"{name}.png") as image:
            return np.asarray(image.convert("RGB"))

    def _measures(self) -> dict:
        """measures.json when it was taken on these very results, else an empty one for them."""
        stamp = hashlib.sha256((self.dir / "results.json").read_bytes()).hexdigest()
        path = self.dir / "measures.json"
        if path.is_file():
            try:
                stored = json.loads(path.read_text())
                # taken on this job's final results, not an earlier run's
                if stored.get("results_sha256") == stamp:
                    return stored
            except (OSError, ValueError, AttributeError):
                pass
        return {"results_sha256": stamp, "values": {}}

    def holds(self, key: str) -> bool:
        """Whether the measurement `key` is kept for these results (no checkpoint needed to report it)."""
        return key in self._measures()["values"]

    def measure(self, key: str, compute: Callable[[], object], refresh: bool = False):
        """The measurement `key` of this job (JSON values): from measures.json when it was taken on
        these very results, else `compute()`d now and kept there (also when `refresh`, where the job
        directory is here). Keys name their settings ("mi_matrix(points=10000)")."""
        cache = self._measures()
        if key not in cache["values"] or (refresh and self.trained):
            if not self.trained:
                raise self.gone(f"the measurement {key!r}")
            cache["values"][key] = compute()
            write_atomic(self.dir / "measures.json", json.dumps(cache) + "\n")
        return cache["values"][key]


@dataclass
class Runs:
    """The jobs of an item's experiments under `out` (their directories) and `records` for one preset."""

    out: Path
    preset: str
    experiments: list[str]
    # experiment -> the command that runs it
    commands: dict[str, list[str]] = field(default_factory=dict)
    # the item's analysis sizes (its YAML's `analysis`)
    settings: dict = field(default_factory=dict)
    # where the jobs' records are kept (docs/lecture/jobs); None: none are read
    records: Path | None = None
    # experiment -> what it trains now: jobs and records of another length or config are stale
    plans: dict[str, Plan] = field(default_factory=dict)

    def setting(self, name: str):
        """One of the item's analysis settings (conf/lecture/<item>.yaml: `analysis`, and
        `analysis_tiny` under the tiny preset); a clear error when the item's file lacks it."""
        if name not in self.settings:
            raise KeyError(
                f"the item's conf/lecture file has no analysis setting {name!r} "
                f"(it has {sorted(self.settings)})"
            )
        return self.settings[name]

    def jobs(self, experiment: str, completed: bool = True) -> list[Job]:
        """The experiment's jobs, sorted by name: its job directories here, then the records of
        completed jobs that are not here; only those its plan would train now (`Plan.fits`), and only
        the completed ones unless `completed=False`."""
        planned = self.plans.get(experiment)
        found = {
            job.name: job
            for job in read_jobs(sweep_dir(self.out, experiment, self.preset), trained=True)
            if job.status != "completed" or planned is None or planned.fits(job)
        }
        if self.records is not None:
            for job in read_jobs(sweep_dir(self.records, experiment, self.preset), trained=False):
                fits = planned is None or planned.fits(job)
                if job.name not in found and job.status == "completed" and fits:
                    found[job.name] = job
        return [
            found[name]
            for name in sorted(found)
            if found[name].status == "completed" or not completed
        ]

    def by_value(self, experiment: str) -> dict:
        """{swept value: [jobs, by seed]} of an experiment's completed jobs."""
        groups: dict = {}
        for job in sorted(self.jobs(experiment), key=lambda j: j.seed):
            groups.setdefault(job.value, []).append(job)
        return dict(sorted(groups.items(), key=lambda item: float(item[0])))

    def all_jobs(self, completed: bool = False) -> list[Job]:
        return [job for experiment in self.experiments for job in self.jobs(experiment, completed)]

    def keep_records(self) -> list[Path]:
        """Copy each completed job directory's record (results.json, its config, measures.json) into
        `records`; the records written."""
        if self.records is None:
            return []
        written = []
        for experiment in self.experiments:
            for job in self.jobs(experiment):
                if not job.trained:
                    continue
                record = sweep_dir(self.records, experiment, self.preset) / job.name
                for source, target in RECORD_FILES.items():
                    if (job.dir / source).is_file():
                        write_atomic(record / target, (job.dir / source).read_bytes())
                    elif (
                        record / target
                    ).is_file():  # e.g. a measures.json of an earlier run of this job
                        (record / target).unlink()
                written.append(record)
        return written


def read_jobs(root: Path, trained: bool) -> list[Job]:
    jobs = []
    for path in sorted(root.glob("*/results.json")):
        try:
            results = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(results, dict):
            jobs.append(Job(path.parent, results, trained))
    return jobs
