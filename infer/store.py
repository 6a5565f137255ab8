"""Draws that outgrow memory: a run that writes its draws to disk chunk by chunk.

``infer.sample(..., store="run.zarr")`` keeps no draw in memory beyond the chunk in flight:
each segment's draws are constrained, written into a Zarr store and dropped, so the device
holds one chunk and the host one chunk, whatever ``num_samples`` is. The store is an ArviZ
``DataTree`` on disk (groups ``posterior`` and ``sample_stats``, and for a target that has
them ``log_likelihood``, ``observed_data`` and ``constant_data``; the run's facts as root
attributes), opened lazily by :func:`open_store`. ``xarray.open_datatree(path,
engine="zarr")`` opens a finished store just as well, without the ``0, 1, ...`` index
coordinates :func:`open_store` adds (ArviZ's plots select by them); on an unfinished one it
shows the arrays at their full length, where unwritten floats read NaN but unwritten
integers and flags (``tree_depth``, ``diverging``) read 0 and False, like real values: open
those with :func:`open_store`, which cuts them to the draws written.

Why Zarr (through ``zarr`` and ``xarray``) and not NetCDF appended by chunk: Zarr writes every
chunk and every metadata file to a temporary name and renames it into place, so a run killed
at any moment leaves a store that opens; an HDF5 file killed while it grows can be left
unreadable. The arrays are made at their full length up front (unwritten chunks take no disk
space) and the root attribute ``draws_written`` says how many draws are complete: a killed
run's store opens, and :func:`open_store` shows exactly the finished chunks.
"""

from __future__ import annotations

import json
import uuid
import warnings
import weakref
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from infer import validation
from infer.caller import INFER_FRAMES
from infer.io import expanded_path, folder_path

FORMAT = "infer.store/1"
#: The root attribute that keeps each group's variable names in the order the run made them.
ORDER_ATTR = "variable_order"

#: The group of the unconstrained positions, written for a run with a stopping rule.
UNCONSTRAINED = "unconstrained_posterior"

#: Groups without draws, written once (the data of a NumPyro target).
DATA_GROUPS = ("observed_data", "constant_data")


def _dims(name: str, shape: tuple, named=()) -> tuple:
    """``(chain, draw, ...)``: the names given in ``named``, then ArviZ's defaults."""
    rest = [named[i] if i < len(named) else f"{name}_dim_{i}" for i in range(len(shape) - 2)]
    return ("chain", "draw", *rest)


#: store path -> weak references to the results whose draws are read from it
_READERS: dict = {}


def reads_from(path: Path, result) -> None:
    """Note that ``result`` reads its draws from the store at ``path``: when a later run
    replaces that store, ``result.forget_store(message)`` is called."""
    _READERS.setdefault(Path(path), []).append(weakref.ref(result))


class StoreArrays(dict):
    """Name -> a store's Zarr arrays (read lazily), that check, whenever they are handed
    out, that the store still holds the run that made them: another process may have
    replaced it (``overwrite=True``) or deleted it, which ``reads_from`` cannot see, and
    the arrays would then read that run's draws, or NaN, without a word."""

    def __init__(self, arrays: dict, path: Path, run_id: str):
        super().__init__(arrays)
        self.path, self.run_id = Path(path).absolute(), run_id  # whatever the cwd is later

    def check(self) -> None:
        """A ``ValueError`` when the store at :attr:`path` no longer holds this run."""
        try:
            attrs = json.loads((self.path / "zarr.json").read_text()).get("attributes", {})
        except (OSError, ValueError):
            attrs = None
        if attrs is None or attrs.get("run_id") != self.run_id:
            what = "is gone (deleted?)" if attrs is None else "holds another run's draws now"
            raise ValueError(
                f"this result's draws were read from the store {str(self.path)!r}, which "
                f"{what}: they are not there any more. Save a result (result.save) while its "
                "store holds it, or give each run its own store."
            )

    def __getitem__(self, name):
        self.check()
        return super().__getitem__(name)

    def items(self):
        self.check()
        return super().items()

    def values(self):
        self.check()
        return super().values()


class Gone(Mapping):
    """What a result's draws and statistics become when their store is replaced by another
    run's: reading them raises ``ValueError(message)`` (the zarr arrays it held would read
    the new run's files with the old run's shapes)."""

    def __init__(self, message: str):
        self.message = message

    def __getitem__(self, name):
        raise ValueError(self.message)

    def __iter__(self):
        raise ValueError(self.message)

    def __len__(self):
        raise ValueError(self.message)


class ZarrStore:
    """Writes a run's draws and statistics into a Zarr store at ``path``.

    Args:
        path: the store (a folder, conventionally ending in ``.zarr``; ``~`` is the home
            folder); it must not exist yet (or be an empty folder), or hold a store that
            ``overwrite`` allows replacing. One store holds one run: given to a second run,
            it is replaced by that run with ``overwrite`` (a result of the first run, which read
            its draws from the store, then says they are gone), and refused without.
        overwrite: replace an existing store that ``infer.sample`` wrote. Nothing else is
            ever replaced: a file, or a folder that holds anything but such a store, is
            refused whatever ``overwrite`` says.
    """

    def __init__(self, path, overwrite: bool = False):
        # absolute: the result reads its arrays lazily, whatever the working folder is then
        self.path = folder_path(path, "store").absolute()
        overwrite = validation.flag("overwrite", overwrite)  # "False" would replace a store
        _check_path(self.path, overwrite)
        self.overwrite = overwrite
        self.written = 0
        self.group = None

    def open(
        self, groups: dict, num_chains: int, max_draws: int, chunk: int, attrs: dict, dims=None
    ):
        """Create the arrays, ``max_draws`` long, of every group: ``groups`` maps a group's
        name (``"posterior"``, ``"sample_stats"``, ...) to one chunk's arrays, name ->
        ``(num_chains, k, ...)``, for their shapes and dtypes. ``dims``: name -> the names of
        its dimensions after ``(chain, draw)`` (the target's ``dims``)."""
        import zarr

        _check_path(self.path, self.overwrite)  # again: another run may have written since
        message = (
            f"this result's draws were read from the store {str(self.path)!r}, which a later "
            "run replaced (ZarrStore(..., overwrite=True)): they are not there any more. Save "
            "a result (result.save) before its store is replaced, or give each run its own."
        )
        for reader in _READERS.pop(self.path, []):
            if (result := reader()) is not None:
                result.forget_store(message)
        group = zarr.open_group(self.path, mode="w", zarr_format=3)
        # Zarr lists a group's arrays by name; the order the run made them in is kept here
        # (plots take their first panels in that order, as for a run in memory).
        order = {name: list(arrays) for name, arrays in groups.items()}
        group.attrs.update(
            {**attrs, "infer_store": FORMAT, "draws_written": 0, ORDER_ATTR: order}
            | {"run_id": uuid.uuid4().hex}  # what a result reading it checks (StoreArrays)
        )
        for group_name, arrays in groups.items():
            sub = group.create_group(group_name)
            # unconstrained positions can be shaped otherwise (a simplex loses an entry)
            named = {} if group_name == UNCONSTRAINED else (dims or {})
            for name, value in arrays.items():
                value = np.asarray(value)
                shape = (num_chains, max_draws, *value.shape[2:])
                fill = np.nan if np.issubdtype(value.dtype, np.floating) else 0
                sub.create_array(
                    name,
                    shape=shape,
                    chunks=(  # a zero-size axis still has a chunk of 1 (Zarr takes no 0)
                        num_chains,
                        max(1, min(chunk, max_draws)),
                        *(max(1, length) for length in value.shape[2:]),
                    ),
                    dtype=value.dtype,
                    fill_value=fill,
                    dimension_names=_dims(name, shape, named.get(name, ())),
                )
        self.group = group

    def append(self, groups: dict) -> None:
        """Write the next ``k`` draws of every array of every group (as for :meth:`open`),
        then count them as written."""
        count = next(iter(groups["sample_stats"].values())).shape[1]
        region = slice(self.written, self.written + count)
        for group_name, arrays in groups.items():
            for name, value in arrays.items():
                self.group[group_name][name][:, region] = np.asarray(value)
        self.written += count
        self.group.attrs["draws_written"] = self.written  # last: the chunk is complete

    def write_data(self, groups: dict, dims=None) -> None:
        """Write groups without draws (``observed_data``, ``constant_data``: name -> array),
        whole; ``dims`` as for :meth:`open`."""
        order = dict(self.group.attrs.get(ORDER_ATTR, {}))
        order.update({name: list(arrays) for name, arrays in groups.items()})
        self.group.attrs[ORDER_ATTR] = order
        for group_name, arrays in groups.items():
            sub = self.group.create_group(group_name)
            for name, value in arrays.items():
                value = np.asarray(value)
                named = (dims or {}).get(name, ())
                sub.create_array(
                    name,
                    shape=value.shape,
                    dtype=value.dtype,
                    dimension_names=_dims(name, (0, 0, *value.shape), named)[2:],
                )
                sub[name][...] = value

    def finish(self) -> None:
        """Cut every array with draws to the draws written."""
        for group_name, sub in self.group.groups():
            if group_name in DATA_GROUPS:
                continue
            for _, array in sub.arrays():
                array.resize((array.shape[0], self.written, *array.shape[2:]))

    def close(self, attrs: dict) -> None:
        """Record the run's facts (strings and numbers), mark the store complete, and
        consolidate its metadata into the root's, which xarray reads first (without it,
        ``xarray.open_datatree(path, engine="zarr")`` warns and lists every array)."""
        import zarr

        self.group.attrs.update({**attrs, "draws_written": self.written, "complete": True})
        with warnings.catch_warnings():  # zarr notes that Zarr 3's spec does not define it
            warnings.filterwarnings("ignore", message="Consolidated metadata is currently not")
            zarr.consolidate_metadata(str(self.path), zarr_format=3)

    def arrays(self) -> tuple[dict, dict]:
        """``(draws, stats)``: name -> the store's Zarr arrays (read lazily; ``np.asarray``
        loads one)."""
        return self.arrays_of("posterior"), self.arrays_of("sample_stats")

    def arrays_of(self, group_name: str) -> StoreArrays:
        """Name -> the Zarr arrays of one group (read lazily), in the order the run made
        them."""
        arrays = dict(self.group[group_name].arrays())
        ordered = {name: arrays[name] for name in _ordered(self.group.attrs, group_name, arrays)}
        return StoreArrays(ordered, self.path, self.group.attrs["run_id"])


def is_infer_store(path: Path) -> bool:
    """Whether the folder ``path`` is a store that ``infer.sample`` wrote (its root group's
    metadata, ``zarr.json``, carries the ``infer_store`` attribute)."""
    try:
        metadata = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return False
    attributes = metadata.get("attributes") if isinstance(metadata, dict) else None
    return isinstance(attributes, dict) and attributes.get("infer_store") == FORMAT


def _check_path(path: Path, overwrite: bool) -> None:
    """Refuse a store path whose contents writing there would destroy, unless it is an
    earlier store of infer's and ``overwrite`` is set."""
    given = str(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise ValueError(
            f"store={given!r} is a file; a store is a folder (e.g. {given + '.zarr'!r}): "
            "choose a new path."
        )
    if not any(path.iterdir()):
        return  # an empty folder: nothing to lose
    if not is_infer_store(path):
        raise ValueError(
            f"store={given!r} is a folder that holds other files, not a store written by "
            "infer.sample: choose a new path (overwrite=True replaces only infer's stores)."
        )
    if others := _not_of_the_store(path):
        raise ValueError(
            f"store={given!r} is a run's store but also holds {', '.join(others)}, which "
            "replacing the store would delete: move them out, or choose a new path."
        )
    if not overwrite:
        raise ValueError(
            f"store={given!r} holds a run's store already: choose a new path, or pass "
            f"infer.ZarrStore({given!r}, overwrite=True) to replace it."
        )


def _not_of_the_store(path: Path) -> list[str]:
    """The names in the store folder ``path`` that are not the store's: anything but its
    root metadata and its groups (folders with their own ``zarr.json``), sorted."""
    return sorted(
        entry.name
        for entry in path.iterdir()
        if entry.name != "zarr.json" and not (entry.is_dir() and (entry / "zarr.json").is_file())
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
        unconstrained: ``None``, or ``unconstrained(positions) -> dict`` of named
            unconstrained positions, which then go into the group ``unconstrained_posterior``
            (ArviZ's name), every parameter whatever ``keep`` says: what a stopping rule
            reads.
        dims: name -> dimension names after ``(chain, draw)``, or ``None``.
        loglik: ``None``, or ``loglik(positions) -> dict`` of pointwise log likelihoods
            ``(num_chains, k, *observation_shape)``, written as the group ``log_likelihood``.
        data_groups: groups without draws (``observed_data``, ``constant_data``), written
            with the first chunk.
    """

    def __init__(
        self,
        store: ZarrStore,
        constrain,
        stat_names,
        keep,
        max_draws,
        chunk,
        attrs,
        unconstrained=None,
        dims=None,
        loglik=None,
        data_groups=None,
    ):
        self.store, self.constrain, self.stat_names = store, constrain, stat_names
        self.keep, self.max_draws, self.chunk, self.attrs = keep, max_draws, chunk, attrs
        self.unconstrained, self.dims = unconstrained, dims
        self.loglik, self.data_groups = loglik, data_groups or {}

    def __call__(self, record) -> None:
        for positions, logdensity, infos in zip(
            record.positions, record.logdensity, record.infos, strict=True
        ):
            draws = {k: np.asarray(v) for k, v in self.constrain(positions).items()}
            if self.keep is not None:
                draws = {k: v for k, v in draws.items() if k in self.keep}
            groups = {"posterior": draws, "sample_stats": self.stat_names(infos, logdensity)}
            if self.unconstrained is not None:
                named = self.unconstrained(positions)
                groups[UNCONSTRAINED] = {k: np.asarray(v) for k, v in named.items()}
            loglik = None if self.loglik is None else self.loglik(positions)
            if loglik:  # a model with no observed site has none
                groups["log_likelihood"] = loglik
            if self.store.group is None:
                num_chains = np.asarray(logdensity).shape[0]
                self.store.open(
                    groups, num_chains, self.max_draws, self.chunk, self.attrs, self.dims
                )
                self.store.write_data(self.data_groups, self.dims)
            self.store.append(groups)
        record.positions, record.logdensity, record.infos = [], [], []


def as_store(store):
    """``None`` (draws in memory), or a :class:`ZarrStore` from a store or a path.

    Raises:
        TypeError: for anything else.
    """
    if store is None:
        return None
    if isinstance(store, ZarrStore):
        if store.group is None:
            return store
        if not store.overwrite:
            raise ValueError(
                f"this infer.ZarrStore({str(store.path)!r}) holds a run already: give each run "
                "its own store (a new path), or pass infer.ZarrStore(path, overwrite=True) to "
                "replace the store with the new run."
            )
        return ZarrStore(store.path, overwrite=True)  # a fresh writer over the old store
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

    path = expanded_path(path, "path", "folder", "run.zarr")
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
            skip_file_prefixes=INFER_FRAMES,
        )
    tree = tree.isel(draw=slice(0, written), missing_dims="ignore")
    tree = tree.map_over_datasets(_index_coordinates)
    for node in tree.subtree:  # each group's variables in the order the run made them
        if node.parent is not None:
            names = _ordered(tree.attrs, node.name, list(node.data_vars))
            node.dataset = node.to_dataset()[names]
    tree.attrs = {key: value for key, value in tree.attrs.items() if key != ORDER_ATTR}
    return tree


def _ordered(attrs, group_name: str, names) -> list:
    """``names`` of a group's arrays in the order the run made them (a store written before
    the order was recorded: as Zarr lists them)."""
    made = [name for name in attrs.get(ORDER_ATTR, {}).get(group_name, []) if name in names]
    return made + [name for name in names if name not in made]


def _index_coordinates(dataset):
    """Every dimension without a coordinate given ``0, 1, ...`` as one, as ArviZ's
    converters do (its plots select chains, draws and plate entries by coordinate)."""
    missing = [dim for dim in dataset.dims if dim not in dataset.coords]
    return dataset.assign_coords({dim: np.arange(dataset.sizes[dim]) for dim in missing})
