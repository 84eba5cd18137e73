"""Collecting a study's jobs into one table, and the analyses of Locatello et al. on it."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_in_process

from disent.study import (
    STUDY_METRICS,
    better_beats_worse,
    collect,
    rank_correlation,
    variance_explained,
)


def write_job(
    root: Path,
    number: int,
    model: str,
    value: float,
    seed: int,
    metrics: dict | None,
    status: str = "completed",
    dataset: str = "dsprites",
) -> Path:
    job = root / str(number)
    (job / ".hydra").mkdir(parents=True)
    results = {
        "status": status,
        "model": model,
        "dataset": dataset,
        "hyperparameter": {"name": "beta", "value": value},
        "seed": seed,
        "study_name": root.name,
        "steps": 10,
        "wall_time_s": 1.0,
    }
    if metrics is not None:
        results["metrics"] = {"mean": metrics}
    if status == "failed":
        results["error"] = "FloatingPointError: non-finite loss at step 3: loss=nan"
    (job / "results.json").write_text(json.dumps(results))
    return job


def synthetic_study(root: Path, seed: int = 0) -> Path:
    """2 models x 3 strengths x 4 seeds with random metric values, one failed job and one missing job."""
    rng = np.random.default_rng(seed)
    number = 0
    for model in ("beta_vae", "beta_tcvae"):
        for value in (1.0, 4.0, 16.0):
            for s in range(4):
                write_job(
                    root,
                    number,
                    model,
                    value,
                    s,
                    {c.removeprefix("mean/"): float(rng.random()) for c in STUDY_METRICS.values()},
                )
                number += 1
    write_job(root, number, "beta_vae", 4.0, 9, None, status="failed")
    (root / str(number + 1) / ".hydra").mkdir(parents=True)  # started, never wrote results.json
    return root


def test_collect_has_a_row_per_job_with_status(tmp_path):
    table = collect([synthetic_study(tmp_path / "study")])
    assert len(table) == 24 + 2
    assert table["status"].value_counts().to_dict() == {"completed": 24, "failed": 1, "missing": 1}
    failed = table[table["status"] == "failed"].iloc[0]
    assert "non-finite loss" in failed["error"] and failed["model"] == "beta_vae"
    assert set(STUDY_METRICS.values()) <= set(table.columns)


def test_rank_correlation_equals_pandas_spearman_on_the_table(tmp_path):
    table = collect([synthetic_study(tmp_path / "study")])
    got = rank_correlation(table, "dsprites")
    done = table[table["status"] == "completed"]
    expected = done[list(STUDY_METRICS.values())].astype(float).corr(method="spearman")
    assert list(got.columns) == list(STUDY_METRICS)
    np.testing.assert_array_equal(got.to_numpy(dtype=float), np.round(expected.to_numpy() * 100))
    assert (np.diag(got.to_numpy(dtype=float)) == 100).all()


def _table(values: dict[tuple[str, float, int], float]) -> pd.DataFrame:
    rows = [
        {"status": "completed", "model": m, "value": v, "seed": s, "metric": x}
        for (m, v, s), x in values.items()
    ]
    return pd.DataFrame(rows)


def test_variance_shares_have_known_answers():
    only_model = _table(
        {(m, v, s): (1.0 if m == "a" else 0.0) for m in "ab" for v in (1, 2) for s in range(3)}
    )
    assert variance_explained(only_model, "metric") == pytest.approx(
        {"model": 1.0, "strength": 0.0, "seed": 0.0}
    )
    only_strength = _table({(m, v, s): float(v) for m in "ab" for v in (1, 2) for s in range(3)})
    assert variance_explained(only_strength, "metric") == pytest.approx(
        {"model": 0.0, "strength": 1.0, "seed": 0.0}
    )
    only_seed = _table({(m, v, s): float(s) for m in "ab" for v in (1, 2) for s in range(3)})
    assert variance_explained(only_seed, "metric") == pytest.approx(
        {"model": 0.0, "strength": 0.0, "seed": 1.0}
    )


def test_better_strength_beats_worse_with_known_answers():
    strength_decides = _table(
        {("a", v, s): 10.0 * v + 0.1 * s for v in (1, 2, 3) for s in range(4)}
    )
    assert better_beats_worse(strength_decides, "metric")["a"] == 1.0
    seed_decides = _table({("a", v, s): float(s) for v in (1, 2) for s in range(4)})
    assert better_beats_worse(seed_decides, "metric")["a"] == 0.5


def test_report_writes_the_tables_and_figures(tmp_path):
    from disent.study.report import main

    study = synthetic_study(tmp_path / "study")
    for path in study.glob("*/results.json"):  # add the unsupervised TC of both representations
        results = json.loads(path.read_text())
        if "metrics" in results:
            results["metrics"]["sampled"] = {"unsupervised.gaussian_total_correlation": 1.0}
            results["metrics"]["mean"]["unsupervised.gaussian_total_correlation"] = 2.0
            path.write_text(json.dumps(results))
    main(["report", str(study), "--out", str(tmp_path / "report")])
    out = tmp_path / "report"
    table = pd.read_csv(out / "table.csv")
    assert len(table) == 26 and len(pd.read_parquet(out / "table.parquet")) == 26
    correlation = pd.read_csv(out / "correlation_dsprites.csv", index_col=0)
    pd.testing.assert_frame_equal(
        correlation, rank_correlation(collect([study]), "dsprites").astype(float), check_dtype=False
    )
    for name in [
        "correlation_dsprites.png",
        "correlation_dsprites.md",
        "variance.csv",
        "variance.md",
        "better_beats_worse.csv",
        "strengths_mig.png",
        "tc_sampled_vs_mean.png",
        "report.md",
    ]:
        assert (out / name).stat().st_size > 0, name
    text = (out / "report.md").read_text()
    assert (
        "24 completed" in text
        and "1 failed" in text
        and "1 missing" in text
        and "non-finite loss" in text
    )


# the tiny metric set (all but DCI, whose trees cost seconds per job even on a few points;
# test_metrics checks it)
TINY_FAST = ["metrics=tiny", "figures=tiny"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["submitit_local", "ray"])
def test_tiny_real_study_through_a_launcher_then_report(launcher, tmp_path):
    # the dev extra installs submitit (a cluster's launcher, here in local processes); Ray
    # (disent[launchers]) is large and runs where installed. The joblib launcher runs a whole sweep
    # in test_faults (signalled, then rerun)
    pytest.importorskip(f"hydra_plugins.hydra_{launcher.split('_')[0]}_launcher")
    study = tmp_path / "study"
    common = [
        f"hydra/launcher={launcher}",
        "trainer.max_steps=6",
        "model.net=mlp",
        "model.hidden_dim=32",
        "trainer.enable_progress_bar=false",
        "loader.batch_size=32",
        "study_name=tiny",
        *TINY_FAST,
    ]
    if launcher == "ray":
        common.append("+hydra.launcher.ray.init.num_cpus=2")
    # the last one diverges
    sweeps = [("beta_vae", "beta", "1,4,8", "0"), ("beta_vae", "optimizer.lr", "1e30", "5")]
    for model, knob, values, seeds in sweeps:  # the launcher starts each job's own process
        run_in_process(
            "disent.train",
            "-m",
            f"model={model}",
            f"model.{knob}={values}",
            f"seed={seeds}",
            f"hydra.sweep.dir={study}/{model}_{knob}",
            *common,
            cwd=tmp_path,
        )
    from disent.study.report import main

    main(["report", str(study), "--out", str(tmp_path / "report")])
    table = pd.read_csv(tmp_path / "report" / "table.csv")
    assert len(table) == 4 and (table["status"] == "completed").sum() == 3
    failed = table[table["status"] == "failed"].iloc[0]
    assert "non-finite loss" in failed["error"]
    done = table[table["status"] == "completed"]
    scored = [column for column in STUDY_METRICS.values() if column in done]
    assert len(scored) == 5  # the tiny set: all but DCI
    # each job saved its codes on the shared observations, the input of UDR (test_udr)
    for job_dir in done["job_dir"]:
        with np.load(Path(job_dir) / "shared_codes.npz") as codes:
            assert codes["mu"].shape == codes["logvar"].shape == (100, 10)
    expected = (done[scored].astype(float).corr(method="spearman") * 100).round()
    got = pd.read_csv(tmp_path / "report" / "correlation_dsprites.csv", index_col=0)
    np.testing.assert_array_equal(got.to_numpy(dtype=float), expected.to_numpy())
    assert (tmp_path / "report" / "correlation_dsprites.png").exists()
    assert (tmp_path / "report" / "strengths_mig.png").exists()


@pytest.mark.parametrize("preset, jobs", [("cpu", 36), ("full", 1800)])
def test_study_presets_run_the_union_of_the_per_model_grids(preset, jobs, tmp_path):
    from omegaconf import OmegaConf

    from disent.config import CONF_DIR, load_config
    from disent.study.report import study_commands

    spec = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "study" / f"{preset}.yaml"))
    commands = study_commands(spec, tmp_path, ["trainer.enable_progress_bar=false"])
    # python -m disent.train -m ...
    assert all(c[1:4] == ["-m", "disent.train", "-m"] for c in commands)
    assert [c[4] for c in commands] == [f"model={m}" for m in spec["models"]]
    total = 0
    for command in commands:
        overrides = [o for o in command[4:] if not o.startswith("hydra")]
        sweeps = [o for o in overrides if "," in o.split("=", 1)[1] and not o.endswith("]")]
        total += np.prod([len(o.split("=", 1)[1].split(",")) for o in sweeps])
        first = [o.split(",")[0] if o in sweeps else o for o in overrides]
        cfg = load_config(first)  # every job's config composes: keys exist, options exist
        assert cfg.study_name == preset and cfg.dataset.name == spec["dataset"]
    assert total == jobs


def test_report_extends_its_tables_to_the_extended_metrics_when_they_were_scored(tmp_path):
    from disent.study.analysis import EXTENDED_METRICS
    from disent.study.report import main

    # the per-job ones (UDR, scored per cell from saved codes, has its own test in test_udr)
    extended = {n: c for n, c in EXTENDED_METRICS.items() if c.startswith("mean/")}
    study = synthetic_study(tmp_path / "study")
    rng = np.random.default_rng(5)
    for path in study.glob("*/results.json"):
        results = json.loads(path.read_text())
        if "metrics" in results:
            for column in extended.values():
                results["metrics"]["mean"][column.removeprefix("mean/")] = float(rng.random())
            path.write_text(json.dumps(results))
    main(["report", str(study), "--out", str(tmp_path / "report")])
    correlation = pd.read_csv(tmp_path / "report" / "correlation_dsprites.csv", index_col=0)
    assert list(correlation.index) == [*STUDY_METRICS, *extended]
    variance = pd.read_csv(tmp_path / "report" / "variance.csv", index_col=0)
    assert set(extended) <= set(variance.index)
    # without them the tables keep the six only
    main(["report", str(synthetic_study(tmp_path / "six")), "--out", str(tmp_path / "six_report")])
    six = pd.read_csv(tmp_path / "six_report" / "correlation_dsprites.csv", index_col=0)
    assert list(six.index) == list(STUDY_METRICS)
