"""disent.data: the ground-truth grid, procedural and file-backed dSprites, the training stream."""

import warnings

import lightning as L
import numpy as np
import pytest
import torch

from disent.data import DSprites, GroundTruthData, as_rng
from disent.data.datamodule import BatchStream, GroundTruthDataModule

SIZES = (3, 6, 40, 32, 32)


class Tiny(GroundTruthData):
    """A 2x3x4 grid whose observation is its own factors, scaled to [0, 1]."""

    factor_names = ("a", "b", "c")
    factor_sizes = (2, 3, 4)
    observation_shape = (1, 1, 3)

    def sample_observations_from_factors(self, factors, rng=None):
        factors = self.check_factors(factors)
        return (factors / (np.array(self.factor_sizes) - 1)).astype(np.float32)[:, None, None, :]


@pytest.fixture(scope="module")
def dsprites() -> DSprites:
    return DSprites()


def render(data: DSprites, *rows) -> np.ndarray:
    """(N, 64, 64) images of the given factor rows."""
    return data.sample_observations_from_factors(np.array(rows))[:, 0]


def centroid(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(image)
    return rows.mean(), cols.mean()


# --- the grid ------------------------------------------------------------------------------------


def test_tiny_grid_round_trip_and_order():
    data = Tiny()
    assert len(data) == 24 and data.num_factors == 3
    factors = data.index_to_factors(np.arange(len(data)))
    assert factors.shape == (24, 3) and factors.dtype == np.int64
    # row-major, last factor fastest: the rows are the grid in lexicographic order
    assert factors[:5].tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 0, 3], [0, 1, 0]]
    assert len(np.unique(factors, axis=0)) == 24
    assert np.array_equal(np.lexsort(factors.T[::-1]), np.arange(24))
    np.testing.assert_array_equal(data.factors_to_index(factors), np.arange(24))
    np.testing.assert_array_equal(data[23], [[[1.0, 1.0, 1.0]]])
    with pytest.raises(IndexError):
        data[24]


def test_dsprites_round_trip_random_indices(dsprites):
    indices = np.random.default_rng(0).integers(0, len(dsprites), 1000)
    factors = dsprites.index_to_factors(indices)
    assert ((factors >= 0) & (factors < np.array(SIZES))).all()
    np.testing.assert_array_equal(dsprites.factors_to_index(factors), indices)
    assert dsprites.index_to_factors(np.array([len(dsprites) - 1])).tolist() == [[2, 5, 39, 31, 31]]
    assert dsprites.index_to_factors(np.array([32])).tolist() == [[0, 0, 0, 1, 0]]


@pytest.mark.parametrize(
    "row, name",
    [
        ([0, 0, 40, 0, 0], "orientation"),
        ([0, -1, 0, 0, 0], "scale"),
        ([3, 0, 0, 0, 0], "shape"),
        ([0, 0, 0, 0, 32], "posY"),
    ],
)
def test_out_of_range_factor_is_named(dsprites, row, name):
    with pytest.raises(ValueError, match=name):
        dsprites.factors_to_index(np.array([row]))
    with pytest.raises(ValueError, match=name):
        dsprites.sample_observations_from_factors(np.array([row]))


def test_out_of_range_index_and_bad_shapes(dsprites):
    with pytest.raises(ValueError):
        dsprites.index_to_factors(np.array([len(dsprites)]))
    with pytest.raises(ValueError, match="shape"):
        dsprites.factors_to_index(np.zeros((2, 4), dtype=int))
    with pytest.raises(TypeError):
        as_rng(None)


# --- procedural dSprites
# ---------------------------------------------------------------------------


def test_dsprites_contract(dsprites):
    assert len(dsprites) == 737_280
    assert dsprites.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert dsprites.factor_sizes == SIZES and dsprites.observation_shape == (1, 64, 64)
    assert dsprites.deterministic
    x = dsprites.sample_observations(64, np.random.default_rng(0))
    assert x.shape == (64, 1, 64, 64) and x.dtype == np.float32
    assert set(np.unique(x)) <= {0.0, 1.0} and (x.sum(axis=(1, 2, 3)) > 0).all()
    i = 123_457
    np.testing.assert_array_equal(
        dsprites[i],
        dsprites.sample_observations_from_factors(dsprites.index_to_factors(np.array([i])))[0],
    )


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_position_moves_the_centroid(dsprites, shape):
    xs = [centroid(im) for im in render(dsprites, *[[shape, 2, 7, p, 9] for p in range(32)])]
    ys = [centroid(im) for im in render(dsprites, *[[shape, 2, 7, 9, p] for p in range(32)])]
    assert np.all(np.diff([c for _, c in xs]) > 0) and np.ptp([r for r, _ in xs]) < 1e-9
    assert np.all(np.diff([r for r, _ in ys]) > 0) and np.ptp([c for _, c in ys]) < 1e-9
    # the centre crosses the middle half of the frame in one-pixel steps
    np.testing.assert_allclose(np.diff([c for _, c in xs]), 1.0)


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_scale_grows_the_area(dsprites, shape):
    for orientation in (0, 13):
        areas = render(dsprites, *[[shape, s, orientation, 16, 16] for s in range(6)]).sum(
            axis=(1, 2)
        )
        assert np.all(np.diff(areas) > 0), areas


def test_rotation_shapes_and_duplicate_orientation(dsprites):
    # orientation 5 is 46 degrees; (orientation 10 is 92 degrees, almost a symmetry of the square)
    square0, square5 = render(dsprites, [0, 5, 0, 16, 16], [0, 5, 5, 16, 16])
    assert np.abs(square0 - square5).sum() > 50
    for scale, orientation in ((0, 0), (5, 0), (3, 17)):
        a, b, c = render(dsprites, *[[s, scale, orientation, 10, 20] for s in range(3)])
        assert np.abs(a - b).sum() > 5 and np.abs(a - c).sum() > 5 and np.abs(b - c).sum() > 5
    # linspace(0, 2 pi, 40) holds both endpoints: orientations 0 and 39 are the same rotation
    for shape in range(3):
        first, last = render(dsprites, [shape, 5, 0, 3, 4], [shape, 5, 39, 3, 4])
        assert np.abs(first - last).sum() <= 2


def test_sprites_stay_inside_the_frame_and_match_the_originals_ink(dsprites):
    grid = np.stack(np.meshgrid(range(3), range(6), range(40), indexing="ij"), -1).reshape(-1, 3)
    for corner in ((0, 0), (31, 31), (0, 31)):
        images = render(dsprites, *[[*row, *corner] for row in grid])
        border = (
            images[:, 0].sum()
            + images[:, -1].sum()
            + images[:, :, 0].sum()
            + images[:, :, -1].sum()
        )
        assert border == 0
    # position never changes the area, so this is the mean over the whole grid; original: 0.04249
    assert abs(images.mean() - 0.0425) < 0.002


def test_sampling_is_seeded_and_uniform(dsprites):
    f = dsprites.sample_factors(60_000, np.random.default_rng(1))
    assert f.shape == (60_000, 5) and f.dtype == np.int64
    for k, size in enumerate(SIZES):
        counts = np.bincount(f[:, k], minlength=size)
        assert len(counts) == size
        np.testing.assert_allclose(counts, 60_000 / size, rtol=0.15)
    same_seed = dsprites.sample_factors(50, np.random.default_rng(7))
    np.testing.assert_array_equal(dsprites.sample_factors(50, 7), same_seed)
    assert not np.array_equal(dsprites.sample_factors(50, 7), dsprites.sample_factors(50, 8))
    f = f[:32]
    np.testing.assert_array_equal(
        dsprites.sample_observations_from_factors(f, 0),
        dsprites.sample_observations_from_factors(f, 1),
    )
    factors, x = dsprites.sample(16, 3)
    np.testing.assert_array_equal(x, dsprites.sample_observations_from_factors(factors))
    np.testing.assert_array_equal(x, dsprites.sample_observations(16, 3))


# --- the original file ----------------------------------------------------------------------------

SMALL = (3, 2, 2, 2, 2)  # a 48-image grid in the file's layout


def write_small_npz(path, sizes=SMALL, **overrides) -> np.ndarray:
    n = int(np.prod(sizes))
    rng = np.random.default_rng(0)
    classes = np.stack(np.unravel_index(np.arange(n), sizes), -1)
    arrays = {
        "imgs": (rng.random((n, 64, 64)) < 0.1).astype(np.uint8),
        "latents_classes": np.concatenate([np.zeros((n, 1), np.int64), classes], 1),
        "latents_values": np.concatenate([np.ones((n, 1)), classes.astype(float)], 1),
    }
    arrays.update(overrides)
    np.savez_compressed(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays["imgs"]


def test_loader_returns_the_stored_images(tmp_path):
    imgs = write_small_npz(tmp_path / "small.npz")
    data = DSprites(tmp_path / "small.npz", factor_sizes=SMALL)
    assert len(data) == 48
    factors = data.sample_factors(20, 0)
    x = data.sample_observations_from_factors(factors)
    assert x.shape == (20, 1, 64, 64) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], imgs[data.factors_to_index(factors)])
    np.testing.assert_array_equal(data[5][0], imgs[5])
    np.testing.assert_array_equal(
        data.sample_observations_from_factors([[2, 1, 0, 1, 1]])[0, 0], imgs[43]
    )


def test_loader_errors(tmp_path):
    missing = tmp_path / "nope" / "dsprites.npz"
    with pytest.raises(FileNotFoundError, match="nope") as error:
        DSprites(missing)
    assert "dataset.path" in str(error.value)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ValueError, match="corrupt.npz"):
        DSprites(corrupt)
    flipped = tmp_path / "flipped.npz"  # a valid zip whose compressed data is damaged
    write_small_npz(flipped)
    data = bytearray(flipped.read_bytes())
    data[1000:1200] = bytes(b ^ 0xFF for b in data[1000:1200])
    flipped.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="flipped.npz"):
        DSprites(flipped, factor_sizes=SMALL)
    truncated = tmp_path / "truncated.npz"
    write_small_npz(truncated)
    truncated.write_bytes(truncated.read_bytes()[:3000])
    with pytest.raises(ValueError, match="truncated.npz"):
        DSprites(truncated, factor_sizes=SMALL)
    write_small_npz(tmp_path / "nokey.npz", imgs=None)
    with pytest.raises(ValueError, match="imgs"):
        DSprites(tmp_path / "nokey.npz", factor_sizes=SMALL)
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single.npy"):
        DSprites(tmp_path / "single.npy")
    write_small_npz(tmp_path / "small.npz")
    with pytest.raises(ValueError, match="shape"):  # strict on the real sizes by default
        DSprites(tmp_path / "small.npz")
    write_small_npz(tmp_path / "bytes.npz", imgs=np.full((48, 64, 64), 255, np.uint8))
    with pytest.raises(ValueError, match="0/1"):
        DSprites(tmp_path / "bytes.npz", factor_sizes=SMALL)
    grid = np.stack(np.unravel_index(np.arange(48), SMALL), -1)
    shuffled = np.roll(np.concatenate([np.zeros((48, 1), int), grid], 1), 1, axis=0)
    write_small_npz(tmp_path / "shuffled.npz", latents_classes=shuffled)
    with pytest.raises(ValueError, match="order"):
        DSprites(tmp_path / "shuffled.npz", factor_sizes=SMALL)
    with pytest.raises(ValueError, match="file"):
        DSprites(factor_sizes=SMALL)


# --- the training stream --------------------------------------------------------------------------


def first_batches(datamodule: GroundTruthDataModule, n: int) -> list[torch.Tensor]:
    iterator = iter(datamodule.train_dataloader())
    return [next(iterator) for _ in range(n)]


def same(xs: list[torch.Tensor], ys: list[torch.Tensor]) -> bool:
    return len(xs) == len(ys) and all(torch.equal(x, y) for x, y in zip(xs, ys, strict=True))


def test_stream_shape_and_seeding(dsprites):
    a = first_batches(GroundTruthDataModule(dsprites, batch_size=16, seed=3), 3)
    assert all(b.shape == (16, 1, 64, 64) and b.dtype == torch.float32 for b in a)
    b = first_batches(GroundTruthDataModule(dsprites, batch_size=16, seed=3), 3)
    c = first_batches(GroundTruthDataModule(dsprites, batch_size=16, seed=4), 3)
    assert same(a, b)
    assert not any(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    assert not torch.equal(a[0], a[1])
    assert first_batches(GroundTruthDataModule(dsprites), 1)[0].shape == (64, 1, 64, 64)


def test_stream_is_the_same_with_workers():
    tiny = Tiny()
    single = first_batches(GroundTruthDataModule(tiny, batch_size=4, seed=5), 5)
    workers = first_batches(GroundTruthDataModule(tiny, batch_size=4, seed=5, num_workers=2), 5)
    assert same(single, workers)


def test_state_dict_resumes_the_stream(dsprites):
    full = first_batches(GroundTruthDataModule(dsprites, batch_size=8, seed=1), 5)
    before = GroundTruthDataModule(dsprites, batch_size=8, seed=1)
    before.batches_served = 3  # as after three training steps
    after = GroundTruthDataModule(dsprites, batch_size=8, seed=1)
    after.load_state_dict(before.state_dict())
    assert after.batches_served == 3
    assert same(first_batches(after, 2), full[3:])
    with pytest.warns(UserWarning, match="seed"):
        GroundTruthDataModule(dsprites, batch_size=8, seed=2).load_state_dict(before.state_dict())


class Recorder(L.LightningModule):
    """Keeps every training batch it sees."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen = []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch.clone())
        return (self.w - batch.mean()) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(datamodule, max_steps, tmp_path, ckpt_path=None) -> tuple[Recorder, L.Trainer]:
    model = Recorder()
    trainer = L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return model, trainer


def test_trainer_counts_batches_and_resumes_from_a_checkpoint(tmp_path):
    tiny = Tiny()
    stream = BatchStream(tiny, batch_size=4, seed=2)
    datamodule = GroundTruthDataModule(tiny, batch_size=4, seed=2)
    model, trainer = fit(datamodule, 3, tmp_path)
    assert datamodule.batches_served == 3
    assert same(model.seen, [stream.batch(i) for i in range(3)])
    trainer.save_checkpoint(tmp_path / "step3.ckpt")
    resumed = GroundTruthDataModule(tiny, batch_size=4, seed=2)
    model, _ = fit(resumed, 5, tmp_path, ckpt_path=tmp_path / "step3.ckpt")
    assert len(model.seen) == 2 and resumed.batches_served == 5
    assert same(model.seen, [stream.batch(3), stream.batch(4)])


def test_dataset_yaml_declares_the_factor_grid_and_a_wrong_one_is_refused():
    from disent.config import load_config
    from disent.data import build_dataset

    cfg = load_config(["dataset=dsprites"]).dataset
    assert dict(cfg.factors) == {"shape": 3, "scale": 6, "orientation": 40, "posX": 32, "posY": 32}
    with pytest.raises(ValueError, match="conf/dataset/dsprites.yaml"):
        build_dataset({**cfg, "factors": {"shape": 3}})
