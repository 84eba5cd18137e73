"""dataset=arrays: one's own images and factors from a file, a full grid or not (data/arrays.py)."""

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import ARRAYS_REGION, arrays_rows, run_in_process, write_arrays_file

from disent.config import load_config
from disent.data import ArraysData, DataFileError, DSprites, GroundTruthData, build_dataset
from disent.metrics import beta_vae_score, factor_vae_score
from disent.preview import factor_sweeps
from disent.schema import ConfigError, validate_dataset_config
from disent.viz.figures import latent_heatmaps

NAMES = ("shape", "scale", "orientation", "posX", "posY")


@pytest.fixture(scope="module")
def gray_file(tmp_path_factory) -> Path:
    return write_arrays_file(tmp_path_factory.mktemp("arrays") / "gray.npz")


@pytest.fixture(scope="module")
def gray(gray_file) -> ArraysData:
    return ArraysData(gray_file)


def file_factors(path: Path) -> np.ndarray:
    with np.load(path) as f:
        return f["factors"]


def test_factor_sizes_names_and_values_are_read_from_the_file(gray, gray_file):
    factors = file_factors(gray_file)
    assert gray.factor_names == NAMES
    assert gray.factor_sizes == tuple(len(np.unique(c)) for c in factors.T)
    assert gray.factor_sizes == tuple(len(v) for v in ARRAYS_REGION)  # 300 rows reach every value
    for values, region in zip(gray.factor_values, ARRAYS_REGION, strict=True):
        assert values.tolist() == list(region)
    assert len(gray) == 300 and gray.observation_shape == (1, 64, 64)
    assert gray.num_combinations < 200 < 300 and not gray.deterministic and not gray.full_grid
    # row i: index, factors (as grid positions, and back to the file's values) and image
    rows = np.array([0, 7, 299])
    np.testing.assert_array_equal(gray.original_values(gray.index_to_factors(rows)), factors[rows])
    assert arrays_rows(np.stack([gray[i] for i in rows])).tolist() == rows.tolist()
    first = gray.factors_to_index(gray.index_to_factors(rows))  # the first row with each tuple
    np.testing.assert_array_equal(factors[first], factors[rows])
    assert (first <= rows).all()


def test_default_factor_names(tmp_path):
    with np.load(write_arrays_file(tmp_path / "a.npz", rows=50)) as f:
        np.savez(tmp_path / "b.npz", images=f["images"], factors=f["factors"])
    assert ArraysData(tmp_path / "b.npz").factor_names == tuple(f"factor_{k}" for k in range(5))


def test_rows_are_drawn_uniformly_and_observations_come_from_rows_with_that_tuple(gray, gray_file):
    factors = file_factors(gray_file)
    rng = np.random.default_rng(0)
    drawn = gray.sample_factors(3000, rng)
    # the joint distribution is the file's: each tuple as often as it has rows
    keys = lambda f: [tuple(row) for row in np.asarray(f)]  # noqa: E731
    codes = gray.index_to_factors(np.arange(len(gray)))
    assert set(keys(drawn)) <= set(keys(codes))
    observations = gray.sample_observations_from_factors(drawn, rng)
    rows = arrays_rows(observations)
    np.testing.assert_array_equal(codes[rows], drawn)  # the image is a row with that tuple
    # a tuple held by several rows shows each of them
    values, counts = np.unique(factors, axis=0, return_counts=True)
    repeated = values[counts.argmax()]
    holders = set(np.flatnonzero((factors == repeated).all(1)).tolist())
    request = np.repeat(codes[min(holders)][None], 200, axis=0)
    assert set(arrays_rows(gray.sample_observations_from_factors(request, rng))) == holders
    # a tuple no row has is refused, naming it in the file's values
    missing = next(
        t
        for t in np.stack(np.meshgrid(*map(range, gray.factor_sizes), indexing="ij"), -1).reshape(
            -1, 5
        )
        if tuple(t) not in set(keys(codes))
    )
    with pytest.raises(ValueError, match="with_fixed_factor"):
        gray.sample_observations_from_factors(missing[None], rng)
    with pytest.raises(TypeError, match="rng"):
        gray.sample_observations_from_factors(drawn[:2])


def test_rgb_float_h5_read_per_batch_or_in_memory(tmp_path):
    npz = ArraysData(write_arrays_file(tmp_path / "rgb.npz", rows=120, rgb=True))
    h5_file = write_arrays_file(tmp_path / "rgb.h5", rows=120, rgb=True, kind="h5")
    in_memory, streamed = ArraysData(h5_file), ArraysData(h5_file, in_memory=False)
    assert npz.observation_shape == in_memory.observation_shape == (3, 64, 64)
    assert in_memory.factor_names == streamed.factor_names == NAMES
    factors = npz.sample_factors(64, 1)
    for data in (npz, in_memory, streamed):
        x = data.sample_observations_from_factors(factors, np.random.default_rng(2))
        assert x.dtype == np.float32 and x.shape == (64, 3, 64, 64) and 0 <= x.min() <= x.max() <= 1
        np.testing.assert_array_equal(
            x, npz.sample_observations_from_factors(factors, np.random.default_rng(2))
        )
    streamed[0]  # opens the file
    clone = pickle.loads(pickle.dumps(streamed))  # without the open handle (loader workers)
    np.testing.assert_array_equal(clone[5], streamed[5])


def test_images_of_another_size_are_resized_or_kept(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (40, 32, 48), dtype=np.uint8)
    factors = np.stack([np.arange(40) % 4, np.arange(40) // 4], 1)
    np.savez(tmp_path / "small.npz", images=images, factors=factors)
    resized = ArraysData(tmp_path / "small.npz")
    assert resized.observation_shape == (1, 64, 64) and resized.deterministic  # 4 x 10, once each
    x = resized[0]
    assert x.shape == (1, 64, 64) and 0 <= x.min() and x.max() <= 1
    kept = ArraysData(tmp_path / "small.npz", size=None)
    assert kept.observation_shape == (1, 32, 48)
    grid_index = kept.factors_to_index(np.array([[1, 2]]))[0]  # row 9 holds (1, 2)
    np.testing.assert_array_equal(kept[grid_index][0], images[9] / np.float32(255))


def test_a_full_grid_is_deterministic_and_samples_as_the_built_in_grids(tmp_path):
    rng = np.random.default_rng(0)
    sizes = (3, 4, 5)
    grid = np.stack(np.meshgrid(*map(range, sizes), indexing="ij"), -1).reshape(-1, 3)
    images = rng.integers(0, 256, (len(grid), 64, 64), dtype=np.uint8)
    order = rng.permutation(len(grid))  # the rows in any order
    np.savez(tmp_path / "grid.npz", images=images[order], factors=grid[order] * 10 + 1)
    data = ArraysData(tmp_path / "grid.npz")
    assert data.full_grid and data.deterministic and data.factor_sizes == sizes
    assert len(data) == 60
    for i in (0, 17, 59):  # index i is grid point i, whichever row holds it
        np.testing.assert_array_equal(data[i][0], images[i] / np.float32(255))
        assert data.factors_to_index(data.index_to_factors(np.array([i])))[0] == i

    class Grid(GroundTruthData):
        factor_sizes = sizes

    assert np.array_equal(data.sample_factors(50, 3), Grid().sample_factors(50, 3))
    factors = data.sample_factors(8, 4)
    factors[:, 1] = factors[0, 1]
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    assert data.with_fixed_factor(factors, 1, rng) is factors  # nothing replaced, nothing drawn
    assert rng.bit_generator.state == state
    x = data.sample_observations_from_factors(factors)  # no rng needed: one image a tuple
    assert x.shape == (8, 1, 64, 64)
    # one combination twice: no longer a full grid
    np.savez(
        tmp_path / "twice.npz",
        images=np.concatenate([images, images[:1]]),
        factors=np.concatenate([grid, grid[:1]]),
    )
    assert not ArraysData(tmp_path / "twice.npz").deterministic


def test_a_full_grid_scores_the_same_through_the_suites_grid_cache(tmp_path):
    from omegaconf import OmegaConf

    from disent.config import CONF_DIR
    from disent.metrics.suite import evaluate_many

    grid = np.stack(np.meshgrid(range(3), range(4), range(5), indexing="ij"), -1).reshape(-1, 3)
    images = np.random.default_rng(0).integers(0, 256, (60, 64, 64), dtype=np.uint8)
    np.savez(tmp_path / "grid.npz", images=images, factors=grid)
    data = ArraysData(tmp_path / "grid.npz")
    tiny = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "metrics" / "tiny.yaml"))
    encoders = [
        lambda x, j=j: (x.reshape(len(x), -1)[:, j : j + 6].astype(float), np.zeros((len(x), 6)))
        for j in (0, 6)
    ]
    drawn = evaluate_many(data, encoders, {**tiny, "cache_grid_max_size": 0})
    cached = evaluate_many(data, encoders, {**tiny, "cache_grid_max_size": 10**6})
    assert drawn == cached  # the grid view passes with_fixed_factor on: nothing replaced


def test_grid_data_sets_fix_a_factor_without_drawing():
    data = DSprites()
    rng = np.random.default_rng(0)
    factors = data.sample_factors(16, rng)
    state = rng.bit_generator.state
    assert data.with_fixed_factor(factors, 2, rng) is factors
    assert rng.bit_generator.state == state


# --- bad files: one DataFileError naming the path each --------------------------------------------
GOOD = {
    "images": np.zeros((6, 64, 64), np.uint8),
    "factors": np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]),
}
BAD = {
    "no images": ({"images": None}, r"arrays \['images'\] are missing"),
    "no factors": ({"factors": None}, r"arrays \['factors'\] are missing"),
    "images 2-D": ({"images": np.zeros((6, 64))}, "must be \\(N, H, W\\) or \\(N, H, W, C\\)"),
    "4 channels": ({"images": np.zeros((6, 64, 64, 4), np.uint8)}, "drop an alpha channel"),
    "channels first": ({"images": np.zeros((6, 3, 64, 64), np.uint8)}, "channels-first"),
    "int images": ({"images": np.zeros((6, 64, 64), np.int32)}, "images are int32"),
    "floats above 1": ({"images": np.full((6, 64, 64), 2.0)}, "must lie in \\[0, 1\\]"),
    "NaN images": ({"images": np.full((6, 64, 64), np.nan)}, "must lie in \\[0, 1\\]"),
    "factors 1-D": ({"factors": np.arange(6)}, "factors\\[:, None\\]"),
    "N mismatch": ({"factors": GOOD["factors"][:5]}, "6 images but 5 rows of factors"),
    "non-integer": ({"factors": GOOD["factors"] + 0.5}, "must be integers"),
    "string factors": ({"factors": GOOD["factors"].astype(str)}, "must be integers"),
    "constant column": ({"factors": GOOD["factors"] * [1, 0]}, "one value only"),
    "names too few": ({"factor_names": np.array(["a"])}, "factor_names must be 2 strings"),
    "names repeated": ({"factor_names": np.array(["a", "a"])}, "must differ"),
    "names pickled": ({"factor_names": np.array(["a", "b"], dtype=object)}, "without pickle"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_file_raises_one_error_naming_it(case, tmp_path):
    change, match = BAD[case]
    path = tmp_path / f"{case.replace(' ', '_')}.npz"
    arrays = {key: value for key, value in {**GOOD, **change}.items() if value is not None}
    np.savez(path, **arrays)  # an object array is pickled on save, refused on load
    with pytest.raises(DataFileError, match=match) as error:
        ArraysData(path)
    assert str(path) in str(error.value)


def test_files_that_are_not_arrays_files(tmp_path):
    np.savez(tmp_path / "good.npz", **GOOD)
    ArraysData(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes((tmp_path / "good.npz").read_bytes()[:2000])
    (tmp_path / "text.npz").write_text("images,factors\n")
    import h5py

    with h5py.File(tmp_path / "no_factors.h5", "w") as f:
        f["images"] = GOOD["images"]
    cases = {
        tmp_path / "absent.npz": "no such file",
        tmp_path: "it is a directory",
        truncated: "damaged or truncated",
        tmp_path / "text.npz": "neither an .npz",
        tmp_path / "no_factors.h5": r"datasets \['factors'\] are missing",
    }
    for path, match in cases.items():
        with pytest.raises(DataFileError, match=match) as error:
            ArraysData(path)
        assert str(path) in str(error.value)
    with pytest.raises(ValueError, match="dataset.path"):
        ArraysData(None)


def test_the_yaml_builds_it_and_checks_declared_factors(gray_file):
    cfg = load_config(["dataset=arrays", f"dataset.path={gray_file}"]).dataset
    validate_dataset_config(cfg)
    data = build_dataset(cfg)
    assert isinstance(data, ArraysData) and data.factor_names == NAMES
    sizes = dict(zip(NAMES, data.factor_sizes, strict=True))
    build_dataset({**cfg, "factors": sizes})
    with pytest.raises(ValueError, match="conf/dataset/arrays.yaml"):
        build_dataset({**cfg, "factors": {**sizes, "shape": 4}})
    with pytest.raises(ConfigError, match="dataset.path = null"):
        validate_dataset_config(load_config(["dataset=arrays"]).dataset)


# --- the fixed-factor metrics on a data set that is not a full grid -------------------------------
class Recording(ArraysData):
    """Records the factor column each fixed-factor call held fixed."""

    def __init__(self, path):
        super().__init__(path)
        self.fixed: list[int] = []

    def with_fixed_factor(self, factors, k, rng):
        self.fixed.append(k)
        return super().with_fixed_factor(factors, k, rng)


def _recording_represent(calls: list):
    """A representation that records which rows each call's observations are."""

    def represent(observations):
        calls.append(arrays_rows(observations))
        return observations.reshape(len(observations), -1)[:, ::512]

    return represent


def test_beta_vae_pairs_share_the_fixed_factor(gray_file):
    data, calls = Recording(gray_file), []
    codes = data.index_to_factors(np.arange(len(data)))
    with pytest.warns(UserWarning, match=r"do not occur in it; each was replaced by a random row"):
        beta_vae_score(
            data, _recording_represent(calls), 0, batch_size=16, num_train=12, num_eval=6
        )
    assert len(calls) == 2 * len(data.fixed) == 36
    for k, first, second in zip(data.fixed, calls[::2], calls[1::2], strict=True):
        np.testing.assert_array_equal(codes[first][:, k], codes[second][:, k])  # pair b shares k
    assert 0 < data.replaced_combinations < data.requested_combinations == 18 * 16
    # without the hook the score would ask for combinations the file lacks
    data.with_fixed_factor = lambda factors, k, rng: factors
    with pytest.raises(ValueError, match="no row of"):
        beta_vae_score(data, _recording_represent([]), 0, batch_size=16, num_train=12, num_eval=6)


def test_factor_vae_batches_share_the_fixed_factor(gray_file):
    data, calls = Recording(gray_file), []
    codes = data.index_to_factors(np.arange(len(data)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        factor_vae_score(
            data,
            _recording_represent(calls),
            0,
            batch_size=16,
            num_train=12,
            num_eval=6,
            num_variance_estimate=100,
        )
    assert len([w for w in caught if "not a full factor grid" in str(w.message)]) == 1  # once
    assert len(calls[0]) == 100 and len(calls) == 1 + len(data.fixed) == 19
    for k, rows in zip(data.fixed, calls[1:], strict=True):
        assert (codes[rows][:, k] == codes[rows[0], k]).all()  # the whole batch shares k
    assert data.replaced_combinations > 0


def test_preview_sweeps_and_heatmaps_use_existing_rows(gray):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the non-grid notice, tested above
        rows = factor_sweeps(gray, np.random.default_rng(0), max_columns=6)
    codes = gray.index_to_factors(np.arange(len(gray)))
    for k, row in enumerate(rows):  # each image shows the swept value of factor k
        assert row.shape == (1, gray.factor_sizes[k], 1, 64, 64)
        assert codes[arrays_rows(row[0])][:, k].tolist() == list(range(gray.factor_sizes[k]))
    encode = lambda x: (x.reshape(len(x), -1)[:, :3], np.zeros((len(x), 3)))  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the non-grid notice, tested above
        maps = latent_heatmaps(gray, encode, 3, 4, 2, np.random.default_rng(1))
    present = np.zeros((4, 4), bool)  # (posY, posX) cells some row has
    present[codes[:, 4], codes[:, 3]] = True
    assert maps.shape == (3, 4, 4) and (np.isfinite(maps[0]) == present).all()


# --- end to end -----------------------------------------------------------------------------------
TINY = [
    "trainer.max_steps=2",
    "trainer.enable_progress_bar=false",
    "loader.batch_size=8",
    "model.hidden_dim=64",
    "figures=tiny",
]


@pytest.mark.slow
def test_training_and_all_six_metrics_end_to_end(gray_file, tmp_path):
    from disent.run import train

    cfg = load_config(
        [
            "dataset=arrays",
            f"dataset.path={gray_file}",
            *TINY,
            "metrics=tiny",
            "+metrics.suite.dci={num_train: 100, num_test: 50, n_estimators: 5, estimator: gbt}",
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the non-grid notice (tested above), Lightning's
        results = train(cfg, tmp_path / "job")
    assert results["status"] == "completed" and results["dataset"] == "arrays"
    scores = results["metrics"]["mean"]
    for name in ("beta_vae", "factor_vae", "mig", "dci", "sap", "modularity"):
        assert any(key.startswith(name) for key in scores), name
    assert all(np.isfinite(v) for v in scores.values())
    assert (tmp_path / "job" / "figures" / "latent_heatmaps.png").exists()  # posX, posY named


@pytest.mark.slow
def test_tiny_study_end_to_end(gray_file, tmp_path):
    import pandas as pd

    preset = {
        "name": "tiny_arrays",
        "dataset": "arrays",
        "seeds": [0],
        "launcher": "basic",
        "overrides": [*TINY, "model.net=mlp", "metrics=tiny"],
        "models": {"beta_vae": {"knob": "beta", "values": [1, 4]}},
    }
    (tmp_path / "tiny.yaml").write_text(json.dumps(preset))  # JSON is YAML
    study = tmp_path / "study"
    done = run_in_process(
        "disent.study.report",
        "run",
        "--preset",
        str(tmp_path / "tiny.yaml"),
        "--out",
        str(study),
        f"dataset.path={gray_file}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = run_in_process(
        "disent.study.report", "report", str(study), "--out", str(tmp_path / "report")
    )
    assert report.returncode == 0, report.stderr[-2000:]
    table = pd.read_csv(tmp_path / "report" / "table.csv")
    assert len(table) == 2 and (table["status"] == "completed").all()
    assert (table["dataset"] == "arrays").all()


def readme_block(name: str) -> str:
    """The code between README.md's `readme:<name>:begin/end` markers, fences stripped."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = text.split(f"<!-- readme:{name}:begin -->")[1].split(f"<!-- readme:{name}:end -->")[0]
    return block.strip().removeprefix("```python").removesuffix("```")


def test_the_readmes_example_makes_a_file_from_images_and_a_csv(tmp_path, monkeypatch):
    """README "Your own data": a folder of PNGs and a labels CSV become an npz that trains."""
    from PIL import Image

    folder = tmp_path / "my_images"
    folder.mkdir()
    data = DSprites()
    factors = np.array([[shape, scale, 0, 16, 16] for shape in range(3) for scale in (0, 5)])
    images = data.sample_observations_from_factors(factors)[:, 0]  # (6, 64, 64)
    lines = ["file,shape,size"]
    for i, (image, (shape, scale, *_)) in enumerate(zip(images, factors, strict=True)):
        Image.fromarray(np.uint8(image * 255)).save(folder / f"{i}.png")
        lines.append(f"{i}.png,{shape},{scale * 2}")  # sizes labelled 0 and 10: ranks 0 and 1
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    exec(readme_block("arrays-example"), {})
    built = build_dataset(
        load_config(["dataset=arrays", "dataset.path=my_data.npz"], config_name="data").dataset
    )
    assert built.factor_names == ("shape", "size") and built.factor_sizes == (3, 2)
    assert built.deterministic  # these six rows are a full 3 x 2 grid
    x = built.sample_observations_from_factors(np.array([[2, 1]]), 0)
    np.testing.assert_array_equal(x[0, 0], images[5])  # shape 2, size 10: the sixth image
