"""Ground-truth data sets (observations generated from known factors) and their training stream.

The Lightning datamodule lives in `disent.data.datamodule` and is not imported here, so that
metrics can use the data sets without importing Lightning.
"""

from disent.data.base import GroundTruthData, as_rng
from disent.data.dsprites import DSprites

__all__ = ["DSprites", "GroundTruthData", "as_rng"]
