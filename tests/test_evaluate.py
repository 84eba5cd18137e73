"""Scoring models: the grid cache gives the study's values, and disent-eval / disent-train write them."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_in_process

from disent.config import load_config
from disent.data import GroundTruthData
from disent.metrics.suite import (
    check_metrics_config,
    evaluate,
    evaluate_many,
    images_encoded_per_batch,
)
from disent.run import train

TINY_SUITE = {
    "beta_vae": {"batch_size": 16, "num_train": 60, "num_eval": 30},
    "factor_vae": {
        "batch_size": 16,
        "num_train": 60,
        "num_eval": 30,
        "num_variance_estimate": 300,
        "prune_threshold": 0.05,
    },
    "mig": {"num_train": 300, "num_bins": 20},
    "dci": {"num_train": 150, "num_test": 60, "n_estimators": 10, "estimator": "gbt"},
    "sap": {"num_train": 300, "num_test": 100, "continuous_factors": False},
    "modularity": {"num_train": 300, "num_test": 100, "num_bins": 20},
    "unsupervised": {"num_train": 300, "num_bins": 20},
}


class Bars(GroundTruthData):
    """A small deterministic data set: a 6x6 image with a bar at row `y`, of length `length`, brightness `b`."""

    factor_names, factor_sizes, observation_shape = (
        ("y", "length", "brightness"),
        (6, 5, 4),
        (1, 6, 6),
    )

    def sample_observations_from_factors(self, factors, rng=None):
        factors = self.check_factors(factors)
        images = np.zeros((len(factors), 1, 6, 6), dtype=np.float32)
        for i, (y, length, brightness) in enumerate(factors):
            images[i, 0, y, : length + 1] = (brightness + 1) / 4
        return images


def linear_encoder(seed: int = 0):
    weights = np.random.default_rng(seed).normal(size=(36, 4)).astype(np.float32)

    def encode(observations):
        h = np.asarray(observations, dtype=np.float32).reshape(len(observations), -1) @ weights
        return np.tanh(h), np.full_like(h, -2.0)

    return encode


def metrics_cfg(cache_grid_max_size: int, representations=("mean",)) -> dict:
    return {
        "seed": 3,
        "representations": list(representations),
        "cache_grid_max_size": cache_grid_max_size,
        "encode_batch_size": 64,
        "dci_n_jobs": None,
        "suite": TINY_SUITE,
    }


def test_grid_cache_gives_the_values_of_per_batch_encoding():
    data = Bars()
    assert len(data) < images_encoded_per_batch(TINY_SUITE)  # so the cache is used
    cached = evaluate(data, linear_encoder(), metrics_cfg(cache_grid_max_size=10_000))
    per_batch = evaluate(data, linear_encoder(), metrics_cfg(cache_grid_max_size=0))
    assert cached.keys() == per_batch.keys() == {"mean"}
    assert set(cached["mean"]) == set(per_batch["mean"])
    for name, value in per_batch["mean"].items():
        assert cached["mean"][name] == pytest.approx(value, abs=1e-9), name
    names = cached["mean"]
    assert {
        "beta_vae.eval_accuracy",
        "factor_vae.eval_accuracy",
        "mig",
        "dci.disentanglement",
        "sap",
        "modularity",
    } <= set(names)


def test_sampled_representation_is_scored_too_and_noisier():
    data = Bars()
    results = evaluate(
        data, linear_encoder(), metrics_cfg(10_000, representations=("mean", "sampled"))
    )
    assert set(results) == {"mean", "sampled"}
    assert results["sampled"]["mig"] != results["mean"]["mig"]
    again = evaluate(
        data, linear_encoder(), metrics_cfg(10_000, representations=("mean", "sampled"))
    )
    assert again == results  # same seed, same values


class ShiftedBars(Bars):
    """Bars with a fourth factor, a faint background level: a grid (7,200 images) larger than the tiny
    suite's draws, so the metrics draw batches rather than look codes up in the encoded grid."""

    factor_names, factor_sizes = ("y", "length", "brightness", "background"), (6, 5, 4, 60)

    def __init__(self):
        super().__init__()
        self.rendered = 0  # images rendered so far

    def sample_observations_from_factors(self, factors, rng=None):
        factors = self.check_factors(factors)
        self.rendered += len(factors)
        return (
            Bars().sample_observations_from_factors(factors[:, :3])
            + factors[:, 3, None, None, None] / 600
        )


@pytest.mark.parametrize(
    "data, shared_path", [(Bars(), "factor grid"), (ShiftedBars(), "tables of drawn codes")]
)
def test_several_models_scored_together_get_the_values_of_one_evaluation_each(data, shared_path):
    # without DCI (its classifiers take most of the time), every way of drawing is still there
    suite = {name: settings for name, settings in TINY_SUITE.items() if name != "dci"}
    config = metrics_cfg(10_000, representations=("mean", "sampled")) | {"suite": suite}
    if shared_path == "tables of drawn codes":
        assert len(data) >= images_encoded_per_batch(suite)  # so no factor grid is encoded
    encoders = [linear_encoder(seed) for seed in range(3)]
    together = evaluate_many(data, encoders, config)
    rendered_together, data.rendered = getattr(data, "rendered", 0), 0
    alone = [evaluate(data, encode, config | {"cache_grid_max_size": 0}) for encode in encoders]
    assert together == alone  # exactly: the same draws, codes and noise
    assert together[0] != together[1]
    # each drawn image was rendered once, for all three models
    if shared_path == "tables of drawn codes":
        assert 0 < rendered_together <= data.rendered / 6  # alone: 3 models x 2 representations


def test_unknown_metric_or_representation_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown metric.*'mgi'.*mig"):
        check_metrics_config({"suite": {"mgi": {}}, "representations": ["mean"]})
    with pytest.raises(ValueError, match="'median'.*mean"):
        check_metrics_config({"suite": {}, "representations": ["median"]})


@pytest.mark.slow
def test_training_writes_every_metric_and_disent_eval_rescores_the_checkpoint(tmp_path):
    """The study's six and the extended set's (metrics=extended at a tiny size)."""
    cfg = load_config(
        [
            "model.net=mlp",
            "model.hidden_dim=32",
            "trainer.max_steps=3",
            "trainer.enable_progress_bar=false",
            "metrics=tiny_extended",
        ]
    )
    results = train(cfg, tmp_path / "job")
    on_disk = json.loads((tmp_path / "job" / "results.json").read_text())
    metrics = on_disk["metrics"]["mean"]
    for name in [
        "beta_vae.eval_accuracy",
        "factor_vae.eval_accuracy",
        "mig",
        "dci.disentanglement",
        "modularity",
        "sap",
        "irs",
        "mcc",
        "dci_es.explicitness",
        "infomec.infom",
        "infomec.infoe",
        "downstream_logistic.sample_efficiency",
        "downstream_gbt.50:mean_test_accuracy",
    ]:
        assert np.isfinite(metrics[name]), name
    assert metrics == results["metrics"]["mean"]
    # where the time went: each metric's wall time beside its values
    assert set(on_disk["metric_seconds"]["mean"]) == set(cfg.metrics.suite)
    assert all(s >= 0 for s in on_disk["metric_seconds"]["mean"].values())

    checkpoint = tmp_path / "job" / "checkpoints" / "last.ckpt"
    done = run_in_process(
        "disent.evaluate", f"checkpoint={checkpoint}", "metrics=tiny_extended", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "job" / "metrics.json").read_text())
    assert report["model"] == "beta_vae" and report["dataset"]["name"] == "dsprites"
    assert set(report["metric_seconds"]["mean"]) == set(cfg.metrics.suite)
    # the same weights and metric seed: the same numbers as at the end of training
    for name, value in metrics.items():
        assert report["metrics"]["mean"][name] == pytest.approx(value, abs=1e-6), name
    # the shared codes (UDR's input) beside the report, equal to the ones training saved: same weights,
    # same metric seed; the job's own shared_codes.npz is left as its results.json describes it
    assert report["shared_codes"] == {**on_disk["shared_codes"], "file": "metrics.shared_codes.npz"}
    evaluated = np.load(tmp_path / "job" / "metrics.shared_codes.npz")
    trained = np.load(tmp_path / "job" / on_disk["shared_codes"]["file"])
    np.testing.assert_allclose(evaluated["mu"], trained["mu"], atol=1e-5)


@pytest.mark.slow
def test_disent_eval_on_a_missing_checkpoint_says_which_path(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "disent.evaluate", f"checkpoint={tmp_path}/nope.ckpt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0 and "nope.ckpt" in done.stderr


def test_periodic_metrics_are_logged_every_n_steps(tmp_path):
    cfg = load_config(
        [
            "model.net=mlp",
            "model.hidden_dim=32",
            "trainer.max_steps=5",
            "trainer.log_every_n_steps=1",
            "trainer.enable_progress_bar=false",
            "metrics=none",
            "periodic_metrics=tiny_all",
            "periodic_metrics.every_n_steps=2",
        ]
    )
    train(cfg, tmp_path / "job")
    import pandas as pd

    log = pd.read_csv(tmp_path / "job" / "metrics.csv")
    scored = log.dropna(subset=["metrics/mean/mig"])
    assert sorted(scored["step"].tolist()) == [2, 4]
    assert {"metrics/mean/dci.disentanglement", "metrics/mean/beta_vae.eval_accuracy"} <= set(
        log.columns
    )


NO_TORCH = """
import importlib.abc, json, sys

class Hide(importlib.abc.MetaPathFinder):  # as if torch, Lightning, Hydra and OmegaConf were not installed
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "lightning", "hydra", "omegaconf"):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, Hide())
import numpy as np
from disent.data.dsprites import DSprites
from disent.metrics.suite import evaluate

data = DSprites()
truth = lambda x: (data.index_to_factors(x).astype(float), np.zeros((len(x), data.num_factors)))
suite = json.loads(sys.argv[1])
grid = type("Grid", (), {"factor_sizes": data.factor_sizes, "num_factors": data.num_factors,
                         "deterministic": False, "sample_factors": lambda self, n, rng: data.sample_factors(n, rng),
                         "sample_observations_from_factors": lambda self, f, rng: data.factors_to_index(f)})()
values = evaluate(grid, truth, {"seed": 0, "representations": ["mean"], "cache_grid_max_size": 0, "suite": suite})
print(json.dumps({"values": values["mean"], "torch": "torch" in sys.modules}))
"""


def test_the_metric_suite_runs_without_torch_lightning_hydra_or_omegaconf():
    suite = {
        "mig": {"num_train": 500, "num_bins": 20},
        "sap": {"num_train": 200, "num_test": 100, "continuous_factors": False},
    }
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, json.dumps(suite)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert not out["torch"] and set(out["values"]) == {"mig", "sap"}
    # the ground-truth factors as codes: each factor in its own dimension
    assert out["values"]["mig"] > 0.5


@pytest.mark.slow  # ~20 s: DCI's trees
def test_disent_eval_scores_codes_from_anywhere_and_refuses_a_bad_file(tmp_path):
    """codes=<npz>: a representation computed outside disent (here a NumPy function of the factors)."""
    rng = np.random.default_rng(0)
    sizes = np.array([3, 6, 10])
    factors = np.stack([rng.integers(0, s, 700) for s in sizes], axis=1)
    codes = np.c_[factors / (sizes - 1), rng.normal(size=(700, 2))]
    np.savez(
        tmp_path / "codes.npz",
        codes_train=codes[:500],
        factors_train=factors[:500],
        codes_test=codes[500:],
        factors_test=factors[500:],
    )
    done = run_in_process(
        "disent.evaluate", f"codes={tmp_path / 'codes.npz'}", "metrics=tiny_extended", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "codes.metrics.json").read_text())
    values = report["metrics"]["codes"]
    assert values["mig"] > 0.5 and values["mcc"] > 0.99 and 0 < values["irs"] <= 1
    assert values["dci.disentanglement"] > 0.5 and "sap" in values and "modularity" in values
    assert values["infomec.infoe"] > 0.5 and values["infomec.num_active_dims"] == 5
    assert report["skipped"] == ["beta_vae", "downstream_gbt", "downstream_logistic", "factor_vae"]
    assert "skipped" in done.stdout

    np.savez(tmp_path / "bad.npz", codes_train=codes, factors_train=factors)
    done = run_in_process("disent.evaluate", f"codes={tmp_path / 'bad.npz'}", cwd=tmp_path)
    assert done.returncode == 2
    assert "lacks the arrays ['codes_test', 'factors_test']" in done.stderr
    done = run_in_process("disent.evaluate", cwd=tmp_path)
    assert done.returncode == 2 and "checkpoint=" in done.stderr and "codes=" in done.stderr
