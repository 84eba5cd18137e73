"""UDR (Duan et al. 2020): the metric on arrays against disentanglement_lib's own values, its known
answers and invariances, and the study-level score from the codes jobs save."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from disent.metrics.udr import gaussian_kl, relative_strength, udr

FIXTURE = np.load(Path(__file__).parent / "fixtures" / "dlib_udr.npz")
KINDS = ("permuted", "rotated", "mixed")
MODELS = 5


def fixture_cell(kind: str) -> tuple[list, list]:
    mus = [FIXTURE[f"{kind}/mu{m}"] for m in range(MODELS)]
    logvars = [FIXTURE[f"{kind}/logvar{m}"] for m in range(MODELS)]
    return mus, logvars


@pytest.mark.parametrize("correlation", ["lasso", "spearman"])
@pytest.mark.parametrize("kind", KINDS)
def test_udr_equals_disentanglement_lib(kind, correlation):
    mus, logvars = fixture_cell(kind)
    got = udr(mus, [gaussian_kl(m, v) for m, v in zip(mus, logvars, strict=True)], correlation)
    np.testing.assert_allclose(got["scores"], FIXTURE[f"{kind}/{correlation}/scores"], atol=1e-9)
    pairwise = FIXTURE[f"{kind}/{correlation}/pairwise"]
    off_diagonal = ~np.eye(MODELS, dtype=bool)
    np.testing.assert_allclose(got["pairwise"][off_diagonal], pairwise[off_diagonal], atol=1e-9)
    assert np.isnan(np.diag(got["pairwise"])).all()


def factors_and_kls(rng, n=1000, k=4, inactive=2):
    factors = rng.normal(size=(n, k))
    kl = np.r_[np.ones(k), np.zeros(inactive)]
    return factors, kl


def model(rng, factors, mixing, inactive=2, noise=0.05):
    active = factors @ mixing + noise * rng.normal(size=factors.shape)
    return np.concatenate([active, np.zeros((len(factors), inactive))], axis=1)


def test_relative_strength_known_answers():
    assert relative_strength(np.eye(4)) == 1.0
    assert relative_strength(np.ones((4, 4))) == pytest.approx(0.25)
    # a zero row or column counts 0 in its mean; an empty matrix scores 0
    assert relative_strength(np.diag([1.0, 1.0, 0.0])) == pytest.approx(2 / 3)
    assert relative_strength(np.zeros((0, 3))) == 0.0


def test_permuted_codes_beat_rotated_ones_and_random_ones_score_lowest():
    rng = np.random.default_rng(0)
    factors, kl = factors_and_kls(rng)
    permuted = [
        model(rng, factors, np.eye(4)[rng.permutation(4)] * rng.choice([-1, 1], 4))
        for _ in range(4)
    ]
    rotated = [model(rng, factors, np.linalg.qr(rng.normal(size=(4, 4)))[0]) for _ in range(4)]
    random = [model(rng, rng.normal(size=factors.shape), np.eye(4)) for _ in range(4)]
    for correlation in ("lasso", "spearman"):
        scores = {
            name: udr(codes, [kl] * 4, correlation)["scores"]
            for name, codes in (("permuted", permuted), ("rotated", rotated), ("random", random))
        }
        assert scores["permuted"].min() > 0.85  # Lasso's shrinkage (alpha 0.1) caps it at 0.9
        assert scores["rotated"].max() < 0.6
        assert scores["random"].max() < scores["rotated"].min()


def test_invariances_stated_by_the_paper():
    """Permuting, flipping and rescaling a model's latents leaves both variants unchanged; a monotone
    non-linear map of a latent leaves the Spearman variant unchanged; inactive latents, wherever they
    are, are ignored."""
    rng = np.random.default_rng(1)
    factors, kl = factors_and_kls(rng)
    codes = [model(rng, factors, np.eye(4)[rng.permutation(4)]) for _ in range(3)]
    kls = [kl] * 3
    base = {c: udr(codes, kls, c)["scores"] for c in ("lasso", "spearman")}
    order = rng.permutation(6)
    transformed = [codes[0][:, order] * np.array([-3.0, 2.0, 0.5, -1.0, 7.0, 1.0]), *codes[1:]]
    moved = [kl[order], *kls[1:]]
    for correlation in ("lasso", "spearman"):
        np.testing.assert_allclose(
            udr(transformed, moved, correlation)["scores"], base[correlation], atol=1e-9
        )
    cubed = [codes[0] ** 3, *codes[1:]]  # monotone in each latent, not affine
    np.testing.assert_allclose(udr(cubed, kls, "spearman")["scores"], base["spearman"], atol=1e-9)
    assert not np.allclose(udr(cubed, kls, "lasso")["scores"], base["lasso"], atol=1e-3)


def test_bad_input_is_one_clear_error():
    codes = [np.zeros((10, 3))]
    with pytest.raises(ValueError, match="at least 2 models"):
        udr(codes, [np.zeros(3)])
    with pytest.raises(ValueError, match="one shape"):
        udr([np.zeros((10, 3)), np.zeros((10, 4))], [np.zeros(3), np.zeros(4)])
    with pytest.raises(ValueError, match="correlation must be one of"):
        udr(codes * 2, [np.zeros(3)] * 2, "pearson")


# --- the study-level score from the jobs' shared codes ---------------------------------------------
def write_job(root: Path, name: str, value: float, seed: int, codes: tuple | None) -> Path:
    job = root / name
    job.mkdir(parents=True)
    results = {
        "status": "completed",
        "model": "beta_vae",
        "dataset": "dsprites",
        "hyperparameter": {"name": "beta", "value": value},
        "seed": seed,
        "metrics": {"mean": {"mig": float(seed)}},
    }
    if codes is not None:
        np.savez(job / "shared_codes.npz", mu=codes[0], logvar=codes[1])
        results["shared_codes"] = {
            "file": "shared_codes.npz",
            "num_points": len(codes[0]),
            "seed": 0,
        }
    (job / "results.json").write_text(json.dumps(results))
    return job


def fixture_study(root: Path) -> Path:
    """Two cells (beta 1: the fixture's permuted codes, beta 4: its rotated ones), 5 seeds each."""
    for value, kind in ((1.0, "permuted"), (4.0, "rotated")):
        mus, logvars = fixture_cell(kind)
        for seed in range(MODELS):
            write_job(root, f"{kind}_{seed}", value, seed, (mus[seed], logvars[seed]))
    return root


def test_study_udr_scores_each_cell_from_the_saved_codes(tmp_path):
    from disent.study import collect
    from disent.study.udr import udr_scores

    study = fixture_study(tmp_path / "study")
    scores = udr_scores(collect([study])).set_index("job_dir")
    for kind in ("permuted", "rotated"):
        for correlation in ("lasso", "spearman"):
            got = [
                scores.loc[str(study / f"{kind}_{s}"), f"udr/{correlation}"] for s in range(MODELS)
            ]
            np.testing.assert_allclose(got, FIXTURE[f"{kind}/{correlation}/scores"], atol=1e-9)
    assert (scores["udr_pool_size"] == MODELS).all()
    # pooled over the data set, each job is compared with all nine others
    pooled = udr_scores(collect([study]), pool="dataset")
    assert (pooled["udr_pool_size"] == 2 * MODELS).all()


def test_study_udr_skips_jobs_without_readable_codes(tmp_path, caplog):
    from disent.study import collect
    from disent.study.udr import udr_scores

    study = fixture_study(tmp_path / "study")
    (study / "permuted_0" / "shared_codes.npz").write_bytes(b"not an npz")
    write_job(study, "no_codes", 1.0, 9, None)
    mus, logvars = fixture_cell("permuted")
    # other settings: own pool
    write_job(study, "other_size", 1.0, 8, (mus[0][:500], logvars[0][:500]))
    with caplog.at_level(logging.WARNING):
        scores = udr_scores(collect([study]))
    assert "permuted_0" in caplog.text and "cannot be read" in caplog.text
    scored = {Path(p).name for p in scores["job_dir"]}
    assert scored == {f"permuted_{s}" for s in range(1, MODELS)} | {
        f"rotated_{s}" for s in range(MODELS)
    }


def test_report_and_udr_command_show_udr_and_its_rank_correlation(tmp_path):
    from disent.study.report import main

    study = fixture_study(tmp_path / "study")
    main(["report", str(study), "--out", str(tmp_path / "report")])
    table = pd.read_csv(tmp_path / "report" / "table.csv")
    assert table["udr/lasso"].notna().all() and table["udr/spearman"].notna().all()
    correlation = pd.read_csv(tmp_path / "report" / "correlation_dsprites.csv", index_col=0)
    assert {"UDR (Lasso)", "UDR (Spearman)"} <= set(correlation.index)
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Unsupervised model selection: UDR" in report
    cells = pd.read_csv(tmp_path / "report" / "udr_cells.csv")
    assert list(cells["jobs"]) == [MODELS, MODELS]
    # permuted seeds agree, rotated do not
    assert cells["udr/lasso"].iloc[0] > cells["udr/lasso"].iloc[1]
    main(["udr", str(study), "--out", str(tmp_path / "udr")])
    assert len(pd.read_csv(tmp_path / "udr" / "udr.csv")) == 2 * MODELS


def test_udr_command_says_what_to_change_when_no_job_saved_codes(tmp_path):
    from disent.study.report import main

    write_job(tmp_path / "study", "a", 1.0, 0, None)
    with pytest.raises(SystemExit, match="metrics.shared_codes"):
        main(["udr", str(tmp_path / "study"), "--out", str(tmp_path / "udr")])
