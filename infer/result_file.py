"""Reading a run back: :func:`load` of what :meth:`infer.Result.save` wrote (NetCDF)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from infer.io import file_path
from infer.result import EXTRA_GROUPS, FORMAT, Result
from infer.store import is_infer_store, open_store
from infer.target import GroundTruth


def truth_from_json(text: str) -> GroundTruth | None:
    """The inverse of the ``ground_truth`` attribute written by :meth:`Result.attrs`."""
    if not text:
        return None
    record = json.loads(text)

    def arrays(mapping):
        return None if mapping is None else {k: np.asarray(v) for k, v in mapping.items()}

    return GroundTruth(
        mean=arrays(record["mean"]),
        std=arrays(record["std"]),
        source=record["source"],
        mean_se=arrays(record["mean_se"]),
        std_se=arrays(record["std_se"]),
    )


def load(path) -> Result:
    """Read a run written by :meth:`infer.Result.save`, or the finished run in a store
    written by ``infer.sample(..., store=path)`` into memory (an unfinished run's store is
    refused: :func:`infer.open_store` reads its finished chunks).

    Returns:
        The :class:`infer.Result`, with its draws, stats, timing, sampler settings, seed,
        counts, run facts and ground truth as they were saved (its ``state`` is ``None``).

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if the file is truncated or not NetCDF, or is NetCDF but not written by
            infer.
    """
    if isinstance(path, str | Path) and is_infer_store(Path(path).expanduser()):
        path = Path(path).expanduser()
        with warnings.catch_warnings():  # an unfinished run's: refused below, with its reason
            warnings.simplefilter("ignore", UserWarning)
            tree = open_store(path)
        if not tree.attrs.get("complete"):
            raise ValueError(
                f"{path} holds an unfinished run (killed, or still writing): it has its "
                f"first {int(tree.attrs['draws_written'])} draws per chain but not the run's "
                "facts (timing, settings, counts) a Result holds. Read its draws with "
                "infer.open_store(path), an ArviZ DataTree, and compare them through "
                "infer.Result.from_draws; or finish the run from its checkpoint folder, if "
                "it had one (resume=)."
            )
        return _from_tree(tree.load(), path)
    path = file_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file at {path}")
    if path.suffix == ".npz" and path.name.startswith("checkpoint-"):
        raise ValueError(
            f"{path} is a checkpoint written by infer.sample(..., checkpoint=...), not a saved "
            f"result: infer.sample(..., resume={str(path.parent)!r}) returns its run."
        )
    import xarray as xr

    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            tree = tree.load()
    except Exception as err:  # h5py/h5netcdf raise many kinds for a damaged file
        raise ValueError(
            f"could not read {path}: it is truncated or not a NetCDF file "
            f"({type(err).__name__}: {err})"
        ) from err
    return _from_tree(tree, path)


def _from_tree(tree, path: Path) -> Result:
    """The result in ``tree``, read from ``path`` (a saved run's NetCDF or a store)."""
    attrs = tree.attrs
    written = str(attrs.get("infer_format", ""))
    if written.startswith("infer.Result/") and written != FORMAT:
        raise ValueError(
            f"{path} was saved by another version of infer (format {written!r}; this version "
            f"reads {FORMAT!r}). Load it with the version that wrote it (its 'versions' "
            f"attribute: {attrs.get('versions', 'not recorded')}), or read it as an ArviZ "
            "DataTree with xarray.open_datatree."
        )
    if written != FORMAT:
        raise ValueError(
            f"{path} is a NetCDF file but not a run saved by infer.Result.save (its "
            f"'infer_format' attribute is {attrs.get('infer_format')!r}, expected {FORMAT!r}). "
            "For draws made elsewhere, e.g. a DataTree ArviZ saved: tree = "
            "xarray.open_datatree(path); infer.Result.from_draws({name: "
            "tree['posterior'][name].values for name in tree['posterior'].data_vars})."
        )
    children = set(tree.children)
    if "posterior" not in children:
        raise ValueError(f"{path} has no 'posterior' group: the file is incomplete.")

    def group(name):
        if name not in children:
            return {}
        dataset = tree[name].to_dataset()
        return {key: np.asarray(dataset[key].values) for key in dataset.data_vars}

    # ArviZ's groups, and any other the file holds (a store's unconstrained_posterior, a
    # group of the user's): kept, so that a loaded result saved again loses none
    known = [name for name in EXTRA_GROUPS if name in children]
    others = sorted(children - {"posterior", "sample_stats", *EXTRA_GROUPS})
    extra = {name: group(name) for name in (*known, *others)}
    dims = {}
    for name in ("posterior", *extra):
        dataset, lead = tree[name].to_dataset(), 0 if "data" in name else 2
        for key in dataset.data_vars:  # the longest: a log likelihood may have fewer axes
            names = list(dataset[key].dims[lead:])
            dims[key] = max(dims.get(key, []), names, key=len)

    try:
        return _result(attrs, group, extra, dims)
    except (KeyError, ValueError, TypeError) as err:  # json's errors are ValueErrors
        what = (
            f"attribute {err} is missing"
            if isinstance(err, KeyError)
            else f"attributes cannot be read ({type(err).__name__}: {err})"
        )
        raise ValueError(
            f"{path} is damaged: the run's {what}. Its draws can still be read as an ArviZ "
            "DataTree with xarray.open_datatree."
        ) from err


def _result(attrs, group, extra, dims) -> Result:
    """The :class:`Result` from a saved file's attributes and groups."""
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
        groups=extra,
        dims={key: names for key, names in dims.items() if names},
        versions=json.loads(attrs["versions"]) if "versions" in attrs else None,
    )
