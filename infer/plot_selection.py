"""What :func:`infer.plot` draws: its arguments checked, the scalar components it shows
(the first ones in row-major order), and the title's notes about what it leaves out or
cannot show (NaN draws, components that never change, chains that never move)."""

from __future__ import annotations

import math

import numpy as np

from infer import validation
from infer.io import png_path
from infer.named_results import by_name
from infer.result import Result
from infer.target import GroundTruth

#: The most scalar components a pair plot shows (a grid of more is unreadable).
PAIR_MAX = 6


def checked_path(path) -> None:
    """Refuse a ``path`` that cannot take a PNG, before anything is drawn."""
    if path is not None:
        png_path(path)


def checked(results, kind: str, var_names, max_panels, truth) -> tuple[dict, list | None]:
    """``results`` as a dict of runs and ``var_names`` as a list of names that every run has
    (for ``"ppc"``: observed variables of its posterior predictive), with the other arguments
    checked, each error naming its argument."""
    results = by_name(results)
    if isinstance(results, dict) and not results:
        raise ValueError("results is empty: pass an infer.Result or a dict of name -> Result.")
    if not isinstance(results, dict):
        raise TypeError(
            "results must be an infer.Result, a list of them or a dict of name -> infer.Result; "
            f"got {type(results).__name__}."
        )
    wrong = {name: type(r).__name__ for name, r in results.items() if not isinstance(r, Result)}
    if wrong:
        raise TypeError(f"results must map names to infer.Result; got {wrong}.")
    validation.positive_int("max_panels", max_panels)
    if truth is not None and not isinstance(truth, GroundTruth):
        raise TypeError(f"truth must be an infer.GroundTruth; got {type(truth).__name__}.")
    if truth is not None and kind != "forest":
        raise ValueError(
            f"truth= marks the known answer in a forest plot (kind='forest'); kind={kind!r} "
            "does not draw it. Leave truth out, or plot kind='forest'."
        )
    shared = shared_variables(results)
    if not shared:
        held = "; ".join(
            f"{run}: " + ", ".join(f"{k} {np.shape(v)[2:]}" for k, v in r.draws.items())
            for run, r in results.items()
        )
        raise ValueError(
            f"the runs share no variable of one shape ({held}): plot runs of models with "
            "parameters in common, or each run on its own."
        )
    first = next(iter(results.values()))
    if kind == "ppc" and "posterior_predictive" not in first.groups:
        raise ValueError(
            "kind='ppc' needs a posterior_predictive group: call infer.predictive(result, "
            "target) first (NumPyro targets)."
        )
    if var_names is None:
        return results, None
    var_names = _names(var_names)
    if kind == "ppc":
        shared = list(first.groups.get("posterior_predictive", {}))
    missing = [name for name in var_names if name not in shared]
    if not var_names:
        raise ValueError(f"var_names is empty; choose from {shared} (or leave it out).")
    if missing:
        runs = "every run has (with one shape)" if len(results) > 1 else "the run has"
        what = "observed variables with predictive draws" if kind == "ppc" else "variables"
        raise ValueError(f"var_names {missing} are not {what} {runs}; choose from {shared}.")
    return results, var_names


def _names(var_names) -> list[str]:
    """``var_names`` as a list of distinct str, or an error saying what was expected."""
    if isinstance(var_names, str):
        return [var_names]
    if not isinstance(var_names, list | tuple):
        raise TypeError(
            f"var_names must be a str or a list/tuple of str; got {type(var_names).__name__} "
            f"({var_names!r})."
        )
    odd = [name for name in var_names if not isinstance(name, str)]
    if odd:
        raise TypeError(f"var_names must be a str or a list/tuple of str; it holds {odd!r}.")
    repeated = sorted({name for name in var_names if var_names.count(name) > 1})
    if repeated:
        raise ValueError(f"var_names repeats {repeated}: name each variable once.")
    return list(var_names)


def shared_variables(results: dict) -> list[str]:
    """The names of the draws every run has with the same shape after ``(chain, draw)``, in
    the first run's order (runs of different models share ``mu``, not ``x`` of 1 and 2)."""
    first = next(iter(results.values()))
    return [
        name
        for name in first.draws
        if all(
            name in r.draws and np.shape(r.draws[name])[2:] == np.shape(first.draws[name])[2:]
            for r in results.values()
        )
    ]


def row_major_prefix(sizes, budget: int) -> list[list[int]]:
    """Per axis of an array of shape ``sizes``, the indices that select its first components
    in row-major order (``w[0,0], w[0,1], ...``), at most ``budget`` and at least one: as
    many whole trailing blocks as fit, as one rectangle ArviZ's coords can express."""
    keep = [[0] for _ in sizes]
    block = 1
    for axis in range(len(sizes) - 1, -1, -1):
        if block * sizes[axis] <= budget:
            keep[axis] = list(range(sizes[axis]))
            block *= sizes[axis]
        else:
            keep[axis] = list(range(max(1, budget // block)))
            break
    return keep


def selection(result: Result, max_panels: int, allowed) -> tuple[list[str], dict]:
    """Variable names (among ``allowed``) and coords (dim -> indices kept) that keep at most
    ``max_panels`` scalar panels: each variable's first components in row-major order, in
    the variables' order. A plate shared with an earlier variable keeps that one's cut."""
    names, coords, left = [], {}, max_panels
    for name, values in result.draws.items():
        if name not in allowed:
            continue
        if left <= 0:
            break
        dims, sizes = result.dim_names(name), values.shape[2:]
        wanted = zip(dims, row_major_prefix(sizes, left), strict=True)
        chosen = {dim: coords.get(dim, keep) for dim, keep in wanted}
        count = math.prod(len(keep) for keep in chosen.values())
        if count > left:  # its plate was cut wider for an earlier one
            continue
        names.append(name)
        coords.update(chosen)
        left -= count
    return names, coords


def named_selection(result: Result, var_names: list, max_panels: int) -> tuple[list, dict]:
    """Every variable of ``var_names``, in that order, with coords that show at most about
    ``max_panels`` components in all (at least one of each): each its first ones in row-major
    order, the panels shared out evenly, and those a small variable leaves given to the
    others, the earlier ones first. A dimension shared by variables shows the most any asks."""
    coords: dict = {}

    def size(index: int) -> tuple:  # the smallest first; of equal ones, the later first
        return math.prod(result.draws[var_names[index]].shape[2:]), -index

    left = max_panels
    for done, index in enumerate(sorted(range(len(var_names)), key=size)):
        name = var_names[index]
        share = max(1, left // (len(var_names) - done))
        prefix = row_major_prefix(result.draws[name].shape[2:], share)
        left -= math.prod(len(keep) for keep in prefix)
        for dim, keep in zip(result.dim_names(name), prefix, strict=True):
            if len(keep) > len(coords.get(dim, ())):
                coords[dim] = keep
    return list(var_names), coords


def num_components(result: Result, names=None, coords=None) -> int:
    """The scalar components of ``result``'s draws ``names`` (default all) that ``coords``
    (dim -> the indices kept) select."""
    coords = coords or {}
    total = 0
    for name in result.draws if names is None else names:
        shape = np.shape(result.draws[name])[2:]
        dims = zip(result.dim_names(name), shape, strict=True)
        kept = [len(coords.get(dim, range(size))) for dim, size in dims]
        total += math.prod(kept)
    return total


def cut_note(results: dict, kind: str, var_names, names: list, coords: dict) -> str:
    """A title's note when the selection (``names``, ``coords``) leaves out scalar components
    of the variables asked for (``var_names``, or by default those every run has): ``""``
    when it shows them all, so that a cut plot does not pass for the whole posterior."""
    result = next(iter(results.values()))
    candidates = shared_variables(results) if var_names is None else var_names
    total = num_components(result, [name for name in result.draws if name in candidates])
    shown = num_components(result, names, coords)
    if shown >= total:
        return ""
    how = (
        f"a pair plot shows at most {PAIR_MAX}: max_panels= (up to {PAIR_MAX}) or var_names= "
        "to choose them"
        if kind == "pair"
        else "max_panels= or var_names= for others"
    )
    return f"\n(the first {shown} of {total} components: {how})"


def odd_note(results: dict, kind: str, names: list, coords: dict) -> str:
    """A title's note naming the plotted variables with NaN or inf draws, with a plotted component
    (``coords``) that never changes, or with a chain that never moves in one, whose panels
    mislead (empty densities, tied ranks, an ESS equal to the number of draws): ``""`` when
    there are none."""
    nan, infinite, constant, stuck = {}, {}, {}, {}
    for result in results.values():
        for name in names:
            if name not in result.draws:
                continue
            values = np.asarray(result.draws[name])
            for axis, dim in enumerate(result.dim_names(name), start=2):
                if dim in coords:  # only the components the figure shows
                    values = np.take(values, coords[dim], axis=axis)
            flat = values.reshape(values.shape[0], values.shape[1], -1)
            if np.issubdtype(flat.dtype, np.floating) and np.isnan(flat).any():
                nan[name] = True
            if np.issubdtype(flat.dtype, np.floating) and np.isinf(flat).any():
                infinite[name] = True
            frozen = (flat == flat[:, :1]).all(axis=1)  # (chain, component)
            same = (flat[:, 0] == flat[0, 0]).all(axis=0)  # every chain at one value
            if (frozen.all(axis=0) & same).any():
                constant[name] = True
            if (frozen.any(axis=0) & ~(frozen.all(axis=0) & same)).any():
                stuck[name] = True
    parts = [f"NaN draws in {', '.join(nan)}: its ESS and R-hat are NaN"] if nan else []
    if infinite:  # matplotlib leaves them out of every line and density without a word
        parts.append(f"inf draws in {', '.join(infinite)}: not drawn; its MCSE is NaN")
    if constant:
        ties = "; its ranks all tie: the p-value means nothing" if kind == "rank" else ""
        parts.append(
            f"{', '.join(constant)}: a component never changes (no density; ESS: every draw{ties})"
        )
    if stuck:
        parts.append(f"{', '.join(stuck)}: a chain never moves (no density for that chain)")
    return f"\n({'; '.join(parts)})" if parts else ""
