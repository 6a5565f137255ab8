"""Pictures of runs, drawn by ArviZ's plotting (``arviz_plots``, matplotlib backend).

``infer.plot(result, kind=...)`` makes one figure: ``"trace"`` (traces and marginals),
``"rank"`` (rank ECDFs per chain), ``"ess"`` (ESS as the draws accumulate),
``"autocorr"``, ``"pair"`` (divergences marked) and ``"elbo"`` (an ADVI fit's ELBO trace)
for one run; ``"forest"`` (every run's estimates of the same parameters, with the ground truth
marked) and ``"dist"`` (every run's marginal densities overlaid, e.g. ADVI against NUTS) for
several.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from infer import validation
from infer.flag_rules import MIN_DRAWS
from infer.io import save_png as save_png_figure
from infer.result import Result, by_name
from infer.statistics import TAIL_PROB
from infer.target import GroundTruth

#: The forest plot's inner and outer credible intervals (its caption says them).
FOREST_PROBS = (0.5, 0.94)
KINDS = ("trace", "rank", "ess", "autocorr", "pair", "forest", "dist", "elbo", "ppc")
SEVERAL = ("forest", "dist")  # kinds that take a dict of runs

CAPTIONS = {
    "trace": "draws per chain (right), each chain's density (left)",
    "rank": "each chain's rank ECDF minus the uniform's; small p-values mean the chains disagree",
    "ess": "ESS as the draws accumulate (blue: bulk, orange: tail at 5%/95%); dash-dot: 400",
    "autocorr": "autocorrelation of each chain by lag",
    "pair": "pairs of parameters",
    "forest": "posterior means with 50% and 94% intervals",
    "dist": "marginal densities of each run's draws, overlaid",
    "elbo": "ELBO estimate per step (grey) and its running mean over 1% of the steps",
    "ppc": "observed data (black) against data simulated from the posterior (posterior predictive)",
}


def _checked(results, var_names, max_panels, truth) -> tuple[dict, list | None]:
    """``results`` as a dict of runs and ``var_names`` as a list of names that every run has,
    with the other arguments checked, each error naming its argument."""
    results = by_name(results)
    if isinstance(results, dict) and not results:
        raise ValueError("results is empty: pass an infer.Result or a dict of name -> Result.")
    if not isinstance(results, dict):
        raise TypeError(
            "results must be an infer.Result, a list of them or a dict of name -> infer.Result."
        )
    wrong = {name: type(r).__name__ for name, r in results.items() if not isinstance(r, Result)}
    if wrong:
        raise TypeError(f"results must map names to infer.Result; got {wrong}.")
    validation.positive_int("max_panels", max_panels)
    if truth is not None and not isinstance(truth, GroundTruth):
        raise TypeError(f"truth must be an infer.GroundTruth; got {type(truth).__name__}.")
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
    if var_names is None:
        return results, None
    var_names = [var_names] if isinstance(var_names, str) else list(var_names)
    missing = [name for name in var_names if name not in shared]
    if not var_names:
        raise ValueError(f"var_names is empty; choose from {shared} (or leave it out).")
    if missing:
        runs = "every run has (with one shape)" if len(results) > 1 else "the run has"
        raise ValueError(f"var_names {missing} are not variables {runs}; choose from {shared}.")
    return results, var_names


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


def _selection(result: Result, max_panels: int, allowed) -> tuple[list[str], dict]:
    """Variable names (among ``allowed``) and coords that keep at most ``max_panels`` scalar
    panels: the first elements of each variable, in order."""
    names, coords, left = [], {}, max_panels
    for name, values in result.draws.items():
        if name not in allowed:
            continue
        if left <= 0:
            break
        event_shape = values.shape[2:]
        if not event_shape:
            names.append(name)
            left -= 1
            continue
        first, *others = result.dim_names(name)  # a plate's name may be shared
        if len(coords.get(first, ())) > left:  # its plate was cut wider for an earlier one
            continue
        names.append(name)
        coords.setdefault(first, list(range(min(event_shape[0], left))))
        for other in others:
            coords.setdefault(other, [0])
        left -= len(coords[first])
    return names, coords


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


def _title(results: dict, kind: str, var_names, names: list, coords: dict, min_ess, truth) -> str:
    """The figure's title: the runs, their targets, what the kind shows, and what it leaves
    out."""
    first = next(iter(results.values()))
    label = ", ".join(results) if kind in SEVERAL else f"{first.sampler}"
    on = ", ".join(dict.fromkeys(r.target for r in results.values()))
    cut = "" if kind == "ppc" else _cut_note(results, var_names, names, coords)
    odd = "" if kind == "ppc" else _odd_note(results, names, coords)
    return f"{label} on {on}: {caption(kind, min_ess, marks(kind, results, truth))}{cut}{odd}"


def marks(kind: str, results: dict, truth=None) -> str:
    """What a plot of ``kind`` of ``results`` (name -> Result) draws beside its caption:
    divergences (trace, pair: when the run records them; "no divergences" when it has
    none), the known answer (forest)."""
    first = next(iter(results.values()))
    if kind in ("trace", "pair") and "diverging" in first.stats:
        if not np.any(first.stats["diverging"]):  # recorded, and none: said, not marked
            return "; no divergences"
        return "; black ticks: divergences" if kind == "trace" else "; divergences in orange"
    truth = _forest_truth(results, truth) if kind == "forest" else None
    if truth is not None and any(name in first.draws for name in truth.mean):
        return "; 'ground truth': the known answer"
    return ""


def _forest_truth(results: dict, truth):
    """The known answer a forest plot marks: ``truth``, or the runs' own when they all
    sample one target (one posterior: its answer applies to every run)."""
    first = next(iter(results.values()))
    if truth is None and len({r.target for r in results.values()}) == 1:
        return first.ground_truth
    return truth


def _odd_note(results: dict, names: list, coords: dict) -> str:
    """A title's note naming the plotted variables with NaN draws or with a plotted
    component (``coords``) that never changes, whose panels mislead (empty densities, flat
    ranks, an ESS equal to the number of draws): ``""`` when there are none."""
    nan, constant = {}, {}
    for result in results.values():
        for name in names:
            if name not in result.draws:
                continue
            values = np.asarray(result.draws[name])
            for axis, dim in enumerate(result.dim_names(name), start=2):
                if dim in coords:  # only the components the figure shows
                    values = np.take(values, coords[dim], axis=axis)
            flat = values.reshape(values.shape[0] * values.shape[1], -1)
            if np.issubdtype(flat.dtype, np.floating) and np.isnan(flat).any():
                nan[name] = True
            elif (flat == flat[0]).all(axis=0).any():
                constant[name] = True
    parts = [f"NaN draws in {', '.join(nan)}: its ESS and R-hat are NaN"] if nan else []
    if constant:
        unchanging = ", ".join(constant)
        parts.append(f"{unchanging}: a component never changes (no density; ESS: every draw)")
    return f"\n({'; '.join(parts)})" if parts else ""


def caption(kind: str, min_ess: float = 400, marks: str = "") -> str:
    """What a plot of ``kind`` shows (:data:`CAPTIONS`), an ESS plot's line at ``min_ess``,
    and ``marks``: what else it draws (divergences, a ground truth)."""
    return CAPTIONS[kind].replace("dash-dot: 400", f"dash-dot: {min_ess:g}") + marks


def _cut_note(results: dict, var_names, names: list, coords: dict) -> str:
    """A title's note when the selection (``names``, ``coords``) leaves out scalar components
    of the variables asked for (``var_names``, or by default those every run has): ``""``
    when it shows them all, so that a cut plot does not pass for the whole posterior."""
    result = next(iter(results.values()))
    candidates = shared_variables(results) if var_names is None else var_names

    def components(name, chosen):
        sizes = zip(result.dim_names(name), result.draws[name].shape[2:], strict=True)
        return int(np.prod([len(chosen.get(dim, range(size))) for dim, size in sizes]))

    total = sum(components(name, {}) for name in result.draws if name in candidates)
    shown = sum(components(name, coords) for name in names)
    if shown >= total:
        return ""
    return f"\n(the first {shown} of {total} components: max_panels= or var_names= for others)"


def _named_selection(result: Result, var_names: list, max_panels: int) -> tuple[list, dict]:
    """Every variable of ``var_names``, in that order, with coords that show about
    ``max_panels / len(var_names)`` components of each (at least one): the first elements
    along each axis. A dimension shared by variables shows the most any of them asks."""
    budget = max(1, max_panels // len(var_names))
    coords: dict = {}
    for name in var_names:
        left = budget
        for dim, size in zip(result.dim_names(name), result.draws[name].shape[2:], strict=True):
            take = max(1, min(size, left))
            coords[dim] = list(range(max(len(coords.get(dim, ())), take)))
            left = max(1, left // take)
    return list(var_names), coords


def _pooled_trees(results: dict, truth, names) -> dict:
    """ArviZ trees for a plot of several runs (forest, dist): every run's chains pooled into
    the same number of draws, the longest run's, a shorter run's draws each repeated as
    evenly as the counts allow, to one copy (ArviZ pads runs of different lengths with NaN,
    which hides their means and intervals; thinning every run to the shortest would spoil
    the others), and the ground truth, when given, as a run whose every draw is the known
    mean."""
    import arviz_base

    length = max(r.num_chains * r.num_samples for r in results.values())
    first = next(iter(results.values()))
    trees = {}
    for name, result in results.items():
        total = result.num_chains * result.num_samples
        keep = (np.arange(length) * total) // length  # each draw length // total times or one more
        pooled = {  # only the plotted variables: a stored run's draws are read from disk
            key: np.asarray(value).reshape((total, *value.shape[2:]))[keep][None]
            for key, value in result.draws.items()
            if key in names
        }
        dims = {key: first.dim_names(key) for key in pooled}  # the names the coords use
        trees[name] = arviz_base.from_dict({"posterior": pooled}, dims=dims)
    if truth is not None:
        known = {
            name: np.broadcast_to(
                np.asarray(truth.mean[name], np.float64),
                (1, length, *first.draws[name].shape[2:]),
            )
            for name in names
            if name in truth.mean and name in first.draws
        }
        if known:
            dims = {key: first.dim_names(key) for key in known}
            trees["ground truth"] = arviz_base.from_dict({"posterior": known}, dims=dims)
    return trees


def plot(
    results,
    kind: str = "trace",
    *,
    var_names: list[str] | None = None,
    max_panels: int = 8,
    path=None,
    truth=None,
    min_ess: float = 400,
):
    """One figure about ``results``.

    Args:
        results: an :class:`infer.Result`, or for ``"forest"`` and ``"dist"`` a dict
            name -> Result (or a list, named by sampler as in :func:`infer.compare`).
        kind: one of ``"trace"``, ``"rank"``, ``"ess"``, ``"autocorr"``, ``"pair"``,
            ``"forest"``, ``"dist"``, ``"elbo"`` (an :func:`infer.advi` result), ``"ppc"``
            (observed data against the posterior predictive, after :func:`infer.predictive`).
        var_names: the variables to show (their first ``max_panels`` scalar components); by
            default those of all variables (4 for ``"pair"``).
        max_panels: the most scalar parameters shown.
        path: if given, the figure is written there as PNG (atomically) and closed.
        truth: ground truth to mark in a forest plot; default the results' own.
        min_ess: the dash-dotted line of an ``"ess"`` plot (as ``infer.compare``'s ``min_ess``).

    Returns:
        The ``arviz_plots.PlotCollection`` (``None`` when written to ``path``).

    Raises:
        ValueError: for an unknown ``kind`` or a result without the needed statistics.
    """
    import arviz_base

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    results, var_names = _checked(results, var_names, max_panels, truth)
    min_ess = validation.nonnegative_float("min_ess", min_ess)
    if kind not in SEVERAL and len(results) != 1:
        raise ValueError(f"kind={kind!r} shows one run; pass one Result (got {len(results)}).")
    first = next(iter(results.values()))
    if kind == "rank" and first.num_chains < 2:
        raise ValueError(
            f"kind='rank' compares the chains' ranks; this run has {first.num_chains} chain. "
            "Run num_chains >= 2 (4 is usual), or look at kind='trace'."
        )
    if kind in ("rank", "ess", "autocorr") and first.num_samples < MIN_DRAWS:
        raise ValueError(
            f"kind={kind!r} needs at least {MIN_DRAWS} draws per chain (ranks, ESS and "
            f"autocorrelations mean nothing below); this run has {first.num_samples}. Draw "
            "more (num_samples), or look at kind='trace'."
        )
    if kind == "elbo":
        return _plot_elbo(first, path)
    if kind == "ppc" and "posterior_predictive" not in first.groups:
        raise ValueError(
            "kind='ppc' needs a posterior_predictive group: call infer.predictive(result, "
            "target) first (NumPyro targets)."
        )
    if kind == "pair":
        max_panels = min(max_panels, 4)
    if var_names is None:
        names, coords = _selection(first, max_panels, shared_variables(results))
    else:
        names, coords = _named_selection(first, var_names, max_panels)
    if kind == "pair" and num_components(first, names, coords) < 2:
        raise ValueError(
            f"kind='pair' plots pairs of parameters; {names} hold one scalar. Pick two or "
            "more (var_names), or look at kind='trace' or 'dist'."
        )
    options = {"var_names": names, "coords": coords, "backend": "matplotlib"}
    panels = max(len(names), sum(len(v) for v in coords.values()) or 1)
    if kind == "pair":  # it sizes its own grid; the layout keeps two-line labels in
        options["figure_kwargs"] = {"layout": "constrained"}
    else:
        rows = (
            min(panels, max_panels) if kind == "trace" else 1 + (min(panels, max_panels) - 1) // 4
        )
        height = 1.0 + (1.7 if kind == "trace" else 2.2) * rows
        options["figure_kwargs"] = {"layout": "constrained", "figsize": (12, height)}
    # a trace plot has two panels per component; ArviZ refuses more than its limit
    limit = max(arviz_base.rcParams["plot.max_subplots"], 2 * panels + 2)
    with arviz_base.rc_context({"plot.max_subplots": limit}):
        collection = _draw(kind, results, first, options, truth, names, min_ess)
    _figure(collection).suptitle(
        _title(results, kind, var_names, names, coords, min_ess, truth), fontsize=10
    )
    if path is None:
        return collection
    save_png(collection, path)
    return None


def _draw(kind: str, results: dict, first: Result, options: dict, truth, names, min_ess):
    """The ``arviz_plots`` collection of one ``kind`` (not ``elbo``)."""
    import arviz_plots

    tree = first.to_arviz()
    if kind == "trace":  # one row per component, the chains in colours
        collection = arviz_plots.plot_trace_dist(tree, compact=False, **options)
    elif kind == "rank":
        collection = arviz_plots.plot_rank(tree, **options)
    elif kind == "ess":
        tail = {"ess_tail": {"prob": TAIL_PROB}}  # the tail ESS compare reports
        collection = arviz_plots.plot_ess_evolution(tree, min_ess=min_ess, stats=tail, **options)
    elif kind == "autocorr":
        collection = arviz_plots.plot_autocorr(tree, **options)
    elif kind == "ppc":
        collection = arviz_plots.plot_ppc_dist(
            tree, backend="matplotlib", figure_kwargs=options.get("figure_kwargs")
        )
    elif kind == "pair":
        has_divergences = "diverging" in first.stats
        collection = arviz_plots.plot_pair(tree, visuals={"divergence": has_divergences}, **options)
    elif kind == "dist":
        trees = _pooled_trees(results, None, names)  # equal lengths: ArviZ pads with NaN
        collection = arviz_plots.plot_dist(trees, **options)
        collection.add_legend("model")
    else:
        trees = _pooled_trees(results, _forest_truth(results, truth), names)
        collection = arviz_plots.plot_forest(trees, combined=True, ci_probs=FOREST_PROBS, **options)
        collection.add_legend("model")
    return collection


def _plot_elbo(result: Result, path):
    """The ELBO trace of an ADVI fit: a matplotlib ``Figure`` (``None`` when written)."""
    import matplotlib.pyplot as plt

    trace = result.info.get("elbo_trace")
    if trace is None:
        raise ValueError(
            f"kind='elbo' needs a result of infer.advi; {result.sampler!r} has no ELBO trace."
        )
    trace = np.asarray(trace, float)
    window = max(1, trace.size // 100)
    finite = np.where(np.isfinite(trace), trace, np.nan)
    running = np.convolve(np.nan_to_num(finite, nan=np.nanmin(finite)), np.ones(window), "valid")
    figure, axis = plt.subplots(figsize=(8, 4), layout="constrained")
    axis.plot(np.arange(trace.size), finite, color="0.75", lw=0.5, label="per step")
    axis.plot(np.arange(window - 1, trace.size), running / window, color="C0", label="running mean")
    final = result.info.get("elbo")
    if final is not None:
        axis.axhline(final, color="C1", ls="--", label=f"final ELBO {final:.4g}")
    low = np.nanpercentile(finite, 5)
    high = np.nanmax(finite)
    axis.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
    axis.set_xlabel("step")
    axis.set_ylabel("ELBO (nats)")
    k_hat = result.info.get("pareto_k")
    axis.set_title(
        f"{result.sampler} on {result.target}\n{CAPTIONS['elbo']}"
        + (f"; Pareto k-hat {k_hat:.2f}" if k_hat is not None else ""),
        fontsize=9,
    )
    axis.legend(loc="lower right")
    if path is None:
        return figure
    save_png_figure(figure, path)
    return None


def _figure(collection):
    figure = collection.get_viz("figure")
    return getattr(figure, "item", lambda: figure)()  # a Figure, or a 0-d array of one


def save_png(collection, path) -> Path:
    """Write a PlotCollection to ``path`` as PNG, atomically, and close its figure."""
    return save_png_figure(_figure(collection), path)
