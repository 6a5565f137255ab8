"""The state a run hands to the next one: ``result.state``.

A Markov-chain run ends with every chain's sampler state, its adaptation's state and the
frozen parameters (step size, proposal scale; NumPyro keeps its step size and mass matrix in
its own state), the next step index and what the keys are made from. ``infer.sample(...,
resume=result)`` continues from it without warm-up, bit for bit as if the first run had been
longer. A *fingerprint* of what produced the state (target, sampler, shapes) lets a resume
with something else be refused with a message that says what differs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from infer.base import hook, settings_json
from infer.markov import Carry
from infer.placement import x64_enabled

#: Data larger than this many bytes are fingerprinted from a strided sample of their bytes.
FULL_HASH_BYTES = 64 * 2**20


@dataclass(frozen=True)
class ChainState:
    """Where a run's chains stand, enough to continue them.

    Attributes:
        carry: a :class:`infer.markov.Carry` of per-chain arrays (chain axis first): the
            sampler's states, the adaptation's states and the parameters steps use.
        chain_keys: ``(num_chains,)`` keys; step ``t`` of chain ``c`` uses
            ``fold_in(chain_keys[c], t)``.
        step: the next global step index of every chain (warm-up steps included).
        num_warmup: the run's warm-up steps (the step index at which sampling began).
        thin: the run's thinning.
        seed: the seed the chains' keys come from (an int, or a key's data).
        fingerprint: name -> description of what produced the state (see
            :func:`fingerprint`).
        superchain_size: chains per superchain (1 when the chains started independently).
        sampler: the sampler that ran them (what reads :attr:`tuned`).
    """

    carry: Carry
    chain_keys: object
    step: int
    num_warmup: int
    thin: int
    seed: object
    fingerprint: dict
    superchain_size: int = 1
    sampler: object = None

    @property
    def tuned(self) -> dict:
        """What warm-up tuned, per chain: name -> NumPy array ``(num_chains, ...)`` named as
        the sampler's own arguments (NUTS and HMC: ``step_size``, ``inverse_mass_matrix``;
        RWMH and MALA: ``step_size`` and, unless isotropic, ``covariance``), so that
        ``infer.nuts(**{name: value[c] for name, value in state.tuned.items()})`` with
        ``num_warmup=0`` steps as chain ``c`` did. ``{}`` for a sampler that tunes nothing."""
        return {} if self.sampler is None else hook(self.sampler, "tuned")(self.carry)

    @property
    def position(self):
        """Each chain's current position (unconstrained), chain axis first."""
        return self.carry.kernel_state.position

    @property
    def num_chains(self) -> int:  # from the state's shapes (a position may be computed)
        return int(jax.tree.leaves(self.carry.kernel_state)[0].shape[0])

    @property
    def num_draws(self) -> int:
        """Draws kept so far by these chains."""
        return max(0, self.step - self.num_warmup) // self.thin


def fingerprint(target, sampler, positions, num_warmup: int, thin: int) -> dict:
    """What a state depends on, as strings: the target's name, log density and data (a hash
    of all of it, and each leaf's path, shape, dtype and hash, so that a refusal names the
    leaf that changed), the sampler and its settings, the chains' position shapes, warm-up
    and thinning.

    Args:
        positions: per-chain positions (chain axis first).
    """
    function = target.logdensity_fn
    shapes = jax.tree.map(lambda leaf: (tuple(leaf.shape), str(leaf.dtype)), positions)
    digest, leaves = data_hashes(target.data)
    return {
        "target": target.name,
        "logdensity_fn": f"{getattr(function, '__module__', '?')}."
        f"{getattr(function, '__qualname__', type(function).__name__)}",
        "data": digest,
        "data_leaves": json.dumps(leaves),
        "sampler": sampler.name,
        "settings": settings_json(sampler.settings()),
        "positions": str(jax.tree.structure(positions)) + " " + str(jax.tree.leaves(shapes)),
        "num_warmup": str(num_warmup),
        "thin": str(thin),
    }


def data_digest(data) -> str:
    """A fingerprint of the data's values: each leaf's shape, dtype and bytes (a strided
    sample of them past :data:`FULL_HASH_BYTES`)."""
    return data_hashes(data)[0]


def data_hashes(data) -> tuple[str, list]:
    """``(digest, leaves)`` in one pass over the data: :func:`data_digest`'s digest, and
    ``[path, shape, dtype, hash]`` of each leaf (``[]`` for none), what a refusal names when
    the data changed (the digest says only that they did)."""
    if data is None:
        return "none", []
    digest, rows = hashlib.sha1(), []
    for path, leaf in jax.tree_util.tree_flatten_with_path(data)[0]:
        host = host_array(leaf)
        array, raw = _hashed_bytes(host)
        digest.update(f"{array.shape}{array.dtype}".encode())  # a scalar as (1,), as ever
        digest.update(raw)
        path_text = jax.tree_util.keystr(path)
        shape = list(host.shape)  # a scalar's own shape, (), in the messages
        rows.append([path_text, shape, str(array.dtype), hashlib.sha1(raw).hexdigest()])
    return digest.hexdigest(), rows


def host_array(leaf) -> np.ndarray:
    """A leaf as a NumPy array; a PRNG key (a module's fixed RNG state, a chain's key) as
    its key data."""
    if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    return np.asarray(leaf)


def _hashed_bytes(leaf):
    """``(array, raw)``: a data leaf as a NumPy array and the bytes its hash is made of."""
    array = np.ascontiguousarray(host_array(leaf))
    raw = array.reshape(-1).view(np.uint8)
    if raw.size > FULL_HASH_BYTES:
        raw = raw[:: raw.size // FULL_HASH_BYTES + 1]
    return array, raw.tobytes()


def differences(saved: dict, current: dict, labels=("in the saved run", "now")) -> list[str]:
    """Lines saying how ``current`` differs from ``saved`` (empty when they agree): the
    sampler's settings key by key, the data leaf by leaf, a long value around where it
    differs. ``labels`` say where each side comes from."""
    lines = []
    for name in sorted(set(saved) | set(current)):
        before, now = saved.get(name), current.get(name)
        if before == now or name == "data_leaves":  # the leaves go with "data"
            continue
        if name == "data":
            lines += data_differences(saved, current, labels)
            continue
        settings = _json_dicts(before, now) if name == "settings" else None
        keys = [] if settings is None else sorted(set(settings[0]) | set(settings[1]))
        by_key = [  # by their text: 1 and 1.0, or true and 1, differ as the fingerprints do
            f"settings[{key!r}]: {_short(settings[0].get(key))} {labels[0]}, "
            f"{_short(settings[1].get(key))} {labels[1]}"
            for key in keys
            if json.dumps(settings[0].get(key)) != json.dumps(settings[1].get(key))
        ]
        if by_key:
            lines += by_key
            continue
        before, now = _around_difference(repr(before), repr(now))
        lines.append(f"{name}: {before} {labels[0]}, {now} {labels[1]}")
    return lines


def data_differences(saved: dict, current: dict, labels) -> list[str]:
    """Lines naming each data leaf that differs between two fingerprints and how (added or
    gone, shape, dtype, or only its values); a fingerprint written before leaves were
    recorded (no ``data_leaves``) gives its hash only, saying so."""
    if saved.get("data") == current.get("data"):
        return []
    if saved.get("data_leaves") is None or current.get("data_leaves") is None:
        return [
            f"data: {saved.get('data')!r} {labels[0]}, {current.get('data')!r} {labels[1]} "
            "(hashes of the values: one side was saved by an older infer, which recorded "
            "no more)"
        ]
    before, now = (
        {path: (tuple(shape), dtype, digest) for path, shape, dtype, digest in json.loads(rows)}
        for rows in (saved["data_leaves"], current["data_leaves"])
    )
    lines = []
    for path in [*before, *(path for path in now if path not in before)]:
        a, b = before.get(path), now.get(path)
        if a == b:
            continue
        if a is None or b is None:
            there, gone = (labels[1], labels[0]) if a is None else labels
            lines.append(f"data{path}: present {there}, absent {gone}")
            continue
        changed = [
            f"{what} {x} -> {y}"
            for what, x, y in zip(("shape", "dtype"), a[:2], b[:2], strict=True)
            if x != y and {x, y} != {(1,), ()}  # a scalar, as older infer recorded it: (1,)
        ]
        lines.append(
            f"data{path}: " + ", ".join(changed) + f" ({labels[0]} -> {labels[1]})"
            if changed
            else f"data{path}: its values differ (shape {b[0]}, dtype {a[1]} on both sides)"
        )
    return lines or [f"data: the data's structure differs ({labels[0]} and {labels[1]})"]


def _json_dicts(before, now):
    """Both JSON texts as dicts, or None when one is not."""
    try:
        pair = (json.loads(before), json.loads(now))
    except (TypeError, ValueError):
        return None
    return pair if all(isinstance(value, dict) for value in pair) else None


def _around_difference(before: str, now: str, limit: int = 160, context: int = 40):
    """Two long texts cut to where they differ, with ``context`` characters either side."""
    if max(len(before), len(now)) <= limit:
        return before, now
    start = 0
    while start < min(len(before), len(now)) and before[start] == now[start]:
        start += 1
    end = 0
    while end < min(len(before), len(now)) - start and before[-1 - end] == now[-1 - end]:
        end += 1
    cut = max(start - context, 0)

    def window(text):
        stop = min(len(text) - end + context, len(text))
        return ("..." if cut else "") + text[cut:stop] + ("..." if stop < len(text) else "")

    return window(before), window(now)


def _short(value, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_compatible(saved: dict, current: dict, source: str) -> None:
    """A ``ValueError`` naming each difference when ``current`` is not what ``saved`` was
    made with (a resume with another target, sampler or shapes)."""
    lines = differences(saved, current)
    if lines:
        raise ValueError(
            f"cannot resume from {source}: it was made with a different run. What differs:\n  "
            + "\n  ".join(lines)
            + "\nResume with the same target, sampler, options and number of chains, or start "
            "a new run."
        )


def check_same_precision(saved: dict, source: str, in_memory: bool, why: str = "") -> None:
    """A ``ValueError`` naming ``jax_enable_x64`` when the run in ``source`` (fingerprint
    ``saved``) was made with 64-bit floats and this process has them off, or, for a saved
    checkpoint, the reverse: its draws, states and programs are of the other width (a state
    in memory of 32-bit floats goes on in them under ``jax_enable_x64``; ``in_memory=False``
    refuses that too, ``why``, said after the widths, saying why)."""
    saved_x64 = "'float64'" in saved.get("positions", "")
    now_x64 = x64_enabled()
    if saved_x64 == now_x64 or (in_memory and not saved_x64):
        return
    made, here = ("on", "off") if saved_x64 else ("off", "on")
    raise ValueError(
        f"cannot resume from {source}: it was made with jax_enable_x64 {made} "
        f"({64 if saved_x64 else 32}-bit floats), and this process has it {here}{why}. Run "
        f'jax.config.update("jax_enable_x64", {saved_x64}) before sampling (or set '
        f"JAX_ENABLE_X64={int(saved_x64)}) to continue it at its precision, or start a new run."
    )


def check_same_logdensity(target, data, kernel_state, source: str) -> None:
    """A ``ValueError`` when the target's log density at the saved chains' positions is not
    the one the saved run recorded there: the target changed (its prior, likelihood, fixed
    state or code) in a way its name, function and data do not show. ``kernel_state``: the
    chains' states, chain axis first, with ``position`` and ``logdensity`` (the target's log
    density there: a sampler whose ``logdensity_is_exact``); ``data``: the target's, as the
    run holds them."""

    @jax.jit
    def compare(position, recorded, data):
        now = jax.vmap(target.bound(data))(position).astype(recorded.dtype)
        both = jnp.isfinite(now) & jnp.isfinite(recorded)
        rtol = 1e-4 if recorded.dtype == jnp.float32 else 1e-9  # round-off of another program
        apart = jnp.abs(now - recorded) > rtol * (1.0 + jnp.abs(now) + jnp.abs(recorded))
        off = (jnp.isfinite(now) != jnp.isfinite(recorded)) | (both & apart)
        first = jnp.argmax(off)
        return jnp.sum(off), first, recorded[first], now[first]

    num_off, chain, recorded, now = (
        np.asarray(value) for value in compare(kernel_state.position, kernel_state.logdensity, data)
    )
    if num_off:
        raise ValueError(
            f"cannot resume from {source}: the target's log density at the saved chains' "
            f"positions is not the one the run recorded there (chain {int(chain)}: "
            f"{float(recorded):.6g} recorded, {float(now):.6g} now; {int(num_off)} of "
            f"{np.shape(kernel_state.logdensity)[0]} chains differ). The target is not the one "
            "the run was made with (another prior, likelihood, fixed state or code), though "
            "its name and data are the same. Resume with that target, or start a new run. "
            "(Or the sampler's state holds a logdensity that is not the target's at its "
            "position: a sampler of your own whose state keeps another value, such as a "
            "tempered or estimated one, must say so with logdensity_is_exact = False.)"
        )
