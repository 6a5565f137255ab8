"""Saving runs and pictures: NetCDF files of the ArviZ ``DataTree`` and PNG figures, written
atomically."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path


def file_path(path, argument: str = "path") -> Path:
    """``path`` as a :class:`Path` to a file, ``~`` expanded (a folder literally named ``~``
    is never made). Raises TypeError for what is not a path, ValueError for an empty one, a
    folder, or one under a file."""
    path = expanded_path(path, argument, "file", "run.nc")
    if path.is_dir():
        raise ValueError(f"{argument}={str(path)!r} is a folder; give a file path inside it.")
    return path


def expanded_path(path, argument: str, kind: str, example: str) -> Path:
    """``path`` (a ``kind`` path: "file" or "folder") as a :class:`Path` with ``~`` expanded,
    or a TypeError (not a path) or ValueError (empty, or under a file) naming ``argument``."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"{argument} must be a {kind} path (str or Path); got {type(path).__name__}."
        )
    if str(path).strip() == "":
        raise ValueError(f"{argument} is empty; give a {kind} path such as {example!r}.")
    path = Path(path).expanduser()
    above = file_above(path)
    if above is not None:
        raise ValueError(
            f"{argument}={str(path)!r} lies under {str(above)!r}, which is a file, not a folder."
        )
    return path


def folder_path(path, argument: str, example: str = "run.zarr") -> Path:
    """``path`` as a :class:`Path` to a folder that can be made or written, ``~`` expanded,
    checked before a run starts. Raises TypeError for what is not a path, ValueError for an
    empty one or one under a file, PermissionError for one whose nearest existing folder this
    user cannot write to."""
    path = expanded_path(path, argument, "folder", example)
    _check_writable(path, f"{argument}={str(path)!r}")
    return path


def _check_writable(path: Path, what: str) -> None:
    """A PermissionError, naming ``what``, when the nearest existing folder at or above
    ``path`` cannot be written by this user."""
    existing = path if path.exists() else next((p for p in path.parents if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK):
        raise PermissionError(
            f"{what}: {str(existing)!r} cannot be written by this user; choose a path in a "
            "folder you can write to."
        )


def file_above(path) -> Path | None:
    """The nearest existing path above ``path`` when it is a file, so that nothing can be made
    under it; ``None`` when it is a folder (or nothing above exists)."""
    above = next((p for p in Path(path).parents if p.exists()), None)
    return above if above is not None and not above.is_dir() else None


def write_atomically(path, write_fn) -> Path:
    """Call ``write_fn(tmp_path)`` for a temporary file in ``path``'s folder, then rename it
    onto ``path``: an interrupted write never leaves a half-written file at ``path``, and the
    file's bytes reach the disk before the rename (and the rename before the return), so a
    power cut leaves the old file or the new one. The path is checked by :func:`file_path`
    (``~`` expanded); missing folders are made."""
    path = file_path(path)
    _check_writable(path.parent, f"cannot write {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write_fn(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        _to_disk(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _to_disk(path.parent)  # the rename itself
    return path


def _to_disk(path) -> None:
    """``fsync`` a file (an error is raised) or a folder's entries (where the file system
    refuses it for a folder, the rename is left to the system to write)."""
    if os.path.isfile(path):
        with open(path, "rb") as written:
            os.fsync(written.fileno())
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def png_path(path, argument: str = "path") -> Path:
    """``path`` as a :class:`Path` to a PNG file (see :func:`file_path`), or a TypeError or
    ValueError naming ``argument``: a PNG's path must end in ``.png``."""
    path = file_path(path, argument)
    if path.suffix.lower() != ".png":
        raise ValueError(
            f"{argument}={str(path)!r}: figures are written as PNG, so the path must end in "
            f".png (got {path.suffix or 'no suffix'!r}). Convert the PNG, or save the figure "
            "yourself with matplotlib for other formats."
        )
    return path


def save_png(figure, path, dpi: int = 100) -> Path:
    """Write a matplotlib ``figure`` to ``path`` as PNG, atomically, and close it. A path
    with another suffix (``.pdf``, ``.svg``) is refused rather than filled with PNG bytes."""
    import matplotlib.pyplot as plt

    try:  # closed whatever happens, a refused path included
        path = png_path(path)
        return write_atomically(path, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi))
    finally:
        plt.close(figure)


def save_netcdf(tree, path) -> Path:
    """Write an xarray ``DataTree`` to ``path`` (NetCDF 4 through h5netcdf), atomically,
    after checking that its folder has room for the tree's arrays: h5netcdf, failing to
    write on a full disk, can crash the interpreter when it closes the file (a segmentation
    fault in its flush), taking every result in memory with it."""

    def write(tmp):
        need = sum(node.dataset.nbytes for node in tree.subtree)
        free = shutil.disk_usage(Path(tmp).parent).free
        if need > free:
            raise OSError(
                errno.ENOSPC,
                f"not enough space to save {str(file_path(path))!r}: its arrays take "
                f"{need / 2**20:,.1f} MiB and {free / 2**20:,.1f} MiB are free. Free some "
                "space or save it elsewhere; nothing was written",
            )
        tree.to_netcdf(tmp, engine="h5netcdf")

    return write_atomically(path, write)


def unwritable_folder(
    folder: Path, command: str = "infer", keep: bool = True, option: str = "--out"
) -> str | None:
    """Why a report cannot be written into ``folder`` (made if missing), or None: checked
    before any sampling, so that a bad ``--out`` costs nothing. ``command`` begins the
    message (``infer compare``), ``option`` names the folder's. ``keep=False`` removes the
    folders the check made (for a command that may still refuse its other options)."""
    folder = Path(folder).expanduser()
    made = []  # the levels this check made (not one another process made meanwhile)
    try:
        for level in reversed([p for p in (folder, *folder.parents) if not p.exists()]):
            with contextlib.suppress(FileExistsError):
                os.mkdir(level)
                made.insert(0, level)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        files = [p for p in (folder, *folder.parents) if p.is_file()]
        why = f"{files[0]} is a file" if files else err.strerror or err
        return f"{command}: error: {option}: cannot write the report into {folder}: {why}."
    finally:
        for path in made if not keep else ():  # deepest first; only empty ones it made
            with contextlib.suppress(OSError):
                path.rmdir()
    return None
