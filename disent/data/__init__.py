"""Ground-truth data sets (observations generated from known factors) and their training stream.

The Lightning datamodule lives in `disent.data.datamodule` and is not imported here, so that
metrics can use the data sets without importing Lightning.
"""

from disent.data.arrays import ArraysData
from disent.data.base import GroundTruthData, as_rng
from disent.data.cars3d import Cars3D
from disent.data.digits import Digits
from disent.data.dsprites import DSprites
from disent.data.dsprites_variants import ColorDSprites, NoisyDSprites, ScreamDSprites
from disent.data.files import DataFileError, DataFileNotFoundError
from disent.data.mpi3d import MPI3D
from disent.data.shapes3d import Shapes3D
from disent.data.smallnorb import SmallNORB

DATASETS: dict[str, type[GroundTruthData]] = {
    "dsprites": DSprites,
    "color_dsprites": ColorDSprites,
    "noisy_dsprites": NoisyDSprites,
    "scream_dsprites": ScreamDSprites,
    "shapes3d": Shapes3D,
    "digits": Digits,
    "arrays": ArraysData,
    "smallnorb": SmallNORB,
    "cars3d": Cars3D,
    "mpi3d": MPI3D,
}


def build_dataset(dataset_cfg) -> GroundTruthData:
    """The data set named `dataset_cfg.name`, built from the other keys of its `conf/dataset/` file.

    `factors` (name: size) is metadata for the reader; it must agree with the data set built
    (`arrays`, whose factors come from its file, leaves it null: then nothing is checked).
    """
    name = dataset_cfg["name"]
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}': choose one of {sorted(DATASETS)}")
    data = DATASETS[name](
        **{key: value for key, value in dataset_cfg.items() if key not in ("name", "factors")}
    )
    declared = dict(dataset_cfg.get("factors") or {})
    actual = dict(zip(data.factor_names, data.factor_sizes, strict=True))
    if declared and declared != actual:
        raise ValueError(
            f"dataset.factors says {declared}, but the '{name}' data set has {actual}: "
            f"fix the `factors` entry of conf/dataset/{name}.yaml"
        )
    return data


__all__ = [
    "DATASETS",
    "ArraysData",
    "Cars3D",
    "ColorDSprites",
    "DataFileError",
    "DataFileNotFoundError",
    "Digits",
    "DSprites",
    "GroundTruthData",
    "MPI3D",
    "NoisyDSprites",
    "ScreamDSprites",
    "Shapes3D",
    "SmallNORB",
    "as_rng",
    "build_dataset",
]
