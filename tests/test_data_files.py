"""disent.data.files: one clear error for a bad data file, archives as `path`, and safe extraction."""

import gzip
import io
import os
import re
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from disent.data import files
from disent.data.digits import IMAGES_FILE, LABELS_FILE, Digits
from disent.data.dsprites import FILE_NAME as DSPRITES_NAME
from disent.data.dsprites import DSprites
from disent.data.dsprites_variants import ColorDSprites
from disent.data.files import (
    STAMP,
    DataFileError,
    DataFileNotFoundError,
    resolve_data_path,
    safe_extract,
)
from disent.data.shapes3d import FILE_NAME as SHAPES3D_NAME
from disent.data.shapes3d import Shapes3D

SPRITES = (3, 2, 1, 2, 2)  # 24 images in dSprites' layout
SHAPES = (2, 1, 1, 2, 1, 2)  # 8 images in 3dshapes' layout


# --- tiny files in the originals' layouts
# ----------------------------------------------------------


def npz_bytes(sizes=SPRITES, **overrides) -> bytes:
    n = int(np.prod(sizes))
    classes = np.stack(np.unravel_index(np.arange(n), sizes), -1)
    arrays = {
        "imgs": (np.random.default_rng(0).random((n, 64, 64)) < 0.1).astype(np.uint8),
        "latents_classes": np.concatenate([np.zeros((n, 1), np.int64), classes], 1),
    }
    arrays.update(overrides)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: v for k, v in arrays.items() if v is not None})
    return buffer.getvalue()


def write_h5(path: Path, sizes=SHAPES, images=None, compression=None) -> np.ndarray:
    n = int(np.prod(sizes))
    # increasing values: a valid order
    grid = np.stack(np.unravel_index(np.arange(n), sizes), -1).astype(float)
    if images is None:
        images = np.random.default_rng(0).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "images", data=images, chunks=(1, *images.shape[1:]), compression=compression
        )
        f.create_dataset("labels", data=grid)
    return images


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = 0x0800 + array.ndim if magic is None else magic
    return (
        struct.pack(">i", magic)
        + struct.pack(f">{array.ndim}i", *array.shape)
        + array.astype(np.uint8).tobytes()
    )


MNIST_IMAGES = np.random.default_rng(1).integers(0, 256, (20, 28, 28)).astype(np.uint8)
MNIST_LABELS = np.arange(20) % 10


def write_mnist(folder: Path, suffix: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pack = gzip.compress if suffix == ".gz" else bytes
    (folder / (IMAGES_FILE + suffix)).write_bytes(pack(idx_bytes(MNIST_IMAGES)))
    (folder / (LABELS_FILE + suffix)).write_bytes(pack(idx_bytes(MNIST_LABELS)))


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def tar_info(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 0
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)  # TarInfo keeps the name as given: absolute paths and .. included
    info.type, info.linkname, info.size = kind, link, size
    return info


def make_tar(
    path: Path, members: dict[str, bytes], links: tuple[tarfile.TarInfo, ...] = ()
) -> Path:
    with tarfile.open(path, "w:gz" if path.name.endswith(("gz", "tgz")) else "w") as archive:
        for name, data in members.items():
            archive.addfile(tar_info(name, size=len(data)), io.BytesIO(data))
        for info in links:
            archive.addfile(info)
    return path


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def raises_file_error(path, *fragments: str, cls=DataFileError):
    """Expect `cls` whose message starts 'cannot read the ... <path>:' and contains `fragments` in order."""
    pattern = (
        "cannot read the .*" + re.escape(str(path)) + ": .*" + ".*".join(map(re.escape, fragments))
    )
    return pytest.raises(cls, match=pattern)


# --- bad files: one DataFileError naming the path, the reason and what to do
# -----------------------


def test_dsprites_bad_files(tmp_path):
    good = npz_bytes()
    cases = {
        "truncated.npz": (good[: len(good) // 2], "damaged or truncated"),
        "text.npz": (b"imgs,latents_classes\n0,0\n", "not an .npz (zip) archive"),
        "empty.npz": (b"", "not an .npz (zip) archive"),
        "nokey.npz": (npz_bytes(latents_classes=None), "arrays ['latents_classes'] are missing"),
        "shape.npz": (
            npz_bytes(imgs=np.zeros((24, 32, 32), np.uint8)),
            "imgs has shape (24, 32, 32), not (24, 64, 64)",
        ),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with raises_file_error(
            tmp_path / name,
            reason,
            "Expected the original " + DSPRITES_NAME,
            "set dataset.path=null to render the sprites procedurally",
        ):
            DSprites(tmp_path / name, factor_sizes=SPRITES)
    with raises_file_error(
        tmp_path / "nope.npz", "no such file", cls=DataFileNotFoundError
    ) as error:
        DSprites(tmp_path / "nope.npz")
    # also what callers catching the builtin expect
    assert isinstance(error.value, FileNotFoundError)
    with raises_file_error(
        tmp_path, "this directory holds no " + DSPRITES_NAME, cls=DataFileNotFoundError
    ):
        DSprites(tmp_path)
    # the variants read it the same way
    with raises_file_error(tmp_path / "truncated.npz", "damaged or truncated"):
        ColorDSprites(tmp_path / "truncated.npz")


@pytest.mark.parametrize("in_memory", [False, True])
def test_shapes3d_bad_files(tmp_path, in_memory):
    images = write_h5(tmp_path / "good.h5")
    (tmp_path / "truncated.h5").write_bytes((tmp_path / "good.h5").read_bytes()[:20_000])
    (tmp_path / "text.h5").write_text("not hdf5\n")
    write_h5(tmp_path / "shape.h5", images=images[:, :32, :32])
    with h5py.File(tmp_path / "nolabels.h5", "w") as f:
        f.create_dataset("images", data=images)
    for name, reason in [
        ("truncated.h5", "damaged or truncated"),
        ("text.h5", "not an HDF5 file"),
        ("shape.h5", "images are uint8 (8, 32, 32, 3), not uint8 (8, 64, 64, 3)"),
        ("nolabels.h5", "datasets ['labels'] are missing"),
    ]:
        with raises_file_error(
            tmp_path / name,
            reason,
            "Expected the original " + SHAPES3D_NAME,
            "set dataset.path=null to render the scenes procedurally",
        ):
            Shapes3D(tmp_path / name, factor_sizes=SHAPES, in_memory=in_memory)
    with raises_file_error(tmp_path / "nope.h5", "no such file", cls=DataFileNotFoundError):
        Shapes3D(tmp_path / "nope.h5", factor_sizes=SHAPES, in_memory=in_memory)


def test_shapes3d_damaged_chunk_is_reported_when_read(tmp_path):
    path = tmp_path / "chunk.h5"
    write_h5(path, compression="gzip")
    with h5py.File(path, "r") as f:
        chunk = f["images"].id.get_chunk_info(7)  # the last image's compressed chunk
    data = bytearray(path.read_bytes())
    data[chunk.byte_offset : chunk.byte_offset + chunk.size] = b"\xff" * chunk.size
    path.write_bytes(bytes(data))
    lazy = Shapes3D(path, factor_sizes=SHAPES)  # the check reads the labels, not every image
    lazy[0]
    with raises_file_error(path, "reading images failed"):
        lazy[7]
    with raises_file_error(path, "damaged or truncated"):
        Shapes3D(path, factor_sizes=SHAPES, in_memory=True)


def test_mnist_bad_files(tmp_path):
    images_path = tmp_path / IMAGES_FILE
    good = idx_bytes(MNIST_IMAGES)
    write_mnist(tmp_path)
    cases = [
        (good[:-10], "it has 15686 bytes, but its header (20, 28, 28) needs 15696 (truncated)"),
        (good[:6], "it is truncated: 6 bytes, its header alone needs 16"),
        (b"", "magic number None, expected 2051"),
        (idx_bytes(MNIST_IMAGES, magic=2049), "magic number 2049, expected 2051"),
        (gzip.compress(good)[:300], "damaged or truncated (EOFError"),
    ]
    for data, reason in cases:
        images_path.write_bytes(data)
        with raises_file_error(
            images_path,
            reason,
            "Expected MNIST's " + IMAGES_FILE,
            "set dataset.path=null to use scikit-learn's bundled digits",
        ):
            Digits(path=tmp_path)
    text = tmp_path / "text" / (IMAGES_FILE + ".gz")  # not gzip at all: read as IDX, wrong magic
    text.parent.mkdir()
    text.write_text("hello\n")
    (text.parent / LABELS_FILE).write_bytes(idx_bytes(MNIST_LABELS))
    with raises_file_error(text, "magic number 1751477356"):
        Digits(path=text)
    images_path.write_bytes(good)
    (tmp_path / LABELS_FILE).unlink()
    with raises_file_error(images_path, "no labels file", cls=DataFileNotFoundError):
        Digits(path=tmp_path)
    with raises_file_error(
        tmp_path / "nowhere", "no such file or directory", cls=DataFileNotFoundError
    ):
        Digits(path=tmp_path / "nowhere")


# --- archives as `path`
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "tar"])
def test_dsprites_archive_loads_the_same_data(tmp_path, kind, monkeypatch):
    data = npz_bytes()
    (tmp_path / DSPRITES_NAME).write_bytes(data)
    plain = DSprites(tmp_path / DSPRITES_NAME, factor_sizes=SPRITES)
    members = {"README.md": b"dSprites\n", f"dsprites-dataset-master/{DSPRITES_NAME}": data}
    archive = (make_zip if kind == "zip" else make_tar)(tmp_path / f"dsprites.{kind}", members)
    packed = DSprites(archive, factor_sizes=SPRITES)
    np.testing.assert_array_equal(packed._imgs, plain._imgs)
    target = tmp_path / f"dsprites.{kind}.extracted"
    # only the needed member, flat, and the archive's stamp
    assert listing(target) == {DSPRITES_NAME, STAMP}
    assert listing(tmp_path) == {
        DSPRITES_NAME,
        archive.name,
        target.name,
        f"{target.name}/{DSPRITES_NAME}",
        f"{target.name}/{STAMP}",
    }

    def refuse(*args, **kwargs):
        raise AssertionError("extracted again")

    monkeypatch.setattr(files, "safe_extract", refuse)  # the complete extraction is reused
    np.testing.assert_array_equal(DSprites(archive, factor_sizes=SPRITES)._imgs, plain._imgs)
    os.utime(archive, (archive.stat().st_mtime + 10,) * 2)  # a newer archive is extracted again
    with pytest.raises(AssertionError, match="extracted again"):
        DSprites(archive, factor_sizes=SPRITES)


@pytest.mark.parametrize("kind", ["zip", "tgz"])
@pytest.mark.parametrize("in_memory", [False, True])
def test_shapes3d_archive_loads_the_same_data(tmp_path, kind, in_memory):
    images = write_h5(tmp_path / SHAPES3D_NAME)
    members = {f"3d-shapes/{SHAPES3D_NAME}": (tmp_path / SHAPES3D_NAME).read_bytes()}
    archive = (make_zip if kind == "zip" else make_tar)(tmp_path / f"shapes.{kind}", members)
    data = Shapes3D(archive, factor_sizes=SHAPES, in_memory=in_memory)
    factors = data.index_to_factors(np.arange(8))
    np.testing.assert_array_equal(
        data.sample_observations_from_factors(factors),
        images.transpose(0, 3, 1, 2) / np.float32(255),
    )


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_mnist_archive_loads_the_same_data(tmp_path, kind, suffix):
    write_mnist(tmp_path / "mnist", suffix)
    members = {f"mnist/{p.name}": p.read_bytes() for p in (tmp_path / "mnist").iterdir()}
    members["mnist/t10k-images-idx3-ubyte"] = b"not read"
    archive = (make_zip if kind == "zip" else make_tar)(tmp_path / f"mnist.{kind}", members)
    data = Digits(path=archive)
    np.testing.assert_array_equal(data.images, MNIST_IMAGES / np.float32(255))
    np.testing.assert_array_equal(data.labels, MNIST_LABELS)
    assert listing(tmp_path / f"mnist.{kind}.extracted") == {
        IMAGES_FILE + suffix,
        LABELS_FILE + suffix,
        STAMP,
    }


def test_kaggle_mnist_zip_layout(tmp_path):
    """Kaggle's MNIST zip: dotted names at the top, and each file again in a folder of its name."""
    images, labels = idx_bytes(MNIST_IMAGES), idx_bytes(MNIST_LABELS)
    archive = make_zip(
        tmp_path / "archive.zip",
        {
            "train-images.idx3-ubyte": images,
            "train-labels.idx1-ubyte": labels,
            f"{IMAGES_FILE}/{IMAGES_FILE}": images,
            f"{LABELS_FILE}/{LABELS_FILE}": labels,
        },
    )
    np.testing.assert_array_equal(Digits(path=archive).labels, MNIST_LABELS)


def test_bad_archives(tmp_path):
    data = npz_bytes()
    archive = make_zip(tmp_path / "other.zip", {"readme.txt": b"hi"})
    with raises_file_error(
        archive, "the archive holds no " + DSPRITES_NAME, cls=DataFileNotFoundError
    ):
        DSprites(archive, factor_sizes=SPRITES)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(
        make_tar(tmp_path / "full.tar.gz", {DSPRITES_NAME: data}).read_bytes()[:2000]
    )
    with raises_file_error(truncated, "not a readable archive"):
        DSprites(truncated, factor_sizes=SPRITES)
    text = tmp_path / "text.zip"
    text.write_text("not a zip\n")
    with raises_file_error(text, "not a readable archive (BadZipFile"):
        DSprites(text, factor_sizes=SPRITES)
    damaged = tmp_path / "damaged.zip"  # a readable listing, a damaged member
    make_zip(damaged, {DSPRITES_NAME: data})
    raw = bytearray(damaged.read_bytes())
    raw[200:400] = bytes(b ^ 0xFF for b in raw[200:400])
    damaged.write_bytes(bytes(raw))
    with raises_file_error(damaged, f"extracting its member '{DSPRITES_NAME}' failed"):
        DSprites(damaged, factor_sizes=SPRITES)
    # a member extracted whole but not a dSprites file: the loader's own check names the extracted
    # file
    make_zip(tmp_path / "wrong.zip", {DSPRITES_NAME: b"text"})
    with raises_file_error(
        tmp_path / "wrong.zip.extracted" / DSPRITES_NAME, "not an .npz (zip) archive"
    ):
        DSprites(tmp_path / "wrong.zip", factor_sizes=SPRITES)
    # nothing half-written anywhere: no extraction directories, no temporary directories
    assert not [
        p for p in tmp_path.iterdir() if ".extracted" in p.name and p.name != "wrong.zip.extracted"
    ]


def test_a_crash_while_extracting_leaves_nothing(tmp_path, monkeypatch):
    archive = make_tar(tmp_path / "d.tar", {DSPRITES_NAME: npz_bytes()})

    def crash(source, destination, length=0):
        destination.write(source.read(100))
        raise OSError("disk full")

    monkeypatch.setattr(files.shutil, "copyfileobj", crash)
    with raises_file_error(
        archive, f"extracting its member '{DSPRITES_NAME}' failed (OSError: disk full)"
    ):
        DSprites(archive, factor_sizes=SPRITES)
    assert listing(tmp_path) == {"d.tar"}


# --- malicious archives: refused whole, nothing written
# ----------------------------------------------


def malicious(tmp_path: Path, outside: Path) -> dict[str, tuple[Path, str]]:
    """Archives each holding a good dSprites file and one member that escapes; (archive, that member)."""
    good = {DSPRITES_NAME: npz_bytes()}
    zip_link = zipfile.ZipInfo("link")
    zip_link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "zip-link.zip", "w") as archive:
        archive.writestr(DSPRITES_NAME, good[DSPRITES_NAME])
        archive.writestr(zip_link, str(outside))
    return {
        "dotdot": (make_zip(tmp_path / "dotdot.zip", {**good, "../evil.npz": b"x"}), "../evil.npz"),
        "nested dotdot": (
            make_tar(tmp_path / "nested.tar.gz", {**good, "a/../../evil.npz": b"x"}),
            "a/../../evil.npz",
        ),
        "absolute": (
            make_tar(tmp_path / "absolute.tar", {**good, str(outside / "x"): b"x"}),
            str(outside / "x"),
        ),
        "absolute zip": (
            make_zip(tmp_path / "absolute.zip", {**good, str(outside / "x"): b"x"}),
            str(outside / "x"),
        ),
        "symlink": (
            make_tar(
                tmp_path / "symlink.tgz",
                good,
                (tar_info("d/link", tarfile.SYMTYPE, "../../outside"),),
            ),
            "d/link",
        ),
        "absolute symlink": (
            make_tar(
                tmp_path / "abslink.tar", good, (tar_info("l", tarfile.SYMTYPE, str(outside)),)
            ),
            "l",
        ),
        "hardlink": (
            make_tar(
                tmp_path / "hardlink.tar", good, (tar_info("h", tarfile.LNKTYPE, "../outside/x"),)
            ),
            "h",
        ),
        "device": (
            make_tar(tmp_path / "device.tar", good, (tar_info("dev", tarfile.CHRTYPE),)),
            "dev",
        ),
        "zip symlink": (tmp_path / "zip-link.zip", "link"),
    }


def test_malicious_archives_are_refused_and_nothing_is_written(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "data"
    folder.mkdir()
    for case, (archive, member) in malicious(folder, outside).items():
        before = listing(tmp_path)
        with raises_file_error(archive, "refused: its member " + repr(member)) as error:
            DSprites(archive, factor_sizes=SPRITES)
        assert "outside" in str(error.value) or "device" in str(error.value), case
        assert listing(tmp_path) == before, case  # no extraction directory, nothing outside
        assert not (tmp_path / "evil.npz").exists() and not list(outside.iterdir()), case


def test_links_that_stay_inside_are_allowed(tmp_path):
    inside = (
        tar_info("data/alias.npz", tarfile.SYMTYPE, DSPRITES_NAME),
        tar_info("data/again.npz", tarfile.LNKTYPE, f"data/{DSPRITES_NAME}"),
    )
    archive = make_tar(
        tmp_path / "links.tar",
        {f"data/{DSPRITES_NAME}": npz_bytes(), "a/../b.txt": b"fine"},
        inside,
    )
    assert len(DSprites(archive, factor_sizes=SPRITES)) == 24


def test_a_symlink_or_foreign_file_at_the_extraction_directory_is_refused_and_nothing_written_there(
    tmp_path,
):
    archive = make_zip(tmp_path / "d.zip", {DSPRITES_NAME: npz_bytes()})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "d.zip.extracted").symlink_to(elsewhere)
    with raises_file_error(
        archive, "refused:", "d.zip.extracted, where it is extracted, is a symlink"
    ):
        DSprites(archive, factor_sizes=SPRITES)
    assert listing(elsewhere) == set()
    (tmp_path / "d.zip.extracted").unlink()
    (tmp_path / "d.zip.extracted").write_text("a file")
    with raises_file_error(archive, "is not a directory, not a directory disent made"):
        DSprites(archive, factor_sizes=SPRITES)


def test_a_planted_symlink_inside_the_extraction_is_replaced_not_followed(tmp_path):
    archive = make_zip(tmp_path / "d.zip", {DSPRITES_NAME: npz_bytes()})
    DSprites(archive, factor_sizes=SPRITES)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "d.zip.extracted" / DSPRITES_NAME
    target.unlink()
    target.symlink_to(victim)  # and the stamp still matches: the symlink must not be trusted
    assert len(DSprites(archive, factor_sizes=SPRITES)) == 24
    assert victim.read_text() == "precious" and not target.is_symlink()


def test_a_replaced_archive_is_extracted_again(tmp_path):
    make_zip(tmp_path / "d.zip", {DSPRITES_NAME: npz_bytes()})
    assert len(DSprites(tmp_path / "d.zip", factor_sizes=SPRITES)) == 24
    before = (tmp_path / "d.zip").stat()
    make_zip(tmp_path / "new.zip", {DSPRITES_NAME: npz_bytes(sizes=(3, 2, 1, 2, 1))})
    os.replace(tmp_path / "new.zip", tmp_path / "d.zip")
    # older, not newer
    os.utime(tmp_path / "d.zip", ns=(before.st_atime_ns, before.st_mtime_ns - 10**9))
    assert len(DSprites(tmp_path / "d.zip", factor_sizes=(3, 2, 1, 2, 1))) == 12


def test_safe_extract_and_resolve_directly(tmp_path):
    archive = make_tar(
        tmp_path / "x.tar.gz", {"deep/dir/a.bin": b"A", "b.bin": b"B", "c.bin": b"C"}
    )
    assert safe_extract(archive, tmp_path / "out", ["a.bin", "b.bin", "missing"]) == [
        "a.bin",
        "b.bin",
    ]
    assert (tmp_path / "out" / "a.bin").read_bytes() == b"A"
    assert listing(tmp_path / "out") == {"a.bin", "b.bin", STAMP}
    evil = make_zip(tmp_path / "evil.zip", {"../../evil": b"x"})
    with pytest.raises(
        DataFileError,
        match=f"cannot read the archive {re.escape(str(evil))}: refused: its member "
        f"'../../evil' would be written outside",
    ):
        safe_extract(evil, tmp_path / "out2", ["evil"])
    spec = files.DataFile("test file", ("b.bin",), "do something else")
    assert resolve_data_path(archive, spec) == tmp_path / "x.tar.gz.extracted" / "b.bin"
    assert resolve_data_path(tmp_path / "out", spec) == tmp_path / "out" / "b.bin"
    assert resolve_data_path(tmp_path / "out" / "a.bin", spec) == tmp_path / "out" / "a.bin"
