"""Config schemas: every shipped config validates, and each wrong value is refused before training with
one message naming the key, the value and what is allowed. Composition only: nothing is trained or
rendered."""

import copy
import dataclasses
import inspect
import re

import pytest
from omegaconf import OmegaConf

from disent.config import CONF_DIR, load_config
from disent.metrics.suite import METRIC_NAMES
from disent.schema import (
    DATASETS,
    LOGGERS,
    MODELS,
    VAE,
    ConfigError,
    InfoGAN,
    Metrics,
    Suite,
    validate_metrics_config,
    validate_study_preset,
    validate_train_config,
)

PRESETS = sorted(p.stem for p in (CONF_DIR / "study").glob("*.yaml"))


def load_preset(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "study" / f"{name}.yaml"), resolve=True)


def refusal(check, *args) -> list[str]:
    """The problem lines of the ConfigError that `check(*args)` must raise."""
    with pytest.raises(ConfigError) as error:
        check(*args)
    header, *lines = str(error.value).splitlines()
    assert re.fullmatch(rf"invalid [a-z ]+ \({len(lines)} problems?\):", header), header
    return [line.strip() for line in lines]


# --- every shipped config validates --------------------------------------------------------------
@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_every_model_on_every_dataset_validates(model, dataset):
    path = ["dataset.path=my_data.npz"] if dataset == "arrays" else []  # its own file: no default
    validate_train_config(load_config([f"model={model}", f"dataset={dataset}", *path]))


@pytest.mark.parametrize(
    "overrides",
    [
        ["metrics=study"],
        ["metrics=fast"],
        ["metrics=none"],
        ["periodic_metrics=fast"],
        ["periodic_metrics=none"],
        ["trainer=study"],
        ["logger=wandb"],
        ["logger=tensorboard"],
        # an int where a float is expected
        ["model.beta=4", "threads=2", "study_name=x", "trainer.gradient_clip_val=1"],
        # other Lightning Trainer arguments
        ["+trainer.num_sanity_val_steps=0", "trainer.precision=16-mixed"],
        ["model.net=mlp", "dataset=digits", "dataset.size=30"],  # the MLP takes any size
        ["model=infogan", "model.net=conv_small", "dataset=digits", "dataset.size=36"],
        ["model=factor_vae", "model.permute=second", "loader.batch_size=128"],
        ["metrics.representations=[mean,sampled]", "metrics.dci_n_jobs=null"],
        ["malloc=null"],
    ],
)
def test_other_valid_configs_validate(overrides):
    validate_train_config(load_config(overrides))


def test_shipped_metric_sets_validate_alone():
    for option in sorted(p.stem for p in (CONF_DIR / "metrics").glob("*.yaml")):
        validate_metrics_config(load_config([f"metrics={option}"], config_name="eval").metrics)
        validate_metrics_config(
            OmegaConf.to_container(load_config([f"metrics={option}"]).metrics, resolve=True)
        )
    for option in ("fast", "none"):
        validate_metrics_config(
            load_config([f"periodic_metrics={option}"]).periodic_metrics, "periodic_metrics"
        )


@pytest.mark.parametrize("preset", PRESETS)
def test_study_presets_and_their_jobs_validate(preset):
    assert PRESETS == ["cpu", "full"]
    spec = load_preset(preset)
    validate_study_preset(spec)
    common = [o for o in spec.get("overrides", []) if not o.startswith("hydra.")]
    for model, grid in spec["models"].items():
        for value in grid["values"][:: len(grid["values"]) - 1]:  # the lowest and highest strength
            validate_train_config(
                load_config(
                    [
                        f"model={model}",
                        f"model.{grid['knob']}={value}",
                        f"dataset={spec['dataset']}",
                        f"seed={spec['seeds'][-1]}",
                        *common,
                        *grid.get("overrides", []),
                    ]
                )
            )


# --- the schemas agree with the code they describe ------------------------------------------------
def test_schema_tables_name_every_option_of_each_group():
    for group, table in (("model", MODELS), ("dataset", DATASETS), ("logger", LOGGERS)):
        assert sorted(table) == sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml")), group


def test_schemas_cover_what_the_code_reads():
    from disent.data import DATASETS as DATA_CLASSES
    from disent.metrics import beta_vae_score, factor_vae_score
    from disent.metrics.suite import METRIC_NAMES, REPRESENTATIONS
    from disent.models import model_names
    from disent.models.infogan import InfoGAN as InfoGANModel
    from disent.models.regularizers import REGULARIZERS

    assert sorted(MODELS) == model_names() and sorted(DATASETS) == sorted(DATA_CLASSES)
    fields = lambda schema: {f.name for f in dataclasses.fields(schema)}  # noqa: E731
    for (
        name,
        regularizer,
    ) in REGULARIZERS.items():  # every argument a regularizer takes from the config has a schema
        assert set(inspect.signature(regularizer).parameters) - {"dataset_size"} <= fields(
            MODELS[name]
        )
    assert set(inspect.signature(InfoGANModel).parameters) - {
        "observation_shape",
        "final_loss_window",
        "config",
    } <= fields(InfoGAN)
    assert sorted(fields(Suite)) == METRIC_NAMES
    for metric, score in (("beta_vae", beta_vae_score), ("factor_vae", factor_vae_score)):
        schema = Suite.__dataclass_fields__[metric].type
        # after (data, represent, rng)
        assert fields(schema) == set(list(inspect.signature(score).parameters)[3:])
    assert Metrics.__dataclass_fields__["representations"].metadata["choices"] == list(
        REPRESENTATIONS
    )
    for name, cls in DATA_CLASSES.items():
        if name not in ("digits", "arrays"):  # their sizes are settings
            assert cls.observation_shape[1:] == (DATASETS[name].side({}),) * 2, name


def test_net_divisors_are_the_nets_rules():
    from disent.nets import build_encoder_decoder
    from disent.nets.gan import _base_size

    for side in (20, 24, 30, 32, 36, 48):
        for net, divisor in VAE.nets.items():
            try:
                build_encoder_decoder(net, (1, side, side), 2, hidden_dim=4)
                built = True
            except ValueError:
                built = False
            assert built == (side % divisor == 0), (net, side)
        for net, divisor in InfoGAN.nets.items():
            try:
                built = bool(_base_size(net, (1, side, side)))
            except ValueError:
                built = False
            assert built == (side % divisor == 0), (net, side)


# --- bad configs are refused, one line per problem ------------------------------------------------
BAD = [
    (["model.beta=-1"], ["model.beta = -1: must be a number >= 0"]),
    (["model.beta=-0.5"], ["model.beta = -0.5: must be a number >= 0"]),
    (["model=annealed_vae", "model.gamma=-5"], ["model.gamma = -5: must be a number >= 0"]),
    (["model=factor_vae", "model.gamma=-1.5"], ["model.gamma = -1.5: must be a number >= 0"]),
    (
        ["model=annealed_vae", "model.c_max=-1"],  # end follows c_max: its line says so
        [
            "model.c_max = -1: must be a number >= 0",
            "model.capacity_schedule.end = -1 (from ${..c_max}): must be a number >= 0",
        ],
    ),
    (["loader.batch_size=0"], ["loader.batch_size = 0: must be an integer >= 1"]),
    (["loader.batch_size=-1"], ["loader.batch_size = -1: must be an integer >= 1"]),
    (["loader.batch_size=6.5"], ["loader.batch_size = 6.5: must be an integer >= 1"]),
    (["model.latent_dim=0"], ["model.latent_dim = 0: must be an integer >= 1"]),
    (
        ["+metrics.suite.foo={num_train:10}"],
        [
            "metrics.suite.foo = {'num_train': 10}: unknown metric for metrics.suite "
            f"(known: {', '.join(METRIC_NAMES)})"
        ],
    ),
    (["metrics.suite.mig.num_bins=0"], ["metrics.suite.mig.num_bins = 0: must be an integer >= 1"]),
    (
        ["metrics.representations=[mean,median]"],
        ["metrics.representations[1] = 'median': must be one of ['mean', 'sampled']"],
    ),
    (
        ["dataset=digits", "dataset.size=30"],
        [
            "dataset.size = 30: model.net=conv needs image sides divisible by 16, dataset 'digits' has 30x30 "
            "(divisors per net: conv 16, mlp 1)"
        ],
    ),
    (
        ["model=infogan", "dataset=digits", "dataset.size=36"],
        [
            "dataset.size = 36: model.net=conv needs image sides divisible by 16, dataset 'digits' has 36x36 "
            "(divisors per net: conv 16, conv_small 4)"
        ],
    ),
    (["model.beta=abc"], ["model.beta = 'abc': must be a number >= 0"]),
    (["model.beta=true"], ["model.beta = true: must be a number >= 0"]),
    (["model.beta=null"], ["model.beta = null: must be a number >= 0"]),
    (["model.beta=inf"], ["model.beta = inf: must be a number >= 0"]),
    (
        ["+model.bta=4"],
        [
            "model.bta = 4: unknown key for model 'beta_vae' (did you mean 'beta'? known: beta, "
            "hidden_dim, hyperparameter, init, latent_dim, name, net, optimizer, reconstruction)"
        ],
    ),
    (["~model.beta"], ["model.beta: missing, must be a number >= 0"]),
    (
        ["model.reconstruction=bce"],
        ["model.reconstruction = 'bce': must be one of ['bernoulli', 'gaussian']"],
    ),
    (
        ["model.optimizer.betas=[0.9,1.0]"],
        ["model.optimizer.betas[1] = 1.0: must be a number >= 0 and < 1"],
    ),
    (
        ["model.optimizer.betas=[0.9]"],
        ["model.optimizer.betas = [0.9]: must be a list of length 2, each a number >= 0 and < 1"],
    ),
    (["model.optimizer.lr=0"], ["model.optimizer.lr = 0: must be a number > 0"]),
    (
        ["model.name=foo"],
        [
            "model.name = 'foo': must be one of ['annealed_vae', 'beta_tcvae', 'beta_vae', "
            "'dip_vae_i', 'dip_vae_ii', 'factor_vae', 'infogan']"
        ],
    ),
    (
        ["model.hyperparameter=bta"],
        ["model.hyperparameter = 'bta': must be one of ['latent_dim', 'hidden_dim', 'beta']"],
    ),
    (
        ["model=dip_vae_i", "model.lambda_od=abc"],
        [
            "model.lambda_d = '${multiply:10,${.lambda_od}}': cannot be resolved (ValueError raised while resolving "
            "interpolation: could not convert string to float: 'abc')",
            "model.lambda_od = 'abc': must be a number >= 0",
        ],
    ),
    (["model=dip_vae_ii", "model.dip_type=i"], ["model.dip_type = 'i': must be one of ['ii']"]),
    (
        ["model=beta_tcvae", "model.estimator=foo"],
        ["model.estimator = 'foo': must be one of ['mss', 'mws']"],
    ),
    (
        ["model=factor_vae", "model.permute=second", "loader.batch_size=63"],
        [
            "loader.batch_size = 63: must be even with model.permute=second (each batch is split into two halves)"
        ],
    ),
    (
        ["model=factor_vae", "model.discriminator.num_layers=0"],
        ["model.discriminator.num_layers = 0: must be an integer >= 1"],
    ),
    (
        ["model=infogan", "model.categorical_codes=[]", "model.continuous_codes=0"],
        [
            "model.continuous_codes = 0: InfoGAN needs at least one code, and model.categorical_codes is empty"
        ],
    ),
    (
        ["model=infogan", "model.net=mlp"],
        ["model.net = 'mlp': must be one of ['conv', 'conv_small']"],
    ),
    (["trainer.max_steps=0"], ["trainer.max_steps = 0: must be an integer >= 1"]),
    (
        ["trainer.enable_progress_bar=yes"],
        ["trainer.enable_progress_bar = 'yes': must be true or false"],
    ),
    (["threads=0"], ["threads = 0: must be an integer >= 1 or null"]),
    (
        ["malloc.mmap_threshold_mb=64"],
        ["malloc.mmap_threshold_mb = 64: must be an integer >= 0 and <= 32"],
    ),
    (["seed=-1"], ["seed = -1: must be an integer >= 0 and <= 4294967295"]),
    (["checkpoint.every_n_steps=-1"], ["checkpoint.every_n_steps = -1: must be an integer >= 0"]),
    (["results.final_loss_window=0"], ["results.final_loss_window = 0: must be an integer >= 1"]),
    (["figures.kl_every_n_steps=0"], ["figures.kl_every_n_steps = 0: must be an integer >= 1"]),
    (
        ["figures.heatmap_factors=[posX]"],
        ["figures.heatmap_factors = ['posX']: must be a list of length 2, each a string"],
    ),
    (["metrics.dci_n_jobs=0"], ["metrics.dci_n_jobs = 0: must be an integer other than 0 or null"]),
    (
        ["periodic_metrics=fast", "periodic_metrics.every_n_steps=-5"],
        ["periodic_metrics.every_n_steps = -5: must be an integer >= 0"],
    ),
    (
        ["logger=wandb", "logger.mode=off"],
        ["logger.mode = 'off': must be one of ['offline', 'online']"],
    ),
    (["+foo=1"], ["foo = 1: unknown key for the config (known: "]),
]


@pytest.mark.parametrize("overrides, expected", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_config_is_refused_naming_key_value_and_range(overrides, expected):
    lines = refusal(validate_train_config, load_config(overrides))
    assert len(lines) == len(expected), lines
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)


def test_several_problems_make_one_message_with_a_line_each():
    cfg = load_config(
        [
            "model.beta=-1",
            "loader.batch_size=0",
            "+model.bta=4",
            "metrics.suite.dci.num_test=0",
            "dataset=digits",
            "dataset.size=30",
        ]
    )
    lines = refusal(validate_train_config, cfg)
    assert [line.split(":")[0] for line in lines] == [
        "loader.batch_size = 0",
        "model.bta = 4",
        "model.beta = -1",
        "metrics.suite.dci.num_test = 0",
        "dataset.size = 30",
    ]


def test_bad_metric_set_is_refused_alone():
    metrics = {
        "name": "x",
        "seed": 0,
        "representations": ["median"],
        "cache_grid_max_size": 0,
        "encode_batch_size": 0,
        "dci_n_jobs": None,
        "suite": {"mig": {"num_train": 0, "num_bins": 20}, "foo": {}},
    }
    assert refusal(validate_metrics_config, metrics) == [
        "metrics.representations[0] = 'median': must be one of ['mean', 'sampled']",
        "metrics.encode_batch_size = 0: must be an integer >= 1",
        f"metrics.suite.foo = {{}}: unknown metric for metrics.suite (known: {', '.join(METRIC_NAMES)})",
        "metrics.suite.mig.num_train = 0: must be an integer >= 1",
    ]


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            lambda p: p["models"].update(foo={"knob": "beta", "values": [1]}),
            "models.foo = {'knob': 'beta', 'values': [1]}: "
            "unknown model (known: annealed_vae, beta_tcvae, beta_vae, dip_vae_i, dip_vae_ii, factor_vae, infogan)",
        ),
        (
            lambda p: p["models"]["beta_vae"].update(knob="bta"),
            "models.beta_vae.knob = 'bta': must be one of ['latent_dim', 'hidden_dim', 'beta']",
        ),
        (
            lambda p: p["models"]["beta_vae"].update(values=[1, -4]),
            "models.beta_vae.values[1] = -4: must be a number >= 0",
        ),
        (
            lambda p: p["models"]["annealed_vae"].update(knob="iteration_threshold", values=[1.5]),
            "models.annealed_vae.values[0] = 1.5: must be an integer >= 0",
        ),
        (
            lambda p: p["models"]["beta_vae"].update(values=[]),
            "models.beta_vae.values = []: must be a non-empty list",
        ),
        (
            lambda p: p.update(seeds=[0, -1]),
            "seeds[1] = -1: must be an integer >= 0 and <= 4294967295",
        ),
        (
            lambda p: p.update(seeds=[0.5]),
            "seeds[0] = 0.5: must be an integer >= 0 and <= 4294967295",
        ),
        (lambda p: p.update(launcher=3), "launcher = 3: must be a string"),
        (
            lambda p: p.update(dataset="mnist"),
            "dataset = 'mnist': must be one of ['arrays', 'cars3d', 'color_dsprites', 'digits', "
            "'dsprites', 'mpi3d', 'noisy_dsprites', 'scream_dsprites', 'shapes3d', 'smallnorb']",
        ),
        (
            lambda p: p.update(sedes=[0]),
            "sedes = [0]: unknown key for the config (did you mean 'seeds'?",
        ),
    ],
)
def test_bad_study_preset_is_refused(change, expected):
    preset = copy.deepcopy(load_preset("cpu"))
    change(preset)
    lines = refusal(validate_study_preset, preset)
    assert len(lines) == 1 and lines[0].startswith(expected), lines
