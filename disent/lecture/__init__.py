"""The lecture's figures and tables, reproduced: one item per figure or table of `shared/seeds` (the
lecture on disentangled representations), each a set of ordinary `disent-train -m` sweeps plus the
analysis that turns their jobs into the item's figure and numbers, written into one section of
`docs/lecture/README.md`.

    disent-lecture list
    disent-lecture run beta_traversals --preset cpu        # train (resuming what is there), then report
    disent-lecture report beta_traversals --preset cpu     # the analysis only, from the jobs on disk

An item is `conf/lecture/<item>.yaml` (its sweeps: experiments of conf/experiment/lecture/, with
overrides per preset, or the name of the item whose overrides it shares; its analysis sizes) and
`disent/lecture/<item>.py` (its `analyze(runs, out) -> Section`: the section's markdown and
headline, figures written into `out`). Items that name the same experiment share its jobs:
`<out>/<experiment>/<preset>/<job>`, and their records beside the page,
`docs/lecture/jobs/<experiment>/<preset>/<job>` (disent/lecture/runs.py).
"""

import copy
from functools import cache
from importlib import import_module
from pathlib import Path

from omegaconf import OmegaConf

from disent.config import CONF_DIR

ITEMS = [
    "metric_table",
    "beta_traversals",
    "capacity",
    "elbo_surgery",
    "dip_vae",
    "factor_vs_beta",
    "infogan_digits",
    "theorem",
    "samples_vs_means",
    "study_findings",
]
PRESETS = ("cpu", "tiny", "full")


def item_names() -> list[str]:
    """The items that exist (a conf/lecture/<item>.yaml), in the lecture's order."""
    return [name for name in ITEMS if (CONF_DIR / "lecture" / f"{name}.yaml").is_file()]


def item_spec(name: str) -> dict:
    """conf/lecture/<name>.yaml as a dict (a copy: the caller may change it); a clear error for an unknown item."""
    return copy.deepcopy(_read_item(name))


@cache  # a report reads every item's file many times; the files do not change while a command runs
def _read_item(name: str) -> dict:
    path = CONF_DIR / "lecture" / f"{name}.yaml"
    if name not in ITEMS or not path.is_file():
        raise ValueError(f"no lecture item {name!r}: choose one of {item_names()} (or all)")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def preset_overrides(preset: str) -> list[str]:
    presets = _read_presets()
    if preset not in presets:
        raise ValueError(f"no lecture preset {preset!r}: choose one of {sorted(presets)}")
    return list(presets[preset])


@cache
def _read_presets() -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "lecture" / "presets.yaml"))


def analysis(name: str):
    """The module `disent.lecture.<name>`, whose `analyze(runs, out)` writes the item's figures into
    `out` and returns its section's markdown."""
    return import_module(f"disent.lecture.{name}")


def sweep_dir(out: str | Path, experiment: str, preset: str) -> Path:
    return Path(out) / experiment / preset


__all__ = [
    "ITEMS",
    "PRESETS",
    "analysis",
    "item_names",
    "item_spec",
    "preset_overrides",
    "sweep_dir",
]
