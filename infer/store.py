"""Draws that outgrow memory: a run that writes its draws to disk chunk by chunk.

``infer.sample(..., store="run.zarr")`` keeps no draw in memory beyond the chunk in flight:
each segment's draws are constrained, written into a Zarr store and dropped, so the device
holds one chunk and the host one chunk, whatever ``num_samples`` is. The store is an ArviZ
``DataTree`` on disk (groups ``posterior`` and ``sample_stats``, the run's facts as root
attributes), opened lazily by :func:`open_store` or by ``xarray.open_datatree(path,
engine="zarr")``.

Why Zarr (through ``zarr`` and ``xarray``) and not NetCDF appended by chunk: Zarr writes every
chunk and every metadata file to a temporary name and renames it into place, so a run killed
at any moment leaves a store that opens; an HDF5 file killed while it grows can be left
unreadable. The arrays are made at their full length up front (unwritten chunks take no disk
space) and the root attribute ``draws_written`` says how many draws are complete: a killed
run's store opens, and :func:`open_store` shows exactly the finished chunks.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

FORMAT = "infer.store/1"


def _dims(name: str, shape: tuple) -> tuple:
    return ("chain", "draw", *(f"{name}_dim_{i}" for i in range(len(shape) - 2)))


class ZarrStore:
    """Writes a run's draws and statistics into a Zarr store at ``path``.

    Args:
        path: the store (a folder, conventionally ending in ``.zarr``); it must not exist
            yet, or hold a store that ``overwrite`` allows replacing.
        overwrite: replace an existing store.
    """

    def __init__(self, path, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise ValueError(
                f"store={str(self.path)!r} exists already: choose a new path, or pass "
                f"infer.ZarrStore({str(self.path)!r}, overwrite=True) to replace it."
            )
        self.overwrite = overwrite
        self.written = 0
        self.group = None

    def open(
        self, draws: dict, stats: dict, num_chains: int, max_draws: int, chunk: int, attrs: dict
    ) -> None:
        """Create the arrays, ``max_draws`` long, from one chunk's ``draws`` and ``stats``
        (name -> ``(num_chains, k, ...)`` arrays, for the shapes and dtypes)."""
        import zarr

        group = zarr.open_group(self.path, mode="w", zarr_format=3)
        group.attrs.update({**attrs, "infer_store": FORMAT, "draws_written": 0})
        for group_name, arrays in (("posterior", draws), ("sample_stats", stats)):
            sub = group.create_group(group_name)
            for name, value in arrays.items():
                value = np.asarray(value)
                shape = (num_chains, max_draws, *value.shape[2:])
                fill = np.nan if np.issubdtype(value.dtype, np.floating) else 0
                sub.create_array(
                    name,
                    shape=shape,
                    chunks=(num_chains, max(1, min(chunk, max_draws)), *value.shape[2:]),
                    dtype=value.dtype,
                    fill_value=fill,
                    dimension_names=_dims(name, shape),
                )
        self.group = group

    def append(self, draws: dict, stats: dict) -> None:
        """Write the next ``k`` draws of every array, then count them as written."""
        count = next(iter(draws.values())).shape[1]
        region = slice(self.written, self.written + count)
        for group_name, arrays in (("posterior", draws), ("sample_stats", stats)):
            for name, value in arrays.items():
                self.group[group_name][name][:, region] = np.asarray(value)
        self.written += count
        self.group.attrs["draws_written"] = self.written  # last: the chunk is complete

    def finish(self) -> None:
        """Cut every array to the draws written."""
        for group_name in ("posterior", "sample_stats"):
            for _, array in self.group[group_name].arrays():
                array.resize((array.shape[0], self.written, *array.shape[2:]))

    def close(self, attrs: dict) -> None:
        """Record the run's facts (strings and numbers) and mark the store complete."""
        self.group.attrs.update({**attrs, "draws_written": self.written, "complete": True})

    def arrays(self) -> tuple[dict, dict]:
        """``(draws, stats)``: name -> the store's Zarr arrays (read lazily; ``np.asarray``
        loads one)."""
        return (
            dict(self.group["posterior"].arrays()),
            dict(self.group["sample_stats"].arrays()),
        )


class StoreWriter:
    """The runner's hook that moves each finished segment's draws from memory into a store.

    Args:
        store: the :class:`ZarrStore`.
        constrain: ``constrain(positions) -> dict`` of named constrained draws for
            unconstrained ``positions`` with leading axes ``(num_chains, k)``.
        stat_names: ``stat_names(infos, logdensity) -> dict`` (ArviZ's names).
        keep: the draw names to store, or ``None`` for all.
        max_draws, chunk, attrs: as for :meth:`ZarrStore.open`.
    """

    def __init__(self, store: ZarrStore, constrain, stat_names, keep, max_draws, chunk, attrs):
        self.store, self.constrain, self.stat_names = store, constrain, stat_names
        self.keep, self.max_draws, self.chunk, self.attrs = keep, max_draws, chunk, attrs

    def __call__(self, record) -> None:
        for positions, logdensity, infos in zip(
            record.positions, record.logdensity, record.infos, strict=True
        ):
            draws = {k: np.asarray(v) for k, v in self.constrain(positions).items()}
            if self.keep is not None:
                draws = {k: v for k, v in draws.items() if k in self.keep}
            stats = self.stat_names(infos, logdensity)
            if self.store.group is None:
                num_chains = np.asarray(logdensity).shape[0]
                self.store.open(draws, stats, num_chains, self.max_draws, self.chunk, self.attrs)
            self.store.append(draws, stats)
        record.positions, record.logdensity, record.infos = [], [], []


def as_store(store):
    """``None`` (draws in memory), or a :class:`ZarrStore` from a store or a path.

    Raises:
        TypeError: for anything else.
    """
    if store is None or store == "memory":
        return None
    if isinstance(store, ZarrStore):
        return store
    if isinstance(store, (str, Path)):
        return ZarrStore(store)
    raise TypeError(
        f"store must be None (draws in memory), a path for a Zarr store, or "
        f"infer.ZarrStore(path); got {type(store).__name__}."
    )


def open_store(path):
    """The run in a store written by ``infer.sample(..., store=path)`` as an ArviZ
    ``DataTree``, lazily, cut to the draws that were completely written (all of them for a
    finished run; the finished chunks of a run that was killed).

    Raises:
        FileNotFoundError, ValueError: no store there, or not one written by infer.
    """
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no store at {path}")
    not_ours = f"{path} is not a store written by infer.sample(..., store=...)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr's notes on consolidated metadata
            tree = xr.open_datatree(path, engine="zarr", consolidated=False)
    except Exception as err:  # zarr's GroupNotFoundError, a file, a checkpoint folder...
        raise ValueError(f"{not_ours} ({type(err).__name__}: {err}).") from err
    if tree.attrs.get("infer_store") != FORMAT:
        raise ValueError(f"{not_ours}.")
    written = int(tree.attrs["draws_written"])
    if not tree.attrs.get("complete"):
        warnings.warn(
            f"{path} holds an unfinished run (killed or still writing): its first {written} "
            "draws per chain, those completely written, are read.",
            UserWarning,
            stacklevel=2,
        )
    return tree.isel(draw=slice(0, written))
