"""Saving runs: NetCDF files of the ArviZ ``DataTree``, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


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


def save_netcdf(tree, path) -> Path:
    """Write an xarray ``DataTree`` to ``path`` (NetCDF 4 through h5netcdf), atomically."""
    return write_atomically(path, lambda tmp: tree.to_netcdf(tmp, engine="h5netcdf"))


def load(path):
    """Read a run written by :meth:`infer.Result.save`.

    Returns:
        The :class:`infer.Result`, with its draws, stats, timing, sampler settings, seed,
        counts, run facts and ground truth as they were saved.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if the file is truncated or not NetCDF, or is NetCDF but not written by
            infer.
    """
    import json

    import xarray as xr

    from infer.result import FORMAT, Result, truth_from_json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file at {path}")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            tree = tree.load()
    except Exception as err:  # h5py/h5netcdf raise many kinds for a damaged file
        raise ValueError(
            f"could not read {path}: it is truncated or not a NetCDF file "
            f"({type(err).__name__}: {err})"
        ) from err
    attrs = tree.attrs
    if attrs.get("infer_format") != FORMAT:
        raise ValueError(
            f"{path} is a NetCDF file but not a run saved by infer.Result.save (its "
            f"'infer_format' attribute is {attrs.get('infer_format')!r}, expected {FORMAT!r}). "
            "For draws made elsewhere, use infer.Result.from_draws."
        )
    children = set(tree.children)
    if "posterior" not in children:
        raise ValueError(f"{path} has no 'posterior' group: the file is incomplete.")

    def group(name):
        if name not in children:
            return {}
        dataset = tree[name].to_dataset()
        return {key: np.asarray(dataset[key].values) for key in dataset.data_vars}

    return Result(
        draws=group("posterior"),
        stats=group("sample_stats"),
        timing=json.loads(attrs["timing"]),
        num_logdensity_evals=int(attrs["num_logdensity_evals"]),
        num_grad_evals=int(attrs["num_grad_evals"]),
        sampler=str(attrs["sampler"]),
        settings=json.loads(attrs["sampler_settings"]),
        seed=json.loads(attrs["seed"]),
        target=str(attrs["target"]),
        num_warmup=int(attrs["num_warmup"]),
        thin=int(attrs["thin"]),
        info=json.loads(attrs["info"]),
        ground_truth=truth_from_json(str(attrs.get("ground_truth", ""))),
    )
