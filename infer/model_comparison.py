"""Comparing models of the same data: PSIS-LOO (``arviz_stats.loo``) of every result that
carries a ``log_likelihood`` group, for :func:`infer.compare`'s columns ``elpd_loo``,
``elpd_loo_se``, ``p_loo`` and ``pareto_k_above_0.7``, and the warning for a model whose
Pareto k-hat values make its estimate unreliable.

A model with several observed sites (``y`` and ``z``) is scored on all its observations
together: each observation of each site is one unit that LOO leaves out, as it is for the
observations of one site. ArviZ's own ``loo`` asks for one ``var_name`` instead.
"""

from __future__ import annotations

import warnings

import numpy as np

from infer.fit_measures import is_fit
from infer.result import Result

K_LIMIT = 0.7
#: The fewest draws (chains x draws) ``arviz_stats.loo`` takes: its Pareto tail fit needs 5.
MIN_DRAWS = 25
COLUMNS = ("elpd_loo", "elpd_loo_se", "p_loo", "pareto_k_above_0.7")


def _too_few_draws(results: dict[str, Result]) -> str:
    """Why PSIS-LOO cannot score results with fewer than :data:`MIN_DRAWS` draws in all
    (naming them), or ``""``."""
    counts = {name: r.num_chains * r.num_samples for name, r in results.items()}
    if not (short := {name: count for name, count in counts.items() if count < MIN_DRAWS}):
        return ""
    listed = ", ".join(f"{name}: {count}" for name, count in short.items())
    return (
        f"LOO columns left out: PSIS-LOO fits a Pareto tail to each observation's largest "
        f"importance weights and needs at least {MIN_DRAWS} draws in all (chains x draws); "
        f"{listed}. Run more draws."
    )


def loo_columns(results: dict[str, Result]) -> tuple[dict, list[str]]:
    """``(name -> {column -> value}, warning messages)``; empty unless every result has a
    ``log_likelihood`` group and all count the same observations (models of the same data),
    with a message saying why when only some have one or the counts differ."""
    with_loglik = [name for name, r in results.items() if r.groups.get("log_likelihood")]
    if not with_loglik:
        return {}, []
    if len(with_loglik) < len(results):
        if len({result.target for result in results.values()}) == 1:
            return {}, []  # runs of one model (ADVI or exact draws among them): nothing to rank
        without = ", ".join(name for name in results if name not in with_loglik)
        return {}, [
            f"LOO columns left out: the results {without} have no log_likelihood group (ADVI, "
            "exact samplers and targets without a per-observation log likelihood make "
            "none), and elpd_loo ranks models only when every one has it. "
            "Compare the results that have one on their own."
        ]
    if too_few := _too_few_draws(results):
        return {}, [too_few]
    originals = {name: result.to_arviz() for name, result in results.items()}
    counts = {name: _num_observations(tree) for name, tree in originals.items()}
    if len(set(counts.values())) > 1:
        return {}, [_count_mismatch(originals, counts)]
    if different := _different_data(results):
        return {}, [
            f"LOO columns left out: the models were fitted to different data ({different}), "
            "and elpd_loo only compares models of the same data."
        ]
    scored = {name: _observations(tree) for name, tree in originals.items()}
    trees = {name: tree for name, (tree, _, _) in scored.items()}
    constants = {name: constant for name, (_, _, constant) in scored.items()}
    if empty := [name for name, (_, index, _) in scored.items() if not index.size]:
        return {}, [
            f"LOO columns left out: every observation of {', '.join(empty)} is masked (its log "
            "likelihood is 0 in every draw), so there is nothing to leave out."
        ]
    kept = {name: frozenset(index.tolist()) for name, (_, index, _) in scored.items()}
    if len(set(kept.values())) > 1:
        total = next(iter(counts.values()))
        listed = ", ".join(f"{name}: {len(index)}" for name, index in kept.items())
        return {}, [
            "LOO columns left out: the models score different observations (those masked, "
            f"or certain in every draw, count for nothing: {listed} of {total} scored), "
            "and elpd_loo sums over the observations scored. Mask the same observations in "
            "every model."
        ]
    rows, messages = {}, []
    for name, result in results.items():
        tree, var_name = trees[name], JOINT
        elpd, se, p_loo, k_hat = _loo(tree, constants[name])
        if not np.isfinite(elpd):
            messages.append(_nonfinite_message(name, result, tree, var_name))
        if joined := _sites_scored_as_one(originals[name]):
            messages.append(
                f"{name} ({result.target}): the observed site(s) {', '.join(joined)} hold many "
                "values but one log likelihood per draw (a likelihood with .to_event() and no "
                "plate), so elpd_loo leaves all of them out at once, as one observation. Put "
                "the observations in a numpyro.plate for one log likelihood each."
            )
        values = np.asarray(tree["log_likelihood"][JOINT])
        finite = np.isfinite(values).all(axis=(0, 1))  # the others have their own message
        bad = int(np.sum(k_hat[finite] > K_LIMIT))
        rows[name] = {"elpd_loo": elpd, "elpd_loo_se": se, "p_loo": p_loo, COLUMNS[3]: bad}
        if bad:
            total = k_hat.size + constants[name].size
            messages.append(
                f"{name} ({result.target}): {bad} of {total} observations have Pareto "
                f"k-hat above {K_LIMIT}, so its elpd_loo is unreliable: "
                + (_WHY_FIT if is_fit(result.info) else _WHY_DRAWS)
            )
    return rows, messages


_WHY_DRAWS = (
    "those observations are very influential. Refit without them (exact LOO), or use K-fold "
    "cross-validation, or a model that fits them better."
)
_WHY_FIT = (
    "the draws are a variational fit's, not the posterior PSIS-LOO assumes, and high k-hats "
    "here are as often the approximation's as the observations' doing. Compare the LOO of "
    "MCMC draws of the same model before reading them as influential observations."
)


def _loo(tree, constants: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """``(elpd_loo, its SE, p_loo, Pareto k-hat of each varying observation)``: PSIS-LOO
    (``arviz_stats.loo``) of the varying observations in ``tree``, and the ``constants``, the
    log likelihoods of observations that are the same in every draw, added as ArviZ would
    count them (each an elpd of its value and no p_loo; in the SE among all the observations).
    PSIS cannot fit their equal weights (ArviZ raised "All tail values are the same")."""
    import arviz_stats

    joint = tree["log_likelihood"][JOINT]
    if joint.size:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ArviZ's own k-hat warning: ours names the model
            loo = arviz_stats.loo(tree, var_name=JOINT, pointwise=True)
        if not constants.size:
            return float(loo.elpd), float(loo.se), float(loo.p), np.asarray(loo.pareto_k)
        pointwise, p_loo, k_hat = np.asarray(loo.elpd_i), float(loo.p), np.asarray(loo.pareto_k)
    else:
        pointwise, p_loo, k_hat = np.zeros(0), 0.0, np.zeros(0)
    every = np.concatenate([np.ravel(pointwise), constants])
    se = float(np.sqrt(every.size * np.var(every, ddof=1))) if every.size > 1 else 0.0
    return float(np.sum(every)), se, p_loo, k_hat


def _count_mismatch(originals: dict, counts: dict) -> str:
    """Why the models' log likelihoods count different numbers of observations: sites scored
    as one (``.to_event()`` and no plate) where a model has them, else different data."""
    listed = ", ".join(f"{name}: {count}" for name, count in counts.items())
    joined = {name: sites for name, t in originals.items() if (sites := _sites_scored_as_one(t))}
    if joined:  # the same data, perhaps, scored as one observation by some model
        said = "; ".join(f"{name}: {', '.join(sites)}" for name, sites in joined.items())
        return (
            f"LOO columns left out: the models count different numbers of observations "
            f"({listed}), because observed sites hold many values but one log likelihood per "
            f"draw ({said}: a likelihood with .to_event() and no plate). Put the "
            "observations in a numpyro.plate for one log likelihood each."
        )
    return (
        f"LOO columns left out: the models were fitted to different numbers of observations "
        f"({listed}), and elpd_loo only compares models of the same data."
    )


def _different_data(results: dict[str, Result]) -> str:
    """Which observed values differ between the results (``""`` when they agree, or when a
    result records none): each site's by name, or all of them in name order when the models
    name their sites differently; as flat arrays (the observations in the order LOO pairs
    them), whatever shape each model gives them."""
    observed = {name: r.groups.get("observed_data") for name, r in results.items()}
    if not all(observed.values()):
        return ""
    (first, reference), *others = observed.items()

    def values(data: dict) -> np.ndarray:
        return np.concatenate([np.ravel(np.asarray(data[k], np.float64)) for k in sorted(data)])

    for name, data in others:
        if set(data) == set(reference):
            differ = [
                site
                for site in sorted(data)
                if not np.array_equal(  # raveled: one model's (3, 20) is another's (60,)
                    np.ravel(np.asarray(data[site], np.float64)),
                    np.ravel(np.asarray(reference[site], np.float64)),
                    equal_nan=True,
                )
            ]
            if differ:
                return f"{', '.join(differ)} differs between {first} and {name}"
        elif not np.array_equal(values(data), values(reference), equal_nan=True):
            return f"the observed values differ between {first} and {name}"
    return ""


def _num_observations(tree) -> int:
    """Observations in a ``log_likelihood`` group: every site's, past (chain, draw)."""
    group = tree["log_likelihood"].to_dataset()
    return sum(
        int(np.prod([group.sizes[d] for d in v.dims if d not in ("chain", "draw")]))
        for v in group.data_vars.values()
    )


def _sites_scored_as_one(tree) -> list[str]:
    """Observed sites with values along some axis but a log likelihood with none past
    (chain, draw): their observations are scored together, as one."""
    observed = tree["observed_data"].to_dataset() if "observed_data" in tree else {}
    group = tree["log_likelihood"].to_dataset()
    return [
        name
        for name, values in group.data_vars.items()
        if values.ndim == 2 and name in observed and observed[name].size > 1
    ]


def nonfinite_observations(values) -> tuple[int, int]:
    """``(broken, total)``: of the observations of log likelihoods ``values`` ``(chain,
    draw, *observation_shape)``, those NaN or infinite in some draw, and how many there are."""
    values = np.asarray(values)
    flat = values.reshape(values.shape[0] * values.shape[1], -1)
    return int(np.sum(~np.isfinite(flat).all(axis=0))), flat.shape[1]


def _nonfinite_message(name: str, result: Result, tree, var_name) -> str:
    group = tree["log_likelihood"].to_dataset()
    values = group[var_name] if var_name else next(iter(group.data_vars.values()))
    broken, total = nonfinite_observations(values)
    return (
        f"{name} ({result.target}): elpd_loo is not finite: the log likelihood is NaN or "
        f"infinite at {broken} of {total} observations in some draws (an "
        "observation outside the model's support, or an overflow). Check those observations "
        "and the model's likelihood there."
    )


JOINT = "all_observations"


def _observations(tree):
    """``(tree, scored, constants)``: a copy of ``tree`` whose ``log_likelihood`` group holds
    one variable ``all_observations`` (chain, draw, observation): every site's observations
    stacked by ``arviz_base.dataset_to_dataarray``, less those whose log likelihood is the
    same in every draw, which PSIS cannot fit. Those that are 0 (masked ones, ``obs_mask=``,
    ``handlers.mask``, or an observation certain under every draw) add exactly 0 to elpd_loo
    and p_loo and are not scored; ``constants`` holds the others' values (an observation that
    no latent parameter reaches, such as a regression's at ``x = 0`` without an intercept),
    which :func:`_loo` adds. ``scored``: the indices of the observations not 0 throughout
    (models are matched on their count before this, and on these after)."""
    import arviz_base
    import xarray as xr

    group = tree["log_likelihood"].to_dataset()
    joint = arviz_base.dataset_to_dataarray(
        group, sample_dims=["chain", "draw"], add_coords=False, new_dim="observation"
    )
    values = np.asarray(joint)
    zero = np.all(values == 0.0, axis=(0, 1))
    observed = np.flatnonzero(~zero)
    same = np.all(values == values[:1, :1], axis=(0, 1)) & np.isfinite(values[0, 0])
    varying = np.flatnonzero(~same)
    if varying.size < values.shape[2]:
        joint = joint.isel(observation=varying)
    tree = tree.copy()
    tree["log_likelihood"] = xr.DataTree(xr.Dataset({JOINT: joint}, attrs=group.attrs))
    constants = values[0, 0][same & ~zero]
    return tree, observed, constants.astype(np.float64)
