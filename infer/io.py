"""Saving runs and pictures: NetCDF files of the ArviZ ``DataTree`` and PNG figures, written
atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path, write_fn) -> Path:
    """Call ``write_fn(tmp_path)`` for a temporary file in ``path``'s folder, then rename it
    onto ``path``: an interrupted write never leaves a half-written file at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write_fn(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_png(figure, path, dpi: int = 100) -> Path:
    """Write a matplotlib ``figure`` to ``path`` as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    try:
        return write_atomically(path, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi))
    finally:
        plt.close(figure)


def save_netcdf(tree, path) -> Path:
    """Write an xarray ``DataTree`` to ``path`` (NetCDF 4 through h5netcdf), atomically."""
    return write_atomically(path, lambda tmp: tree.to_netcdf(tmp, engine="h5netcdf"))
