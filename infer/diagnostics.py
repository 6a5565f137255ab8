"""Side-by-side diagnostics of runs, computed with ArviZ (``arviz_stats``), and the checks that
make sure a problem is never silent.

Tail ESS uses the 5% and 95% quantiles, as Stan and the literature do (ArviZ 1.x defaults to
11%/89% unless ``prob`` is passed). R-hat is ArviZ's rank-normalised split R-hat.
"""

from __future__ import annotations

import warnings

import numpy as np

from infer import chain_stats, validation
from infer.caller import INFER_FRAMES
from infer.flag_rules import FLAG_RULES, OVERFLOW, UNDERFLOW
from infer.model_comparison import COLUMNS as LOO_COLUMNS
from infer.model_comparison import loo_columns
from infer.named_results import by_name
from infer.reported_names import element_label
from infer.result import Result
from infer.statistics import TAIL_PROB, compute
from infer.target import GroundTruth

DEFAULT_MIN_ESS = 400

COLUMNS = (
    "min_ess_bulk",
    "median_ess_bulk",
    "min_ess_tail",
    "median_ess_tail",
    "max_rhat",
    "max_nested_rhat",
    "max_mcse_mean",
    "ess_bulk_per_second",
    "ess_bulk_per_1000_logdensity_evals",
    "ess_bulk_per_grad_eval",
    "acceptance_rate",
    "divergences",
    "compile_seconds",
    "warmup_seconds",
    "sampling_seconds",
    "max_abs_z",
    "flags",
)


class DiagnosticWarning(UserWarning):
    """A run whose diagnostics say its estimates should not be trusted as they are."""


def _flat(values: dict, names) -> np.ndarray:
    """All scalar values of the named variables (name -> array), concatenated."""
    return np.concatenate([np.ravel(np.asarray(values[name])) for name in names])


def ground_truth_z(result: Result, truth: GroundTruth, mcse=None) -> dict[str, np.ndarray]:
    """``|posterior mean - truth| / standard error`` per parameter, by draw name.

    The standard error combines the run's MCSE of the mean (name -> array; pass it as
    ``mcse`` if already computed, else :mod:`infer.chain_stats` computes it) with the ground
    truth's own Monte Carlo error when it comes from a reference run.
    """
    names = [name for name in truth.mean if name in result.draws]
    if not names:
        return {}
    if mcse is None:
        draws = {name: np.asarray(result.draws[name]) for name in names}
        mcse = chain_stats.summary_stats(draws, statistics="mcse_mean", result_dtype="float64")
        mcse = {name: mcse[name]["mcse_mean"] for name in names}
    z = {}
    for name in names:
        estimate = np.asarray(result.draws[name], np.float64).mean(axis=(0, 1))
        se = np.asarray(mcse[name], np.float64)
        if truth.mean_se is not None and name in truth.mean_se:
            se = np.hypot(se, np.asarray(truth.mean_se[name], np.float64))  # no overflow
        z[name] = np.abs(estimate - np.asarray(truth.mean[name])) / se
    return z


def run_row(
    result: Result,
    ground_truth: GroundTruth | None = None,
    min_ess: float = DEFAULT_MIN_ESS,
    statistics: dict | None = None,
    name: str | None = None,
) -> tuple[dict, list[str]]:
    """One row of :func:`compare` for ``result``, and the warning messages of its flags.

    ``statistics``: this run's entry of :func:`infer.statistics.compute`, if already
    computed. ``name``: the run's name in the table, which the messages then start with
    (runs of one sampler on one target are told apart by it).
    """
    if statistics is None:
        statistics = compute({"run": result})["run"]
    truth = ground_truth if ground_truth is not None else result.ground_truth
    row, z = _row_values(result, truth, statistics)
    flags, messages = [], []
    label = f"{result.sampler} on {result.target}"
    if name is not None and name not in (label, result.sampler):
        label = f"{name} ({label})"
    for flag, rule in FLAG_RULES:
        message = rule(result, row, z, min_ess)
        if message:
            flags.append(flag)
            messages.append(f"{label}: {message}")
    row["flags"] = ",".join(flags)
    if truth is not None and not z and truth.mean:
        messages.append(
            f"{label}: nothing was checked against the ground "
            f"truth: it names {sorted(truth.mean)} and the draws are {sorted(result.draws)}. "
            "Name the draws as the truth does (Result.from_draws({name: ...}))."
        )
    return row, messages


def _row_values(result: Result, truth: GroundTruth | None, statistics: dict):
    """The numbers of ``result``'s row (every column of :data:`COLUMNS` but ``flags``, after
    ``sampler``), and the ground-truth z-scores by draw name (:func:`ground_truth_z`; empty
    without a ground truth)."""
    names = list(result.draws)
    with warnings.catch_warnings():  # an all-NaN column is a flag (nan_stats), not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return _row_numbers(result, truth, statistics, names)


def _without_frozen(statistics: dict, frozen: dict) -> dict:
    """``statistics`` with the ESS of the entries that never moved (``frozen``: name -> flat
    bool) NaN: ArviZ gives such an entry an ESS of its draw count, which would stand in the
    minima and medians for the moving ones' (and name it a low-ESS one); it is left out of
    them, as its NaN R-hat is of the maximum."""
    masked = dict(statistics)
    for kind in ("ess_bulk", "ess_tail"):
        masked[kind] = {}
        for name, fixed in frozen.items():
            values = np.asarray(statistics[kind][name], float)
            masked[kind][name] = np.where(fixed.reshape(values.shape), np.nan, values)
    return masked


def _row_numbers(result: Result, truth: GroundTruth | None, statistics: dict, names: list[str]):
    nan_parameters, frozen = _nan_parameters(result, statistics, names)
    statistics = _without_frozen(statistics, frozen)
    ess_bulk = _flat(statistics["ess_bulk"], names)
    ess_tail = _flat(statistics["ess_tail"], names)
    rhat = _flat(statistics["rhat"], names)
    mcse_mean = _flat(statistics["mcse_mean"], names)
    sampling = result.timing.get("sampling", float("nan"))
    min_bulk = float(np.nanmin(ess_bulk))

    fraction = float(result.info.get("evaluation_fraction", 1.0))  # SGLD: minibatch ones

    def per(count) -> float:  # in full-data evaluations
        return min_bulk / (count * fraction) if count else float("nan")

    max_z = float("nan")
    z = ground_truth_z(result, truth, statistics["mcse_mean"]) if truth is not None else {}
    if z:
        z_all = np.concatenate([np.ravel(v) for v in z.values()])
        if np.any(~np.isnan(z_all)):  # a NaN in the truth leaves the rest checked
            max_z = float(np.nanmax(z_all))
    row = {
        "sampler": result.sampler,
        "min_ess_bulk": min_bulk,
        "median_ess_bulk": float(np.nanmedian(ess_bulk)),
        "min_ess_tail": float(np.nanmin(ess_tail)),
        "median_ess_tail": float(np.nanmedian(ess_tail)),
        "max_rhat": float(np.nanmax(rhat)) if np.any(~np.isnan(rhat)) else float("nan"),
        "max_nested_rhat": _max_nested(statistics, names),
        "max_mcse_mean": float(np.nanmax(mcse_mean)),
        "ess_bulk_per_second": min_bulk / sampling if sampling > 0 else float("nan"),
        "ess_bulk_per_1000_logdensity_evals": 1000.0 * per(result.num_logdensity_evals),
        "ess_bulk_per_grad_eval": per(result.num_grad_evals),
        "acceptance_rate": result.acceptance_rate,
        "divergences": result.num_divergent,
        "compile_seconds": result.timing.get("compile", float("nan")),
        "warmup_seconds": result.timing.get("warmup", float("nan")),
        "sampling_seconds": sampling,
        "max_abs_z": max_z,
        "nan_parameters": nan_parameters,
        # the parameters the R-hat and ESS flags name, worst first
        "worst_rhat": _worst(result, statistics, names, "rhat_nested", largest=True)
        or _worst(result, statistics, names, "rhat", largest=True),
        "worst_ess": _worst(result, statistics, names, "ess", largest=False),
    }
    return row, z


def _worst(result: Result, statistics: dict, names: list[str], stat: str, largest: bool):
    """``([(label, value), ...], values)``: the 10 worst parameters by ``stat`` (``"ess"``: the
    smaller of bulk and tail), worst first, and every parameter's value; NaN left out (the
    nan_stats flag names those). ``None`` for a statistic not computed."""
    if stat == "ess":
        values = np.fmin(_flat(statistics["ess_bulk"], names), _flat(statistics["ess_tail"], names))
    elif stat in statistics:
        values = _flat(statistics[stat], names)
    else:
        return None
    where = [(name, i) for name in names for i in range(result.draws[name][0, 0].size)]
    finite = np.flatnonzero(~np.isnan(values))
    order = finite[np.argsort(-values[finite] if largest else values[finite], kind="stable")]
    top = []
    for i in order[:10]:
        name, index = where[i]
        top.append((element_label(name, tuple(np.shape(result.draws[name])[2:]), index), values[i]))
    return top, values[finite]


def _max_nested(statistics: dict, names: list[str]) -> float:
    """The largest nested R-hat, or NaN for a run without superchains."""
    if "rhat_nested" not in statistics:
        return float("nan")
    values = _flat(statistics["rhat_nested"], names)
    return float(np.nanmax(values)) if np.any(~np.isnan(values)) else float("nan")


def _nan_parameters(result: Result, statistics: dict, names: list[str]) -> tuple:
    """``(labels, frozen)``: labels (``"x[3]"``, ``"b[1, 0]"`` as ArviZ's summary labels
    them, with the cause) of the parameters nothing was learned about: R-hat (of two or
    more chains), bulk ESS or the MCSE of the mean NaN (NaN or inf draws), or the draws the
    same in every chain (R-hat is NaN for those, but one chain has none, and their ESS and
    MCSE are numbers). A deterministic site's entry that never changed is left out
    (``a > 0`` all along, a reference category's fixed 0): the parameters fix it.
    ``frozen``: name -> flat bool, the entries whose draws are all one finite value."""
    labels, frozen = [], {}
    derived = set(result.info.get("deterministic", ()))
    for name in names:
        ess = np.ravel(np.asarray(statistics["ess_bulk"][name], float))
        mcse = np.ravel(np.asarray(statistics["mcse_mean"][name], float))
        undefined = np.isnan(ess) | np.isnan(mcse)
        if result.num_chains > 1:
            undefined |= np.isnan(np.ravel(np.asarray(statistics["rhat"][name], float)))
        stored = result.draws[name]
        first = np.abs(np.ravel(np.asarray(stored[0, 0], float)))
        maybe_frozen = ~undefined & (mcse <= 1e-6 * (1.0 + first))  # confirmed on the draws
        event_shape = tuple(np.shape(stored)[2:])
        frozen[name] = np.zeros(ess.shape, bool)
        for i in np.flatnonzero(undefined | maybe_frozen):
            # one component read at a time: a stored run's variable stays on disk
            values = np.asarray(
                stored[(slice(None), slice(None), *np.unravel_index(i, event_shape))]
            )
            finite = bool(np.isfinite(values).all())
            if finite and values.min() == values.max():
                frozen[name][i] = True
                if name not in derived:
                    labels.append(element_label(name, event_shape, i) + " (never changed)")
            elif finite and (mcse[i] == 0 or undefined[i]) and _squares_underflow(values):
                labels.append(element_label(name, event_shape, i) + " " + UNDERFLOW)
            elif undefined[i]:
                cause = "" if finite else " (NaN or inf draws)"
                if finite and _squares_overflow(values):
                    cause = " " + OVERFLOW
                labels.append(element_label(name, event_shape, i) + cause)
    return labels, frozen


_FLOAT64 = np.finfo(np.float64)


def _squares_overflow(values: np.ndarray) -> bool:
    """Whether finite ``values`` are large enough that their squares (variances, MCSE) are
    inf in float64, in which the statistics are computed: above about 1.3e154."""
    return bool(np.max(np.abs(values)) > np.sqrt(_FLOAT64.max))


def _squares_underflow(values: np.ndarray) -> bool:
    """Whether finite ``values`` that change spread so little that the squares of their
    deviations (variances, MCSE) fall below float64's normal numbers (about 1.5e-154 apart
    at most): their MCSE then reads 0, an exact mean, or NaN."""
    return bool(np.max(values) - np.min(values) < np.sqrt(_FLOAT64.tiny))


def _check_results(results: dict) -> None:
    for name, result in results.items():
        if not isinstance(result, Result):
            raise TypeError(
                f"results[{name!r}] must be an infer.Result; got {type(result).__name__}. "
                "Wrap draws made elsewhere with infer.Result.from_draws(draws)."
            )


def _check_truth_fits(truth: GroundTruth, results: dict, target) -> None:
    """A ``ValueError`` when a known answer's shape differs from the draws it is compared
    with (``target`` is not the one the runs sampled), before anything is computed."""
    for run_name, result in results.items():
        named = getattr(target, "name", None)
        made_here = bool(result.settings)  # Result.from_draws: a free label, not checked
        if made_here and result.target != named:
            raise ValueError(
                f"run {run_name!r} sampled target {result.target!r}, but target is "
                f"{named!r}: its ground truth is another posterior's. Pass the target the "
                "runs sampled, or target=None to use each result's own."
            )
        for name, mean in truth.mean.items():
            if name not in result.draws:
                continue
            drawn = tuple(np.shape(result.draws[name])[2:])
            if drawn != np.shape(mean):
                raise ValueError(
                    f"target {getattr(target, 'name', target)!r} knows {name!r} with shape "
                    f"{np.shape(mean)}, but run {run_name!r} drew {name!r} with shape {drawn}: "
                    "pass the target the runs sampled, or target=None to use each result's own."
                )


def compare(
    results: dict[str, Result] | list[Result],
    target=None,
    *,
    min_ess: float = DEFAULT_MIN_ESS,
    warn: bool = True,
    statistics: str = "jax",
):
    """One row per run, with convergence diagnostics, efficiency, timings and flags.

    Args:
        results: name -> :class:`infer.Result` (or a list, named by sampler: a repeated
            sampler's later runs ``nuts_2``, ``nuts_3``, ...).
        target: an :class:`infer.Target` whose ground truth to use; by default each result's.
        min_ess: ESS below which a run is flagged ``low_ess``.
        warn: also emit a :class:`DiagnosticWarning` for each flag, saying what to try.
        statistics: ``"jax"`` (default): ESS, R-hat and MCSE computed in JAX on the device
            (:mod:`infer.chain_stats`); ``"arviz"``: with ``arviz_stats``, the reference
            (the two agree within 1e-5).

    Returns:
        A pandas ``DataFrame`` indexed by run name with a ``sampler`` column and then the
        columns in :data:`COLUMNS`:
        minimum and median bulk and tail ESS (tail at the 5%/95% quantiles), max R-hat (and
        max nested R-hat for runs with superchains, which its ``rhat`` flag then uses), max
        MCSE of the mean, bulk ESS per second of sampling (compilation excluded), per 1,000
        log-density evaluations and per gradient evaluation (warm-up included in the cost),
        acceptance rate, divergences, compile / warm-up / sampling seconds, the largest
        ``|mean - truth| / MCSE`` and the flags: ``divergences``, ``rhat`` (> 1.01),
        ``low_ess``, ``acceptance``, ``envelope``, ``pareto_k`` (an ADVI fit whose
        importance ratios have k-hat above the threshold), ``stuck_chains``, ``nonfinite``
        (proposals with a NaN or +inf log density), ``nan_stats`` (a parameter whose R-hat
        or ESS is NaN: frozen in every chain), ``ground_truth``
        (beyond the Bonferroni-corrected 1% normal quantile). When every result carries a
        ``log_likelihood`` group (models of the same data, e.g. NumPyro targets), also
        ``elpd_loo``, ``elpd_loo_se``, ``p_loo`` and ``pareto_k_above_0.7`` (PSIS-LOO,
        ``arviz_stats.loo``), with a warning and the flag ``loo_pareto_k`` for each model
        that has observations above 0.7 (``loo_nonfinite`` for an ``elpd_loo`` that is NaN
        or infinite). ``DataFrame.attrs["notes"]`` says how each column
        was computed.
    """
    import pandas as pd

    warn = validation.flag("warn", warn)  # "no" would warn
    results = by_name(results)
    if not isinstance(results, dict):
        raise TypeError(
            "results must be a dict of name -> infer.Result, a list of them or one; got "
            f"{type(results).__name__}."
        )
    if isinstance(target, Result):
        raise TypeError(
            "compare's second argument is a target (for its ground truth), and got an "
            "infer.Result: pass the runs together, infer.compare({'a': run_a, 'b': run_b}) or "
            "infer.compare([run_a, run_b])."
        )
    if target is not None and not hasattr(target, "ground_truth"):
        raise TypeError(
            "target must be an infer.Target whose ground truth to use (e.g. "
            f"models.targets.get('banana')), or None; got {target!r}."
        )
    min_ess = validation.nonnegative_float("min_ess", min_ess, "0 turns the low_ess flag off.")
    if not results:
        raise ValueError("results is empty: pass a dict of name -> infer.Result.")
    _check_results(results)
    truth = target.ground_truth if target is not None else None
    if truth is not None:
        _check_truth_fits(truth, results, target)
    computed = compute(results, statistics)
    rows, all_messages = {}, []
    for name, result in results.items():
        rows[name], messages = run_row(result, truth, min_ess, computed[name], name)
        all_messages += messages
    if warn:
        for message in all_messages:
            warnings.warn(message, DiagnosticWarning, skip_file_prefixes=INFER_FRAMES)
    loo, loo_messages = loo_columns(results)
    if warn:
        for message in loo_messages:
            warnings.warn(message, DiagnosticWarning, skip_file_prefixes=INFER_FRAMES)
    table = pd.DataFrame.from_dict(rows, orient="index")[["sampler", *COLUMNS]]
    for column in LOO_COLUMNS if loo else ():
        table[column] = [loo[name][column] for name in table.index]
    for name in table.index if loo else ():  # their warnings are among loo_messages
        for flag, raised in (
            ("loo_pareto_k", loo[name]["pareto_k_above_0.7"]),
            ("loo_nonfinite", not np.isfinite(loo[name]["elpd_loo"])),
        ):
            flags = table.loc[name, "flags"]
            if raised:
                table.loc[name, "flags"] = f"{flags},{flag}" if flags else flag
    table.attrs["notes"] = (
        f"ESS and R-hat from {'JAX (infer.chain_stats)' if statistics == 'jax' else 'arviz_stats'}"
        f"; tail ESS at the {TAIL_PROB[0]:.0%} and "
        f"{TAIL_PROB[1]:.0%} quantiles; R-hat rank-normalised split; ESS per second of "
        "sampling, compilation excluded; ESS per evaluation counts warm-up too; max_abs_z is "
        "the largest |posterior mean - truth| / MCSE."
    )
    table.attrs["min_ess"] = min_ess
    table.attrs["statistics"] = statistics
    return table
