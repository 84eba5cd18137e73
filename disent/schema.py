"""Schemas of the configs in conf/, and the checks that refuse a bad config before any training starts.

Each config group (and each model, data set and logger of a group) is a dataclass: its fields are
the group's keys, a field's type is the type its value must have, and the field's `spec(...)` the
allowed range or choices. A config is checked against its schema in one pass that collects every
problem, so a single ConfigError lists them all, one line each, with the key, the value and what is
allowed:

    invalid config (2 problems):
      model.beta = -1.0: must be a number >= 0
      loader.batch_size = 0: must be an integer >= 1

A field is a required key unless `spec(optional=True)`. Ints are accepted where floats are expected
(`model.beta=4`), bools and strings are not, and null only where the type says `| None`. A new model
is one small dataclass added to MODELS (and a new data set to DATASETS).
"""

import dataclasses
import difflib
import math
import operator
import typing
from dataclasses import MISSING, dataclass, field, is_dataclass
from types import NoneType, UnionType
from typing import Any, ClassVar, Union, get_args, get_origin

from omegaconf import DictConfig, ListConfig, OmegaConf


class ConfigError(ValueError):
    """A config that cannot run; the message lists every problem, one line each."""


def spec(optional: bool = False, **rules: Any) -> Any:
    """A schema field: a required key (or one that may be left out, `optional=True`) with rules on its
    value: min / max (inclusive), gt / lt (exclusive), nonzero, choices (a list of allowed values),
    length and nonempty (for lists; a list's other rules apply to each item), variants (name ->
    schema, chosen by the value's `name`). A model key marked `per_member=True` (a loss weight) may
    differ between the jobs of one stack (hydra/launcher=stacked); every other model key must be
    equal in a stack, as must the rest of the config. A knob marked `weaker_when_larger=True`
    regularises less as it grows (AnnealedVAE's c_max: more capacity), so analyses that order runs
    by regularisation strength reverse it.
    """
    return field(default=None if optional else MISSING, metadata=rules)


# --- models (conf/model/) -------------------------------------------------------------------------
@dataclass(kw_only=True)
class Adam:
    """torch.optim.Adam's settings."""

    lr: float = spec(gt=0)
    betas: list[float] = spec(length=2, min=0, lt=1)
    eps: float = spec(gt=0)
    weight_decay: float = spec(min=0)


@dataclass(kw_only=True)
class Model:
    name: str
    # the knob a study sweeps: one of the model's number keys
    hyperparameter: str = spec(per_member=True)
    # model.net -> what the image height and width must be divisible by (disent/nets)
    nets: ClassVar[dict[str, int]]

    @classmethod
    def stronger_when_larger(cls, key: str) -> bool:
        """Whether a larger value of the knob `key` regularises more (False where it is marked
        `weaker_when_larger`)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        return not (key in fields and fields[key].metadata.get("weaker_when_larger"))

    @classmethod
    def per_member_keys(cls) -> list[str]:
        """The keys that may differ within a stack: the loss weights (marked `per_member=True`)."""
        return [f.name for f in dataclasses.fields(cls) if f.metadata.get("per_member")]


@dataclass(kw_only=True)
class VAE(Model):
    """conf/model/common/vae.yaml: the keys every VAE shares."""

    # conv halves the image 4 times; mlp takes any size
    nets: ClassVar[dict[str, int]] = {"conv": 16, "mlp": 1}
    net: str = spec(choices=sorted(nets))
    latent_dim: int = spec(min=1)
    hidden_dim: int = spec(min=1)
    reconstruction: str = spec(choices=["bernoulli", "gaussian"])
    init: str | None = spec(optional=True, choices=["glorot"])  # disent.nets.INITS; null: PyTorch's
    optimizer: Adam


@dataclass(kw_only=True)
class BetaVAE(VAE):
    beta: float = spec(min=0, per_member=True)


@dataclass(kw_only=True)
class LinearSchedule:
    start: float = spec(min=0)
    end: float = spec(min=0)
    steps: int = spec(min=0)


@dataclass(kw_only=True)
class AnnealedVAE(VAE):
    c_max: float = spec(min=0, per_member=True, weaker_when_larger=True)  # more capacity allowed
    gamma: float = spec(min=0, per_member=True)
    iteration_threshold: int = spec(min=0, per_member=True)
    capacity_schedule: LinearSchedule = spec(per_member=True)


@dataclass(kw_only=True)
class DIPVAEI(VAE):
    dip_type: str = spec(choices=["i"])
    lambda_od: float = spec(min=0, per_member=True)
    lambda_d: float = spec(min=0, per_member=True)


@dataclass(kw_only=True)
class DIPVAEII(DIPVAEI):
    dip_type: str = spec(choices=["ii"])


@dataclass(kw_only=True)
class BetaTCVAE(VAE):
    beta: float = spec(min=0, per_member=True)
    estimator: str = spec(choices=["mss", "mws"])


@dataclass(kw_only=True)
class FactorVAEDiscriminator:
    hidden_dim: int = spec(min=1)
    num_layers: int = spec(min=1)


@dataclass(kw_only=True)
class FactorVAE(VAE):
    gamma: float = spec(min=0, per_member=True)
    permute: str = spec(choices=["same", "second"])
    discriminator: FactorVAEDiscriminator
    discriminator_optimizer: Adam


@dataclass(kw_only=True)
class InfoGAN(Model):
    # 2 ** (number of stride-2 layers)
    nets: ClassVar[dict[str, int]] = {"conv": 16, "conv_small": 4}
    net: str = spec(choices=sorted(nets))
    hidden_dim: int = spec(min=1)
    noise_dim: int = spec(min=0)
    categorical_codes: list[int] = spec(min=1)
    continuous_codes: int = spec(min=0)
    lambda_info: float = spec(min=0, per_member=True)
    continuous_weight: float = spec(min=0, per_member=True)
    generator_optimizer: Adam
    discriminator_optimizer: Adam


MODELS: dict[str, type[Model]] = {
    "beta_vae": BetaVAE,
    "annealed_vae": AnnealedVAE,
    "dip_vae_i": DIPVAEI,
    "dip_vae_ii": DIPVAEII,
    "beta_tcvae": BetaTCVAE,
    "factor_vae": FactorVAE,
    "infogan": InfoGAN,
}


def stack_fixed_keys(model: dict) -> dict | None:
    """`model` (a model config) but for its loss weights, the keys its schema marks per_member: what
    must be equal within a stack. None for a model without a schema, which never stacks."""
    schema = MODELS.get(model.get("name"))
    if schema is None:
        return None
    per_member = schema.per_member_keys()
    return {key: value for key, value in model.items() if key not in per_member}


# --- data sets (conf/dataset/) --------------------------------------------------------------------
@dataclass(kw_only=True)
class Dataset:
    """dsprites, color_dsprites, noisy_dsprites: 64x64 images."""

    name: str
    factors: dict[str, int] = spec(min=1)
    path: str | None

    @classmethod
    def side(cls, cfg: dict) -> Any:
        """The height (= width) of the images of the data set `cfg`."""
        return 64


@dataclass(kw_only=True)
class ScreamDSprites(Dataset):
    image_path: str | None


@dataclass(kw_only=True)
class Shapes3D(Dataset):
    cache_dir: str | None
    in_memory: bool


@dataclass(kw_only=True)
class Digits(Dataset):
    size: int = spec(min=1)
    rotation: float = spec(min=0, max=180)
    width: float = spec(min=0, lt=1)
    shift: float = spec(min=0)
    # the source when path is null; absent from checkpoints written before it existed (then sklearn)
    bundled: str | None = spec(optional=True, choices=["sklearn", "mnist_5k"])

    @classmethod
    def side(cls, cfg: dict) -> Any:
        return cfg.get("size")


@dataclass(kw_only=True)
class Arrays(Dataset):
    """arrays: one's own images and factors from a file (disent.data.arrays)."""

    factors: dict[str, int] | None = spec(optional=True, min=1)  # from the file; checked if given
    path: str  # required: there is no default data
    size: int | None = spec(min=1)  # null: the file's own size
    in_memory: bool

    @classmethod
    def side(cls, cfg: dict) -> Any:
        return cfg.get("size")  # null (the file's size): known only once the file is read


@dataclass(kw_only=True)
class SmallNORB(Dataset):
    """smallnorb: the original NORB binary-matrix files (disent.data.smallnorb)."""

    instance_factor: bool  # the instance a fifth factor (true) or drawn per observation (false)


@dataclass(kw_only=True)
class MPI3D(Dataset):
    """mpi3d: the toy, realistic or real photographs of a robot arm's object (disent.data.mpi3d)."""

    variant: str = spec(choices=["toy", "realistic", "real"])
    axis_size: int = spec(min=1)  # values per arm axis in the file (40; tests write fewer)
    in_memory: bool


DATASETS: dict[str, type[Dataset]] = {
    "dsprites": Dataset,
    "color_dsprites": Dataset,
    "noisy_dsprites": Dataset,
    "scream_dsprites": ScreamDSprites,
    "shapes3d": Shapes3D,
    "digits": Digits,
    "arrays": Arrays,
    "smallnorb": SmallNORB,
    "cars3d": Dataset,
    "mpi3d": MPI3D,
}


# --- metrics (conf/metrics/, conf/periodic_metrics/)
# ------------------------------------------------
@dataclass(kw_only=True)
class BetaVAEMetric:
    batch_size: int = spec(min=1)
    num_train: int = spec(min=1)
    num_eval: int = spec(min=1)


@dataclass(kw_only=True)
class FactorVAEMetric(BetaVAEMetric):
    num_variance_estimate: int = spec(min=2)
    prune_threshold: float = spec(min=0)


@dataclass(kw_only=True)
class MIGMetric:
    num_train: int = spec(min=1)
    num_bins: int = spec(min=1)


@dataclass(kw_only=True)
class TrainTestMetric:
    num_train: int = spec(min=1)
    num_test: int = spec(min=1)


@dataclass(kw_only=True)
class DCIMetric(TrainTestMetric):
    n_estimators: int = spec(min=1)  # boosting stages of each factor's classifier (DL: 100)
    estimator: str = spec(choices=["gbt", "hist_gbt"])  # gbt: DL's exact; hist_gbt: fast, close


@dataclass(kw_only=True)
class DCIESMetric(TrainTestMetric):
    # the probes' capacities: random-forest depths, increasing
    depths: list[int] = spec(min=1, nonempty=True)
    n_estimators: int = spec(min=1)  # trees per forest (the authors': 100)
    continuous_factors: bool  # regress every factor (loss 1 - R²) instead of classifying it


@dataclass(kw_only=True)
class SAPMetric(TrainTestMetric):
    continuous_factors: bool


@dataclass(kw_only=True)
class ModularityMetric(TrainTestMetric):
    num_bins: int = spec(min=1)


@dataclass(kw_only=True)
class IRSMetric:
    num_train: int = spec(min=1)
    diff_quantile: float = spec(gt=0, max=1)  # DL: 0.99 (the paper's version: 1)
    num_bins: int = spec(min=1)  # bins of the factors' discretisation


@dataclass(kw_only=True)
class MCCMetric:
    num_train: int = spec(min=1)
    correlation: str = spec(choices=["pearson", "spearman"])


@dataclass(kw_only=True)
class InfoMECMetric:
    num_train: int = spec(min=1)
    discrete_codes: bool  # each code dimension categorical (quantised latents): plug-in MI, one-hot
    n_neighbors: int = spec(min=1)  # the KSG estimator's neighbours (the authors': 10)
    active_fraction: float = spec(min=0, max=1)  # pruned: range <= this share of the widest (1/20)
    max_iter: int = spec(min=1)  # lbfgs iterations of each logistic regression (the authors': 100)


@dataclass(kw_only=True)
class DownstreamMetric:
    # training-set sizes (Locatello: 10 ... 10000)
    num_train: list[int] = spec(min=1, nonempty=True)
    num_test: int = spec(min=1)
    batch_size: int = spec(min=1)
    efficiency: list[int] = spec(length=2, min=1)  # sample_efficiency = acc(first) / acc(second)


@dataclass(kw_only=True)
class Suite:
    """metrics.suite: the metrics to score (any of them) and their sizes."""

    key_name: ClassVar[str] = "metric"
    beta_vae: BetaVAEMetric = spec(optional=True)
    factor_vae: FactorVAEMetric = spec(optional=True)
    mig: MIGMetric = spec(optional=True)
    dci: DCIMetric = spec(optional=True)
    sap: SAPMetric = spec(optional=True)
    modularity: ModularityMetric = spec(optional=True)
    unsupervised: MIGMetric = spec(optional=True)
    irs: IRSMetric = spec(optional=True)
    mcc: MCCMetric = spec(optional=True)
    dci_es: DCIESMetric = spec(optional=True)
    infomec: InfoMECMetric = spec(optional=True)
    downstream_logistic: DownstreamMetric = spec(optional=True)
    downstream_gbt: DownstreamMetric = spec(optional=True)


@dataclass(kw_only=True)
class SharedCodes:
    """metrics.shared_codes: codes of observations drawn from `metrics.seed` alone, the same for every
    job on a data set, saved beside results.json for the study-level metrics (UDR)."""

    num_points: int = spec(min=1)


@dataclass(kw_only=True)
class Metrics:
    name: str
    seed: int = spec(min=0)
    representations: list[str] = spec(choices=["mean", "sampled"])
    cache_grid_max_size: int = spec(min=0)
    encode_batch_size: int = spec(min=1)
    dci_n_jobs: int | None = spec(nonzero=True)  # joblib's n_jobs: -1 = all cores
    suite: Suite | None
    shared_codes: SharedCodes | None = spec(optional=True)  # null or left out: none saved


@dataclass(kw_only=True)
class PeriodicMetrics(Metrics):
    every_n_steps: int = spec(min=0)


# --- the other groups and the top level of conf/train.yaml ----------------------------------------
# what Lightning 2.x accepts for Trainer(precision=...) and Trainer(accelerator=...)
PRECISIONS = [
    64,
    32,
    16,
    "64",
    "32",
    "16",
    "bf16",
    "64-true",
    "32-true",
    "16-true",
    "bf16-true",
    "16-mixed",
    "bf16-mixed",
    "transformer-engine",
    "transformer-engine-float16",
]
ACCELERATORS = ["auto", "cpu", "gpu", "cuda", "mps", "tpu"]
# Trainer arguments that disent sets itself (train.build_trainer); the trainer group must not set
# them
TRAINER_MANAGED = ["logger", "callbacks", "plugins", "default_root_dir", "max_epochs"]


def lightning_trainer_arguments() -> list[str]:
    """The keyword arguments of the installed lightning.Trainer (what a trainer key beyond the schema may be)."""
    import inspect

    import lightning

    return [
        name for name in inspect.signature(lightning.Trainer.__init__).parameters if name != "self"
    ]


@dataclass(kw_only=True)
class Trainer:
    """conf/trainer/: keyword arguments of lightning.Trainer. The keys below are checked here; any
    other argument of the installed lightning.Trainer is passed on as it is (but for the ones disent
    sets itself)."""

    extra_keys: ClassVar = staticmethod(
        lambda: [k for k in lightning_trainer_arguments() if k not in TRAINER_MANAGED]
    )
    max_steps: int = spec(min=1)
    accelerator: str = spec(optional=True, choices=ACCELERATORS)
    devices: int | str | list[int] = spec(optional=True)
    precision: int | str = spec(optional=True, choices=PRECISIONS)
    log_every_n_steps: int = spec(optional=True, min=1)
    enable_progress_bar: bool = spec(optional=True)
    enable_model_summary: bool = spec(optional=True)
    gradient_clip_val: float | None = spec(optional=True, min=0)
    deterministic: bool | str = spec(optional=True, choices=[True, False, "warn"])


@dataclass(kw_only=True)
class Logger:
    """csv, tensorboard."""

    _target_: str  # the function that builds the logger (disent.loggers.build_logger)
    name: str


@dataclass(kw_only=True)
class WandbLogger(Logger):
    mode: str = spec(choices=["offline", "online"])
    project: str
    entity: str | None
    group: str | None
    tags: list[str]
    init_timeout_s: float = spec(gt=0)


LOGGERS: dict[str, type[Logger]] = {"csv": Logger, "tensorboard": Logger, "wandb": WandbLogger}


@dataclass(kw_only=True)
class Loader:
    batch_size: int = spec(min=1)
    num_workers: int = spec(min=0)
    on_device: bool  # the factor grid on the training device (disent.data.on_device)


@dataclass(kw_only=True)
class Compute:
    float32_matmul_precision: str = spec(choices=["highest", "high", "medium"])
    compile: bool  # torch.compile the training step


@dataclass(kw_only=True)
class Checkpoint:
    every_n_steps: int = spec(min=0)


@dataclass(kw_only=True)
class Results:
    final_loss_window: int = spec(min=1)


@dataclass(kw_only=True)
class Figures:
    every_n_steps: int = spec(min=0)
    num_examples: int = spec(min=1)
    prior_rows: int = spec(min=1)
    traversal_range: float = spec(gt=0)
    traversal_steps: int = spec(min=1)
    heatmap_factors: list[str] = spec(length=2)
    heatmap_samples_per_cell: int = spec(min=1)
    mi_num_points: int = spec(min=1)
    kl_every_n_steps: int = spec(min=1)
    capacity_active_kl: float = spec(min=0)


@dataclass(kw_only=True)
class Malloc:
    trim_threshold_mb: int = spec(min=0, max=2047)  # mallopt takes a C int of bytes
    mmap_threshold_mb: int = spec(min=0, max=32)  # glibc's documented maximum on 64-bit systems


@dataclass(kw_only=True)
class Train:
    """conf/train.yaml, composed."""

    seed: int = spec(min=0, max=2**32 - 1)
    study_name: str | None
    # modules imported before the config is checked: where objectives of one's own register
    imports: list[str]
    threads: int | None = spec(min=1)
    malloc: Malloc | None
    loader: Loader
    compute: Compute
    checkpoint: Checkpoint
    resume: str | bool = spec(choices=["auto", True, False])  # continue from checkpoints/last.ckpt
    results: Results
    figures: Figures
    model: dict = spec(variants=MODELS)
    dataset: dict = spec(variants=DATASETS)
    trainer: Trainer
    logger: dict = spec(variants=LOGGERS)
    metrics: Metrics
    periodic_metrics: PeriodicMetrics


# --- study presets (conf/study/) ------------------------------------------------------------------
@dataclass(kw_only=True)
class Grid:
    knob: str  # a number key of the model; `values` are checked against its spec
    values: list[Any] = spec(nonempty=True)
    overrides: list[str] = spec(optional=True)


@dataclass(kw_only=True)
class Study:
    name: str
    dataset: str = spec(choices=sorted(DATASETS))
    seeds: list[int] = spec(nonempty=True, min=0, max=2**32 - 1)
    launcher: str
    overrides: list[str] = spec(optional=True)
    models: dict[str, Grid]


# --- checking -------------------------------------------------------------------------------------
BOUNDS = {
    "min": (">=", operator.ge),
    "gt": (">", operator.gt),
    "max": ("<=", operator.le),
    "lt": ("<", operator.lt),
}
KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
UNRESOLVED = object()  # a value whose interpolation failed (reported when it was resolved)


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _show(value: Any) -> str:
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is(value: Any, tp: Any) -> bool:
    """Whether `value` has the type `tp`, not looking inside it (an int is a float; a bool is neither)."""
    if tp is Any:
        return True
    if is_dataclass(tp) or get_origin(tp) is dict or tp is dict:
        return isinstance(value, dict)
    if get_origin(tp) is list:
        return isinstance(value, list)
    if tp in (int, float) and isinstance(value, bool):
        return False
    if tp is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, tp)


def _within(value: Any, rules: dict) -> bool:
    if "choices" in rules:
        return value in rules["choices"]
    return all(test(value, rules[k]) for k, (_, test) in BOUNDS.items() if k in rules) and not (
        rules.get("nonzero") and value == 0
    )


def _describe(tp: Any, rules: dict) -> str:
    """What a value must be, e.g. 'an integer >= 1 or null' or "one of ['i', 'ii']"."""
    if "choices" in rules and get_origin(tp) is not list:
        return f"one of [{', '.join(_show(choice) for choice in rules['choices'])}]"
    if get_origin(tp) in (Union, UnionType):
        return " or ".join("null" if t is NoneType else _describe(t, rules) for t in get_args(tp))
    if get_origin(tp) is list:
        text = ("a non-empty list" if rules.get("nonempty") else "a list") + (
            f" of length {rules['length']}" if "length" in rules else ""
        )
        item_rules = {k: v for k, v in rules.items() if k not in ("length", "nonempty")}
        return (
            text
            if get_args(tp)[0] is Any
            else f"{text}, each {_describe(get_args(tp)[0], item_rules)}"
        )
    if tp not in KINDS:
        return "a mapping"
    bounds = [f"{symbol} {rules[k]}" for k, (symbol, _) in BOUNDS.items() if k in rules]
    bounds += ["other than 0"] if rules.get("nonzero") else []
    return " ".join([KINDS[tp], " and ".join(bounds)]) if bounds else KINDS[tp]


def _knobs(schema: type) -> list[str]:
    """The number keys of a model: what `hyperparameter` and a study's `knob` may name."""
    hints = typing.get_type_hints(schema)
    return [f.name for f in dataclasses.fields(schema) if hints[f.name] in (int, float)]


class _Checker:
    """Checks plain values against schemas, collecting one line per problem."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.sources: dict[str, str] = {}  # key -> the interpolation its value was computed from

    def bad(self, path: str, value: Any, tp: Any, rules: dict) -> None:
        source = f" (from {self.sources[path]})" if path in self.sources else ""
        self.problems.append(f"{path} = {_show(value)}{source}: must be {_describe(tp, rules)}")

    def unknown(
        self, path: str, value: Any, what: str, known: list[str], extra: list[str] = ()
    ) -> None:
        key = path.rsplit(".", 1)[-1]
        close = difflib.get_close_matches(key, [*known, *extra], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        listed = f"known: {', '.join(sorted(known))}"
        if extra:  # the trainer: the schema's keys, then the rest of lightning.Trainer's arguments
            managed = (
                f"; disent sets {', '.join(TRAINER_MANAGED)} itself"
                if key in TRAINER_MANAGED
                else ""
            )
            listed += f", or any other argument of lightning.Trainer{managed}"
        self.problems.append(f"{path} = {_show(value)}: unknown {what} ({hint}{listed})")

    def value(self, value: Any, tp: Any, rules: dict, path: str) -> None:
        """Check one value (and everything inside it) against its type and rules."""
        if value is UNRESOLVED:
            return
        options = get_args(tp) if get_origin(tp) in (Union, UnionType) else [tp]
        # the member of a union the value is
        kind = next((t for t in options if _is(value, t)), None)
        if kind is None:
            return self.bad(path, value, tp, rules)
        if "variants" in rules:
            name, variants = value.get("name"), rules["variants"]
            if isinstance(name, str) and name in variants:
                return self.fields(value, variants[name], path, f"{path} {name!r}")
            return self.bad(_join(path, "name"), name, str, {"choices": sorted(variants)})
        if is_dataclass(kind):
            return self.fields(value, kind, path, path or "the config")
        if get_origin(kind) is list:
            if len(value) != rules.get("length", len(value)) or (
                rules.get("nonempty") and not value
            ):
                return self.bad(path, value, tp, rules)
            item_rules = {k: v for k, v in rules.items() if k not in ("length", "nonempty")}
            for i, item in enumerate(value):
                self.value(item, get_args(kind)[0], item_rules, _join(path, i))
        elif get_origin(kind) is dict:
            for key, item in value.items():
                self.value(item, get_args(kind)[1], rules, _join(path, key))
        elif kind in KINDS and not _within(value, rules):
            self.bad(path, value, tp, rules)

    def fields(self, value: dict, schema: type, path: str, label: str) -> None:
        """Check a mapping against a schema dataclass: unknown keys, missing keys, then each value."""
        fields, hints = (
            {f.name: f for f in dataclasses.fields(schema)},
            typing.get_type_hints(schema),
        )
        extra = schema.extra_keys() if hasattr(schema, "extra_keys") else []
        for key in value if not getattr(schema, "open", False) else ():
            if key not in fields and key not in extra:
                self.unknown(
                    _join(path, key),
                    value[key],
                    f"{getattr(schema, 'key_name', 'key')} for {label}",
                    list(fields),
                    extra,
                )
        for name, f in fields.items():
            if name in value:
                self.value(value[name], hints[name], dict(f.metadata), _join(path, name))
            elif f.default is MISSING:
                self.problems.append(
                    f"{_join(path, name)}: missing, must be {_describe(hints[name], f.metadata)}"
                )

    def plain(self, node: Any, path: str) -> Any:
        """An OmegaConf node as plain values, resolved key by key: an interpolation that fails is one problem."""
        if not isinstance(node, DictConfig | ListConfig):
            return node
        raw = OmegaConf.to_container(node, resolve=False)
        keys = list(node.keys()) if isinstance(node, DictConfig) else list(range(len(node)))
        values = []
        for key in keys:
            here = _join(path, key)
            if OmegaConf.is_interpolation(node, key):
                self.sources[here] = raw[key]
            try:
                values.append(self.plain(node[key], here))
            except Exception as error:  # noqa: BLE001 -- any resolver's error is a problem of this key
                self.problems.append(
                    f"{here} = {_show(raw[key])}: cannot be resolved ({str(error).splitlines()[0]})"
                )
                values.append(UNRESOLVED)
        return dict(zip(keys, values, strict=True)) if isinstance(node, DictConfig) else values

    def raise_if_any(self, what: str) -> None:
        if self.problems:
            count = f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}"
            raise ConfigError(
                f"invalid {what} ({count}):\n" + "\n".join(f"  {p}" for p in self.problems)
            )


def _cross_checks(cfg: dict, checker: _Checker) -> None:
    """What no single key tells: the model's knob, the net vs the image size, InfoGAN's codes, FactorVAE's halves."""
    model, dataset, loader = (
        cfg[k] if isinstance(cfg.get(k), dict) else {} for k in ("model", "dataset", "loader")
    )
    schema = MODELS.get(model.get("name")) if isinstance(model.get("name"), str) else None
    data = DATASETS.get(dataset.get("name")) if isinstance(dataset.get("name"), str) else None
    for group in ("metrics", "periodic_metrics"):
        _increasing_depths(cfg.get(group), group, checker)
    if schema is None:
        return
    knob, knobs = model.get("hyperparameter"), _knobs(schema)
    if isinstance(knob, str) and knob not in knobs:
        checker.bad("model.hyperparameter", knob, str, {"choices": knobs})
    net, side = model.get("net"), data.side(dataset) if data else None
    divisor = schema.nets.get(net) if isinstance(net, str) else None
    if divisor and _is(side, int) and side > 0 and side % divisor:
        key, value = ("dataset.size", side) if "size" in dataset else ("model.net", net)
        nets = ", ".join(f"{n} {d}" for n, d in schema.nets.items())
        checker.problems.append(
            f"{key} = {_show(value)}: model.net={net} needs image sides divisible by {divisor}, "
            f"dataset {dataset['name']!r} has {side}x{side} (divisors per net: {nets})"
        )
    if (
        model.get("name") == "infogan"
        and model.get("categorical_codes") == []
        and model.get("continuous_codes") == 0
    ):
        checker.problems.append(
            "model.continuous_codes = 0: InfoGAN needs at least one code, and "
            "model.categorical_codes is empty"
        )
    _device_checks(cfg.get("trainer") if isinstance(cfg.get("trainer"), dict) else {}, checker)
    batch = loader.get("batch_size")
    if model.get("permute") == "second" and _is(batch, int) and batch % 2:
        checker.problems.append(
            f"loader.batch_size = {batch}: must be even with model.permute=second "
            f"(each batch is split into two halves)"
        )


def _increasing_depths(metrics: Any, group: str, checker: _Checker) -> None:
    """DCI-ES's probes must grow in capacity: at least two depths, increasing."""
    suite = metrics.get("suite") if isinstance(metrics, dict) else None
    dci_es = suite.get("dci_es") if isinstance(suite, dict) else None
    depths = dci_es.get("depths") if isinstance(dci_es, dict) else None
    if isinstance(depths, list) and all(_is(d, int) for d in depths):
        if len(depths) < 2 or any(b <= a for a, b in zip(depths, depths[1:])):
            checker.problems.append(
                f"{group}.suite.dci_es.depths = {_show(depths)}: give at least two increasing depths "
                f"(the authors': [1, 2, 3, 4, 8, 10, 12, 14, 16, 18, 20, 32])"
            )


def _device_checks(trainer: dict, checker: _Checker) -> None:
    """An accelerator this machine does not have: say so before Lightning does, with what to use instead."""
    accelerator = trainer.get("accelerator")
    if accelerator not in ("gpu", "cuda", "mps"):
        return
    import torch

    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        checker.problems.append(
            f"trainer.accelerator = {accelerator!r}: this machine has no GPU that torch can use "
            f"(torch.cuda.is_available() is False); use trainer.accelerator=auto, which takes "
            f"the GPU where there is one and the CPU elsewhere"
        )
    mps = getattr(torch.backends, "mps", None)
    if accelerator == "mps" and not (mps is not None and mps.is_available()):
        checker.problems.append(
            "trainer.accelerator = 'mps': this machine has no Apple GPU that torch can use; "
            "use trainer.accelerator=auto"
        )


def validate_train_config(cfg: DictConfig) -> None:
    """Refuse a `disent-train` config (conf/train.yaml composed, as `disent.config.load_config` returns
    it) that cannot run: raises one ConfigError listing every wrong key, its value and what is
    allowed."""
    checker = _Checker()
    plain = checker.plain(cfg, "")
    if isinstance(plain, dict):
        plain.pop("hydra", None)
    checker.value(plain, Train, {}, "")
    if isinstance(plain, dict):
        _cross_checks(plain, checker)
    checker.raise_if_any("config")


@dataclass(kw_only=True)
class SavedRun:
    """What a checkpoint's config must hold to rebuild its model: the model and the data set it was trained on."""

    open: ClassVar[bool] = True
    model: dict = spec(variants=MODELS)
    dataset: dict = spec(variants=DATASETS)


def validate_saved_config(config: Any) -> None:
    """Refuse a run config (as a checkpoint stores it) whose model or data set disent cannot rebuild;
    one ConfigError listing the problems."""
    checker = _Checker()
    if not isinstance(config, dict):
        checker.problems.append(f"the config is {type(config).__name__}, not a mapping")
    else:
        checker.value({k: config[k] for k in ("model", "dataset") if k in config}, SavedRun, {}, "")
        _cross_checks(config, checker)
    checker.raise_if_any("run config")


def validate_dataset_config(cfg: DictConfig | dict) -> None:
    """Refuse a data set config (a conf/dataset/ file): an unknown name, unknown keys, bad values."""
    checker = _Checker()
    checker.value(checker.plain(cfg, "dataset"), dict, {"variants": DATASETS}, "dataset")
    checker.raise_if_any("dataset config")


def validate_metrics_config(cfg: DictConfig | dict, key: str = "metrics") -> None:
    """Refuse a metric set (a conf/metrics/ file; `key="periodic_metrics"` for conf/periodic_metrics/):
    unknown metrics, sizes <= 0, representations other than mean and sampled. Raises one ConfigError
    listing them all."""
    checker = _Checker()
    checker.value(
        checker.plain(cfg, key), PeriodicMetrics if key == "periodic_metrics" else Metrics, {}, key
    )
    checker.raise_if_any("metrics config")


def validate_study_preset(preset: dict) -> None:
    """Refuse a study preset (conf/study/*.yaml as a dict): unknown models, a knob that is not a number
    key of its model, knob values out of that key's range, seeds that are not non-negative integers,
    a launcher that is not a string. Raises one ConfigError listing them all."""
    checker = _Checker()
    preset = checker.plain(preset, "")
    checker.value(preset, Study, {}, "")
    models = preset.get("models") if isinstance(preset, dict) else None
    for model, grid in models.items() if isinstance(models, dict) else ():
        path, schema = _join("models", model), MODELS.get(model)
        if schema is None:
            checker.unknown(path, grid, "model", list(MODELS))
        elif isinstance(grid, dict) and isinstance(grid.get("knob"), str):
            knob, knobs = grid["knob"], _knobs(schema)
            if knob not in knobs:
                checker.bad(_join(path, "knob"), knob, str, {"choices": knobs})
            elif isinstance(grid.get("values"), list):
                spec_of = next(f for f in dataclasses.fields(schema) if f.name == knob)
                for i, value in enumerate(grid["values"]):
                    checker.value(
                        value,
                        typing.get_type_hints(schema)[knob],
                        dict(spec_of.metadata),
                        _join(_join(path, "values"), i),
                    )
    checker.raise_if_any("study preset")


__all__ = [
    "DATASETS",
    "LOGGERS",
    "MODELS",
    "ConfigError",
    "Model",
    "Dataset",
    "spec",
    "validate_metrics_config",
    "validate_dataset_config",
    "validate_saved_config",
    "validate_study_preset",
    "validate_train_config",
]
