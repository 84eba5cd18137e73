"""SmallNORB, Cars3D and MPI3D read from small files written in exactly the original formats.

Every image written encodes its factors in its pixels (a constant value per grid point, plus one
random image at a known grid point), so the tests check that each image lands at its grid point
after loading and resizing; every damaged or wrong file must stop with one DataFileError naming it.
"""

import gzip
import itertools
import pickle
import shutil
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from disent.config import load_config
from disent.data import DATASETS, build_dataset
from disent.data.cars3d import Cars3D
from disent.data.files import DataFileError, DataFileNotFoundError
from disent.data.mpi3d import MPI3D
from disent.data.smallnorb import BYTE_MAGIC, INT_MAGIC, SPLITS, SmallNORB, file_name


def lanczos(image: np.ndarray) -> np.ndarray:
    """What disentanglement_lib's resize makes of a uint8 image: PIL's Lanczos to 64x64."""
    return np.asarray(Image.fromarray(image).resize((64, 64), Image.Resampling.LANCZOS))


def build(name: str, *overrides: str):
    return build_dataset(load_config([f"dataset={name}", *overrides], config_name="data").dataset)


def test_registered_with_a_config_each():
    for name, cls in (("smallnorb", SmallNORB), ("cars3d", Cars3D), ("mpi3d", MPI3D)):
        assert DATASETS[name] is cls
        cfg = load_config([f"dataset={name}"], config_name="data").dataset
        assert cfg.path is None and dict(cfg.factors) == dict(
            zip(cls.factor_names, cls.factor_sizes, strict=True)
        )
        with pytest.raises(DataFileNotFoundError, match="dataset.path"):
            build_dataset(cfg)  # no file: one clear error, saying where to get it


# --- SmallNORB: the NORB binary-matrix format --------------------------------------------------

# 2 instances per category and split (training 4, 6; testing 0, 1: global ids), a few values of the
# others, given as stored (azimuth 0, 2, ..., 34)
NORB_INSTANCES = {SPLITS[0]: (4, 6), SPLITS[1]: (0, 1)}
# category, -, elevation, azimuth, lighting
NORB_VALUES = (range(5), None, (0, 8), (0, 2, 34), (0, 5))
NORB_SIZES = (5, 4, 2, 3, 2)  # 240 images; instance ranks 0..3 are ids 0, 1, 4, 6
NORB_RANDOM = (3, 2, 1, 0, 1)  # the grid point (ranks) that holds a random image: id 4, elevation 8
NORB_LATENTS = "{category:5,elevation:2,azimuth:3,lighting:2}"  # the default: instance drawn


def norb_matrix(array: np.ndarray, magic: int | None = None) -> bytes:
    """`array` in NORB's binary-matrix format: little-endian magic, ndim, max(3, ndim) dims,
    data."""
    if magic is None:
        magic = BYTE_MAGIC if array.dtype == np.uint8 else INT_MAGIC
    dims = list(array.shape) + [1] * (3 - array.ndim)  # at least three dims, padded with 1
    header = struct.pack(f"<ii{len(dims)}i", magic, array.ndim, *dims)
    return header + array.astype("<u1" if magic == BYTE_MAGIC else "<i4").tobytes()


def norb_grid_index(category, instance, elevation, azimuth, lighting) -> int:
    ranks = (category, (0, 1, 4, 6).index(instance), (0, 8).index(elevation))
    ranks += ((0, 2, 34).index(azimuth), (0, 5).index(lighting))
    return int(np.ravel_multi_index(ranks, NORB_SIZES))


def write_norb(directory: Path, gz: bool = False) -> np.ndarray:
    """The six files of a small SmallNORB (rows shuffled); the random image at NORB_RANDOM."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    special = rng.integers(0, 256, (96, 96), dtype=np.uint8)
    for split, instances in NORB_INSTANCES.items():
        values = list(NORB_VALUES)
        values[1] = instances
        rows = np.array(list(itertools.product(*values)))[rng.permutation(120)]
        grid = np.array([norb_grid_index(*row) for row in rows])
        dat = np.empty((len(rows), 2, 96, 96), np.uint8)
        dat[:, 0] = (grid + 10)[:, None, None]  # camera 0: its grid index, offset
        dat[:, 1] = 3  # camera 1: never read
        dat[grid == np.ravel_multi_index(NORB_RANDOM, NORB_SIZES), 0] = special
        arrays = {
            "dat": dat,
            "cat": rows[:, 0].astype(np.int32),
            "info": rows[:, 1:].astype(np.int32),
        }
        for part, array in arrays.items():
            data = norb_matrix(array)
            name = file_name(split, part)
            if gz:
                (directory / (name + ".gz")).write_bytes(gzip.compress(data, compresslevel=1))
            else:
                (directory / name).write_bytes(data)
    return special


@pytest.fixture(scope="module")
def norb_dir(tmp_path_factory) -> tuple[Path, np.ndarray]:
    directory = tmp_path_factory.mktemp("norb")
    return directory, write_norb(directory)


def norb(path) -> SmallNORB:
    return build(
        "smallnorb",
        f"dataset.path='{path}'",
        "dataset.instance_factor=true",
        f"dataset.factors={NORB_LATENTS}",
        "+dataset.factors.instance=4",  # the instance a factor too (conf/dataset/smallnorb.yaml)
    )


def check_norb(data: SmallNORB, special: np.ndarray) -> None:
    assert len(data) == 240 and data.factor_sizes == NORB_SIZES
    assert data.observation_shape == (1, 64, 64)
    x = data.sample_observations_from_factors(data.index_to_factors(np.arange(240)))
    assert x.shape == (240, 1, 64, 64) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1
    constant = np.arange(240) != np.ravel_multi_index(NORB_RANDOM, NORB_SIZES)
    pixels = np.rint(x[constant] * 255)  # each constant image: its grid index + 10, everywhere
    np.testing.assert_array_equal(pixels, np.broadcast_to(pixels[:, :, :1, :1], pixels.shape))
    np.testing.assert_array_equal(pixels[:, 0, 0, 0], np.arange(240)[constant] + 10)
    np.testing.assert_array_equal(  # the random image, resized as disentanglement_lib does
        data.sample_observations_from_factors([NORB_RANDOM])[0, 0],
        lanczos(special) / np.float32(255),
    )


def test_smallnorb_images_land_at_their_factors(norb_dir):
    directory, special = norb_dir
    check_norb(norb(directory), special)
    # instance is the id's rank: id 4 is rank 2; (category 3, elevation 8, azimuth 2, lighting 5)
    index = norb_grid_index(3, 4, 8, 2, 5)
    assert index == np.ravel_multi_index((3, 2, 1, 1, 1), NORB_SIZES)
    data = SmallNORB(directory / file_name(SPLITS[0], "dat"), instance_factor=True)  # the file
    assert data[index][0, 0, 0] * 255 == pytest.approx(index + 10)


def test_smallnorb_draws_the_instance_as_disentanglement_lib(norb_dir):
    """By default the factors are category, elevation, azimuth and lighting, and each observation
    is one of the instances of its category, drawn at random."""
    directory, _ = norb_dir
    data = build("smallnorb", f"dataset.path='{directory}'", f"dataset.factors={NORB_LATENTS}")
    assert data.factor_names == ("category", "elevation", "azimuth", "lighting")
    assert data.factor_sizes == (5, 2, 3, 2) and len(data) == 60 and not data.deterministic
    factors = data.sample_factors(2000, 0)
    x = data.sample_observations_from_factors(factors, np.random.default_rng(1))
    index = np.rint(x[:, 0, 0, 0] * 255).astype(int) - 10  # each image: its 5-factor grid index
    special = np.ravel_multi_index(NORB_RANDOM, NORB_SIZES)
    full = np.stack(
        np.unravel_index(np.where(x[:, 0].std((1, 2)) > 0.01, special, index), NORB_SIZES)
    )
    np.testing.assert_array_equal(np.delete(full, 1, axis=0).T, factors)  # the asked-for factors
    assert sorted(np.unique(full[1])) == [0, 1, 2, 3]  # every instance drawn
    counts = np.bincount(full[1], minlength=4)
    assert counts.min() > 400  # uniformly (2000 draws: 500 each)
    with pytest.raises(TypeError, match="Generator"):
        data.sample_observations_from_factors(factors[:2])  # the draw needs an rng


def test_smallnorb_gzipped_and_archived(tmp_path, norb_dir):
    directory, special = norb_dir
    write_norb(tmp_path / "gz", gz=True)
    check_norb(norb(tmp_path / "gz"), special)
    archive = tmp_path / "norb.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(directory, arcname="small_norb")
    check_norb(norb(archive), special)


def norb_copy(tmp_path: Path, norb_dir) -> Path:
    directory = tmp_path / "copy"
    shutil.copytree(norb_dir[0], directory)
    return directory


def other_instance(data: bytes) -> bytes:
    """A testing-info file whose first row has the other instance (0 <-> 1): a tuple twice."""
    (instance,) = struct.unpack("<i", data[20:24])  # after the 20-byte header: row 0's instance
    return data[:20] + struct.pack("<i", 1 - instance) + data[24:]


@pytest.mark.parametrize(
    "split, part, damage, message, named",
    [
        (
            0,
            "cat",
            lambda b: struct.pack("<i", BYTE_MAGIC) + b[4:],
            "magic number 0x1E3D4C55",
            None,
        ),
        (1, "dat", lambda b: b"\x00" * 8 + b[8:], "magic number 0x00000000", None),
        (0, "dat", lambda b: b[: len(b) // 2], "truncated", None),
        (1, "info", lambda b: b[:6], "truncated", None),
        (1, "dat", lambda b: b + b"\x00", "needs", None),
        (0, "info", lambda b: norb_matrix(np.zeros((120, 3), np.int32)), r"are \(120, 3\)", None),
        (0, "dat", lambda b: norb_matrix(np.zeros((120, 96, 96), np.uint8)), "3 dimensions", None),
        (1, "cat", lambda b: norb_matrix(np.zeros(119, np.int32)), "disagree", (1, "dat")),
        # the grid's errors name the first file
        (1, "info", other_instance, "incomplete", (0, "dat")),
    ],
)
def test_smallnorb_bad_files(tmp_path, norb_dir, split, part, damage, message, named):
    directory = norb_copy(tmp_path, norb_dir)
    bad = directory / file_name(SPLITS[split], part)
    bad.write_bytes(damage(bad.read_bytes()))
    with pytest.raises(DataFileError, match=message) as error:
        SmallNORB(directory)
    split, part = named or (split, part)
    assert str(directory / file_name(SPLITS[split], part)) in str(error.value)
    assert "norb-v1.0-small" in str(error.value)  # and where to get the originals


def test_smallnorb_missing_files_and_wrong_grid(tmp_path, norb_dir):
    directory = norb_copy(tmp_path, norb_dir)
    with pytest.raises(ValueError, match=r"dataset.factors says .*'elevation': 9"):
        build("smallnorb", f"dataset.path='{directory}'")  # the YAML's grid is the real one
    (directory / file_name(SPLITS[1], "info")).unlink()
    with pytest.raises(DataFileNotFoundError, match=file_name(SPLITS[1], "info")):
        SmallNORB(directory)
    with pytest.raises(DataFileNotFoundError, match=f"{tmp_path / 'nope'}"):
        SmallNORB(tmp_path / "nope")
    # a value missing everywhere: training's instance 6 relabelled 4, so 3 instances, not 4
    directory = norb_copy(tmp_path / "relabelled", norb_dir)
    info = directory / file_name(SPLITS[0], "info")
    rows = np.frombuffer(info.read_bytes(), "<i4", offset=20).reshape(-1, 4).copy()
    rows[rows[:, 0] == 6, 0] = 4
    info.write_bytes(norb_matrix(rows))
    with pytest.raises(DataFileError, match=r"hold 240 images.*\(5, 3, 2, 3, 2\) = 180 tuples"):
        SmallNORB(directory)


# --- Cars3D: one MATLAB v5 file per car ------------------------------------------------------

CAR_NAMES = ("car_009_mesh.mat", "car_010_mesh.mat", "car_101_mesh.mat")
CAR_RANDOM = (2, 5, 1)  # (elevation, azimuth, object) that holds a random image


def car_image(k: int) -> np.ndarray:
    """Car k's `im`, uint8 (128, 128, 3, 24, 4): each view a constant colour that encodes it."""
    azimuth, elevation = np.meshgrid(np.arange(24), np.arange(4), indexing="ij")  # (24, 4)
    # (3, 24, 4)
    colour = np.stack([azimuth * 10, elevation * 60, np.full_like(azimuth, 5 + 100 * k)])
    return np.broadcast_to(colour, (128, 128, 3, 24, 4)).astype(np.uint8)


def write_cars(directory: Path) -> np.ndarray:
    directory.mkdir(parents=True, exist_ok=True)
    special = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    for k, name in enumerate(CAR_NAMES):
        im = car_image(k)
        if k == CAR_RANDOM[2]:
            im = im.copy()
            im[:, :, :, CAR_RANDOM[1], CAR_RANDOM[0]] = special
        mask = np.ones((128, 128, 24, 4), np.uint8)
        scipy.io.savemat(directory / name, {"im": im, "mask": mask}, do_compression=k == 1)
    (directory / "list.txt").write_text("".join(name[:-4] + "\n" for name in CAR_NAMES))
    return special


@pytest.fixture(scope="module")
def cars_dir(tmp_path_factory) -> tuple[Path, np.ndarray]:
    directory = tmp_path_factory.mktemp("cars") / "data" / "cars"
    return directory, write_cars(directory)


def check_cars(data: Cars3D, special: np.ndarray) -> None:
    assert data.factor_sizes == (4, 24, 3) and len(data) == 288  # the number of cars found
    assert data.observation_shape == (3, 64, 64)
    factors = data.index_to_factors(np.arange(288))
    x = data.sample_observations_from_factors(factors)
    assert x.shape == (288, 3, 64, 64) and x.dtype == np.float32
    elevation, azimuth, car = factors.T
    expected = np.stack([azimuth * 10, elevation * 60, 5 + 100 * car], 1)  # (288, 3) uint8 colours
    constant = (factors != CAR_RANDOM).any(axis=1)
    pixels = np.rint(x[constant] * 255)
    np.testing.assert_array_equal(
        pixels, np.broadcast_to(expected[constant, :, None, None], pixels.shape)
    )
    np.testing.assert_array_equal(
        data.sample_observations_from_factors([CAR_RANDOM])[0],
        lanczos(special).transpose(2, 0, 1) / np.float32(255),
    )


def test_cars3d_images_land_at_their_factors(tmp_path, cars_dir):
    directory, special = cars_dir
    check_cars(build("cars3d", f"dataset.path='{directory}'", "dataset.factors.object=3"), special)
    data = Cars3D(directory.parent)  # the archive's data/ folder, holding cars/
    assert data.files == list(CAR_NAMES)  # object order: the car's number
    archive = tmp_path / "nips2015-analogy-data.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(directory.parent, arcname="data")
    check_cars(Cars3D(archive), special)
    with pytest.raises(ValueError, match=r"factors says .*'object': 183.*'object': 3"):
        build("cars3d", f"dataset.path='{directory}'")  # the YAML declares the full 183


def test_cars3d_bad_files(tmp_path, cars_dir):
    def copy() -> Path:
        target = tmp_path / f"cars{len(list(tmp_path.iterdir()))}"
        shutil.copytree(cars_dir[0], target)
        return target

    cases = [
        (lambda d: scipy.io.savemat(d / CAR_NAMES[0], {"mask": np.zeros(3)}), "no variable `im`"),
        (
            lambda d: scipy.io.savemat(
                d / CAR_NAMES[1], {"im": car_image(0).transpose(0, 1, 2, 4, 3)}
            ),
            r"\(128, 128, 3, 4, 24\)",
        ),
        (
            lambda d: scipy.io.savemat(d / CAR_NAMES[2], {"im": car_image(0)[::2, ::2]}),
            r"\(64, 64, 3",
        ),
        (
            lambda d: (d / CAR_NAMES[0]).write_bytes(np.random.default_rng(0).bytes(5000)),
            "not a readable",
        ),
        (
            lambda d: (d / CAR_NAMES[1]).write_bytes((d / CAR_NAMES[1]).read_bytes()[:3000]),
            "not a readable",
        ),
    ]
    for damage, message in cases:
        directory = copy()
        damage(directory)
        with pytest.raises(DataFileError, match=message) as error:
            Cars3D(directory)
        assert str(directory) in str(error.value) and "nips2015-analogy-data" in str(error.value)
    directory = copy()
    (directory / CAR_NAMES[2]).unlink()  # list.txt still names it
    with pytest.raises(DataFileNotFoundError, match=r"list.txt.*names 3 cars.*car_101_mesh.mat"):
        Cars3D(directory)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileNotFoundError, match="empty.*holds no car_XXX_mesh.mat"):
        Cars3D(tmp_path / "empty")


# --- MPI3D: one .npz per variant ------------------------------------------------------------

# the earlier release's 4 x 4, arm axes reduced to 2 values: 1,152
MPI_SIZES = (4, 4, 2, 3, 3, 2, 2)
MPI_RANDOM = 777  # the grid index that holds a random image


def mpi_images(colours: int = 4) -> np.ndarray:
    """(N, 64, 64, 3) uint8 in grid order: pixels (index % 256, index // 256, 7); one random."""
    n = colours * colours * 18 * 4
    index = np.arange(n)
    colour = np.stack([index % 256, index // 256, np.full(n, 7)], 1).astype(np.uint8)
    images = np.ascontiguousarray(np.broadcast_to(colour[:, None, None], (n, 64, 64, 3)))
    images[MPI_RANDOM] = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return images


@pytest.fixture(scope="module")
def mpi_file(tmp_path_factory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("mpi3d") / "mpi3d_toy.npz"
    images = mpi_images()
    np.savez(path, images=images)  # stored uncompressed: memory-mappable
    return path, images


def mpi(path, *overrides: str) -> MPI3D:
    return build(
        "mpi3d",
        f"dataset.path='{path}'",
        "dataset.axis_size=2",
        "dataset.factors.object_color=4",
        "dataset.factors.object_shape=4",
        "dataset.factors.horizontal_axis=2",
        "dataset.factors.vertical_axis=2",
        *overrides,
    )


def check_mpi(data: MPI3D, images: np.ndarray) -> None:
    n = len(images)
    assert len(data) == n and data.observation_shape == (3, 64, 64)
    factors = data.sample_factors(300, 0)  # unsorted, with repeats
    x = data.sample_observations_from_factors(factors)
    assert x.shape == (300, 3, 64, 64) and x.dtype == np.float32
    expected = images[data.factors_to_index(factors)].transpose(0, 3, 1, 2) / np.float32(255)
    np.testing.assert_array_equal(x, expected)
    # row-major, vertical_axis fastest: index 777 = (2, 2, 1, 1, 2, 0, 1) in the 4 x 4 grid
    if data.factor_sizes == MPI_SIZES:
        np.testing.assert_array_equal(
            data.index_to_factors(np.array([MPI_RANDOM]))[0], (2, 2, 1, 1, 2, 0, 1)
        )
    np.testing.assert_array_equal(
        data[MPI_RANDOM], images[MPI_RANDOM].transpose(2, 0, 1) / np.float32(255)
    )


def test_mpi3d_memory_maps_the_npz(mpi_file):
    path, images = mpi_file
    data = mpi(path.parent)  # a directory: variant toy names the file
    assert data.factor_sizes == MPI_SIZES and isinstance(data._images, np.memmap)
    check_mpi(data, images)
    pickled = pickle.dumps(data)  # data loader workers: the map, not its pixels
    assert len(pickled) < 100_000
    check_mpi(pickle.loads(pickled), images)
    loaded = mpi(path, "dataset.in_memory=true")
    assert not isinstance(loaded._images, np.memmap)
    check_mpi(loaded, images)


def test_mpi3d_layouts_npy_and_compressed(tmp_path, mpi_file):
    six = mpi_images(colours=6)  # the current release's 6 x 6, told apart by the length alone
    np.savez(tmp_path / "mpi3d_real.npz", images=six)
    data = MPI3D(tmp_path, variant="real", axis_size=2)
    assert data.factor_sizes == (6, 6, 2, 3, 3, 2, 2) and len(data) == 2592
    check_mpi(data, six)
    np.save(tmp_path / "images.npy", mpi_file[1])  # what `unzip mpi3d_toy.npz images.npy` gives
    check_mpi(MPI3D(tmp_path / "images.npy", axis_size=2), mpi_file[1])
    np.savez_compressed(tmp_path / "mpi3d_realistic.npz", images=mpi_file[1])
    with pytest.raises(DataFileError, match=r"mpi3d_realistic.npz.*compressed.*in_memory=true"):
        MPI3D(tmp_path, variant="realistic", axis_size=2)
    check_mpi(MPI3D(tmp_path, variant="realistic", axis_size=2, in_memory=True), mpi_file[1])


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"images": mpi_images()[:-1]}, r"1,151 images.*1,152 \(4x4"),
        ({"imgs": mpi_images()}, r"no array `images` \(found \['imgs'\]\)"),
        (
            {"images": mpi_images()[:, ::2, ::2]},
            r"uint8 \(1152, 32, 32, 3\), not uint8 \(N, 64, 64, 3\)",
        ),
        ({"images": np.asfortranarray(mpi_images())}, "Fortran"),
    ],
)
def test_mpi3d_bad_arrays(tmp_path, arrays, message):
    np.savez(tmp_path / "mpi3d_toy.npz", **arrays)
    with pytest.raises(DataFileError, match=message) as error:
        MPI3D(tmp_path, axis_size=2)
    assert str(tmp_path / "mpi3d_toy.npz") in str(error.value)


def test_mpi3d_bad_files(tmp_path, mpi_file):
    with pytest.raises(
        DataFileError, match=r"1,152 images.*1,036,800 \(6x6.*460,800 \(4x4.*40 values"
    ):
        MPI3D(mpi_file[0])  # the real grid
    (tmp_path / "mpi3d_toy.npz").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataFileError, match="mpi3d_toy.npz.*not an .npz"):
        MPI3D(tmp_path, axis_size=2)
    (tmp_path / "mpi3d_toy.npz").write_bytes(mpi_file[0].read_bytes()[:5_000_000])
    with pytest.raises(DataFileError, match="mpi3d_toy.npz.*damaged or truncated"):
        MPI3D(tmp_path, axis_size=2)
    with pytest.raises(DataFileNotFoundError, match="holds no mpi3d_real.npz"):
        MPI3D(tmp_path, variant="real")
    with pytest.raises(ValueError, match="variant"):
        MPI3D(mpi_file[0], variant="simulated")


# --- end to end ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_trains_a_few_steps_on_mpi3d(tmp_path, mpi_file):
    from disent.run import train

    cfg = load_config(
        [
            "dataset=mpi3d",
            f"dataset.path='{mpi_file[0]}'",
            "dataset.axis_size=2",
            "dataset.factors.object_color=4",
            "dataset.factors.object_shape=4",
            "dataset.factors.horizontal_axis=2",
            "dataset.factors.vertical_axis=2",
            "trainer.max_steps=2",
            "trainer.enable_progress_bar=false",
            "metrics=none",
            "figures=tiny",
            "loader.batch_size=8",
            "model.hidden_dim=64",
        ]
    )
    results = train(cfg, tmp_path / "job")
    assert (
        results["status"] == "completed" and results["steps"] == 2 and results["dataset"] == "mpi3d"
    )
    assert (tmp_path / "job" / "figures" / "traversals.png").stat().st_size > 0


def original_overrides(name: str, directory: Path) -> list[str]:
    """Small original-format files of data set `name` (smallnorb, cars3d, mpi3d) written under
    `directory`, and the overrides that point `dataset=<name>` at them (for the tests that run every
    conf/dataset/ file)."""
    if name == "smallnorb":
        write_norb(directory)
        return [f"dataset.path='{directory}'", f"dataset.factors={NORB_LATENTS}"]
    if name == "cars3d":
        write_cars(directory)
        return [f"dataset.path='{directory}'", f"dataset.factors.object={len(CAR_NAMES)}"]
    path = directory / "mpi3d_toy.npz"
    np.savez(path, images=mpi_images())
    return [
        f"dataset.path='{path}'",
        "dataset.axis_size=2",
        "dataset.factors.object_color=4",
        "dataset.factors.object_shape=4",
        "dataset.factors.horizontal_axis=2",
        "dataset.factors.vertical_axis=2",
    ]


@pytest.mark.slow
def test_a_study_preset_runs_on_an_original_format(tmp_path):
    """`disent-study run --preset <p> dataset=smallnorb dataset.path=...`: the command line's data
    set replaces the preset's."""
    import json

    import pandas as pd
    from conftest import run_in_process

    preset = {
        "name": "tiny_norb",
        "dataset": "dsprites",
        "seeds": [0],
        "launcher": "basic",
        "overrides": [
            "trainer.max_steps=2",
            "trainer.enable_progress_bar=false",
            "loader.batch_size=8",
            "model.hidden_dim=64",
            "figures=tiny",
            "metrics=tiny",
        ],
        "models": {"beta_vae": {"knob": "beta", "values": [1]}},
    }
    (tmp_path / "tiny.yaml").write_text(json.dumps(preset))  # JSON is YAML
    study = tmp_path / "study"
    arguments = ["run", "--preset", str(tmp_path / "tiny.yaml"), "--out", str(study)]
    overrides = ["dataset=smallnorb", *original_overrides("smallnorb", tmp_path / "norb")]
    done = run_in_process("disent.study.report", *arguments, *overrides, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = run_in_process(
        "disent.study.report", "report", str(study), "--out", str(tmp_path / "report")
    )
    assert report.returncode == 0, report.stderr[-2000:]
    table = pd.read_csv(tmp_path / "report" / "table.csv")
    assert list(table["dataset"]) == ["smallnorb"] and list(table["status"]) == ["completed"]
