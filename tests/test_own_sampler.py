"""A sampler written here, through the public protocol only (no infer base class), runs
through ``infer.sample``, resumes, and shows up in ``infer.compare``, the report and the
``infer compare`` command once registered: adding a sampler is its code plus one line."""

import dataclasses
import re
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import infer
from infer import cli, registry
from infer.report import write_report
from models import targets

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out


class WalkState(NamedTuple):
    position: jax.Array
    logdensity: jax.Array


class WalkInfo(NamedTuple):
    acceptance_rate: jax.Array
    is_accepted: jax.Array


@dataclass(frozen=True)
class UniformWalk:
    """Metropolis with a uniform box proposal of half-width ``width``."""

    width: float = 1.0
    name: str = "uniform_walk"
    uses_gradients: bool = False

    def settings(self) -> dict:
        return {"width": self.width}

    def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
        def init(position):
            return WalkState(position, logdensity_fn(position))

        def step(rng_key, state, params):
            key_move, key_accept = jax.random.split(rng_key)
            noise = jax.random.uniform(key_move, state.position.shape, minval=-1.0, maxval=1.0)
            proposal = state.position + self.width * noise
            proposal_logdensity = logdensity_fn(proposal)
            log_ratio = jnp.where(
                jnp.isfinite(proposal_logdensity), proposal_logdensity - state.logdensity, -jnp.inf
            )
            rate = jnp.minimum(1.0, jnp.exp(log_ratio))
            accepted = jax.random.uniform(key_accept) < rate
            new = jax.tree.map(
                lambda a, b: jnp.where(accepted, a, b),
                WalkState(proposal, proposal_logdensity),
                state,
            )
            return new, WalkInfo(rate, accepted)

        return infer.Kernel(
            init=init,
            step=step,
            params=lambda position: None,
            adaptation=None,
            cost=lambda info: (1, 0),
        )


@pytest.mark.thorough
def test_it_samples_resumes_and_is_compared_and_reported(tmp_path):
    assert isinstance(UniformWalk(), infer.MarkovSampler)
    target = targets.get("normal_10d")
    walk = infer.sample(0, target, UniformWalk(0.6), num_chains=4, num_samples=4000, num_warmup=200)
    assert walk.draws["x"].shape == (4, 4000, 10)
    half = infer.sample(0, target, UniformWalk(0.6), num_chains=4, num_samples=2000, num_warmup=200)
    rest = infer.sample(0, target, UniformWalk(0.6), num_chains=4, num_samples=2000, resume=half)
    np.testing.assert_array_equal(infer.concat(half, rest).draws["x"], walk.draws["x"])
    rwmh = infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=1000)
    table = infer.compare({"walk": walk, "rwmh": rwmh}, warn=False)
    assert table.loc["walk", "sampler"] == "uniform_walk"
    assert "ground_truth" not in table.loc["walk", "flags"]  # it samples the right thing
    assert walk.num_logdensity_evals == 4 * (1 + 4200)
    index = write_report({"walk": walk, "rwmh": rwmh}, table, tmp_path / "report")
    assert (tmp_path / "report" / "trace_walk.png").stat().st_size > 0
    assert "walk" in index.read_text()


@pytest.mark.thorough  # 5 s; test_cli.py runs a registered sampler by name
def test_one_registry_line_puts_it_in_the_command(tmp_path, capsys):
    infer.register("uniform_walk", lambda target: UniformWalk(0.6), "uniform box random walk")
    try:
        code = cli.main(
            [
                "compare",
                "--target",
                "normal_10d",
                "--samplers",
                "uniform_walk,rwmh",
                "--chains",
                "2",
                "--samples",
                "200",
                "--warmup",
                "100",
                "--out",
                str(tmp_path),
                "--no-progress",
                "--no-plots",
            ]
        )
        out = capsys.readouterr().out
        assert code == 0
        assert "uniform_walk" in out
        page = (tmp_path / "normal_10d" / "index.html").read_text()
        assert "uniform box random walk" in page
    finally:
        from infer import registry

        registry.unregister("uniform_walk")


@pytest.mark.thorough  # an edge case, 3 s
def test_a_factory_that_fails_on_the_target_is_a_note_and_the_other_runs_are_kept(tmp_path, capsys):
    """A plug-in's factory that raised ended `infer compare` with a traceback, losing the
    runs that had finished; it is now one sampler's failure, as a failed run is."""
    infer.register("needs_domain", lambda target: UniformWalk(target.notes["domain"][1]), "x")
    try:
        code = cli.main(
            ["compare", "--target", "normal_10d", "--samplers", "rwmh,needs_domain"]
            + ["--chains", "2", "--samples", "100", "--warmup", "50", "--out", str(tmp_path)]
            + ["--no-progress", "--no-plots"]
        )
        captured = capsys.readouterr()
        assert code == 1  # a sampler failed
        said = captured.out + captured.err
        assert "the factory registered as 'needs_domain' failed on target 'normal_10d'" in said
        assert "KeyError" in said
        assert (tmp_path / "normal_10d" / "rwmh.nc").exists()  # the finished run is kept
        assert "needs_domain" not in registry.runnable(targets.get("normal_10d"))
    finally:
        registry.unregister("needs_domain")


@dataclass(frozen=True)
class PairWalk(UniformWalk):
    """Its build returns the BlackJAX-style ``(init, step)`` pair, not an ``infer.Kernel``."""

    def build(self, logdensity_fn, num_warmup=0):
        kernel = super().build(logdensity_fn, num_warmup)
        return kernel.init, kernel.step


@dataclass(frozen=True)
class CostlessWalk(UniformWalk):
    def build(self, logdensity_fn, num_warmup=0):
        return super().build(logdensity_fn, num_warmup)._replace(cost=None)


class NoSettings:
    name = "no_settings"
    uses_gradients = False

    def build(self, logdensity_fn, num_warmup=0):
        raise AssertionError("never built")


@pytest.mark.parametrize(
    "sampler, match",
    [
        (UniformWalk, r"got the class UniformWalk: pass an instance, UniformWalk\(\.\.\.\)"),
        (NoSettings(), r"docs/writing-a-sampler\.md\); got .*NoSettings.* It lacks settings\."),
        (PairWalk(), r"PairWalk\.build\(logdensity_fn, num_warmup\) must return an infer\.Kernel"),
        (CostlessWalk(), r"infer\.Kernel\(init, step, params, adaptation, cost\); its cost must"),
    ],
    ids=["class", "no-settings", "pair", "cost-none"],
)
def test_a_sampler_that_breaks_the_protocol_is_told_what_is_wrong(sampler, match):
    target = targets.get("normal_10d")
    with pytest.raises(TypeError, match=match):
        infer.sample(0, target, sampler, num_chains=2, num_samples=10, num_warmup=10)


@pytest.mark.thorough  # a refusal
def test_a_resume_with_a_setting_equal_in_value_but_not_in_kind_is_refused_by_name():
    """``1`` and ``1.0`` compare equal, but the run's fingerprint records them apart."""
    target = targets.get("normal_10d")
    first = infer.sample(0, target, UniformWalk(width=1), num_chains=2, num_samples=20)
    with pytest.raises(ValueError, match=r"settings\['width'\]: 1 in the saved run, 1\.0 now"):
        infer.sample(0, target, UniformWalk(width=1.0), num_samples=20, resume=first)


def test_bind_and_ars_name_what_they_were_given():
    """``bind(target)`` failed in JAX ("Expected a callable value"); ARS on a target without
    ``init`` said its position was "shaped None"."""
    normal = infer.Target(lambda x: -0.5 * x**2, name="normal")
    with pytest.raises(TypeError, match=r"got Target. Pass its .logdensity"):
        infer.mala().bind(normal)
    alg = infer.mala().bind(normal.logdensity)
    assert alg.init(jnp.zeros(())).position.shape == ()
    with pytest.raises(ValueError, match=r"has none: make it with init=jnp.asarray\(0.0\)"):
        infer.sample(0, normal, infer.ars(domain=(-jnp.inf, jnp.inf)), num_samples=10)


@dataclass(frozen=True)
class BrokenWalk(UniformWalk):
    """UniformWalk with one way of breaking the kernel protocol (``mistake``)."""

    mistake: str = ""

    def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
        kernel = super().build(logdensity_fn, num_warmup)
        init, step = kernel.init, kernel.step
        if self.mistake == "dict state":
            return kernel._replace(
                init=lambda x: {"position": x, "logdensity": logdensity_fn(x)},
                step=lambda key, state, params: (state, WalkInfo(1.0, True)),
            )
        if self.mistake == "two-argument step":
            return kernel._replace(step=lambda key, state: step(key, state, None))
        if self.mistake == "state alone":
            return kernel._replace(step=lambda key, state, params: step(key, state, params)[0])
        if self.mistake == "int cost":
            return kernel._replace(cost=lambda info: 1)
        if self.mistake == "float cost":
            return kernel._replace(cost=lambda info: (1.5, 0))
        if self.mistake == "vector info":
            return kernel._replace(
                step=lambda key, state, params: (
                    step(key, state, params)[0],
                    WalkInfo(jnp.ones_like(state.position), True),
                )
            )
        if self.mistake == "tuple info":
            return kernel._replace(
                step=lambda key, state, params: (
                    step(key, state, params)[0],
                    tuple(step(key, state, params)[1]),
                )
            )
        if self.mistake == "short position":  # the draws would be shaped (chains, draws, 3)
            return kernel._replace(init=lambda x: init(x[:3]))
        if self.mistake == "dict info, vector rate":
            return kernel._replace(
                step=lambda key, state, params: (
                    step(key, state, params)[0],
                    {"acceptance_rate": jnp.ones(3), "is_accepted": jnp.asarray(True)},
                )
            )
        if self.mistake == "vector logdensity":
            return kernel._replace(init=lambda x: WalkState(x, logdensity_fn(x)[None]))
        if self.mistake == "state class in build":

            class LocalState(NamedTuple):
                position: jax.Array
                logdensity: jax.Array

            return kernel._replace(
                init=lambda x: LocalState(x, logdensity_fn(x)),
                step=lambda key, state, params: (
                    (LocalState(*step(key, state, params)[0]),) + (step(key, state, params)[1],)
                ),
            )
        if self.mistake in ("adaptation update", "adaptation final"):
            final = (lambda a: jnp.ones(2)) if self.mistake == "adaptation final" else None
            adaptation = infer.Adaptation(
                init=lambda params, state: jnp.zeros(()),
                update=(lambda a, row, state: a) if final is None else (lambda a, r, s, i: a),
                params=lambda a: None,
                final=final or (lambda a: None),
                schedule=lambda num_warmup: np.zeros(num_warmup),
            )
            return kernel._replace(adaptation=adaptation)
        if self.mistake == "growing state":

            def grow(key, state, params):
                new, info = step(key, state, params)
                return WalkState(jnp.append(new.position, 0.0), new.logdensity), info

            return kernel._replace(init=init, step=grow)
        return kernel


@pytest.mark.parametrize(
    ("mistake", "said"),
    [
        ("dict state", r"init\(position\) returned a dict with position and logdensity as keys"),
        ("two-argument step", r"step\(rng_key, state, params\) failed: TypeError"),
        ("state alone", r"step\(rng_key, state, params\) returned the state alone"),
        ("int cost", r"cost\(info\) must return \(num_logdensity_evals, num_grad_evals\)"),
        ("growing state", r"step changed the state's structure, shapes or dtypes"),
        ("float cost", r"cost\(info\) must .* two ints; it returned a pair of float32 and int32"),
        ("vector info", r"step's info.acceptance_rate has shape \(10,\); infer reads it as"),
        ("short position", r"init\(position\) returned a state whose position is .*\[\[3\]\], but"),
        ("dict info, vector rate", r"step's info.acceptance_rate has shape \(3,\); infer reads"),
        ("tuple info", r"step's info is a plain tuple; it must be a NamedTuple \(or a dict\)"),
        ("vector logdensity", r"init\(position\) returned a state whose logdensity has shape \(1,"),
        ("state class in build", r"init returns a .*LocalState defined inside build"),
        ("adaptation update", r"adaptation.update\(adapt_state, schedule_row, state, info\) fa"),
        ("adaptation final", r"adaptation.final returned .*float32\[2\].* params like params"),
    ],
)
def test_a_kernel_that_breaks_the_protocol_is_told_how(mistake, said):
    """Each of these failed inside the driver's program with an AttributeError or TypeError
    about its internals (``'St' object has no attribute 'logdensity'``, ``Value after * must
    be an iterable``, ``'tuple' object has no attribute '_asdict'`` for a plain-tuple info)
    or JAX's while_loop carry mismatch; a float cost was truncated to an
    int without a word. A short position from init made draws of the wrong shape, a vector
    ``diverging`` was counted once per entry (more divergences than draws), and a dict
    info's vector acceptance rate failed in JAX's broadcasting, each without a word."""
    target = targets.get("normal_10d")
    with pytest.raises(TypeError, match=f"BrokenWalk's kernel: {said}"):
        infer.sample(0, target, BrokenWalk(mistake=mistake), num_chains=2, num_samples=5)


@dataclass(frozen=True)
class ExtraInfoWalk(UniformWalk):
    """A walk whose info is a dict with one more field, ``extra``: name -> value(new state)."""

    name: str = "extra_info_walk"
    extra: tuple = ()
    more: tuple = ()  # more (name, make) pairs

    def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
        kernel = super().build(logdensity_fn, num_warmup)
        pairs = (self.extra, *self.more)

        def step(key, state, params):
            new, info = kernel.step(key, state, params)
            return new, {**info._asdict(), **{name: make(new) for name, make in pairs}}

        return kernel._replace(step=step)


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (("lp", lambda s: 7.0 * jnp.ones(())), r"info field 'lp' is named 'lp', which infer"),
        (("chain", lambda s: s.logdensity), r"info field 'chain' is named 'chain'"),
        (("a/b", lambda s: s.logdensity), r"info field 'a/b' needs a name without '/'"),
        (("proposal", lambda s: {"a": s.logdensity}), r"'proposal' is a dict; each info"),
        ((".", lambda s: s.logdensity), r"info field '\.' needs a name .* path segment"),
        (
            ("diverging", lambda s: jnp.ones(3, bool)),
            r"info.diverging has shape \(3,\); infer",
        ),
        (("is_accepted", lambda s: jnp.ones(3, bool)), r"info.is_accepted has shape \(3,\); infer"),
    ],
)
def test_an_info_field_infer_could_not_report_is_refused_before_the_run(extra, said):
    """``lp`` was overwritten by the log density, ``chain`` left out of the tree, a dict
    failed after the run with ``'dict' object has no attribute 'shape'`` and a ``/`` in
    ``to_arviz()``, each without a word about the field; a vector ``diverging`` was counted
    once per entry (more divergences than draws), a vector ``is_accepted`` kept whole."""
    target = targets.get("normal_10d")
    with pytest.raises(TypeError, match=said):
        infer.sample(0, target, ExtraInfoWalk(extra=extra), num_chains=2, num_samples=5)


def test_an_info_field_named_as_the_axis_arviz_gives_another_is_refused():
    """ArviZ names the axis of a vector field ``g`` ``g_dim_0``: a scalar field of that name
    became the axis's labels, and its values were dropped from ``sample_stats`` unsaid."""
    walk = ExtraInfoWalk(
        extra=("g", lambda s: s.position), more=(("g_dim_0", lambda s: jnp.sum(s.position)),)
    )
    said = r"info fields: ArviZ would name an axis of 'g' 'g_dim_0', .* Rename 'g_dim_0'\."
    with pytest.raises(TypeError, match=said):
        infer.sample(0, targets.get("normal_10d"), walk, num_chains=2, num_samples=5)
    kept = ExtraInfoWalk(
        extra=("g", lambda s: s.position), more=(("h", lambda s: jnp.sum(s.position)),)
    )
    stats = infer.sample(0, targets.get("normal_10d"), kept, num_chains=2, num_samples=5)
    assert {"g", "h"} <= set(stats.to_arviz()["sample_stats"].data_vars)


@dataclass(frozen=True)
class ScheduledWalk(UniformWalk):
    """A walk with a do-nothing adaptation whose schedule has ``rows_off`` rows too many."""

    name: str = "scheduled_walk"
    rows_off: int = 0

    def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
        adaptation = infer.Adaptation(
            init=lambda params, state: jnp.zeros(()),
            update=lambda a, row, state, info: a + row["weight"],
            params=lambda a: None,
            final=lambda a: None,
            schedule=lambda n: {"weight": np.ones(n + self.rows_off)},
        )
        return super().build(logdensity_fn, num_warmup)._replace(adaptation=adaptation)


@pytest.mark.parametrize("rows_off", [-3, 3])
@pytest.mark.thorough  # a refusal, 2 s a case
def test_a_schedule_of_the_wrong_length_is_refused(rows_off):
    """A short one once repeated its last row through the warm-up, a long one was cut."""
    target = targets.get("normal_10d")
    options = dict(num_chains=2, num_samples=5, num_warmup=20)
    infer.sample(0, target, ScheduledWalk(), **options)
    with pytest.raises(TypeError, match=rf"\['weight'\] of shape \({20 + rows_off},\); each"):
        infer.sample(0, target, ScheduledWalk(rows_off=rows_off), **options)


@dataclass(frozen=True)
class ListSettingsWalk(UniformWalk):
    def settings(self):
        return [self.width]


@pytest.mark.parametrize(
    ("sampler", "said"),
    [
        (UniformWalk(name=None), r"UniformWalk.name must be a non-empty str .* got None"),
        (UniformWalk(uses_gradients="no"), r"uses_gradients must be True or False; got 'no'"),
        (ListSettingsWalk(), r"settings\(\) must return a dict of its options .* got list"),
    ],
)
def test_a_sampler_whose_name_or_settings_are_of_the_wrong_kind_is_refused(sampler, said):
    """``name=None`` once ran, showed as None in compare and failed deep in h5py at save."""
    with pytest.raises(TypeError, match=said):
        infer.sample(0, targets.get("normal_10d"), sampler, num_chains=2, num_samples=5)


def test_an_adaptation_that_is_not_one_is_refused():
    kernel_of = BrokenWalk().build
    broken = dataclasses.replace(BrokenWalk(), name="tuple_adaptation")
    object.__setattr__(
        broken, "build", lambda fn, n=0: kernel_of(fn, n)._replace(adaptation=(1, 2))
    )
    with pytest.raises(TypeError, match=r"its adaptation must be None or an infer.Adaptation"):
        infer.sample(0, targets.get("normal_10d"), broken, num_chains=2, num_samples=5)


def _walk_class(moves: bool):
    """A sampler class, defined anew at each call under one module and qualname, as a
    notebook cell run again after an edit defines it."""

    @dataclass(frozen=True)
    class EditedWalk(UniformWalk):
        name: str = "edited_walk"

        def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
            kernel = super().build(logdensity_fn, num_warmup)
            if moves:
                return kernel
            return kernel._replace(step=lambda key, state, params: (state, WalkInfo(0.0, False)))

    return EditedWalk


def test_a_sampler_class_defined_again_compiles_its_new_code():
    """Equal module, qualname and settings, but a new class: its own program runs (the
    edited one never moves), not the cached program of the class it replaces; another
    instance of one class still reuses its program."""
    target = targets.get("normal_10d")
    options = dict(num_chains=2, num_samples=50, num_warmup=0)
    walking = infer.sample(0, target, _walk_class(moves=True)(), **options)
    standing_class = _walk_class(moves=False)
    standing = infer.sample(0, target, standing_class(), **options)
    assert walking.acceptance_rate > 0.05
    assert standing.acceptance_rate == 0.0 and not standing.info["cache_hit"]
    assert infer.sample(1, target, standing_class(), **options).info["cache_hit"]


@dataclass(frozen=True)
class QuietWalk(UniformWalk):
    """A sampler whose ``settings()`` leave out an option its ``build`` reads."""

    name: str = "quiet_walk"

    def settings(self) -> dict:
        return {}


def test_an_option_left_out_of_settings_still_gets_its_own_program():
    """The compiled program once keyed on the class and the settings alone, so a second
    run with another width silently reused the first one's program (and its width)."""
    target = targets.get("normal_10d")
    options = dict(num_chains=2, num_samples=200, num_warmup=0)
    narrow = infer.sample(0, target, QuietWalk(width=0.1), **options)
    wide = infer.sample(0, target, QuietWalk(width=1.0), **options)
    assert not wide.info["cache_hit"]
    assert wide.acceptance_rate < 0.5 * narrow.acceptance_rate
    assert infer.sample(1, target, QuietWalk(width=0.1), **options).info["cache_hit"]


class ProposalInfo(NamedTuple):
    acceptance_rate: jax.Array
    is_accepted: jax.Array
    proposal: jax.Array  # a vector: info fields infer does not read may have any shape


@pytest.mark.thorough  # an edge of the protocol
def test_info_fields_infer_does_not_read_may_be_vectors():
    """The protocol check once blamed such a field for another mistake (a float cost)."""

    @dataclass(frozen=True)
    class Recording(UniformWalk):
        name: str = "recording_walk"

        def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
            kernel = super().build(logdensity_fn, num_warmup)

            def step(key, state, params):
                new, info = kernel.step(key, state, params)
                return new, ProposalInfo(*info, new.position)

            return kernel._replace(step=step)

    target = targets.get("normal_10d")
    result = infer.sample(0, target, Recording(), num_chains=2, num_samples=5, num_warmup=0)
    assert result.stats["proposal"].shape == (2, 5, 10)

    @dataclass(frozen=True)
    class FloatCost(Recording):
        def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
            kernel = super().build(logdensity_fn, num_warmup)
            return kernel._replace(cost=lambda info: (1.5, 0))

    with pytest.raises(TypeError, match=r"cost\(info\) must return .* two ints"):
        infer.sample(0, target, FloatCost(), num_chains=2, num_samples=5, num_warmup=0)


@dataclass(frozen=True)
class CostlyWalk(UniformWalk):
    """A walk that reports 2**30 evaluations a step (an HMC whose step size collapsed
    takes millions of leapfrog steps a draw)."""

    name: str = "costly_walk"

    def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
        kernel = super().build(logdensity_fn, num_warmup)
        return kernel._replace(cost=lambda info: (2**30, 2**30 - 1))


def test_evaluation_counts_past_two_to_the_31_are_exact():
    """The counts were int32 per chain: past 2**31 they wrapped to negative."""
    target = targets.get("normal_1d")
    result = infer.sample(0, target, CostlyWalk(), num_chains=2, num_samples=3, num_warmup=2)
    assert result.num_logdensity_evals == 2 * (5 * 2**30 + 1)  # and one at each start
    assert result.num_grad_evals == 2 * 5 * (2**30 - 1)


@dataclass(frozen=True)
class CarelessWalk(UniformWalk):
    """:class:`UniformWalk` with a sampler author's mistake: ``"nan"`` accepts proposals at
    a NaN log density (``not u > rate``), ``"rate"`` reports ``exp(log ratio)`` without the
    ``min(1, .)``, ``"diverging"`` reports a float ``diverging`` field, ``"nan_counted"``
    counts the NaN proposals it accepts as ``nonfinite``."""

    mistake: str = "nan"
    name: str = "careless_walk"

    def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
        kernel = super().build(logdensity_fn, num_warmup)

        def step(rng_key, state, params):
            key_move, key_accept = jax.random.split(rng_key)
            noise = jax.random.uniform(key_move, state.position.shape, minval=-1.0, maxval=1.0)
            proposal = state.position + self.width * noise
            proposal_logdensity = logdensity_fn(proposal)
            ratio = jnp.exp(proposal_logdensity - state.logdensity)
            accepted = ~(jax.random.uniform(key_accept) > ratio)  # NaN: accepted
            if self.mistake == "nan_rate":  # NaN rejected, but its rate min(1, NaN) is NaN
                accepted = jax.random.uniform(key_accept) < ratio
            new = jax.tree.map(
                lambda a, b: jnp.where(accepted, a, b),
                WalkState(proposal, proposal_logdensity),
                state,
            )
            rate = ratio if self.mistake == "rate" else jnp.minimum(1.0, ratio)
            if self.mistake == "diverging":
                return new, {"acceptance_rate": rate, "diverging": jnp.float32(0.3)}
            if self.mistake == "is_divergent":  # BlackJAX's name, read as diverging
                return new, {"acceptance_rate": rate, "is_divergent": jnp.float32(0.3)}
            if self.mistake == "both_names":  # diverging twice, under both names
                flags = {"diverging": jnp.asarray(False), "is_divergent": jnp.asarray(True)}
                return new, {"acceptance_rate": rate, **flags}
            if self.mistake == "nan_counted":  # counts the NaN proposals it lets in
                nonfinite = jnp.isnan(proposal_logdensity)
                return new, {
                    "acceptance_rate": rate,
                    "is_accepted": accepted,
                    "nonfinite": nonfinite,
                }
            return new, WalkInfo(rate, accepted)

        return kernel._replace(step=step)


@pytest.mark.thorough  # an edge case, 4 s
def test_a_samplers_broken_statistics_are_said_not_reported_as_they_are():
    """Reported as they were: kept draws at a NaN log density (with only R-hat's advice to
    run longer), acceptance rates of 1.08, a float diverging summed as 600 divergences."""
    holed = infer.Target(
        lambda x: jnp.where(x[0] > 1.5, jnp.nan, -0.5 * jnp.sum(x**2)), init=jnp.zeros(2)
    )
    run = dict(num_chains=2, num_samples=200, num_warmup=0)
    with warnings.catch_warnings(record=True) as caught:  # both mistakes in one run
        warnings.simplefilter("always")
        infer.sample(0, holed, CarelessWalk(2.0, mistake="rate"), **run)
    said = " ".join(str(w.message) for w in caught)
    assert "kept draws have a NaN log density" in said
    assert re.search(r"acceptance rates from .* outside \[0, 1\]", said)
    with warnings.catch_warnings(record=True) as caught:  # counted, and still let in
        warnings.simplefilter("always")
        infer.sample(0, holed, CarelessWalk(2.0, mistake="nan_counted"), **run)
    said = " ".join(str(w.message) for w in caught)
    assert "kept draws have a NaN log density" in said and "They were rejected" not in said
    assert "A sampler should reject them, but this one kept some" in said
    with pytest.raises(TypeError, match=r"info field 'diverging' is float32"):
        infer.sample(0, holed, CarelessWalk(2.0, mistake="diverging"), **run)
    with pytest.warns(infer.DiagnosticWarning, match=r"acceptance rates are NaN, so the run's"):
        result = infer.sample(0, holed, CarelessWalk(2.0, mistake="nan_rate"), **run)
    assert not np.isnan(result.stats["lp"]).any()  # the draws are fine; the rates are not


@pytest.mark.parametrize(
    ("mistake", "said"),
    [
        ("is_divergent", r"info field 'is_divergent' is float32; .* make it a bool"),
        ("both_names", r"'is_divergent' is reported as 'diverging' .* the info also has"),
    ],
)
def test_a_divergence_field_under_blackjaxs_name_is_checked_as_diverging(mistake, said):
    """is_divergent (reported as diverging) escaped the bool check: a float 0.3 every step
    was summed into 119 divergences of 400 steps; and beside a field named diverging, one of
    the two overwrote the other without a word."""
    normal = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2))
    with pytest.raises(TypeError, match=said):
        infer.sample(0, normal, CarelessWalk(1.0, mistake=mistake), num_chains=2, num_samples=10)


@dataclass(frozen=True)
class DictInfoWalk(UniformWalk):
    """:class:`UniformWalk` whose Info is a dict (as the protocol allows) with ``nonfinite``."""

    name: str = "dict_info_walk"

    def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
        kernel = super().build(logdensity_fn, num_warmup)

        def step(rng_key, state, params):
            key_move, key_accept = jax.random.split(rng_key)
            noise = jax.random.uniform(key_move, state.position.shape, minval=-1.0, maxval=1.0)
            proposal = WalkState(state.position + noise, logdensity_fn(state.position + noise))
            finite = jnp.isfinite(proposal.logdensity)
            log_ratio = jnp.where(finite, proposal.logdensity - state.logdensity, -jnp.inf)
            rate = jnp.minimum(1.0, jnp.exp(log_ratio))
            accepted = jax.random.uniform(key_accept) < rate
            new = jax.tree.map(lambda a, b: jnp.where(accepted, a, b), proposal, state)
            return new, {"acceptance_rate": rate, "is_accepted": accepted, "nonfinite": ~finite}

        return kernel._replace(step=step)


@pytest.mark.thorough  # a second form of info, 2 s
def test_an_info_given_as_a_dict_is_read_as_a_namedtuple_is():
    """Its nonfinite field was not counted (0 proposals), so no warning; and a run's
    progress bar showed acceptance 0.00."""
    holed = infer.Target(
        lambda x: jnp.where(x[0] > 1.5, jnp.nan, -0.5 * jnp.sum(x**2)), init=jnp.zeros(2)
    )
    with pytest.warns(infer.DiagnosticWarning, match=r"proposals had a NaN"):
        result = infer.sample(0, holed, DictInfoWalk(), num_chains=2, num_samples=100)
    counted = int(np.sum(result.info["nonfinite_proposals"]))
    assert counted > 0 and counted >= int(np.sum(result.stats["nonfinite"]))


@dataclass(frozen=True)
class IntegerFinalWalk(UniformWalk):
    """:class:`UniformWalk` whose warm-up tunes the width, with an adaptation whose ``final``
    returns an int32 width where ``params`` gives float32."""

    name: str = "integer_final_walk"

    def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
        walk = super().build(logdensity_fn, num_warmup)

        def step(rng_key, state, width):  # the walk's step, at the tuned width
            return UniformWalk(width).build(logdensity_fn).step(rng_key, state, None)

        adaptation = infer.Adaptation(
            init=lambda params, state: jnp.log(params),
            update=lambda log_width, row, state, info: log_width + 0.05 * (info[0] - 0.3),
            params=jnp.exp,
            final=lambda log_width: jnp.exp(log_width).astype(jnp.int32),
            schedule=lambda n: np.zeros(n),
        )
        return walk._replace(
            step=step, params=lambda position: jnp.asarray(1.0), adaptation=adaptation
        )


def test_an_adaptation_whose_final_params_change_dtype_is_refused():
    """The int32 width was cast back to float32 (0 or 1): the chain froze, said only to
    have never moved."""
    plain = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2))
    with pytest.raises(TypeError, match=r"final returned .*int32.* params are .*float32"):
        infer.sample(0, plain, IntegerFinalWalk(), num_chains=2, num_samples=10, num_warmup=20)


def test_a_sampler_whose_accepted_proposals_never_move_is_not_said_to_reject_them():
    """A zero-width walk accepts every proposal (the current point) and was told 'every
    proposal was rejected', against its own acceptance rate of 1."""
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2))
    still = infer.sample(0, target, UniformWalk(0.0), num_chains=2, num_samples=100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = infer.compare({"still": still})
    said = " ".join(str(w.message) for w in caught)
    assert "stuck_chains" in table.loc["still", "flags"]
    assert "100% of its proposals were accepted, yet none moved it" in said
    assert "every proposal was rejected" not in said


@dataclass(frozen=True)
class SilentWalk(UniformWalk):
    """A walk whose info records nothing of acceptance: only the proposal's log density."""

    name: str = "silent_walk"

    def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
        kernel = super().build(logdensity_fn, num_warmup)

        def step(key, state, params):
            new, info = kernel.step(key, state, params)
            return new, {"proposal_logdensity": new.logdensity}

        return kernel._replace(step=step)


def test_a_stuck_sampler_that_records_no_acceptance_is_not_said_to_reject_everything():
    """A zero-width walk recording no acceptance was told 'every proposal was rejected', which
    its statistics cannot tell; the message now names both causes, a still proposal first."""
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2))
    with pytest.warns(UserWarning, match="never moved") as caught:
        infer.sample(0, target, SilentWalk(0.0), num_chains=2, num_samples=100)
    said = " ".join(str(w.message) for w in caught)
    assert "do not say whether its proposals were accepted" in said
    assert "the proposal is the current point" in said
    assert not re.search(r"never moved: every proposal was rejected", said)


@dataclass(frozen=True)
class DivergingWalk(UniformWalk):
    """UniformWalk that calls each rejected proposal a divergence."""

    name: str = "diverging_walk"

    def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
        kernel = super().build(logdensity_fn, num_warmup)

        def step(key, state, params):
            new, info = kernel.step(key, state, params)
            return new, {**info._asdict(), "diverging": ~info.is_accepted}

        return kernel._replace(step=step)


@pytest.mark.thorough  # a message, 2 s
def test_divergence_advice_names_no_option_a_sampler_of_ones_own_lacks():
    """The advice was "give a smaller step_size, or let warm-up tune it
    (adapt_step_size=True, or step_size=None)" for a sampler with neither option."""
    target = targets.get("normal_10d")
    with pytest.warns(infer.DiagnosticWarning, match="divergent") as caught:
        infer.sample(0, target, DivergingWalk(width=3.0), num_chains=2, num_samples=50)
    said = " ".join(str(w.message) for w in caught if "divergent" in str(w.message))
    assert "'diverging_walk' has no step_size option" in said
    assert "adapt_step_size" not in said and "give a smaller step_size" not in said


@dataclass(frozen=True)
class ConstantLogdensityWalk(UniformWalk):
    """UniformWalk whose step keeps 1.0 as the state's logdensity, not the target's."""

    name: str = "constant_logdensity_walk"

    def build(self, logdensity_fn, num_warmup=0) -> infer.Kernel:
        kernel = super().build(logdensity_fn, num_warmup)

        def step(key, state, params):
            new, info = kernel.step(key, state, params)
            return WalkState(new.position, jnp.ones_like(new.logdensity)), info

        return kernel._replace(step=step)


@pytest.mark.thorough  # a message, 3 s
def test_a_resume_refused_for_a_wrong_state_logdensity_names_the_sampler_too():
    """The refusal blamed the target alone ("another prior, likelihood, fixed state or
    code"), where the sampler's state held a value that was not the target's."""
    target = targets.get("normal_10d")
    sampler = ConstantLogdensityWalk()
    first = infer.sample(0, target, sampler, num_chains=2, num_samples=20)
    with pytest.raises(ValueError, match="(?s)another prior.*logdensity_is_exact = False"):
        infer.sample(0, target, sampler, num_samples=20, resume=first)


@pytest.mark.thorough  # messages, 2 s
def test_fixed_step_advice_names_only_options_the_sampler_takes():
    """Without warm-up a sampler of one's own was told of a step_size it lacks; NUTS with a
    fixed step size was told to pass step_size=None, which infer.nuts refuses."""
    from infer.flag_rules import divergence_advice

    target = targets.get("normal_10d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        walk = DivergingWalk(width=3.0)
        own = infer.sample(0, target, walk, num_chains=2, num_samples=20, num_warmup=0)
        fixed = infer.sample(
            0, target, infer.nuts(step_size=0.5, adapt_step_size=False), num_samples=20
        )
    said = divergence_advice(own)
    assert "a smaller step of the sampler's own" in said and "step_size" not in said
    said = divergence_advice(fixed)
    assert "(adapt_step_size=True)" in said and "step_size=None" not in said
    with pytest.raises(TypeError, match="step_size must be a positive number"):
        infer.nuts(step_size=None)  # what the advice said before
