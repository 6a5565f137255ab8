"""Predictive checks: posterior predictive, prior and prior predictive draws of a NumPyro
model's result, as the ArviZ groups that ``az.plot_ppc_dist`` and ``az.plot_loo_pit`` read.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import jax
import numpy as np

from infer import validation
from infer.caller import INFER_FRAMES
from infer.keys import as_jax_key, as_key
from infer.numpyro_predictive import predictive_draws, site_names, sized_by_observations
from infer.result import Result
from infer.target import Target


def predictive(
    result: Result,
    target: Target,
    *,
    posterior: bool = True,
    prior: bool | None = None,
    num_prior_draws: int | None = None,
    seed=0,
) -> Result:
    """``result`` with the groups ``posterior_predictive`` (one simulated data set per draw,
    ``(num_chains, num_samples, *observation_shape)``) and, with ``prior``, ``prior`` (the
    latent sites) and ``prior_predictive`` (the observed sites) drawn from the prior
    (``(1, num_prior_draws, ...)``; default as many as the result's draws per chain), through
    NumPyro's ``Predictive`` with the model's observations left out.

    For a target on other data than the result was fitted to (new inputs, say, with the
    outcomes left to ``None``), the draws at the new data go to ArviZ's ``predictions`` group
    instead, the target's arrays to ``predictions_constant_data``, and ``observed_data`` and
    ``log_likelihood`` stay the fit's. The prior groups are then not drawn: ArviZ pairs
    ``prior_predictive`` with ``observed_data``, the fit's data.

    Args:
        result: a result of ``target``'s model (its draws hold the model's latent sites).
        target: the NumPyro target it was drawn from (``infer.Target.from_numpyro``), or
            one of the same model on new data.
        posterior: draw the posterior predictive (or the predictions).
        prior: draw the prior groups; default: when ``target`` holds the fit's data.
            ``True`` with a target on new data is refused.
        num_prior_draws: the prior groups' draws (default: the result's draws per chain);
            refused when the prior groups are not drawn.
        seed: an int seed or a ``jax.random.key(...)`` for the simulations.

    Returns:
        A new :class:`infer.Result` with those groups added.

    Raises:
        TypeError, ValueError: for a target that is not a NumPyro model's, or draws that do
            not hold its sites.
    """
    if not isinstance(result, Result):
        raise TypeError(f"result must be an infer.Result; got {type(result).__name__}.")
    if not isinstance(target, Target) or target.source is None:
        got = "an infer.Target of no NumPyro model" if isinstance(target, Target) else None
        raise TypeError(
            "target must be the NumPyro target the result was drawn from "
            "(infer.Target.from_numpyro(model, ...)): predictive checks simulate data from "
            f"the model; got {got or type(target).__name__}."
        )
    num_prior, seed = _checked_options(result, posterior, prior, num_prior_draws, seed)
    observed_before = result.groups.get("observed_data") or {}
    # a site observed in the fit but left to None in this target (new inputs, no outcomes)
    sites = site_names(target.source)
    # a discrete outcome left to None is out of the log density, not drawn: it is simulated
    left_out = list(target.notes.get("unobserved", ((), ()))[1])
    latent = [n for n in sites.latent if n not in observed_before and n not in left_out]
    observed = list(dict.fromkeys([*sites.observed, *observed_before, *left_out]))
    observed = [name for name in observed if name not in latent]
    same_data = _same_data(result, target)
    if prior and not same_data:
        raise ValueError(
            "prior=True with a target on other data than the result's: ArviZ pairs "
            "prior_predictive with observed_data, the fit's data. Draw the prior groups "
            "with the fit's own target, or leave prior out here."
        )
    prior = same_data if prior is None else prior
    _refuse_unused_prior_count(num_prior_draws, prior)
    if not (posterior or prior):
        raise ValueError(
            "posterior=False and prior=False leave nothing to draw: pass posterior=True, or "
            "prior=True."
            if same_data
            else "posterior=False leaves nothing to draw for a target on other data than the "
            "result's (the prior groups pair with the fit's data): pass posterior=True."
        )
    if posterior:
        if not same_data:  # first: a fit's imputed sites are named as such, not as foreign
            _refuse_other_ranks(result, target)
            _refuse_imputed(result, observed)
        dropped = _check_sites(result, latent, sites.deterministic, same_data)
        if not same_data:
            _refuse_local_latents(result, latent, observed, target, sites)
        _refuse_resized(result, latent, sites)
    _warn_if_another_model(result, target)  # sites alike (else refused above)
    groups = _with_data(result, target) if same_data else dict(result.groups)
    key_posterior, key_prior = jax.random.split(seed)
    if posterior:
        lead = (result.num_chains, result.num_samples)
        flat = {
            k: np.asarray(v).reshape(-1, *np.shape(v)[2:])
            for k, v in result.draws.items()
            if k not in dropped
        }
        # at new data, with the deterministic sites recomputed at the new inputs (mu = a + b x)
        kept = observed if same_data else [*observed, *sites.deterministic]
        simulated = predictive_draws(target.source, key_posterior, posterior=flat, sites=kept)
        if same_data:
            _refuse_fewer_simulated(simulated, groups.get("observed_data") or {})
            groups["posterior_predictive"] = _by_chain(simulated, observed, lead)
        else:  # ArviZ's groups for draws at new data: the fit's own groups stay as they were
            groups["predictions"] = _by_chain(simulated, kept, lead)
            groups["predictions_constant_data"] = dict(target.constant_data)
    if prior:
        drawn = predictive_draws(target.source, key_prior, num_samples=num_prior)
        _refuse_fewer_simulated(drawn, groups.get("observed_data") or {})
        latent = [*latent, *sites.deterministic]  # not a factor's empty value, nor left out
        groups["prior"] = {k: drawn[k][None] for k in latent if k in drawn}
        groups["prior_predictive"] = {k: drawn[k][None] for k in observed if k in drawn}
    return replace(result, groups=groups, dims=_named_dims(result, target, groups))


def _checked_options(result: Result, posterior, prior, num_prior_draws, seed) -> tuple:
    """``(num_prior_draws, key)`` checked (the draws per chain by default; the key of
    ``seed``), or a TypeError or ValueError naming the option."""
    if num_prior_draws is None:
        num_prior_draws = result.num_samples
    num_prior = validation.positive_int("num_prior_draws", num_prior_draws)
    if isinstance(seed, jax.Array | np.ndarray) and (
        jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key) or np.shape(seed) == (2,)
    ):
        try:  # a jax.random.key(...), or a legacy key's uint32 data
            key = as_jax_key(as_key(seed)[0])
        except (TypeError, ValueError) as err:  # its words name infer.sample's argument
            raise type(err)(str(err).replace("rng_key", "seed", 1)) from None
    else:  # any integer >= 0, as before (a 0-d integer array too)
        hint = "Pass an integer seed or a jax.random.key(...)."
        seed = validation.positive_int("seed", seed, hint, minimum=0)  # 0-d arrays too
        key = jax.random.key(validation.seed("seed", seed))  # as infer.sample's range
    if posterior not in (True, False):
        raise TypeError(f"posterior must be True or False; got {posterior!r}.")
    if prior not in (None, True, False):
        raise TypeError(
            f"prior must be True, False or None (when the data are the fit's); got {prior!r}."
        )
    return num_prior, key


def _refuse_unused_prior_count(num_prior_draws, prior: bool) -> None:
    if num_prior_draws is not None and not prior:
        raise ValueError(
            f"num_prior_draws={num_prior_draws!r} is for the prior groups, which are not drawn "
            "here (prior=False, or a target on other data than the result's): leave it out, "
            "or pass prior=True with the fit's own target."
        )


def _named_dims(result: Result, target: Target, groups: dict) -> dict:
    """``result``'s dims, and the target's (its plates' names) for the variables the result
    does not name: draws of ``Result.from_draws`` carry none, and their groups were named
    ``y_dim_0`` where a run's are named after the plates."""
    present = set(result.draws).union(*(set(values or {}) for values in groups.values()))
    named = dict(result.dims or {})
    for name, names in (target.dims or {}).items():
        if name in present and name not in named:
            named[name] = names
    return named


def _with_data(result: Result, target: Target) -> dict:
    """``result``'s groups, with the target's ``observed_data`` and ``constant_data`` where
    it records none (``Result.from_draws``): the fit's data, which PPC plots pair with."""
    groups = dict(result.groups)
    for group in ("observed_data", "constant_data"):
        if group not in groups and getattr(target, group):
            groups[group] = dict(getattr(target, group))
    return groups


def _refuse_other_ranks(result: Result, target: Target) -> None:
    """A ``ValueError`` for new inputs with another number of axes than the fit's of that
    name: broadcast against the model's arrays, an ``x_new`` of ``(m, 1)`` where the fit's
    ``x`` was ``(n,)`` gives predictions of ``(m, m)`` each, without an error."""
    before = result.groups.get("constant_data") or {}
    now = target.constant_data or {}
    for name in before.keys() & now.keys():
        old, new = np.shape(before[name]), np.shape(now[name])
        if len(old) != len(new):
            raise ValueError(
                f"the new inputs' {name} has shape {new}, {len(new)} axes, where the fit's "
                f"{name} had {old}, {len(old)}: the model would broadcast it into predictions "
                f"of another shape. Give {name} as many axes as the fit's (np.ravel(...) "
                "flattens; a[:, None] adds one)."
            )


def _refuse_imputed(result: Result, observed: list) -> None:
    """Draws of the values NumPyro imputes for masked observations (``obs_mask=`` splits a
    site ``y`` into the observed ``y_observed`` and the latent ``y_unobserved``, one value per
    observation of the fit) have the fit's shape, and nothing to do with new data: refuse
    them, saying what to do instead."""
    suffix = "_observed"
    bases = [name.removesuffix(suffix) for name in observed if name.endswith(suffix)]
    imputed = [f"{base}_unobserved" for base in bases if f"{base}_unobserved" in result.draws]
    if imputed:
        raise ValueError(
            f"the result's draws hold {imputed}: NumPyro's imputed values for the fit's masked "
            "observations (obs_mask=), shaped like the fit's data, which a model on new data "
            "cannot take. For predictions at new inputs, fit the model with handlers.mask "
            "(numpyro.handlers.mask(mask=...) around the observed site) instead of obs_mask: "
            "the masked observations then count for nothing, and nothing is imputed."
        )


def _refuse_fewer_simulated(simulated: dict, observed_data: dict) -> None:
    """A ``ValueError`` for an observed site of which the model, run without its
    observations, simulates fewer values per draw (``simulated``: a leading axis of draws)
    than its data hold: a site with no plate, whose shape came from ``obs=`` alone, draws one
    value, and ArviZ's predictive checks then fail on its shape ("n_dims must be one or
    higher")."""
    for name, data in observed_data.items():
        if name in simulated and np.size(simulated[name][0]) < np.size(data):
            raise ValueError(
                f"the model simulates {name!r} shaped {tuple(np.shape(simulated[name])[1:])} "
                f"per draw when its observations are left out, but the observed {name!r} is "
                f"shaped {np.shape(data)}: its shape comes from obs= alone. Predictive checks "
                "compare one simulated data set per draw with the data, so declare the shape "
                f"in the model: put the site in `with numpyro.plate('obs', {np.shape(data)[0]}):` "
                f"(or give its distribution .expand({list(np.shape(data))})). Its log "
                "likelihood is the same either way."
            )


def _by_chain(simulated: dict, names: list, lead: tuple) -> dict:
    """The ``names`` among ``simulated`` (a leading axis of draws), reshaped to ``lead``
    ``(num_chains, num_samples)`` followed by each site's shape."""
    return {
        k: simulated[k].reshape(*lead, *simulated[k].shape[1:]) for k in names if k in simulated
    }


def _check_sites(result: Result, latent: list, deterministic: list, same_data: bool) -> list:
    """The draws must hold the model's latent sites and nothing but its sites; at new data,
    draws of sites the model does not make there (a deterministic site made only when the
    outcome is given) are the names returned, with a warning, to be left out."""
    missing = [name for name in latent if name not in result.draws]
    extra = [name for name in result.draws if name not in (*latent, *deterministic)]
    if extra and not missing and not same_data:
        warnings.warn(
            f"the model makes no site {', '.join(extra)} at these arguments (a deterministic "
            "site made only when the outcome is given?): the draws of it are left out of the "
            "predictions.",
            UserWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
        return extra
    if missing or extra:
        fix = "Pass a result drawn from this model, infer.sample(seed, target, ...)."
        if missing and "observed_data" not in result.groups:
            fix += (
                " This result records no observed data (Result.from_draws?), so a site this "
                "target leaves unobserved (an argument left to None) counts as a parameter."
            )
        if missing and "keep" in result.info:
            fix = (
                f"The run kept only {', '.join(result.info['keep'])} (keep=): sample again "
                "with keep= listing every latent site, or without it, or pass posterior=False."
            )
        raise ValueError(
            f"result's draws do not fit the model: they lack its latent site(s) "
            f"{', '.join(missing) or '(none)'} and hold {', '.join(extra) or '(none)'} that it "
            f"does not have (the draws hold {', '.join(result.draws)}). {fix}"
        )
    return []


def _warn_if_another_model(result: Result, target: Target) -> None:
    """A warning when ``result`` was drawn from a target of another name (``from_draws``
    records none): its sites match, but its likelihood may not."""
    if result.target not in ("external", target.name):
        warnings.warn(
            f"the result was drawn from target {result.target!r} and this target is "
            f"{target.name!r}: predictive runs this target's model on the result's draws, "
            "which is right only for the same model. If it is the same model, name the "
            f"target as the result's: target.with_options(name={result.target!r}).",
            UserWarning,
            skip_file_prefixes=INFER_FRAMES,
        )


def _refuse_local_latents(
    result: Result, latent: list, observed: list, target: Target, sites
) -> None:
    """A ``ValueError`` naming the latent sites that hold one value per observation of the
    fit (in a plate of an observed site's, or sized by the data), whose draws say nothing of
    the new inputs' own values (``sites``: the model's at ``target``'s arguments)."""
    shared = set().union(*(sites.plates.get(name, set()) for name in observed))
    following = sized_by_observations(target.source, sites, observed)
    named = [n for n in latent if sites.plates.get(n, set()) & shared or n in following]
    if named:
        shown = ", ".join(f"{n} {np.shape(result.draws[n])[2:]}" for n in named)
        raise ValueError(
            f"the model's latent site(s) {shown} hold a value per observation of the fit (a "
            "plate they share with the observations, or a shape that follows the data): the "
            "draws say nothing of the new inputs' own values. Predict at new inputs with a "
            "model whose latent sites are not per observation, or sample it again with the "
            "new data."
        )


def _refuse_resized(result: Result, latent: list, sites) -> None:
    """A ``ValueError`` naming the latent sites whose draws are shaped otherwise than the
    model makes them at the target's arguments (a size argument changed, or draws of another
    model): NumPyro would broadcast them, or take a group's value from another."""
    resized = [
        f"{name} {np.shape(result.draws[name])[2:]} in the draws but {sites.latent_shapes[name]} "
        "here"
        for name in latent
        if np.shape(result.draws[name])[2:] != sites.latent_shapes[name]
    ]
    if resized:
        raise ValueError(
            f"the model's latent site(s) {', '.join(resized)}: at these arguments the model "
            "sizes them otherwise than the draws hold them, so the draws do not fill them. An "
            "argument that sets a size (a number of groups) differs from the fit's: pass the "
            "fit's value. Or the draws are of another model (Result.from_draws?): give draws "
            "shaped as the model's sites."
        )


def _same_data(result: Result, target: Target) -> bool:
    """Whether ``target`` holds the data ``result`` was fitted to (a result that does not
    record its data counts as fitted to them)."""
    for group, now in (
        ("observed_data", target.observed_data),
        ("constant_data", target.constant_data),
    ):
        before = result.groups.get(group)
        if before is None:
            continue
        if set(before) != set(now or {}) or not all(
            _same_values(before[k], now[k]) for k in before
        ):
            return False
    return True


def _same_values(before, now) -> bool:
    """Equal shapes and values, floats compared at the lower of their two precisions: the
    fit's float32 ``x`` and the float64 array it was made from are the same data."""
    before, now = np.asarray(before), np.asarray(now)
    if before.shape != now.shape:
        return False
    if before.dtype.kind == now.dtype.kind == "f" and before.dtype != now.dtype:
        lower = min(before.dtype, now.dtype, key=lambda dtype: dtype.itemsize)
        before, now = before.astype(lower), now.astype(lower)
    return np.array_equal(before, now, equal_nan=True)
