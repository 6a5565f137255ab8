"""The checks behind :func:`infer.sbc`, made before any posterior run: the arguments, the
model's sites (in simulation and given data), the simulated data and the test's level.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Sequence

import jax
import numpy as np

from infer import memory, validation
from infer.base import is_exact
from infer.caller import INFER_FRAMES
from infer.numpyro_data import unobserved_arguments
from infer.numpyro_models import is_factor
from infer.rank_uniformity import MAX_NULL_SIMULATIONS, MIN_LEVEL
from infer.registry import check_sampler_argument


class SBCInputError(ValueError):
    """An argument (or a combination of them) :func:`infer.sbc` refuses before any run."""


def checked_run(num_chains, num_samples, num_warmup, thin) -> dict:
    """The posterior runs' settings, checked as :func:`infer.sample` checks them."""
    run = dict(
        num_chains=validation.positive_int("num_chains", num_chains),
        num_samples=validation.positive_int("num_samples", num_samples),
        num_warmup=validation.positive_int("num_warmup", num_warmup, minimum=0),
        thin=validation.positive_int("thin", thin),
    )
    return run


def checked_level(alpha: float, num_params: int) -> float:
    """Each parameter's level, ``alpha / num_params``, if the ECDF test can resolve it: a
    p-value below it must be possible, else the check could never fail."""
    level = alpha / num_params
    if level < MIN_LEVEL * (1 - 1e-9):  # round-off of alpha / num_params is not a refusal
        least = math.ceil(MIN_LEVEL * num_params * 1e6) / 1e6  # rounded up: enough
        raise SBCInputError(
            f"alpha / num_params = {alpha:g} / {num_params} = {level:.3g}, the level each "
            f"parameter is tested at, is below {MIN_LEVEL:g}, the smallest level the ECDF test "
            f"is calibrated for ({MAX_NULL_SIMULATIONS:,} uniform rank sets): below it no "
            f"parameter could fail. Raise alpha (--alpha on the command line) to at least "
            f"{least:g}, or, in Python, test fewer parameters (var_names=)."
        )
    return level


def check_memory(model, num_simulations: int, shapes: dict, ranked: dict, run: dict) -> None:
    """Refuse, before the prior is simulated, simulations whose prior draws (every site,
    ``shapes``: name -> its shape and dtype) and gathered posterior draws ``(S, chains,
    draws, params)`` of the ``ranked`` sites (name -> values; float64 at most) cannot fit in
    host memory."""
    draws = num_simulations * run["num_chains"] * run["num_samples"] * sum(ranked.values()) * 8
    prior = num_simulations * sum(math.prod(shape.shape) for shape in shapes.values()) * 8
    parts = {"the prior simulations": prior, "every simulation's draws": draws}
    memory.check(
        memory.Need(draws + prior, prior, parts, draws),
        jax.devices()[:1],
        f"sbc of {getattr(model, '__name__', 'model')} with {num_simulations} simulations of "
        f"{run['num_chains']} chains x {run['num_samples']} draws",
        "Use fewer simulations (num_simulations), chains (num_chains) or draws (num_samples; "
        "raise thin to keep the ranks' independence).",
    )


def site_shapes(model, model_args: tuple, given: dict) -> dict:
    """``name -> jax.ShapeDtypeStruct`` of each sample and deterministic site of one run of
    the model with keyword arguments ``given``, traced abstractly (nothing runs)."""
    trace = _trace(model, tuple(model_args), given)
    return {
        name: jax.ShapeDtypeStruct(np.shape(site["value"]), site["value"].dtype)
        for name, site in trace.items()
        if site["type"] in ("sample", "deterministic")
    }


def ranked_sizes(problem, shapes: dict, var_names: tuple) -> dict:
    """``name -> values per simulation`` of the sites of ``var_names`` the model draws given
    data (``problem``: model, args, kwargs, observed), traced at zeros of the observed
    sites' ``shapes``: what the posterior runs keep, for the memory check before the prior
    is simulated. Every one of ``var_names`` where that trace fails."""
    model, model_args, model_kwargs, observed = problem
    stand_in = {name: np.zeros(shapes[name].shape, shapes[name].dtype) for name in observed}
    try:
        drawn = _drawn(_trace(model, tuple(model_args), dict(model_kwargs, **stand_in)))
    except Exception:  # noqa: BLE001 - a model that needs its real data: counted in full
        drawn = set(var_names)
    return {name: math.prod(shapes[name].shape) for name in var_names if name in drawn}


def _drawn(trace: dict) -> set:
    """The sites of ``trace`` that posterior draws hold: latent sample and deterministic."""
    return {
        name
        for name, site in trace.items()
        if site["type"] == "deterministic" or (site["type"] == "sample" and not site["is_observed"])
    }


def checked_arguments(model, sampler, observed, model_args, model_kwargs, var_names):
    """``(observed, var_names, model_kwargs)``, names as tuples, or an error saying what to fix."""
    check_sampler_argument(sampler)
    if is_exact(sampler):
        raise TypeError(f"sbc checks Markov-chain samplers; {sampler.name} makes exact draws.")
    names = (observed,) if isinstance(observed, str) else observed
    if not isinstance(names, Sequence) or not names or not all(isinstance(n, str) for n in names):
        raise TypeError(
            f"observed must name observed sites, e.g. 'y' or ['y', 'z']; got {observed!r}."
        )
    if not isinstance(model_args, tuple | list):
        raise TypeError(
            f"model_args must be a tuple of the model's other positional arguments, e.g. "
            f"(x,); got {type(model_args).__name__}."
        )
    if not isinstance(model_kwargs := model_kwargs or {}, dict):
        raise TypeError(f"model_kwargs must be a dict; got {type(model_kwargs).__name__}.")
    if given := [name for name in names if name in model_kwargs]:
        raise SBCInputError(
            f"model_kwargs holds {given}, which sbc draws from the model in every simulation; "
            "leave the observed data out of model_kwargs."
        )
    sites = model_sites(model, model_args, model_kwargs, tuple(names))
    parameters = [name for name, kind in sites.items() if kind in ("latent", "deterministic")]
    latent = [name for name in parameters if sites[name] == "latent"]
    given = {**model_kwargs, **dict.fromkeys(names)}  # each simulation passes the observed
    for name in unobserved_arguments(model, tuple(model_args), given, latent):
        warnings.warn(  # once, rather than from_numpyro's advice once per simulation
            f"sbc: the model's argument {name}=None is not given, so its site {name!r} is a "
            f"parameter here, ranked like the others. If it is data, add {name!r} to "
            "observed=.",
            UserWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    if var_names is None:
        if not latent:
            raise SBCInputError(
                f"the model has no latent sample sites (its sites: {sorted(sites)}): there is "
                "no parameter whose rank to test."
            )
        return tuple(names), tuple(latent), model_kwargs
    try:  # a name, or any collection of names (a list, a set, dict keys, a NumPy array)
        chosen = (var_names,) if isinstance(var_names, str) else tuple(var_names)
    except TypeError:
        chosen = (var_names,)
    if not all(isinstance(name, str) for name in chosen):
        raise TypeError(
            f"var_names must name parameters, e.g. 'mu' or ['mu', 'tau'] (among {parameters}); "
            f"got {var_names!r}."
        )
    wrong = [name for name in chosen if name not in parameters]
    if not chosen:
        raise SBCInputError(
            f"var_names must name at least one parameter; got {var_names!r}. Leave it out to "
            f"rank every parameter ({parameters})."
        )
    if wrong:
        raise SBCInputError(f"var_names must be among the parameters {parameters}; got {wrong}.")
    return tuple(names), chosen, model_kwargs


def model_sites(model, model_args: tuple, model_kwargs: dict, observed: tuple) -> dict:
    """``name -> kind`` of the model's sites run without its observations: ``"latent"``,
    ``"deterministic"`` or ``"simulated"`` (in ``observed``). Traced abstractly, computing
    nothing."""
    if not callable(model):
        raise TypeError(f"model must be a NumPyro model function; got {type(model).__name__}.")
    given = dict(model_kwargs, **dict.fromkeys(observed))  # None: the model simulates them
    try:
        trace = _trace(model, tuple(model_args), given)
    except TypeError as err:  # e.g. no keyword argument of an observed site's name
        if _takes_keywords(model, observed):  # the observed names are not what failed
            raise TypeError(
                f"calling the model with model_args={_short(model_args)} and keyword "
                f"arguments {sorted(given)} (the observed sites as None, for it to simulate "
                f"them) failed: {err}. Pass the model's other arguments as model_args= "
                "(positional, a tuple) or model_kwargs= (a dict)."
            ) from None
        raise TypeError(
            f"calling the model with {observed} as keywords failed: {err}. observed names the "
            "model's observed sites, each passed as the keyword argument of its name (y for "
            "numpyro.sample('y', ..., obs=y)): name the model's own."
        ) from None
    sites = {name: site["type"] for name, site in trace.items()}
    for name, site in trace.items():
        if site["type"] == "sample":
            sites[name] = "simulated" if name in observed else "latent"
            sites[name] = "fixed" if site["is_observed"] else sites[name]
            sites[name] = "factor" if is_factor(site) else sites[name]
    if factors := [name for name, kind in sites.items() if kind == "factor"]:
        raise SBCInputError(
            f"the model adds numpyro.factor term(s) {factors} to its log density: forward "
            "simulation draws parameters from the sample sites' priors alone, not from that "
            "changed prior, so the ranks cannot be uniform. Write the term as a prior "
            "distribution of a sample site, or check the model without it."
        )
    if fixed := [name for name, kind in sites.items() if kind == "fixed"]:
        raise SBCInputError(
            f"the model observes {fixed} with data sbc does not simulate, and ranks are uniform "
            "only when every observation is drawn from the model: add them to observed (and "
            "let the model simulate them when given None)."
        )
    if missing := [name for name in observed if sites.get(name) != "simulated"]:
        raise SBCInputError(
            f"observed names {missing}, which are not sample sites of the model; its sample "
            f"sites are {[n for n, kind in sites.items() if kind in ('latent', 'simulated')]}."
        )
    return sites


def _takes_keywords(model, names) -> bool:
    """Whether ``model``'s signature takes every one of ``names`` as a keyword argument
    (``True`` where it cannot be read)."""
    try:
        parameters = inspect.signature(model).parameters
    except (TypeError, ValueError):
        return True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return True
    return all(
        name in parameters and parameters[name].kind is not inspect.Parameter.POSITIONAL_ONLY
        for name in names
    )


def _short(values: tuple) -> str:
    """``values`` as a message shows them: arrays by shape."""
    shown = [f"<array {np.shape(v)}>" if np.ndim(v) else repr(v) for v in values]
    return f"({', '.join(shown)}{',' if len(shown) == 1 else ''})"


def _trace(model, model_args: tuple, given: dict) -> dict:
    """The model's trace with keyword arguments ``given``, traced abstractly (nothing runs)."""
    from numpyro import handlers

    trace: dict = {}

    def run():
        seeded = handlers.seed(model, rng_seed=0)
        trace.update(handlers.trace(seeded).get_trace(*model_args, **given))
        return 0

    jax.eval_shape(run)
    return trace


def posterior_var_names(problem, data: dict, var_names: tuple, chosen: bool) -> tuple:
    """The sites to rank, among those the model draws given ``data`` (one simulation's
    observations, name -> array): a model may draw a site only when it simulates (a
    mixture's component, marginalised when the data are given). Named ones it does not draw
    then are refused; by default they are left out, with a warning. A discrete latent site
    given the data is refused with what sbc can run."""
    model, model_args, model_kwargs, observed = problem
    trace = _trace(model, tuple(model_args), dict(model_kwargs, **data))
    drawn = _drawn(trace)
    discrete = [
        name
        for name, site in trace.items()
        if site["type"] == "sample" and not site["is_observed"] and site["fn"].support.is_discrete
    ]
    if discrete:
        raise SBCInputError(
            f"given its data the model draws discrete latent site(s) {discrete}, which the "
            "Markov-chain samplers cannot move. Marginalise them: make the mixture over their "
            "values the observed site's distribution (e.g. dist.MixtureSameFamily), which "
            "forward simulation draws from as well (sbc refuses numpyro.factor, whose term "
            "the prior simulation cannot see); or draw them only when the model simulates "
            "(observed given None) and marginalise them given data."
        )
    missing = [name for name in var_names if name not in drawn]
    if missing and chosen:
        raise SBCInputError(
            f"var_names {missing} are drawn when the model simulates its data but not given "
            f"data, so no posterior draws of them exist to rank the truth among; name sites "
            f"among {sorted(drawn)}."
        )
    kept = tuple(name for name in var_names if name in drawn)
    if missing:
        warnings.warn(
            f"sbc: the model draws {missing} only when it simulates its data, not given data: "
            f"they are not ranked (the ranked sites are {list(kept)}).",
            UserWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    if not kept:
        raise SBCInputError(
            "given its data the model draws none of its latent sites: nothing to rank."
        )
    return kept


def check_simulated_data(prior: dict, observed: tuple) -> None:
    """A ``ValueError`` when the prior simulated NaN or inf observations (the model's prior
    predictive breaks for some parameters), naming the site and the simulations."""
    for name in observed:
        values = np.asarray(prior[name])
        bad = np.flatnonzero(~np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1))
        if bad.size:
            raise SBCInputError(
                f"the prior simulated NaN or inf in {name!r} in {bad.size} of "
                f"{values.shape[0]} simulations (the first: simulation {int(bad[0])}): the "
                "model's prior predictive breaks for some prior draws (a log or sqrt of a "
                "negative value, an overflow). sbc ranks draws from every prior draw, so fix "
                "the model there or give its parameters priors that keep the data finite."
            )
