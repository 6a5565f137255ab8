"""Draws from a NumPyro model's predictive distributions (through NumPyro's ``Predictive``)
and its site names by kind, for :func:`infer.predictive`."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from infer.numpyro_failures import abstract_trace
from infer.numpyro_models import ModelSource, is_observation


def predictive_draws(
    source: ModelSource,
    rng_key,
    *,
    posterior: dict | None = None,
    num_samples: int | None = None,
    sites: list | None = None,
) -> dict:
    """NumPyro's ``Predictive`` on the model with its observations left out, so that observed
    sites are drawn: given ``posterior`` (constrained site values with one leading sample
    axis) the posterior predictive, else ``num_samples`` draws of every site from the prior.
    ``sites``: the sites to return (default all): the others are not gathered over the
    draws (a deterministic site per observation doubled the memory of a predictive check).

    Returns:
        site name -> array with a leading sample axis (numpy).
    """
    from numpyro.infer import Predictive

    predictive = Predictive(
        _unobserved(source.model),
        posterior_samples=posterior,
        num_samples=num_samples,
        return_sites=sites,
    )
    return {k: np.asarray(v) for k, v in predictive(rng_key, *source.args, **source.kwargs).items()}


class SiteNames(NamedTuple):
    """A model's site names by kind, in the order the model makes them."""

    latent: list  # sampled and not observed: what its posterior draws hold
    observed: list
    deterministic: list  # numpyro.deterministic: draws hold them too
    latent_shapes: dict  # latent site -> the shape of one value, at these arguments
    plates: dict  # sample site -> the names of the plates it is in
    sample_shapes: dict  # every sample site (observed or not) -> the shape of its value


def site_names(source: ModelSource) -> SiteNames:
    """The model's sites by kind, from one abstract trace."""
    trace = abstract_trace(source.model, source.args, source.kwargs)
    sampled = {n: s["is_observed"] for n, s in trace.items() if s["type"] == "sample"}
    shapes = {name: tuple(getattr(trace[name]["value"], "shape", ())) for name in sampled}
    latent = [name for name, observed in sampled.items() if not observed]
    observed = [name for name, site in trace.items() if is_observation(site)]

    return SiteNames(
        latent,
        observed,
        [name for name, site in trace.items() if site["type"] == "deterministic"],
        {name: shapes[name] for name in latent},
        {
            name: {frame.name for frame in trace[name].get("cond_indep_stack", ())}
            for name in sampled
        },
        shapes,
    )


def sized_by_observations(source: ModelSource, sites: SiteNames, observed: list) -> list:
    """The latent sites whose shape follows the number of observations (a plate of their own
    sized by the data, ``expand([x.shape[0]])``, or one they share with the observations):
    those whose shape changes when every array argument as long as an ``observed`` site is
    one row longer (the last row again). None (an empty list) where the model takes no such
    arguments, or fails on them."""
    lengths = {sites.sample_shapes[n][0] for n in observed if sites.sample_shapes.get(n)}

    def longer(leaf):
        if isinstance(leaf, np.ndarray | jax.Array) and leaf.ndim and leaf.shape[0] in lengths:
            return np.concatenate([np.asarray(leaf), np.asarray(leaf)[-1:]])
        return leaf

    args, kwargs = jax.tree.map(longer, (source.args, source.kwargs))
    try:
        trace = abstract_trace(source.model, args, kwargs)
    except Exception:  # noqa: BLE001 - a model that refuses other sizes: nothing to tell
        return []
    return [
        name
        for name in sites.latent_shapes
        if name in trace
        and tuple(getattr(trace[name]["value"], "shape", ())) != sites.latent_shapes[name]
    ]


def _unobserved(model: Callable) -> Callable:
    """``model`` with its observed sites drawn instead of conditioned on their values."""
    from numpyro.primitives import Messenger

    class Unobserve(Messenger):
        def process_message(self, msg):
            if msg["type"] == "control_flow":
                _unobserved_bodies(msg)
            if is_observation(msg):
                msg["value"] = None
                msg["is_observed"] = False

    def wrapped(*args, **kwargs):
        with Unobserve():
            return model(*args, **kwargs)

    return wrapped


def _unobserved_bodies(msg: dict) -> None:
    """A ``scan``'s or ``cond``'s bodies with their observations left out too: they run
    apart from the handlers around them, their sites replayed to those after (left observed
    there, a scan's carry was the data, and each step was drawn around the observed last
    one). Observations a ``condition`` handler gives them (re-applied around the bodies, by
    the entries of ``substitute_stack``) are dropped as well."""
    from numpyro.contrib.control_flow.cond import cond_wrapper
    from numpyro.contrib.control_flow.scan import scan_wrapper

    bodies = {scan_wrapper: (0,), cond_wrapper: (1, 2)}.get(msg["fn"], ())
    msg["args"] = tuple(
        _unobserved(arg) if i in bodies else arg for i, arg in enumerate(msg["args"])
    )
    if bodies:
        stack = msg["kwargs"].get("substitute_stack", [])
        msg["kwargs"]["substitute_stack"] = [entry for entry in stack if entry[0] != "condition"]
