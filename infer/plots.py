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
import textwrap
import warnings
from pathlib import Path

import numpy as np

from infer import validation
from infer.flag_rules import MIN_DRAWS
from infer.io import save_png as save_png_figure
from infer.plot_selection import (
    PAIR_MAX,
    checked,
    checked_path,
    cut_note,
    named_selection,
    num_components,
    odd_note,
    selection,
    shared_variables,
)
from infer.result import Result
from infer.statistics import TAIL_PROB

__all__ = ["caption", "marks", "num_components", "plot", "save_png", "shared_variables"]

#: The forest plot's inner and outer credible intervals (its caption says them).
FOREST_PROBS = (0.5, 0.94)
KINDS = ("trace", "rank", "ess", "autocorr", "pair", "forest", "dist", "elbo", "ppc")
SEVERAL = ("forest", "dist")  # kinds that take a dict of runs

CAPTIONS = {
    "trace": "draws per chain (right), each chain's density (left)",
    "rank": "each chain's rank ECDF minus the uniform's; small p-values mean the chains disagree",
    "ess": "ESS as the draws accumulate (blue: bulk, orange: tail at 5%/95%); dash-dot: 400",
    "autocorr": "autocorrelation of each chain by lag; grey band ±1.96/√n: white noise (n "
    "draws per chain)",
    "pair": "pairs of parameters",
    "forest": "posterior means with 50% and 94% intervals",
    "dist": "marginal densities of each run's draws, overlaid",
    "elbo": "ELBO estimate per step (grey) and its running mean over 1% of the steps",
    "ppc": "ECDF of the observed data (black) against ECDFs of data simulated from the "
    "posterior (posterior predictive)",
}


def _title(results: dict, kind: str, var_names, names: list, coords: dict, min_ess, truth) -> str:
    """The figure's title: the runs, their targets, what the kind shows, and what it leaves
    out."""
    first = next(iter(results.values()))
    label = ", ".join(results) if kind in SEVERAL else f"{first.sampler}"
    on = ", ".join(dict.fromkeys(r.target for r in results.values()))
    cut = "" if kind == "ppc" else cut_note(results, kind, var_names, names, coords)
    odd = "" if kind == "ppc" else odd_note(results, kind, names, coords)
    said = caption(kind, min_ess, marks(kind, results, truth))
    counts = {r.num_chains * r.num_samples for r in results.values()}
    if _ecdf_not_density(results, kind):  # as ArviZ draws them under 100 draws
        said = said.replace("density", "ECDF (too few draws for a density)")
        said = said.replace("marginal densities", "marginal ECDFs (too few draws for densities)")
    elif kind == "dist" and len(counts) > 1:
        odd += (  # see _pooled_trees: thinned instead, the means would move
            f"\n(shorter runs' draws are repeated to the longest's {max(counts):,}: their "
            "densities are drawn with too narrow a bandwidth, wiggly; compare runs of one length)"
        )
    return f"{label} on {on}: {said}{cut}{odd}"


def _ecdf_not_density(results: dict, kind: str) -> bool:
    """Whether ArviZ draws ECDFs where the caption says densities: under 100 draws per chain
    in a trace plot, under 100 in all (the longest run's) in a dist plot."""
    if kind == "trace":
        return next(iter(results.values())).num_samples < 100
    if kind == "dist":
        return max(r.num_chains * r.num_samples for r in results.values()) < 100
    return False


def _wrapped(title: str, width_inches: float, fontsize: float = 10) -> str:
    """``title``'s lines broken to fit a figure ``width_inches`` wide (a character of a
    ``fontsize``-point font is about 0.6 of it wide): long notes were cut at both edges."""
    characters = max(40, int(width_inches * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.fill(line, characters) for line in title.split("\n"))


def _legend_inches(figure) -> float:
    """The width a figure's legends (placed beside the panels, at the top right) take, in
    inches with a margin; 0 without one."""
    if not figure.legends:
        return 0.0
    renderer = figure.canvas.get_renderer()
    widest = max(legend.get_window_extent(renderer).width for legend in figure.legends)
    return widest / figure.dpi + 0.3


def _labels_on_top(figure) -> None:
    """Each panel's texts (the rank plot's p-value) drawn over its lines, on a pale box: the
    chains' curves ran through them."""
    for axis in figure.axes:
        for text in axis.texts:
            text.set_zorder(10)
            text.set_bbox({"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})


def white_noise_band(num_draws: int) -> float:
    """The autocorrelation plot's band: ``1.96 / sqrt(num_draws)``, where 95% of a white
    noise chain's autocorrelations at each lag fall."""
    return 1.96 / math.sqrt(num_draws)


def marks(kind: str, results: dict, truth=None) -> str:
    """What a plot of ``kind`` of ``results`` (name -> Result) draws beside its caption:
    divergences (trace, pair: when the run records them; "no divergences" when it has
    none), the known answer (forest), the white-noise band's n and half-width (autocorr)."""
    first = next(iter(results.values()))
    if kind == "autocorr":
        return f"; n = {first.num_samples}: ±{white_noise_band(first.num_samples):.3f}"
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


def caption(kind: str, min_ess: float = 400, marks: str = "") -> str:
    """What a plot of ``kind`` shows (:data:`CAPTIONS`), an ESS plot's line at ``min_ess``,
    and ``marks``: what else it draws (divergences, a ground truth)."""
    return CAPTIONS[kind].replace("dash-dot: 400", f"dash-dot: {min_ess:g}") + marks


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
        # a variable the truth leaves out is NaN there (no mark): ArviZ fails on trees of
        # other variables, not finding their dimensions
        known = {
            name: np.broadcast_to(
                np.asarray(truth.mean.get(name, np.nan), np.float64),
                (1, length, *first.draws[name].shape[2:]),
            )
            for name in names
            if name in first.draws
        }
        if any(name in truth.mean for name in known):
            dims = {key: first.dim_names(key) for key in known}
            trees["ground truth"] = arviz_base.from_dict({"posterior": known}, dims=dims)
    return trees


def plot(
    results,
    kind: str = "trace",
    *,
    var_names: list[str] | None = None,
    max_panels: int | None = None,
    path=None,
    truth=None,
    min_ess: float | None = None,
):
    """One figure about ``results``.

    Args:
        results: an :class:`infer.Result`, or for ``"forest"`` and ``"dist"`` a dict
            name -> Result (or a list, named by sampler as in :func:`infer.compare`).
        kind: one of ``"trace"``, ``"rank"``, ``"ess"``, ``"autocorr"``, ``"pair"``,
            ``"forest"``, ``"dist"``, ``"elbo"`` (an :func:`infer.advi` result), ``"ppc"``
            (observed data against the posterior predictive, after :func:`infer.predictive`).
        var_names: a name or a list/tuple of distinct names: the variables to show (their
            first components in row-major order, ``w[0,0], w[0,1], ...``); by default all
            variables. For ``"ppc"``: the observed variables to show (default all).
        max_panels: the most scalar components shown; default 8 (4 for ``"pair"``, which
            shows at most 6).
        path: if given (a str or ``os.PathLike`` ending in ``.png``), the figure is written
            there as PNG (atomically) and closed; checked before anything is drawn.
        truth: an :class:`infer.GroundTruth` to mark in a forest plot (default the results'
            own); refused for the other kinds, which do not draw it.
        min_ess: the dash-dotted line of an ``"ess"`` plot (as ``infer.compare``'s
            ``min_ess``; default 400); refused for the other kinds, which do not draw it.

    Returns:
        ``None`` when written to ``path``; otherwise, for ``"elbo"``, the matplotlib
        ``Figure``, and for every other kind the ``arviz_plots.PlotCollection`` (its figure:
        ``collection.get_viz("figure")``; ``collection.savefig(...)`` writes it).

    Raises:
        ValueError: for an unknown ``kind``, a result without the needed statistics, an
            argument the kind does not use (``truth``), or a path that is a folder or does
            not end in ``.png``.
        TypeError: for arguments of the wrong type (``var_names``, ``path``, ``truth``).
    """
    import arviz_base

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    checked_path(path)
    max_panels = (4 if kind == "pair" else 8) if max_panels is None else max_panels
    results, var_names = checked(results, kind, var_names, max_panels, truth)
    if min_ess is not None and kind != "ess":
        raise ValueError(
            f"min_ess= draws the line of an ESS plot (kind='ess'); kind={kind!r} does not "
            "draw it. Leave min_ess out, or plot kind='ess'."
        )
    min_ess = validation.nonnegative_float("min_ess", 400 if min_ess is None else min_ess)
    if kind not in SEVERAL and len(results) != 1:
        raise ValueError(f"kind={kind!r} shows one run; pass one Result (got {len(results)}).")
    first = next(iter(results.values()))
    _check_draws(kind, first)
    if kind == "elbo":
        return _plot_elbo(first, path)
    names, coords = _selected(kind, results, var_names, max_panels)
    options = {"var_names": names, "coords": coords, "backend": "matplotlib"}
    panels = len(names) if kind == "ppc" else num_components(first, names, coords)
    if kind == "pair":  # it sizes its own grid; the layout keeps two-line labels in
        options["figure_kwargs"] = {"layout": "constrained"}
    else:
        rows = panels if kind == "trace" else 1 + (panels - 1) // 4
        height = 1.0 + (1.7 if kind == "trace" else 2.2) * rows
        options["figure_kwargs"] = {"layout": "constrained", "figsize": (12, height)}
    title = _title(results, kind, var_names, names, coords, min_ess, truth)
    # a trace plot has two panels per component; ArviZ refuses more than its limit
    limit = max(arviz_base.rcParams["plot.max_subplots"], 2 * panels + 2)
    with arviz_base.rc_context({"plot.max_subplots": limit}), warnings.catch_warnings():
        # the title's note says which components never change or have a stuck chain
        warnings.filterwarnings("ignore", "Your data appears to have a single value")
        collection = _draw(kind, results, first, options, truth, names, min_ess)
    figure = _figure(collection)
    width, beside = figure.get_figwidth(), _legend_inches(figure)
    # centred over what the legend at the top right (forest's, dist's) leaves free
    wrapped = _wrapped(title, width - beside)
    figure.suptitle(wrapped, fontsize=10, x=0.5 * (1 - beside / width))
    if path is None:
        return collection
    save_png(collection, path)
    return None


def _check_draws(kind: str, first: Result) -> None:
    """Refuse a run too small for ``kind``: ranks need two chains, and ranks, ESS and
    autocorrelations :data:`MIN_DRAWS` draws per chain."""
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


def _selected(kind: str, results: dict, var_names, max_panels: int) -> tuple[list, dict]:
    """The variables and coords a plot of ``kind`` shows (a pair plot: at most
    :data:`PAIR_MAX` components, and two at least; ppc: observed variables, whole)."""
    first = next(iter(results.values()))
    if kind == "ppc":
        return var_names or list(first.groups["posterior_predictive"]), {}
    if kind == "pair":
        max_panels = min(max_panels, PAIR_MAX)
    if var_names is None:
        names, coords = selection(first, max_panels, shared_variables(results))
    else:
        names, coords = named_selection(first, var_names, max_panels)
    if kind == "pair" and num_components(first, names, coords) < 2:
        raise ValueError(
            f"kind='pair' plots pairs of parameters; {names} hold one scalar. Pick two or "
            "more (var_names), or look at kind='trace' or 'dist'."
        )
    return names, coords


def _draw(kind: str, results: dict, first: Result, options: dict, truth, names, min_ess):
    """The ``arviz_plots`` collection of one ``kind`` (not ``elbo``)."""
    import arviz_plots

    tree = first.to_arviz()
    if kind == "trace":  # one row per component, the chains in colours
        collection = arviz_plots.plot_trace_dist(tree, compact=False, **options)
    elif kind == "rank":
        collection = arviz_plots.plot_rank(tree, **options)
        _labels_on_top(_figure(collection))
    elif kind == "ess":
        tail = {"ess_tail": {"prob": TAIL_PROB}}  # the tail ESS compare reports
        collection = arviz_plots.plot_ess_evolution(tree, min_ess=min_ess, stats=tail, **options)
    elif kind == "autocorr":  # ArviZ's band is 1.96 / sqrt(lags kept), not of the draws
        no_band = {"credible_interval": False}
        collection = arviz_plots.plot_autocorr(tree, visuals=no_band, **options)
        half = white_noise_band(first.num_samples)
        for axis in _figure(collection).axes:
            if axis.get_visible() and axis.has_data():
                axis.axhspan(-half, half, color="0.5", alpha=0.25, lw=0, zorder=0)
    elif kind == "ppc":
        collection = arviz_plots.plot_ppc_dist(
            tree,
            var_names=names,
            kind="ecdf",
            backend="matplotlib",
            figure_kwargs=options.get("figure_kwargs"),
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
