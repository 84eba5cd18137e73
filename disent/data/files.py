"""The original data files: finding them (also inside archives), extracting safely, one error type.

A loader describes what it reads with a `DataFile` (names, what to do instead), finds it with
`resolve_data_path` and reports every problem as a `DataFileError` naming the path:

    cannot read the dSprites file /x/y.npz: <reason>. Expected the original ...; set dataset.path=null ...

`path` may be the file itself, a directory holding it, or an archive (.zip, .tar, .tar.gz / .tgz,
.tar.bz2, .tar.xz) holding it anywhere inside: the file (and its companions, e.g. MNIST's labels
beside its images) is extracted flat into `<archive>.extracted/`, once. `safe_extract` refuses the
whole archive if any member would land outside that directory or is a device.

The extraction directory carries a stamp (`.stamp.json`: the archive's name, size and modification
time); it is reused only while the stamp matches the archive, so a replaced archive is extracted
again. A `<archive>.extracted` that is a symlink, not a directory, or owned by another user is
refused: disent writes only into a directory it made itself.
"""

import json
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# what reading a damaged file or archive raises (gzip.BadGzipFile is an OSError)
READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError)


class DataFileError(ValueError):
    """A data file or archive that is damaged, unsafe or not what the loader expects."""


class DataFileNotFoundError(DataFileError, FileNotFoundError):
    """A data file that is not there (both a DataFileError and a FileNotFoundError)."""


@dataclass(frozen=True)
class DataFile:
    """What a loader reads, for finding it and for error messages."""

    what: str  # e.g. "dSprites file": "cannot read the <what> <path>: ..."
    names: tuple[
        str, ...
    ] = ()  # the file's usual names, preferred first: looked up in directories and archives
    hint: str = ""  # what to do instead; ends every message
    companions: tuple[
        str, ...
    ] = ()  # files read beside it, extracted from an archive along with it

    def error(
        self, path: str | os.PathLike, reason: str, cls: type[DataFileError] = DataFileError
    ) -> DataFileError:
        """The error to raise for `path`, e.g. `raise spec.error(path, "truncated")`."""
        hint = f" {self.hint}." if self.hint else ""
        return cls(f"cannot read the {self.what} {os.fspath(path)}: {reason}.{hint}")


ARCHIVE = DataFile("archive")
STAMP = ".stamp.json"  # in an extraction directory: which archive (name, size, mtime) it was extracted from


def is_archive(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(ARCHIVE_SUFFIXES)


def resolve_data_path(path: str | os.PathLike, spec: DataFile) -> Path:
    """The file to read for `path`: the file itself, the first of `spec.names` in a directory, or that
    file extracted from an archive into `<archive>.extracted/` (reused while not older than the
    archive)."""
    path = Path(path).expanduser()
    names = " or ".join(spec.names)
    if path.is_dir():
        found = next((path / name for name in spec.names if (path / name).is_file()), None)
        if found is None:
            raise spec.error(path, f"this directory holds no {names}", DataFileNotFoundError)
        return found
    if not path.is_file():
        raise spec.error(path, "no such file or directory", DataFileNotFoundError)
    if not is_archive(path):
        return path
    target = path.with_name(path.name + ".extracted")
    if _extraction_dir(target, path, spec) and _stamp_of(target) == _stamp(path):
        for name in spec.names:
            if (target / name).is_file() and not (target / name).is_symlink():
                return target / name
    extracted = safe_extract(path, target, spec.names + spec.companions, spec)
    found = next((target / name for name in spec.names if name in extracted), None)
    if found is None:
        raise spec.error(path, f"the archive holds no {names}", DataFileNotFoundError)
    return found


def _stamp(archive: Path) -> dict:
    """What identifies an archive's contents cheaply: a replaced or rewritten archive changes size or mtime."""
    status = archive.stat()
    return {"archive": archive.name, "size": status.st_size, "mtime_ns": status.st_mtime_ns}


def _stamp_of(target: Path) -> dict | None:
    try:
        return json.loads((target / STAMP).read_text())
    except (OSError, ValueError):
        return None


def _extraction_dir(target: Path, archive: Path, spec: DataFile) -> bool:
    """Whether the extraction directory `target` exists; a DataFileError when it is there but is not a
    real directory of this user's (a symlink could send the extracted file anywhere)."""
    try:
        status = target.lstat()
    except FileNotFoundError:
        return False
    if (
        stat.S_ISLNK(status.st_mode)
        or not stat.S_ISDIR(status.st_mode)
        or status.st_uid != os.geteuid()
    ):
        what = "a directory owned by another user"
        if stat.S_ISLNK(status.st_mode):
            what = "a symlink"
        elif not stat.S_ISDIR(status.st_mode):
            what = "not a directory"
        raise spec.error(
            archive,
            f"refused: {target}, where it is extracted, is {what}, not a directory disent "
            f"made; remove {target} (or extract the archive yourself and point dataset.path at the file)",
        )
    return True


class _Member(NamedTuple):
    name: str
    kind: str  # "file", "dir", "symlink", "hardlink" or "special" (device, FIFO)
    link: str  # a link's target
    ref: object  # the ZipInfo / TarInfo, to open it


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member:
    mode = info.external_attr >> 16  # unix mode, when the zip was made on unix
    if info.is_dir():
        return _Member(info.filename, "dir", "", info)
    if stat.S_ISLNK(mode):  # zipfile extracts a link as a file holding its target: check it anyway
        return _Member(info.filename, "symlink", archive.read(info).decode(errors="replace"), info)
    return _Member(
        info.filename,
        "file" if not stat.S_IFMT(mode) or stat.S_ISREG(mode) else "special",
        "",
        info,
    )


def _tar_member(info: tarfile.TarInfo) -> _Member:
    kinds = {
        "file": info.isreg(),
        "dir": info.isdir(),
        "symlink": info.issym(),
        "hardlink": info.islnk(),
    }
    kind = next((name for name, holds in kinds.items() if holds), "special")
    return _Member(info.name, kind, info.linkname, info)


@contextmanager
def _open_archive(archive: Path) -> Iterator[tuple[list[_Member], Callable[[object], IO[bytes]]]]:
    """(members, open a member for reading) of a zip or tar archive."""
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as opened:
            yield [_zip_member(opened, info) for info in opened.infolist()], opened.open
    else:
        with tarfile.open(archive, "r:*") as opened:
            yield [_tar_member(info) for info in opened.getmembers()], opened.extractfile


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _unsafe(member: _Member, root: str) -> str | None:
    """Why `member` must not be extracted into the directory `root` (absolute, normalised), or None."""
    # an absolute name replaces root
    destination = os.path.normpath(os.path.join(root, member.name))
    if not _inside(destination, root):
        return f"refused: its member {member.name!r} would be written outside {root}"
    if member.kind == "special":
        return f"refused: its member {member.name!r} is a device or FIFO, not a file"
    # a symlink is relative to its directory, a hard link to the root
    if member.kind in ("symlink", "hardlink"):
        base = os.path.dirname(destination) if member.kind == "symlink" else root
        if not _inside(os.path.normpath(os.path.join(base, member.link)), root):
            return f"refused: its member {member.name!r} links to {member.link!r}, outside {root}"
    return None


def safe_extract(
    archive: str | os.PathLike,
    target: str | os.PathLike,
    names: Sequence[str],
    spec: DataFile = ARCHIVE,
) -> list[str]:
    """Extract the first regular file named each of `names` (base name, anywhere in the archive) into
    `target`, flat; return the names extracted. Refuses (DataFileError) the whole archive if any
    member would land outside `target` (absolute path, `..`, a link pointing out) or is a device or
    FIFO.

    Files are written into a temporary directory beside `target` and then renamed into place, so a
    crash leaves no half-written file in `target`; existing files of the same names are replaced.
    """
    archive, target = Path(archive), Path(target)
    root = os.path.normpath(os.path.abspath(target))
    try:
        with _open_archive(archive) as (members, open_member):
            for member in members:
                reason = _unsafe(member, root)
                if reason:
                    raise spec.error(archive, reason)
            chosen: dict[str, _Member] = {}
            for member in members:
                name = os.path.basename(member.name.rstrip("/"))
                if member.kind == "file" and name in names and name not in chosen:
                    chosen[name] = member
            if chosen:
                _write(chosen, open_member, target, archive, spec)
    except DataFileError:
        raise
    except READ_ERRORS as error:
        raise spec.error(
            archive, f"not a readable archive ({type(error).__name__}: {error})"
        ) from error
    return list(chosen)


def _write(
    chosen: dict[str, _Member],
    open_member: Callable[[object], IO[bytes]],
    target: Path,
    archive: Path,
    spec: DataFile,
) -> None:
    """Copy the chosen members into a temporary directory, then rename it (or its files) to `target`."""
    try:
        temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as error:
        raise spec.error(
            archive,
            f"cannot extract it beside itself ({error}); extract "
            f"{' and '.join(chosen)} yourself and point dataset.path at the result",
        ) from error
    try:
        for name, member in chosen.items():
            try:
                with open_member(member.ref) as source, open(temporary / name, "wb") as destination:
                    shutil.copyfileobj(source, destination, 1 << 20)
                    destination.flush()
                    # whole on disk before the directory is renamed into place
                    os.fsync(destination.fileno())
            except READ_ERRORS as error:
                raise spec.error(
                    archive,
                    f"extracting its member {member.name!r} failed "
                    f"({type(error).__name__}: {error})",
                ) from error
        (temporary / STAMP).write_text(json.dumps(_stamp(archive)))
        try:
            exists = _extraction_dir(target, archive, spec)
            if not exists:
                temporary.rename(target)  # atomic: the directory appears whole or not at all
        except OSError:  # another process made it in the meantime: replace file by file, as below
            exists = _extraction_dir(target, archive, spec)
        if exists:  # an older extraction: replace its files (a rename replaces a planted symlink, never follows it)
            try:
                for name in [*chosen, STAMP]:  # the stamp last: it vouches for the files before it
                    os.replace(temporary / name, target / name)
            except OSError as error:
                raise spec.error(archive, f"cannot extract it into {target} ({error})") from error
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
