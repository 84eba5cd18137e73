"""Collecting the jobs of a study into one table and analysing it (Locatello et al. 2019's two
findings).

Reads `results.json` files only: nothing here imports models, nets or Lightning.
"""

from disent.study.analysis import (
    STUDY_METRICS,
    better_beats_worse,
    rank_correlation,
    variance_explained,
)
from disent.study.collect import collect

__all__ = [
    "STUDY_METRICS",
    "better_beats_worse",
    "collect",
    "rank_correlation",
    "variance_explained",
]
