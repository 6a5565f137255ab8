"""Simulation-based calibration (SBC): does a sampler draw from the posterior of a model?

Talts, Betancourt, Simpson, Vehtari and Gelman (2018): draw parameters from a NumPyro model's
prior and data from the model given them, run the sampler on the posterior given the data,
and rank each true parameter among the ``L`` posterior draws. For a right sampler the truth is
one more posterior draw, so its rank is uniform on ``0..L``; a too-narrow sampler piles ranks
at both ends, a too-wide one in the middle, a biased one at one end.

* **Draws**: ``num_chains`` chains of ``num_samples`` draws, every ``thin``-th step, pooled
  (``L = num_chains * num_samples``). Autocorrelated draws pile ranks at both ends as a
  too-narrow sampler does: thin until :attr:`SBCResult.ess_ratio`, the median bulk ESS / ``L``,
  is near 1 (a note says when it is under 1/2). The defaults suit NUTS; random walks need
  ``thin`` in the hundreds.
* **One compiled program**: the simulated data are arguments of the compiled programs
  (:meth:`infer.Target.from_numpyro`), so all simulations reuse the first one's programs
  (:attr:`SBCResult.compiled_simulations` counts those that compiled). They are not vmapped as
  extra chains: each has its own data, and a run has one target.
* **Uniformity**: the simultaneous ECDF test of Säilynoja, Bürkner and Vehtari (2022) for
  discrete ranks (:mod:`infer.rank_uniformity`). At ``z = k / (L + 1)`` (up to 256 ``k`` in
  ``1..L``), ``S`` times the ECDF is Binomial(``S``, ``z``); the statistic is the smallest
  two-sided pointwise tail probability, calibrated on 20,000 uniform rank sets (a fixed
  generator), more for a small ``alpha / num_params`` (enough for ~20 to fall below it).
  No bins, and power against narrow, wide and shifted posteriors alike.
  ``rank_uniformity.chi2_test`` gives the classic statistic too: Pearson's chi-square on the
  most bins (at most 20, as Talts et al.) whose expected counts are all >= 5 (or 2 bins).
* **Multiple testing**: a p-value per scalar parameter; the check passes when each is at
  least ``alpha / num_params`` (Bonferroni), the level of the plotted bands too.

Example:
    >>> from models.targets import EIGHT_SCHOOLS_SIGMA, eight_schools_model
    >>> check = infer.sbc(0, eight_schools_model, infer.nuts(), observed="y",
    ...                   model_args=(EIGHT_SCHOOLS_SIGMA,), num_simulations=100)
    >>> check.passed, check.failed, check.pvalue
    >>> check.plot(path="sbc.png")
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import jax
import numpy as np

from infer import calibration_checks as checks
from infer import chain_stats, validation
from infer.keys import as_jax_key, as_key
from infer.plot_selection import checked_path
from infer.progress import check_progress, progress_bar
from infer.rank_uniformity import ecdf_pvalues, plot_ranks
from infer.reported_names import element_label
from infer.stuck_chains import stuck_chains
from infer.target import Target


@dataclass(frozen=True)
class SBCResult:
    """What :func:`sbc` found.

    Attributes:
        ranks: ``(num_simulations, num_params)`` ints in ``0..num_draws``.
        names: the ``num_params`` scalar parameters, e.g. ``"mu"``, ``"theta[3]"``.
        num_draws: ``L``, the posterior draws each rank is taken among.
        alpha: the family-wise level; each parameter is tested at ``alpha / num_params``.
        pvalue: ``(num_params,)`` p-values of the simultaneous ECDF test.
        ess_ratio: ``(num_params,)`` median over simulations of bulk ESS / ``num_draws``.
        divergent_simulations: simulations with a divergent transition among the kept draws.
        stuck_simulations: simulations with a chain whose kept draws never changed (tied
            ranks, which an ECDF test of few simulations can take for uniform ones).
        compiled_simulations: simulations that compiled a program (the rest reused it).
        timing: seconds: ``total``, ``first`` (the first simulation, compilation included)
            and ``per_simulation`` (the mean of the others).
        sampler, model: names. notes: the runs' distinct warnings, and advice on thinning.
    """

    ranks: np.ndarray
    names: list
    num_draws: int
    alpha: float
    pvalue: np.ndarray
    ess_ratio: np.ndarray
    divergent_simulations: int = 0
    stuck_simulations: int = 0
    compiled_simulations: int = 0
    timing: dict = field(default_factory=dict)
    sampler: str = "sampler"
    model: str = "model"
    notes: list = field(default_factory=list)

    @property
    def num_simulations(self) -> int:
        return self.ranks.shape[0]

    @property
    def failed(self) -> list[str]:
        """The parameters whose p-value is below ``alpha / num_params``."""
        level = self.alpha / len(self.names)
        return [name for name, p in zip(self.names, self.pvalue, strict=True) if p < level]

    @property
    def inconclusive(self) -> bool:
        """Some simulation had a chain that never moved: its ranks say nothing of the
        sampler's calibration, whatever the test finds."""
        return self.stuck_simulations > 0

    @property
    def passed(self) -> bool:
        """No parameter failed: the ranks look uniform at the family-wise level ``alpha``,
        and no chain was stuck (see :attr:`inconclusive`)."""
        return not self.failed and not self.inconclusive

    @property
    def verdict(self) -> str:
        """``"passed"``, ``"FAILED: <parameters>"`` or ``"INCONCLUSIVE: ..."`` (stuck chains,
        whatever the test found: their tied ranks fail or pass it by chance)."""
        if self.inconclusive:
            found = f"; the test rejects {', '.join(self.failed)}, " if self.failed else "; "
            return (
                f"INCONCLUSIVE: {self.stuck_simulations} of {self.num_simulations} simulations "
                f"had a chain that never moved{found}tied ranks say nothing of calibration: "
                "run longer or tune the sampler so that every chain moves"
            )
        if self.failed:
            return f"FAILED: {', '.join(self.failed)}"
        return "passed"

    def __repr__(self) -> str:
        verdict = self.verdict
        return (
            f"SBCResult({self.sampler} on {self.model}: {self.num_simulations} simulations, "
            f"{len(self.names)} parameters, ranks among {self.num_draws} draws, "
            f"min p-value {float(np.min(self.pvalue)):.3g}, {verdict})"
        )

    def plot(self, path=None):
        """The ranks' ECDF differences in their simultaneous bands; see
        :func:`infer.rank_uniformity.plot_ranks`. ``path`` is checked before drawing."""
        if path is not None:
            checked_path(path)
        return plot_ranks(self, path=path)


def sbc(
    rng_key,
    model: Callable,
    sampler,
    *,
    observed: str | Sequence[str],
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    num_simulations: int = 200,
    num_chains: int = 4,
    num_samples: int = 25,
    num_warmup: int = 500,
    thin: int = 4,
    var_names: Sequence[str] | None = None,
    alpha: float = 0.01,
    progress=False,
) -> SBCResult:
    """Simulation-based calibration of ``sampler`` on the NumPyro ``model``.

    Args:
        rng_key: an int seed or a ``jax.random.key``; the same seed gives the same ranks.
        model: a NumPyro model that simulates its observed sites when they are not given.
        sampler: a Markov-chain sampler (``infer.nuts()``, ``infer.mala()``, your own).
        observed: the observed sites' names. Each is also the keyword argument the model
            takes its observation from (NumPyro's ``numpyro.sample("y", ..., obs=y)``).
        model_args: the model's other positional arguments (covariates, sizes), the same
            in every simulation.
        model_kwargs: its other keyword arguments, the same in every simulation.
        num_simulations: ``S``, draws from the prior and posterior runs; at least 10 (the
            chi-square test's fewest: about 5 ranks expected in each of 2 bins).
        num_chains: chains per posterior run; the ranks are among
            ``num_chains * num_samples`` draws.
        num_samples: kept draws per chain, as in :func:`infer.sample`.
        num_warmup: warm-up steps per chain, as in :func:`infer.sample`.
        thin: keep every ``thin``-th step, as in :func:`infer.sample`.
        var_names: the sites whose ranks are tested; default every latent sample site
            (deterministic sites may be named too).
        alpha: the family-wise level of the check.
        progress: a progress bar over the simulations.

    Returns:
        An :class:`SBCResult`.

    Raises:
        TypeError, ValueError: before any posterior run, for bad arguments: an observed
            name that is not a sample site or that ``model_kwargs`` holds, an observed site
            not in ``observed``, an exact sampler, an unknown variable, a model without
            latent sites, a discrete latent site, data the prior simulates as NaN or inf, or
            ``alpha / num_params`` below the smallest level the test is calibrated for
            (:data:`infer.rank_uniformity.MIN_LEVEL`).
    """
    from numpyro.infer import Predictive

    start = time.perf_counter()
    chosen = var_names is not None
    observed, var_names, model_kwargs = checks.checked_arguments(
        model, sampler, observed, model_args, model_kwargs, var_names
    )
    num_simulations = validation.positive_int(
        "num_simulations",
        num_simulations,
        "The chi-square test of the ranks needs about 5 expected in each of 2 bins at least; "
        "100 or more give it power.",
        minimum=10,
    )
    run = checks.checked_run(num_chains, num_samples, num_warmup, thin)
    alpha = validation.probability("alpha", alpha)
    check_progress(progress)
    key_prior, key_ties, key_runs = jax.random.split(as_jax_key(as_key(rng_key)[0]), 3)
    prior_kwargs = dict(model_kwargs, **dict.fromkeys(observed))  # None: simulate them
    shapes = checks.site_shapes(model, model_args, prior_kwargs)
    ranked = checks.ranked_sizes((model, model_args, model_kwargs, observed), shapes, var_names)
    checks.check_memory(model, num_simulations, shapes, ranked, run)
    simulate = Predictive(model, num_samples=num_simulations, parallel=True)  # eager vmap: a
    prior = simulate(key_prior, *model_args, **prior_kwargs)  # second call compiles nothing
    prior = {name: np.asarray(value) for name, value in prior.items()}
    checks.check_simulated_data(prior, observed)
    first_data = {name: prior[name][0] for name in observed}
    sites = (model, model_args, model_kwargs, observed)
    var_names = checks.posterior_var_names(sites, first_data, var_names, chosen)
    names, truth = _flatten({name: prior[name] for name in var_names}, 1)
    level = checks.checked_level(alpha, len(names))
    seeds = np.asarray(jax.random.randint(key_runs, (num_simulations,), 0, 2**31 - 1))
    problem = (model, model_args, model_kwargs, observed, var_names)
    draws, facts = _posterior_runs(problem, sampler, prior, seeds, run, progress)
    tie_breaks = np.random.default_rng(np.asarray(jax.random.key_data(key_ties)).tolist())
    ranks = rank_of(draws, truth, tie_breaks)
    num_draws = draws.shape[1] * draws.shape[2]
    ess = _ess_ratio(draws)
    facts["notes"] += _thinning_notes(ess, num_draws, run["num_samples"])
    first, *rest = facts.pop("seconds")
    timing = {"total": time.perf_counter() - start, "first": first}
    facts.update(timing=dict(timing, per_simulation=float(np.mean(rest))), sampler=sampler.name)
    model_name = getattr(model, "__name__", "model")
    pvalue = ecdf_pvalues(ranks, num_draws, level)
    return SBCResult(ranks, names, num_draws, alpha, pvalue, ess, model=model_name, **facts)


#: Draws per chain below which the bulk ESS says nothing: with 9 or fewer (split into halves
#: of 4) it is one value for independent draws and for a chain that barely moves.
MIN_ESS_DRAWS = 10


def _thinning_notes(ess: np.ndarray, num_draws: int, num_samples: int) -> list[str]:
    """What the draws' ESS says of the ranks' independence (ranks of autocorrelated draws
    pile at both ends, as a too-narrow sampler's do)."""
    if num_samples < MIN_ESS_DRAWS:
        return [
            f"{num_samples} draws per chain are too few for an ESS ({MIN_ESS_DRAWS} at least: "
            "under it ArviZ's bulk ESS is one value whatever the draws): the ranks' "
            "independence was not checked; draw more (num_samples) and thin."
        ]
    if np.nanmin(ess, initial=np.inf) < 0.5:
        return [
            f"the median bulk ESS is under half the {num_draws} draws for some parameters: "
            "ranks of autocorrelated draws pile at both ends; raise thin."
        ]
    return []


def _flatten(values: dict, lead: int) -> tuple[list[str], np.ndarray]:
    """Scalar names and float64 values ``(*leading, num_params)`` of ``name -> (*leading,
    ...)`` with ``lead`` leading axes."""
    names, columns = [], []
    for name, value in values.items():
        event = value.shape[lead:]
        columns.append(value.reshape(*value.shape[:lead], -1))
        if not event:
            names.append(name)
        else:
            names.extend(element_label(name, event, i) for i in range(int(np.prod(event))))
    return names, np.concatenate(columns, axis=-1).astype(np.float64)


def _posterior_runs(problem, sampler, prior, seeds, run, progress) -> tuple[np.ndarray, dict]:
    """Every simulation's draws ``(S, num_chains, num_samples, num_params)``, and facts of
    the runs: seconds each, divergences, compilations, warnings."""
    from infer.driver import sample

    model, model_args, model_kwargs, observed, var_names = problem
    draws, seconds, notes = [], [], []
    compiled = divergent = stuck = 0
    with progress_bar(progress, len(seeds), "sbc", unit="simulation") as bar:
        for s, seed in enumerate(seeds):
            started = time.perf_counter()
            data = {name: np.asarray(prior[name][s]) for name in observed}
            target = Target.from_numpyro(model, *model_args, **model_kwargs, **data)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = sample(int(seed), target, sampler, keep=list(var_names), **run)
            said = (
                "divergent",
                "the model's argument",
            )  # the second once, by checks.checked_arguments
            notes.extend(
                str(w.message) for w in caught if not any(s in str(w.message) for s in said)
            )
            compiled += not result.info.get("cache_hit", False)
            kept = {n: np.asarray(result.draws[n]) for n in var_names}
            stuck += bool(stuck_chains(result))  # by the position, not the ranked sites
            divergent += bool(np.any(result.stats.get("diverging", False)))
            draws.append(_flatten(kept, 2)[1])
            seconds.append(time.perf_counter() - started)
            bar.update(1)
    notes = list(dict.fromkeys(notes))[:5]  # the first five distinct warnings
    facts = {
        "divergent_simulations": divergent,
        "stuck_simulations": stuck,
        "compiled_simulations": compiled,
    }
    return np.stack(draws), dict(facts, notes=notes, seconds=seconds)


def rank_of(draws: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ranks ``(S, num_params)``: how many of each simulation's draws ``(S, num_chains,
    num_samples, num_params)`` lie below its truth ``(S, num_params)``; ties split at random."""
    pooled = draws.reshape(draws.shape[0], -1, draws.shape[-1])
    below = np.sum(pooled < truth[:, None, :], axis=1)
    ties = np.sum(pooled == truth[:, None, :], axis=1)
    return below + rng.integers(0, ties + 1)


def _ess_ratio(draws: np.ndarray) -> np.ndarray:
    """Median over simulations of bulk ESS / draws, per parameter (NaN under
    :data:`MIN_ESS_DRAWS` draws per chain)."""
    num_simulations, num_chains, num_samples, num_params = draws.shape
    if num_samples < MIN_ESS_DRAWS:
        return np.full(num_params, np.nan)
    chains = np.moveaxis(draws, 0, 2).reshape(num_chains, num_samples, -1)
    ess = np.asarray(chain_stats.ess(chains)).reshape(num_simulations, num_params)
    return np.nanmedian(ess, axis=0) / (num_chains * num_samples)
