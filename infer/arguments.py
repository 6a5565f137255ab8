"""Host-side checks of :func:`infer.sample`'s arguments, before anything is traced: each
error names the argument, what was expected, what was got and how to fix it."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from typing import NamedTuple

import jax

from infer import convergence, registry, validation
from infer.caller import INFER_FRAMES
from infer.exact_checks import refuse_for_exact, refuse_starts_for_exact
from infer.keys import as_key, same_stream, seed_expression
from infer.placement import chain_sharding, to_host
from infer.process_agreement import (
    check_processes_agree,
    layout,
    on_every_process,
    sample_call,
    start_value,
)
from infer.resume_source import Saved, checkpoint_folder, resume_source, resumed_superchain_size
from infer.run_loop import Outputs
from infer.run_state import ChainState
from infer.starts import PerChain, starting_point
from infer.store import as_store
from infer.target import check_target

DEFAULT_WARMUP = 1000
DEFAULT_CHAINS = 4
DEFAULT_SAMPLES = 1000
MAX_STEPS = 2**31 - 1  # steps per chain a run counts (int32 on the device)


class Arguments(NamedTuple):
    """:func:`infer.sample`'s arguments, checked and completed with their defaults.

    Attributes:
        key_input, seed: from :func:`infer.keys.as_key`.
        source: what the run resumes from: ``None``, a :class:`ChainState` or a
            :class:`Saved` checkpoint.
        sharding: where the chains live.
        outputs: checkpoint folder, store and kept names (:class:`infer.run_loop.Outputs`).
        num_draws: the most draws per chain the run may keep (for the memory check).
        superchain_size: chains per superchain (1: independent starts).
    """

    key_input: object
    seed: object
    target: object
    sampler: object
    num_chains: int
    num_samples: int
    num_warmup: int
    thin: int
    init: object
    init_jitter: float
    sharding: object
    source: object
    outputs: Outputs
    until: object
    num_draws: int
    superchain_size: int


def check_arguments(
    rng_key,
    target,
    sampler,
    *,
    num_chains,
    num_samples,
    num_warmup,
    thin,
    init,
    init_jitter,
    devices,
    resume,
    checkpoint,
    checkpoint_every,
    until,
    store,
    keep,
    superchains,
    exact: bool,
) -> Arguments:
    """Check every argument of :func:`infer.sample` (their meanings are there)."""
    asked_samples = num_samples

    def alone():  # checks each process makes alone: a refusal is shared, or the others wait
        key = as_key(rng_key)
        check_target(target)
        registry.check_sampler_argument(sampler)
        start, chains = _from_state(init, num_chains)
        if exact:
            refuse_for_exact(sampler, resume, checkpoint, until, store, keep, thin, superchains)
            refuse_starts_for_exact(sampler, start, init_jitter)
        source = None if exact else resume_source(resume, start)
        _check_seed(source, key[1])
        numbers = _check_numbers(chains, num_samples, thin, init_jitter, until, source)
        # keep listed once: a generator read twice would be empty the second time
        return key, start, source, numbers, _listed(keep)

    (key_input, seed), init, source, numbers, keep = on_every_process(alone)
    num_chains, num_samples, thin, init_jitter = numbers
    if jax.process_count() > 1:  # one process: nothing to compare, nothing to compute
        check_processes_agree(
            sample_call(
                target,
                sampler,
                init,
                dict(rng_key=seed, num_chains=num_chains, num_samples=num_samples),
                dict(num_warmup=num_warmup, thin=thin, init_jitter=init_jitter, until=until),
                dict(superchains=superchains, keep=keep, store=store, devices=layout(devices)),
                dict(checkpoint=checkpoint, resume=resume),
            ),
            start_value(target, init),
        )
    sharding = on_every_process(lambda: chain_sharding(devices, num_chains))
    if exact:  # no warm-up, thinning, resuming, outputs, rule or superchains
        outputs = Outputs(None, None, None, None)
        settings = (num_chains, num_samples, 0, 1, init, init_jitter, sharding, None, outputs)
        return Arguments(key_input, seed, target, sampler, *settings, None, num_samples, 1)
    if num_warmup is None:
        num_warmup = DEFAULT_WARMUP if source is None else source.num_warmup
    num_warmup = validation.positive_int("num_warmup", num_warmup, minimum=0)
    outputs = _check_outputs(
        target, (init, num_chains), resume, source, checkpoint, checkpoint_every, store, keep
    )
    num_draws = _draws_to_hold(until, source, num_warmup, thin, asked_samples, num_samples)
    _check_step_count(source, num_warmup, num_draws, thin)
    superchain_size = resumed_superchain_size(superchains, num_chains, source)
    settings = (num_chains, num_samples, num_warmup, thin, init, init_jitter, sharding, source)
    extra = (outputs, until, num_draws, superchain_size)
    return Arguments(key_input, seed, target, sampler, *settings, *extra)


def _from_state(init, num_chains):
    """``init=result.state`` (where those chains stand) as :class:`PerChain` starts, and
    ``num_chains`` defaulting to that run's; anything else as it came."""
    if not isinstance(init, ChainState):
        return init, num_chains
    return PerChain(to_host(init.position)), init.num_chains if num_chains is None else num_chains


def _check_seed(source, seed) -> None:
    """A resumed run (from a result or a checkpoint) must be given the seed it was made with."""
    if source is not None and not same_stream(source.seed, seed):
        raise ValueError(
            f"resume continues the chains' own random streams, made from the seed "
            f"{seed_expression(source.seed)}; pass that as rng_key (got "
            f"{seed_expression(seed)}). For new randomness, start a new run where these "
            f"chains stand: {_new_start(source)} (warm-up runs again)."
        )


def _new_start(source) -> str:
    """How to start new chains where a resumed run's stand: from a result, its state; from a
    checkpoint folder (no result yet), the state of the finished run."""
    if isinstance(source, Saved):
        return "finish this run (r = infer.sample(..., resume=folder)), then init=r.state"
    return "init=result.state"


#: Half-width of the uniform jitter around a single starting point, by default.
DEFAULT_JITTER = 1.0


def _check_numbers(num_chains, num_samples, thin, init_jitter, until, source) -> tuple:
    """The counts and scales of a run, checked; ``num_chains`` and ``thin`` default to the
    resumed run's, ``num_samples`` with ``until`` to at most its budget."""
    if num_chains is None:
        num_chains = source.num_chains if source is not None else DEFAULT_CHAINS
    num_chains = validation.positive_int("num_chains", num_chains)
    if source is not None and num_chains != source.num_chains:
        raise ValueError(
            f"num_chains={num_chains}, but the run resumed has {source.num_chains} chains: "
            "resume continues those chains. Leave num_chains out, or start other chains "
            f"with a new run where these stopped: {_new_start(source)}."
        )
    if thin is None:
        thin = source.thin if source is not None else 1
    thin = validation.positive_int("thin", thin)
    if source is not None and init_jitter is not None:
        raise ValueError(
            f"init_jitter={init_jitter!r} jitters a new run's starting point, but resume "
            "continues chains where they stopped: leave init_jitter out."
        )
    if init_jitter is not None:  # None: DEFAULT_JITTER for one point, none per chain
        init_jitter = validation.nonnegative_float("init_jitter", init_jitter)
    if until is None:
        num_samples = validation.positive_int(
            "num_samples", DEFAULT_SAMPLES if num_samples is None else num_samples
        )
        return num_chains, num_samples, thin, init_jitter
    if not isinstance(until, convergence.Converged):
        raise TypeError(
            f"until must be infer.converged(rhat=..., ess=..., max_samples=...); got {until!r}."
        )
    num_samples = _saved_check_every(source, num_samples)
    if num_samples is None:  # the batch between checks, within the budget
        num_samples = min(DEFAULT_SAMPLES, until.max_samples)
    num_samples = validation.positive_int("num_samples", num_samples)
    if num_samples > until.max_samples:
        raise ValueError(
            f"num_samples={num_samples} is the draws per chain between two checks of until=, "
            f"more than until's max_samples={until.max_samples}, the most the run may take, so "
            "the rule could not stop it early: lower num_samples or raise max_samples."
        )
    if num_chains < 2:
        raise ValueError(
            "until=infer.converged(...) checks R-hat, which compares chains, so one chain can "
            "never meet it: run num_chains >= 2 (4 is usual)."
        )
    return num_chains, num_samples, thin, init_jitter


def _check_step_count(source, num_warmup: int, num_draws: int, thin: int) -> None:
    """The run's steps are counted in int32 on the device: refuse a run whose last step
    (counted from its first run's start, as a resumed run goes on counting) is past that."""
    if isinstance(source, Saved):
        stop = max(source.step, int(source.saved.meta["stop"]))
    elif source is not None:  # a ChainState: the steps go on from where it stopped
        stop = max(int(source.step), num_warmup) + num_draws * thin
    else:
        stop = num_warmup + num_draws * thin
    if stop > MAX_STEPS:
        done = "" if source is None else f" (the run resumed had taken {source.step:,})"
        raise ValueError(
            f"num_warmup={num_warmup} and {num_draws} draws x thin={thin} end the run at step "
            f"{stop:,}{done}, past the {MAX_STEPS:,} a run counts (int32 on the device): "
            "lower num_warmup, num_samples (or until's max_samples) or thin."
        )


def _draws_to_hold(until, source, num_warmup, thin, asked, num_samples) -> int:
    """The draws per chain the run may end with: ``until``'s budget, a checkpoint folder's
    run's own, or ``num_samples``."""
    if isinstance(source, Saved):
        _check_same_rule(source, until)
    if until is not None:  # num_samples is the draws between two checks
        _refuse_until_with_result(source)
        return until.max_samples
    if isinstance(source, Saved):
        return _saved_draws(source, num_warmup, thin, asked)
    return num_samples


def _check_same_rule(source: Saved, until) -> None:
    """A checkpoint folder's run resumes with the stopping rule it was started with (older
    checkpoints, which did not record it, are taken as they are)."""
    if "until" not in source.saved.meta:
        return
    saved = source.saved.meta["until"]
    given = None if until is None else json.loads(json.dumps(until.as_dict()))
    if saved != given:
        shown = "no until=" if saved is None else f"until=infer.converged(**{saved})"
        raise ValueError(
            f"the checkpoint folder's run was started with {shown}; resume it with the same "
            f"(got {'no until=' if given is None else f'until=infer.converged(**{given})'}): "
            "the rule decides where the run stops."
        )


def _saved_check_every(source, asked):
    """With ``until=``, a checkpoint folder's run keeps the draws between two checks it was
    started with (where it stops depends on them); a ``num_samples`` that differs is warned
    about. Anything else: ``asked``."""
    saved = getattr(source, "check_every", None)
    if saved is None:
        return asked
    if asked is not None and asked != saved:
        warnings.warn(
            f"num_samples={asked} is ignored: with until=, num_samples is the draws per chain "
            f"between two checks, and the checkpoint folder's run checks every {saved}, as it "
            "must to stop where it would have stopped. Leave num_samples out.",
            skip_file_prefixes=INFER_FRAMES,
        )
    return saved


def _refuse_until_with_result(source) -> None:
    """``until=`` continues from a checkpoint folder of a run started with it, not from a
    result: its rule reads the draws of this call, while ``max_samples`` counts the run's."""
    if source is not None and not isinstance(source, Saved):
        raise ValueError(
            "until= cannot continue a result (resume=result): its checks would read only the "
            "new draws while max_samples counts the earlier ones too. Draw a fixed number "
            "with resume=result, num_samples=... and check with infer.summary, or start the "
            "run with until= and checkpoint=folder (resume=folder then continues it)."
        )


def _saved_draws(source: Saved, num_warmup: int, thin: int, asked) -> int:
    """The draws per chain of a checkpoint folder's run, which is finished as it was started:
    a ``num_samples`` given (``asked``) that differs does not change it, and the user is told
    (unless the run differs anyway, which is refused later)."""

    def draws_by(step: int) -> int:
        return max(0, step - num_warmup) // thin

    meta = source.saved.meta  # a folder written by a run that resumed a result starts later
    saved = draws_by(int(meta["stop"])) - draws_by(int(meta.get("first_step", 0)))
    same_run = (source.num_warmup, source.thin) == (num_warmup, thin)
    if same_run and asked is not None and asked != saved:
        warnings.warn(
            f"num_samples={asked} is ignored: resuming from a checkpoint folder finishes the "
            f"saved run, which draws {saved} per chain. For more draws: resume=result.",
            skip_file_prefixes=INFER_FRAMES,  # the caller of infer.sample
        )
    return saved


def _check_outputs(
    target, start, resume, source, checkpoint, checkpoint_every, store, keep
) -> Outputs:
    """Where the draws go besides the result, checked against each other. A checkpoint
    folder's run (``source``) checkpoints as often and keeps the draws it did unless told
    otherwise; a result's continuation keeps the draws it did. ``start``: ``(init,
    num_chains)``, what ``keep``'s names are checked against."""
    if checkpoint_every is None:
        checkpoint_every = getattr(source, "checkpoint_every", None)
    inherited = keep is None  # the resumed run's: its names are checked as that run's
    if inherited:
        keep = getattr(source, "keep", None)
        if keep is None and isinstance(getattr(resume, "info", None), dict):  # result's keep=
            keep = resume.info.get("keep")  # (infer.concat joins runs keeping the same draws)
    if checkpoint_every is not None:
        checkpoint_every = validation.positive_int("checkpoint_every", checkpoint_every)
    folder = checkpoint_folder(checkpoint, resume)
    _check_writable_if_unfinished(source, folder)
    if checkpoint_every is not None and folder is None:
        raise ValueError(
            f"checkpoint_every={checkpoint_every} says how often to write checkpoints, but "
            "there is no checkpoint= folder to write them to: pass checkpoint='run.ckpt' "
            "too, or leave checkpoint_every out."
        )
    store = as_store(store)
    if store is not None and (folder is not None or resume is not None):
        raise ValueError(
            "store= writes the draws to disk as they come; it cannot be combined with "
            "checkpoint= or resume= yet. Use one or the other."
        )
    if jax.process_count() > 1 and (store is not None or folder is not None):
        raise ValueError(
            f"with {jax.process_count()} processes every process gathers the whole result; "
            "checkpoint= and store= (and resume= from a checkpoint folder, which writes to "
            "it) are not supported across processes yet: save the result from process 0 "
            "(result.save) instead, and resume from that result (resume=infer.load(path))."
        )
    return Outputs(folder, checkpoint_every, store, _check_keep(keep, target, start, inherited))


def _check_writable_if_unfinished(source, folder) -> None:
    """A checkpoint folder whose run is unfinished is written to as the run continues: one
    this user cannot write to is refused before anything runs (it failed after the work)."""
    if not isinstance(source, Saved) or folder is None or os.access(folder, os.W_OK):
        return
    stop = source.saved.meta.get("stop")
    if stop is None or source.step < int(stop):
        raise PermissionError(
            f"resume={str(folder)!r}: the run is not finished, and it keeps checkpointing "
            "into its folder, which this user cannot write to. Copy the folder somewhere "
            "writable (shutil.copytree) and resume the copy."
        )


def _draw_names(target, init, num_chains) -> list | None:
    """The names of the draws a run from ``init`` reports (``None`` without a start): one
    point of ``init`` in any form :func:`infer.sample` takes (per chain, a list of points)."""
    if init is None and target.init is None:
        return None
    with warnings.catch_warnings():  # the run warns of the start itself, once
        warnings.simplefilter("ignore")
        point, per_chain = starting_point(target, init, num_chains)
    if per_chain:
        point = jax.tree.map(lambda leaf: leaf[0], point)
    return list(jax.eval_shape(target.constrain, point))


def _listed(keep):
    """``keep`` as a list when it is an iterable of anything but characters, else as given
    (:func:`_check_keep` refuses it then)."""
    if isinstance(keep, set | frozenset) and all(isinstance(name, str) for name in keep):
        return sorted(keep)  # a set's order follows the hash seed, another in each process
    if isinstance(keep, Iterable) and not isinstance(keep, str | bytes | dict):
        return list(keep)
    return keep


def _check_keep(keep, target, start, inherited: bool = False) -> list | None:
    """``keep`` as a list of draw names the target reports, or a ``ValueError``. ``start``:
    ``(init, num_chains)`` as :func:`infer.sample` was given them; ``inherited``: ``keep`` is
    the resumed run's, not the caller's."""
    if keep is None:
        return None
    usage = f"keep must be a list of draw names, e.g. ['mu', 'tau']; got {keep!r}."
    # _listed made every other iterable a list
    if not isinstance(keep, list) or not all(isinstance(name, str) for name in keep):
        raise TypeError(usage)
    names = _draw_names(target, *start)
    if not keep:
        raise ValueError(
            f"keep is empty: name at least one of the target's draws, {names}, or leave it "
            "None to keep them all."
        )
    unknown = [name for name in keep if names is not None and name not in names]
    if unknown and inherited:
        raise ValueError(
            f"resume: the resumed run kept only the draws {keep} (its keep=), and target "
            f"{target.name!r} does not report {unknown}: its draws are {names}. Resume with "
            "the target that run was made with, or start a new run."
        )
    if unknown:
        raise ValueError(
            f"keep names {unknown} that the target does not report; its draws are {names}."
        )
    return list(keep)
