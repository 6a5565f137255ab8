"""The result of a Markov-chain run, and the checks cheap enough to make after every run."""

from __future__ import annotations

import math
import time
import warnings

import jax
import numpy as np

from infer import convergence, draw_blocks
from infer.base import hook
from infer.caller import INFER_FRAMES
from infer.diagnostics import DiagnosticWarning
from infer.draws_checks import imprecise_run, outside_probabilities
from infer.flag_rules import (
    divergence_advice,
    kept_nan_draws,
    rejected_nonfinite_message,
    skipped_steps_message,
    skips_steps,
)
from infer.loglik import pointwise
from infer.model_comparison import nonfinite_observations
from infer.placement import to_host
from infer.result import Result, arviz_stat_names
from infer.run_state import ChainState
from infer.runner import Run
from infer.store import DATA_GROUPS, open_store, reads_from
from infer.stuck_chains import chain_list, stuck_chains, why_stuck


def _dims(target, draws: dict, groups: dict, keep) -> dict:
    """The target's ``dims``, less the variables ``keep`` left out (to_arviz warns about
    names no group holds: those would be misspellings, these are not)."""
    dims = dict(target.dims or {})
    if keep is None:
        return dims
    present = set(draws).union(*(set(values) for values in groups.values()))
    return {name: names for name, names in dims.items() if name in present}


def markov_result(
    run: Run, until, stopped: str | None, failing: dict, wall_start: float, store=None, keep=None
):
    """The :class:`infer.Result` of a finished Markov-chain run: constrained draws (only the
    names in ``keep``, when given), ArviZ stats, run facts and the state to resume from;
    warns about divergences, stuck chains and a stopping rule that ran out of budget. With a
    ``store``, the draws and stats are its arrays, read lazily."""
    record, target, sampler = run.record, run.target, run.sampler
    groups = {}
    if store is not None:
        if store.group is not None:
            store.finish()
        draws, stats = store.arrays() if store.group is not None else ({}, {})
        written = ("log_likelihood", *DATA_GROUPS) if store.group is not None else ()
        groups = {name: store.arrays_of(name) for name in written if name in store.group}
    else:
        draws, stats = _gathered(run)
        groups = _data_groups(run)
    if not draws:
        raise ValueError("the run kept no draws: num_samples draws are needed after warm-up.")
    if keep is not None:
        draws = {name: value for name, value in draws.items() if name in keep}
    info = _run_facts(run, stats)
    if keep is not None:
        info["keep"] = sorted(keep)  # what predictive checks need to know is missing
    num_kept = next(iter(stats.values())).shape[1]
    # where these draws sit among their chains' draws: infer.concat checks order by it
    info["draw_range"] = [record.num_draws - num_kept, record.num_draws]
    if until is not None:
        info["until"] = {
            **until.as_dict(),
            "stopped": stopped,
            "num_draws": record.num_draws,
            "shortfalls": failing,
        }
    state = ChainState(
        record.carry,
        run.chain_keys,
        record.step,
        record.num_warmup,
        record.thin,
        run.seed,
        run.fingerprint,
        run.superchain_size,
        sampler,
    )
    result = Result(
        draws=draws,
        stats=stats,
        timing={
            "compile": run.compile_seconds,
            "warmup": record.warmup_seconds,
            "sampling": record.sampling_seconds,
            "total": time.perf_counter() - wall_start,
        },
        num_logdensity_evals=record.num_logdensity_evals,
        num_grad_evals=record.num_grad_evals,
        sampler=sampler.name,
        settings=sampler.settings(),
        seed=run.seed,
        target=target.name,
        num_warmup=record.num_warmup,
        thin=record.thin,
        info=info,
        ground_truth=target.ground_truth,
        state=state,
        groups=groups,
        dims=_dims(target, draws, groups, keep),
    )
    if stopped == "max_samples":
        warnings.warn(
            f"{sampler.name} on {target.name}: stopped at the budget of {until.max_samples} "
            f"draws per chain before converging (R-hat <= {until.rhat}, ESS >= {until.ess:g}); "
            f"short: {convergence.describe(failing, until.ess)}. Raise max_samples, or look at "
            "the trace and rank plots.",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    if store is not None:
        store.close(_flat_attrs(result.attrs()))
        result._tree = open_store(store.path)
        reads_from(store.path, result)
    warn_if_unhealthy(result)
    return result


def _run_facts(run: Run, stats: dict) -> dict:
    """``result.info`` of a Markov-chain run: the compile-cache hit, the memory estimate, what
    the sampler tunes toward, the final step sizes and proposal scales, stuck chains,
    non-finite proposals per chain and the superchains."""
    record, sampler = run.record, run.sampler
    info = {"cache_hit": run.compile_seconds == 0.0, **run.target.result_info()}
    if run.memory is not None:
        info["memory_estimate"] = {
            "host_bytes": run.memory.host,
            "device_bytes": run.memory.device,
            "result_bytes": run.memory.result,
        }
    position = record.carry.kernel_state.position  # leaves (chains, ...)
    dim = sum(math.prod(np.shape(leaf)[1:]) for leaf in jax.tree.leaves(position))
    target_accept = hook(sampler, "target_acceptance")(dim)
    if target_accept is not None:
        info["target_accept"] = target_accept
        info["acceptance_band"] = list(hook(sampler, "acceptance_band")(target_accept))
    if "step_size" in stats:
        info["step_size"] = stats["step_size"][:, -1].tolist()
    scale = getattr(record.carry.params, "scale", None)
    if scale is not None and np.ndim(scale) > 1:
        info["proposal_std"] = scale_std(to_host(scale)).tolist()
    if record.moved is not None and record.num_draws > 1:
        info["stuck_chains"] = [int(c) for c in np.flatnonzero(~record.moved)]
    if record.nonfinite is not None and "nonfinite" in stats:
        info["nonfinite_proposals"] = record.nonfinite.tolist()  # per chain, warm-up included
        if not getattr(sampler, "rejects_nonfinite", True):
            info["skips_nonfinite"] = True  # counted steps were skipped, not rejected
    if run.superchain_size > 1:
        info["superchains"] = record.carry_chains() // run.superchain_size
    if getattr(sampler, "evaluation_fraction", 1.0) != 1.0:  # minibatch evaluations
        info["evaluation_fraction"] = float(sampler.evaluation_fraction)
    return info


def _data_groups(run: Run) -> dict:
    """The ArviZ groups the target's data give: ``log_likelihood`` (a pass over the gathered
    draws), ``observed_data`` and ``constant_data``."""
    target, groups = run.target, {}
    if target.loglik_fn is not None and run.record.positions:
        loglik = pointwise(target, run.record.positions[0])
        if loglik:  # a model with no observed site has none
            groups["log_likelihood"] = loglik
    return {**groups, **target.data_groups()}


def _gathered(run: Run) -> tuple[dict, dict]:
    """``(draws, stats)`` from the draws gathered in memory: constrained, and named as
    ArviZ names them."""
    record, target = run.record, run.target
    positions, logdensity, infos = record.stacked()
    if positions is None:
        return {}, {}
    # one part from now on: the chunks' memory is freed
    record.positions, record.logdensity, record.infos = [positions], [logdensity], [infos]
    if target.constrain_fn is None:  # names only: the result shares the gathered arrays
        draws = {name: np.asarray(value) for name, value in target.constrain(positions).items()}
    else:
        on_device = jax.device_put(positions, run.chain_keys.sharding)
        draws = to_host(dict(run.programs.constrain(on_device, run.data)))
    return draws, arviz_stat_names(infos, logdensity)


def _flat_attrs(attrs: dict) -> dict:
    return {k: v if isinstance(v, (str, int, float, bool)) else str(v) for k, v in attrs.items()}


def scale_std(scale: np.ndarray) -> np.ndarray:
    """Per-coordinate standard deviation of a proposal scale (before the step size):
    ``(num_chains, dim)`` from diagonal ``(num_chains, dim)`` or Cholesky ``(num_chains, dim,
    dim)`` scales."""
    if scale.ndim == 3:
        return np.sqrt(np.sum(scale**2, axis=-1))
    return np.abs(scale)


def _steps(result: Result) -> int:
    """The steps of every chain of a run, warm-up included (the proposals made); of a run
    that continued another (``resume=result``), its own draws' steps only."""
    start, stop = result.info.get("draw_range", (0, result.num_samples))
    warmup = result.num_warmup if start == 0 else 0
    return result.num_chains * (warmup + (stop - start) * result.thin)


def _broken_statistics(result: Result) -> list[str]:
    """What a sampler's own statistics show it broke: kept draws at a NaN log density from a
    sampler that rejects such proposals, or acceptance rates that are not probabilities
    (a sampler of one's own; the built-in ones give neither)."""
    problems = []
    if kept_nan_draws(result):
        problems.append(
            f"{draw_blocks.count(result.stats['lp'], np.isnan)} kept draws have a NaN log "
            "density (lp). A sampler that "
            "rejects proposals at a NaN or +inf log density (rejects_nonfinite, the default) "
            "never keeps one, so this one accepted them: check its accept step (a comparison "
            "with NaN is False, so 'not (u > ratio)' accepts). Those draws are not the target's."
        )
    rate = result.stats.get("acceptance_rate", np.zeros((1, 0)))  # a stored run's in blocks
    if draw_blocks.count(rate, outside_probabilities):
        low, high = draw_blocks.nan_extremes(rate)
        problems.append(
            f"acceptance rates from {low:.4g} to {high:.4g}, outside "
            "[0, 1]: acceptance_rate must be the probability of accepting the step, such as "
            "min(1, exp(log ratio)), so the acceptance figures reported are wrong."
        )
    if nan_rates := draw_blocks.count(rate, np.isnan):  # a run's own: broken, not unknown
        problems.append(
            f"{nan_rates} acceptance rates are NaN, so the run's acceptance "
            "rate is NaN: min(1, exp(log ratio)) is NaN where a proposal's log density is; "
            "give 0 there (jnp.where(jnp.isfinite(log_ratio), rate, 0.0))."
        )
    return problems


def _nonfinite_chains(result: Result) -> list[int]:
    """Chains whose last position holds a NaN or infinite value (from the run's state)."""
    if result.state is None:
        return []
    finite = np.ones(result.state.num_chains, bool)
    for leaf in jax.tree.leaves(to_host(result.state.position)):  # gathered over processes
        finite &= np.isfinite(leaf.reshape(leaf.shape[0], -1)).all(axis=1)
    return [int(c) for c in np.flatnonzero(~finite)]


def warn_if_unhealthy(result: Result) -> None:
    """The checks cheap enough to run after every sampling: divergences, proposals at a NaN
    or +inf log density, statistics a sampler broke, chains that drifted or never moved."""
    if result.num_divergent:
        warnings.warn(
            f"{result.sampler} on {result.target}: {result.num_divergent} divergent transitions "
            f"after warm-up; estimates may be biased. {divergence_advice(result)}",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    skipped = int(np.sum(result.info.get("nonfinite_proposals") or 0))
    if skipped:  # steps skipped (no accept/reject step), or proposals rejected
        where = f"{skipped} of {_steps(result)}"
        if skips_steps(result):
            message = skipped_steps_message(where)
        else:
            message = rejected_nonfinite_message(where, kept_nan_draws(result))
        warnings.warn(
            f"{result.sampler} on {result.target}: {message}",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    imprecise = imprecise_run(result)
    if imprecise:
        warnings.warn(
            f"{result.sampler} on {result.target}: {imprecise}",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    for message in _broken_statistics(result):
        warnings.warn(
            f"{result.sampler} on {result.target}: {message}",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    drifted = _nonfinite_chains(result)
    if drifted:
        warnings.warn(
            f"{result.sampler} on {result.target}: chain(s) {chain_list(drifted)} ended at NaN "
            "or infinite positions: the log density does not fall off in some direction (an "
            "improper target, such as a flat density over an unbounded parameter), so the "
            "chains drift away. Give every parameter a proper prior or bound it. (Or, for a "
            "sampler of your own, its step wrote them.)",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    for name, broken, total in _nonfinite_observations(result):
        warnings.warn(
            f"{result.sampler} on {result.target}: the log likelihood of {name} is NaN or "
            f"infinite at {broken} of {total} observations in some draws, so az.loo and "
            "infer.compare's elpd_loo will not be finite. Check the likelihood (loglik_fn, or "
            "the model) at those observations: one outside its support, or an overflow.",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    stuck = [chain for chain in stuck_chains(result) if chain not in drifted]
    if stuck:
        warnings.warn(
            f"{result.sampler} on {result.target}: chain(s) {chain_list(stuck)} never moved; "
            + why_stuck(result, stuck),
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )


def _nonfinite_observations(result: Result) -> list[tuple[str, int, int]]:
    """``(name, observations, of)`` for each variable of the ``log_likelihood`` group held in
    memory whose value is NaN or infinite at some observation in some draw."""
    found = []
    for name, values in (result.groups.get("log_likelihood") or {}).items():
        if not isinstance(values, np.ndarray) or values.ndim < 2:
            continue  # a store's group is read lazily: not read all for a check
        broken, total = nonfinite_observations(values)
        if broken:
            found.append((name, broken, total))
    return found
