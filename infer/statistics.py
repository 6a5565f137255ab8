"""The convergence statistics behind :func:`infer.compare`: bulk and tail ESS (tail at the
5%/95% quantiles), rank-normalised split R-hat, the MCSE of the mean, and nested R-hat for runs
with superchains. Two ways to compute them, with the same results (within 1e-5): in JAX on the
device (:mod:`infer.chain_stats`, the default: one compiled program per run shape) or with
ArviZ (``arviz_stats``, the reference behind ``infer.summary`` and the DataTree).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np

from infer import chain_stats, validation
from infer.result import Result

TAIL_PROB = (0.05, 0.95)
STATISTICS = ("ess_bulk", "ess_tail", "rhat", "mcse_mean")
BACKENDS = ("jax", "arviz")


def compute(results: dict[str, Result], backend: str = "jax") -> dict[str, dict]:
    """``run name -> statistic -> draw name -> array`` (each array shaped like one draw) for
    :data:`STATISTICS`, plus ``rhat_nested`` for a run with ``info["superchains"]``.

    Raises:
        ValueError: for an unknown ``backend``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"statistics must be one of {BACKENDS}; got {backend!r}.")
    nested = {name: _superchain_ids(name, result) for name, result in results.items()}
    if backend == "jax":  # nested R-hat in the same program as the rest
        return _jax(results, nested)
    out = _arviz(results)
    for name, result in results.items():
        if nested[name] is not None:
            tree = __import__("arviz_stats").rhat_nested(
                result.to_arviz()["posterior"], superchain_ids=nested[name]
            )
            out[name]["rhat_nested"] = {k: np.asarray(tree[k].values) for k in result.draws}
    return out


def _superchain_ids(name: str, result: Result) -> np.ndarray | None:
    """The superchain of each chain of a run with ``info["superchains"]`` (consecutive
    chains), or None; a count that does not divide the chains is refused, naming the run."""
    superchains = result.info.get("superchains")
    if not superchains:
        return None
    try:
        size = validation.superchain_size(superchains, result.num_chains, 'info["superchains"]')
    except (TypeError, ValueError) as err:
        raise type(err)(f"run {name!r}: {err}") from None
    return np.arange(result.num_chains) // size


def _jax(results: dict[str, Result], nested: dict) -> dict[str, dict]:
    """One compiled program per run shape (nested R-hat in it, for a run with superchains:
    ``nested``, run name -> superchain ids or None), the runs on a thread per core (XLA's CPU
    sorts and FFTs run on one thread each, and release the GIL)."""

    def one(name: str) -> dict:
        draws = {k: np.asarray(v) for k, v in results[name].draws.items()}
        wanted = STATISTICS if nested[name] is None else (*STATISTICS, "rhat_nested")
        stats = chain_stats.summary_stats(
            draws,
            prob=TAIL_PROB,
            statistics=wanted,
            result_dtype="float64",
            superchain_ids=nested[name],
        )
        stats = jax.device_get(stats)
        return {stat: {k: np.asarray(stats[k][stat]) for k in draws} for stat in wanted}

    workers = min(len(results), os.cpu_count() or 1) if _threads_help() else 1
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(results, pool.map(one, results), strict=True))


def _threads_help() -> bool:
    """Whether runs get a thread each. On a CPU they run side by side; on an H200 four runs'
    first call took 1.2 s on threads and 3.2 s one after another, compiled 0.45 s and 0.54 s
    (``diagnostics_gpu.json`` at ``0be2fb7`` and ``9015442``, other commits too). Not under
    JAX 0.11 on a CPU: two threads running the tail-ESS program (its sort a NumPy callback
    there) at once never returned with jax 0.11.2."""
    if jax.default_backend() != "cpu":
        return True
    return tuple(int(part) for part in jax.__version_info__[:2]) >= (0, 12)


_ARVIZ = {
    "ess_bulk": lambda tree: __import__("arviz_stats").ess(tree, method="bulk"),
    "ess_tail": lambda tree: __import__("arviz_stats").ess(tree, method="tail", prob=TAIL_PROB),
    "rhat": lambda tree: __import__("arviz_stats").rhat(tree),
    "mcse_mean": lambda tree: __import__("arviz_stats").mcse(tree, method="mean"),
}


def _quietly(statistic, tree):
    """``statistic(tree)`` without NumPy's invalid-value warnings (a worker thread has its
    own error state): NaN, constant and huge draws (whose squares overflow) make them, and
    the table flags those."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return statistic(tree)


def _arviz(results: dict[str, Result]) -> dict[str, dict]:
    """ArviZ on a thread per core: it spends its time in NumPy and SciPy sorts and special
    functions, which release the GIL, so runs and statistics proceed in parallel."""
    trees = {name: result.to_arviz()["posterior"] for name, result in results.items()}
    tasks = [(name, stat) for name in results for stat in STATISTICS]
    # The warnings machinery is process-global and not thread-safe in Python < 3.14: code
    # in the workers that enters warnings.catch_warnings can leave the caller's filters and
    # recorder replaced. This context puts the caller's state back when the workers are done.
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {task: pool.submit(_quietly, _ARVIZ[task[1]], trees[task[0]]) for task in tasks}
        computed = {task: future.result() for task, future in futures.items()}
    return {
        name: {
            stat: {k: np.asarray(computed[(name, stat)][k].values) for k in results[name].draws}
            for stat in STATISTICS
        }
        for name in results
    }
