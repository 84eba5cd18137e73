"""disent.data.shapes3d: the 3dshapes grid, the procedural scenes, their cache and the .h5 loader."""

import colorsys
import inspect
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
from omegaconf import OmegaConf

from disent.data import shapes3d
from disent.data.shapes3d import Shapes3D

SIZES = (10, 10, 10, 8, 4, 15)
FLOOR_HUE, WALL_HUE, OBJECT_HUE, SCALE, SHAPE, ORIENTATION = range(6)


@pytest.fixture(scope="module")
def data() -> Shapes3D:
    return Shapes3D()


def geometries() -> np.ndarray:
    """(480, 3) every (scale, shape, orientation)."""
    return np.stack(np.meshgrid(range(8), range(4), range(15), indexing="ij"), -1).reshape(-1, 3)


def changed(data: Shapes3D, factor: int, hues=(1, 4, 7)) -> np.ndarray:
    """(480, 64, 64) bool per geometry: the pixels that change when hue `factor` goes 0 -> 5."""
    rows = np.array([[*hues, *g] for g in geometries()])
    other = rows.copy()
    other[:, factor] = 5
    rows[:, factor] = 0
    a, b = data.sample_observations_from_factors(rows), data.sample_observations_from_factors(other)
    return (a != b).any(axis=1)


# --- the grid -------------------------------------------------------------------------------------


def test_contract(data):
    assert len(data) == 480_000 and data.factor_sizes == SIZES
    assert data.factor_names == (
        "floor_hue",
        "wall_hue",
        "object_hue",
        "scale",
        "shape",
        "orientation",
    )
    assert data.observation_shape == (3, 64, 64) and data.deterministic
    x = data.sample_observations(64, np.random.default_rng(0))
    assert x.shape == (64, 3, 64, 64) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1 and x.std() > 0.1


def test_index_factor_round_trip(data):
    indices = np.random.default_rng(0).integers(0, len(data), 1000)
    np.testing.assert_array_equal(data.factors_to_index(data.index_to_factors(indices)), indices)
    # orientation fastest
    assert data.index_to_factors(np.array([1])).tolist() == [[0, 0, 0, 0, 0, 1]]
    assert data.index_to_factors(np.array([len(data) - 1])).tolist() == [[9, 9, 9, 7, 3, 14]]
    with pytest.raises(ValueError, match="shape"):
        data.sample_observations_from_factors(np.array([[0, 0, 0, 0, 4, 0]]))


def test_deterministic(data):
    factors = data.sample_factors(32, 3)
    first = data.sample_observations_from_factors(factors, 0)
    np.testing.assert_array_equal(first, data.sample_observations_from_factors(factors, 1))
    np.testing.assert_array_equal(first, Shapes3D().sample_observations_from_factors(factors))
    np.testing.assert_array_equal(
        data[12345],
        data.sample_observations_from_factors(data.index_to_factors(np.array([12345])))[0],
    )


def test_hues_are_full_saturation_hsv():
    hues = np.random.default_rng(0).random(200)
    expected = [colorsys.hsv_to_rgb(h, 1.0, 1.0) for h in hues]
    np.testing.assert_allclose(shapes3d.hue_to_rgb(hues), expected, atol=1e-12)


# --- what each factor does ------------------------------------------------------------------------


def test_each_hue_colours_its_own_surface(data):
    floor, wall, obj = (changed(data, k) for k in (FLOOR_HUE, WALL_HUE, OBJECT_HUE))
    # every geometry: the bottom rows are floor, the top rows wall, both untouched by the other hues
    assert floor[:, -3:].all() and not wall[:, -3:].any() and not obj[:, -3:].any()
    assert wall[:, :3].all() and not floor[:, :3].any() and not obj[:, :3].any()
    # the object sits in the middle; most of its pixels show nothing else (the rest are its
    # anti-aliased edge, mixed with the floor or wall behind it)
    assert obj.sum(axis=(1, 2)).min() > 100
    assert not obj[:, :12].any() and not obj[:, :, :8].any() and not obj[:, :, -8:].any()
    only_object = obj & ~floor & ~wall
    assert (only_object.sum(axis=(1, 2)) > 0.7 * obj.sum(axis=(1, 2))).all()
    # and every pixel shows something: floor, wall or object
    assert (floor | wall | obj).all()


def test_scale_grows_the_object(data):
    # (scale, shape, orientation)
    area = changed(data, OBJECT_HUE).sum(axis=(1, 2)).reshape(8, 4, 15)
    assert (np.diff(area, axis=0) > 0).all()


def test_shapes_have_different_silhouettes(data):
    silhouette = changed(data, OBJECT_HUE).reshape(8, 4, 15, 64, 64)
    for scale, orientation in ((0, 0), (3, 7), (7, 14)):
        masks = silhouette[scale, :, orientation]
        for a in range(4):
            for b in range(a + 1, 4):
                assert (masks[a] != masks[b]).sum() > 10, (scale, orientation, a, b)


def test_orientation_turns_the_view(data):
    silhouette = changed(data, OBJECT_HUE).reshape(8, 4, 15, 64, 64)
    for scale, shape in ((0, 0), (4, 2), (7, 3)):
        rows = np.array([[2, 6, 9, scale, shape, o] for o in (0, 14)])
        first, last = data.sample_observations_from_factors(rows)
        background = ~silhouette[scale, shape, 0] & ~silhouette[scale, shape, 14]
        assert ((first != last).any(axis=0) & background).sum() > 200  # the room moved
        # and the object turned: the cube's faces are shaded differently, the silhouette moved
        assert (first != last).any(axis=0)[~background].sum() > 20


# --- the geometry cache ---------------------------------------------------------------------------


def test_geometry_cache_is_written_once_and_reused(tmp_path, monkeypatch, data):
    geometry = data._geometry.reshape(8, 4, 15, 3, 64, 64)
    calls = []
    monkeypatch.setattr(
        shapes3d, "render_geometry", lambda *args: calls.append(1) or geometry.copy()
    )
    first = Shapes3D(cache_dir=tmp_path / "cache")
    files = list((tmp_path / "cache").iterdir())
    assert len(calls) == 1 and len(files) == 1 and files[0].suffix == ".npy"
    second = Shapes3D(cache_dir=tmp_path / "cache")
    assert len(calls) == 1  # read back, not rendered again
    factors = data.sample_factors(16, 0)
    np.testing.assert_array_equal(
        second.sample_observations_from_factors(factors),
        first.sample_observations_from_factors(factors),
    )
    files[0].write_bytes(b"not an npy file")  # a damaged cache is rendered again and replaced
    Shapes3D(cache_dir=tmp_path / "cache")
    assert len(calls) == 2 and np.array_equal(np.load(files[0]), geometry)
    assert list((tmp_path / "cache").iterdir()) == files  # no temporary files left behind


def test_config_keys_are_constructor_arguments():
    cfg = OmegaConf.load(Path(__file__).parents[1] / "conf" / "dataset" / "shapes3d.yaml")
    assert cfg.name == "shapes3d" and cfg.path is None and cfg.cache_dir is None
    assert set(cfg) - {"name", "factors"} <= set(inspect.signature(Shapes3D).parameters)


# --- the original file ----------------------------------------------------------------------------

SMALL = (2, 2, 3, 2, 2, 3)  # a 144-image grid in the file's layout


def write_small_h5(path, sizes=SMALL, images=None, labels=None) -> np.ndarray:
    """A file laid out like 3dshapes.h5 (factor values, not indices, in `labels`); its images."""
    n = int(np.prod(sizes))
    grid = np.stack(np.unravel_index(np.arange(n), sizes), -1)
    values = [
        np.linspace(0, 1, sizes[0], endpoint=False),
        np.linspace(0, 1, sizes[1], endpoint=False),
        np.linspace(0, 1, sizes[2], endpoint=False),
        np.linspace(0.75, 1.25, sizes[3]),
        np.arange(sizes[4], dtype=float),
        np.linspace(-30, 30, sizes[5]),
    ]
    if images is None:
        images = np.random.default_rng(0).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    if labels is None:
        labels = np.stack([v[grid[:, k]] for k, v in enumerate(values)], -1)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(4, 64, 64, 3))
        f.create_dataset("labels", data=labels)
    return images


@pytest.mark.parametrize("in_memory", [False, True])
def test_loader_returns_the_stored_images(tmp_path, in_memory):
    images = write_small_h5(tmp_path / "small.h5")
    data = Shapes3D(tmp_path / "small.h5", factor_sizes=SMALL, in_memory=in_memory)
    assert len(data) == 144
    # unsorted, with repeats: the lazy reader sorts and un-sorts
    factors = data.sample_factors(40, 0)
    x = data.sample_observations_from_factors(factors)
    assert x.shape == (40, 3, 64, 64) and x.dtype == np.float32
    expected = images[data.factors_to_index(factors)].transpose(0, 3, 1, 2) / np.float32(255)
    np.testing.assert_array_equal(x, expected)
    # row-major, orientation fastest: ((((1 * 2 + 0) * 3 + 2) * 2 + 1) * 2 + 1) * 3 + 2 = 107
    np.testing.assert_array_equal(
        data.sample_observations_from_factors([[1, 0, 2, 1, 1, 2]])[0],
        images[107].transpose(2, 0, 1) / np.float32(255),
    )
    clone = pickle.loads(pickle.dumps(data))  # data loader workers: the open file is not pickled
    np.testing.assert_array_equal(clone.sample_observations_from_factors(factors), x)


def test_loader_errors(tmp_path):
    missing = tmp_path / "nope" / "3dshapes.h5"
    with pytest.raises(FileNotFoundError, match="nope") as error:
        Shapes3D(missing)
    assert "dataset.path" in str(error.value)
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ValueError, match="corrupt.h5"):
        Shapes3D(corrupt, factor_sizes=SMALL)
    write_small_h5(tmp_path / "small.h5")
    truncated = tmp_path / "truncated.h5"
    # an HDF5 header, cut short
    truncated.write_bytes((tmp_path / "small.h5").read_bytes()[:100_000])
    with pytest.raises(ValueError, match="truncated.h5"):
        Shapes3D(truncated, factor_sizes=SMALL)
    with pytest.raises(ValueError, match="small.h5.*images"):
        Shapes3D(tmp_path / "small.h5")  # the real grid needs 480,000 images
    with h5py.File(tmp_path / "nolabels.h5", "w") as f:
        f.create_dataset("images", data=np.zeros((144, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="nolabels.h5.*labels"):
        Shapes3D(tmp_path / "nolabels.h5", factor_sizes=SMALL)
    n = int(np.prod(SMALL))
    shuffled = np.random.default_rng(0).permutation(n)
    labels = np.stack(np.unravel_index(shuffled, SMALL), -1).astype(float)
    write_small_h5(tmp_path / "shuffled.h5", labels=labels)
    with pytest.raises(ValueError, match="shuffled.h5.*floor_hue"):
        Shapes3D(tmp_path / "shuffled.h5", factor_sizes=SMALL)


def test_procedural_renderer_needs_the_full_grid():
    with pytest.raises(ValueError, match="file"):
        Shapes3D(factor_sizes=SMALL)
    with pytest.raises(ValueError, match="6 factors"):
        Shapes3D(factor_sizes=(2, 2))
