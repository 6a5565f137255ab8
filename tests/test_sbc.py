"""Simulation-based calibration (``infer.sbc``): right samplers pass, broken ones fail.

The broken samplers are written here through the sampler protocol (``infer/base.py``):

* ``UncorrectedMALA``: MALA without its Hastings term (``hastings_correction=False``). On
  eight schools its posteriors are far too narrow (a long run on the real data gives sd 2.5
  for ``mu`` where the answer is 3.3, and 0.7 for each ``theta_tilde`` where it is 1.0).
  Power, measured over seeds 0-9 at this file's settings (40 simulations, 100 draws thinned
  by 10, diagonal preconditioning): 10 of 10 fail, every one with an ECDF p-value at its
  floor (5e-5) against the level 0.001; MALA with its correction passes on the same 10.
* ``RWMHAdaptationLeftRunning``: RWMH whose warm-up adaptation never stops: the step size
  keeps adapting from the acceptance every step (dual averaging, restarted each window) and
  the diagonal scale is re-estimated from each window of 25 draws. Its bias is small (a long
  run on the real data: sd 3.14 for ``mu`` against 3.31, 0.93 for ``theta_tilde[0]``
  against 0.99), so the check takes 400 simulations, 2000 warm-up steps and draws thinned by
  600 (ESS / draws near 1 for both samplers, so autocorrelation cannot explain the
  failure). Power, measured on seeds 0-2: 3 of 3 fail (smallest p-values 5e-5, 4e-4 and
  3.5e-4 against the level 1e-3), and RWMH with its adaptation frozen passes 3 of 3
  (smallest p-values 0.016, 0.20, 0.026). With 1000 warm-up steps 5 of 6 seeds failed, but
  the frozen RWMH came within a hair of failing too (0.0011 on seed 0): random walks from
  the prior median need long warm-ups on the simulations with a very large ``tau``.

  Adapting only the step size from the acceptance, forever (a constant-gain Robbins-Monro
  update of log step), barely biases RWMH on this 10-parameter posterior: long runs match
  the answer within Monte Carlo error, and SBC with 200 simulations thinned by 100 passes
  on 3 of 3 seeds. In many dimensions the acceptance hardly depends on where the chain is,
  so an adaptation driven by it hardly depends on the position either.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from pictures import assert_drawn

import infer
from infer.algorithms import mala as mala_module
from infer.algorithms import rwmh as rwmh_module
from infer.calibration import SBCResult
from infer.rank_uniformity import (
    MAX_PANELS,
    NULL_SIMULATIONS,
    chi2_test,
    ecdf_band,
    ecdf_pvalues,
    null_size,
)
from models.targets import EIGHT_SCHOOLS_SIGMA, eight_schools_model

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out

SIGMA = np.asarray(EIGHT_SCHOOLS_SIGMA, np.float32)


class UncorrectedMALA(mala_module.MALA):
    """MALA that accepts with ``p(x') / p(x)`` only: the unadjusted Langevin proposal's
    asymmetry is ignored, so the chain does not leave the posterior invariant."""

    name = "mala_without_hastings"
    build_kernel_fn = staticmethod(
        lambda logdensity_fn: mala_module.build_kernel(logdensity_fn, hastings_correction=False)
    )


class RunningState(NamedTuple):
    """RWMH's state and its adaptation's, carried from step to step."""

    inner: rwmh_module.RWMHState
    adaptation: object
    step: jax.Array

    @property
    def position(self):
        return self.inner.position

    @property
    def logdensity(self):
        return self.inner.logdensity


class RWMHAdaptationLeftRunning(rwmh_module.RWMH):
    """``infer.rwmh``'s warm-up adaptation, never frozen: after each step the step size is
    updated from the acceptance, and every ``window`` steps the scale is re-estimated from
    the window's draws (and the step size restarted), in the sampling phase too."""

    name = "rwmh_adaptation_left_running"

    def __init__(self, window: int = 25, **options):
        super().__init__(**options)
        self.window = window

    def settings(self) -> dict:
        return dict(super().settings(), window=self.window)

    def build(self, logdensity_fn, num_warmup=0):
        kernel = super().build(logdensity_fn, num_warmup)
        adaptation, window = kernel.adaptation, self.window

        def init(position):
            inner = kernel.init(position)
            start = adaptation.init(kernel.params(position), inner)
            return RunningState(inner, start, jnp.zeros((), jnp.int32))

        def step(rng_key, state, params):  # the driver's (frozen) params are ignored
            inner, info = kernel.step(rng_key, state.inner, adaptation.params(state.adaptation))
            row = {"collect": jnp.asarray(True), "window_end": state.step % window == window - 1}
            running = adaptation.update(state.adaptation, row, inner, info)
            return RunningState(inner, running, state.step + 1), info

        return kernel._replace(init=init, step=step, adaptation=None)


def normal_mean(scale, y=None):
    """``mu ~ N(0, 1)``, ``y_i ~ N(mu, scale_i)``: a small model for the fast checks."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    with numpyro.plate("observations", scale.shape[0]):
        numpyro.sample("y", dist.Normal(mu, scale), obs=y)


SCALE = np.ones(3, np.float32)


def two_outputs(scale, y=None, z=None):
    """``normal_mean`` with a second observation ``z``."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(mu, scale).to_event(1), obs=y)
    numpyro.sample("z", dist.Normal(mu, 1.0), obs=z)


def eight_schools_sbc(seed, sampler, **options) -> SBCResult:
    return infer.sbc(
        seed, eight_schools_model, sampler, observed="y", model_args=(SIGMA,), **options
    )


# -- the uniformity tests on ranks made up here --------------------------------------------


def made_up_ranks(rng, spread: float, shift: float, num_simulations=200, num_draws=99, n=1):
    """Ranks of a true value ``N(0, 1)`` among draws ``N(shift, spread**2)``: uniform for
    ``spread=1, shift=0``, piled at both ends when ``spread < 1``, in the middle when > 1."""
    truth = rng.normal(size=(num_simulations, n))
    draws = shift + spread * rng.normal(size=(num_simulations, num_draws, n))
    return np.sum(draws < truth[:, None, :], axis=1)


def test_the_uniformity_tests_have_their_level():
    """Uniform ranks: p-values below 0.05 about 5% of the time (2000 rank sets; 4 binomial
    standard deviations of slack)."""
    ranks = np.random.default_rng(1).integers(0, 100, size=(100, 2000))
    for pvalues in (ecdf_pvalues(ranks, 99), chi2_test(ranks, 99)[1]):
        assert abs(np.mean(pvalues < 0.05) - 0.05) < 4 * np.sqrt(0.05 * 0.95 / 2000)


@pytest.mark.parametrize(
    "spread, shift", [(0.7, 0.0), (1.5, 0.0), (1.0, 0.4)], ids=["narrow", "wide", "shifted"]
)
def test_misshapen_ranks_fail_both_tests(spread, shift):
    ranks = made_up_ranks(np.random.default_rng(2), spread, shift)
    assert ecdf_pvalues(ranks, 99)[0] < 1e-3
    assert chi2_test(ranks, 99)[1][0] < 1e-3


def test_an_ecdf_leaves_its_band_exactly_when_its_pvalue_is_below_the_level():
    rng = np.random.default_rng(3)
    ranks = np.concatenate(
        [made_up_ranks(rng, spread, 0.0, n=40) for spread in (0.85, 1.0, 1.15)], axis=1
    )
    level = 0.01
    z, lower, upper = ecdf_band(200, 99, level)
    points = np.rint(z * 100).astype(int)
    ecdf = np.mean(ranks[:, None, :] < points[None, :, None], axis=0)  # (points, params)
    outside = np.any((ecdf < lower[:, None] - 1e-12) | (ecdf > upper[:, None] + 1e-12), axis=0)
    np.testing.assert_array_equal(outside, ecdf_pvalues(ranks, 99) < level)
    assert 0 < outside.sum() < outside.size  # both kinds are there


def test_chi_square_bins_expect_at_least_five():
    for num_simulations, num_draws in [(10, 99), (40, 99), (200, 99), (1000, 999), (30, 7)]:
        ranks = np.zeros((num_simulations, 1), int)
        _, _, bins = chi2_test(ranks, num_draws)
        smallest = num_simulations * ((num_draws + 1) // bins) / (num_draws + 1)
        assert 2 <= bins <= 20 and (smallest >= 5 or bins == 2)


# -- sbc on models ---------------------------------------------------------------------


def test_bad_input_gets_clear_errors():
    rwmh = infer.rwmh()
    with pytest.raises(
        TypeError, match="keywords failed: .*unexpected keyword argument .z.*name the model.s own"
    ):
        infer.sbc(0, normal_mean, rwmh, observed="z", model_args=(SCALE,))
    with pytest.raises(TypeError, match="observed must name observed sites"):
        infer.sbc(0, normal_mean, rwmh, observed=3, model_args=(SCALE,))
    with pytest.raises(ValueError, match="model_kwargs holds \\['y'\\]"):
        infer.sbc(0, normal_mean, rwmh, observed="y", model_args=(SCALE,), model_kwargs={"y": 1})
    with pytest.raises(ValueError, match=r"observes \['z'\] with data sbc does not simulate"):
        infer.sbc(0, two_outputs, rwmh, observed="y", model_args=(SCALE,), model_kwargs={"z": 1.0})
    with pytest.raises(ValueError, match="var_names must be among the parameters"):
        infer.sbc(0, normal_mean, rwmh, observed="y", model_args=(SCALE,), var_names=["tau"])
    with pytest.raises(ValueError, match=r"name at least one parameter; got \[\]. Leave it out"):
        infer.sbc(0, normal_mean, rwmh, observed="y", model_args=(SCALE,), var_names=[])
    with pytest.raises(TypeError, match=r"var_names must name parameters, .*\['mu'\]\); got 5"):
        infer.sbc(0, normal_mean, rwmh, observed="y", model_args=(SCALE,), var_names=5)
    for names in ({"tau"}, np.asarray(["tau"]), {"tau": 1}.keys()):  # collections of names
        with pytest.raises(ValueError, match=r"var_names must be among the parameters"):
            infer.sbc(0, normal_mean, rwmh, observed="y", model_args=(SCALE,), var_names=names)
    # the observed name is right; the model's own argument is what is missing
    with pytest.raises(TypeError, match=r"model_args=\(\) .*missing .*Pass the model's other"):
        infer.sbc(0, normal_mean, rwmh, observed="y")
    with pytest.raises(ValueError, match="num_simulations must be an integer >= 10"):
        infer.sbc(0, normal_mean, rwmh, observed="y", model_args=(SCALE,), num_simulations=5)
    with pytest.raises(ValueError, match="alpha must be in"):
        infer.sbc(0, normal_mean, rwmh, observed="y", model_args=(SCALE,), alpha=1.5)
    with pytest.raises(TypeError, match="Markov-chain samplers"):
        infer.sbc(0, normal_mean, infer.rejection(dist.Normal(0.0, 2.0)), observed="y")
    with pytest.raises(TypeError, match="forget the parentheses"):
        infer.sbc(0, normal_mean, infer.rwmh, observed="y", model_args=(SCALE,))
    with pytest.raises(TypeError, match=r"model_args must be a tuple .* \(x,\); got ndarray"):
        infer.sbc(0, normal_mean, rwmh, observed="y", model_args=SCALE)
    with pytest.raises(TypeError, match="progress must be True, False or a tqdm class"):
        infer.sbc(0, normal_mean, rwmh, observed="y", model_args=(SCALE,), progress="x")


@pytest.mark.thorough  # a message, 5 s
def test_an_observed_site_left_out_of_observed_is_said_once_with_sbcs_advice():
    """``z=None`` not in ``observed=``: a parameter, ranked; the advice is to add it to
    ``observed=`` (once), not from_numpyro's to pass z=<data> (once per simulation)."""
    options = dict(observed="y", model_args=(SCALE,), num_simulations=10, num_warmup=30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check = infer.sbc(0, two_outputs, infer.rwmh(), num_samples=20, num_chains=2, **options)
    advice = [str(w.message) for w in caught if "argument z=None" in str(w.message)]
    assert len(advice) == 1 and "add 'z' to observed=" in advice[0], advice
    assert check.names[0] == "mu" and any(name.startswith("z") for name in check.names)
    shown = repr(check)  # a line, not the ranks array
    assert shown.startswith("SBCResult(rwmh on two_outputs: 10 simulations") and "\n" not in shown


@pytest.mark.thorough  # a cost property, 3 s
def test_simulations_after_the_first_compile_nothing():
    from test_driver import count_compilations

    options = dict(observed="y", model_args=(SCALE,), num_simulations=10, num_warmup=60)
    first = infer.sbc(0, normal_mean, infer.mala(), **options)
    assert first.compiled_simulations <= 1  # the first compiles (unless a test did already)
    with count_compilations() as compilations:
        again = infer.sbc(1, normal_mean, infer.mala(), **options)
    assert compilations["n"] == 0 and again.compiled_simulations == 0
    assert again.ranks.shape == (10, 1) and again.names == ["mu"]
    assert np.all((0 <= again.ranks) & (again.ranks <= again.num_draws))


@pytest.mark.thorough  # an option, 3 s
def test_the_same_seed_gives_the_same_ranks_and_var_names_picks_parameters():
    options = dict(observed="y", model_args=(SIGMA,), num_simulations=10, num_warmup=50)
    options.update(var_names=["tau", "theta"], num_samples=10, num_chains=2)
    first = infer.sbc(3, eight_schools_model, infer.mala(), **options)
    again = infer.sbc(3, eight_schools_model, infer.mala(), **options)
    np.testing.assert_array_equal(first.ranks, again.ranks)
    assert first.names == ["tau"] + [f"theta[{i}]" for i in range(8)]
    assert first.num_draws == 20 and first.ranks.shape == (10, 9)


def test_mala_without_its_hastings_correction_fails():
    """40 simulations suffice: see the module docstring for the power (10 of 10 seeds)."""
    check = eight_schools_sbc(
        0, UncorrectedMALA(covariance="diagonal"), num_simulations=40, thin=10
    )
    assert not check.passed
    assert "tau" in check.failed
    assert check.pvalue.min() < 1e-4 and check.compiled_simulations <= 1


@pytest.mark.slow
@pytest.mark.thorough  # a second sampler's pass, 8 s; `make test` has NUTS's and the CLI's MALA
def test_mala_with_its_hastings_correction_passes(seed):
    check = eight_schools_sbc(seed, infer.mala(covariance="diagonal"), num_simulations=40, thin=10)
    assert check.passed, check.pvalue


@pytest.mark.thorough  # 40 runs of NUTS, 19 s; MALA's pass and its broken twin's fail stay
def test_nuts_passes_on_eight_schools(seed):
    """Non-centred eight schools, 40 simulations of 4 chains x 25 draws (thin 4), as many
    as the MALA checks: a null check (the power is in the failing samplers' tests)."""
    check = eight_schools_sbc(seed, infer.nuts(), num_simulations=40)
    assert check.passed, dict(zip(check.names, check.pvalue, strict=True))
    assert np.all(check.ess_ratio > 0.5)
    assert check.compiled_simulations <= 1


RWMH_OPTIONS = dict(num_simulations=400, thin=600, num_warmup=2000)  # about 20 s each


@pytest.mark.thorough  # also caught, faster, by test_mutations' frozen-adaptation check
def test_rwmh_with_its_adaptation_left_running_fails(seed):
    sampler = RWMHAdaptationLeftRunning(covariance="diagonal")
    check = eight_schools_sbc(seed, sampler, **RWMH_OPTIONS)
    assert not check.passed and np.all(check.ess_ratio > 0.8)


@pytest.mark.thorough
def test_rwmh_with_its_adaptation_frozen_passes(seed):
    check = eight_schools_sbc(seed, infer.rwmh(covariance="diagonal"), **RWMH_OPTIONS)
    assert check.passed, check.pvalue
    assert np.all(check.ess_ratio > 0.8)


def test_the_plot_is_a_png_with_the_bands_and_the_ranks(tmp_path):
    rng = np.random.default_rng(4)
    ranks = np.concatenate([made_up_ranks(rng, 1.0, 0.0), made_up_ranks(rng, 0.6, 0.0)], 1)
    check = SBCResult(
        ranks, ["fine", "narrow"], 99, 0.01, ecdf_pvalues(ranks, 99), np.ones(2),
        sampler="made_up", model="ranks",
    )  # fmt: skip
    assert check.failed == ["narrow"] and not check.passed
    assert check.plot(path=tmp_path / "sbc.png") is None
    path = tmp_path / "sbc.png"
    assert_drawn(path, least=0.002)  # lines in colour
    rgb = matplotlib.image.imread(path)[..., :3]
    red = (rgb[..., 0] > 0.7) & (rgb[..., 1] < 0.4) & (rgb[..., 2] < 0.4)
    assert red.mean() > 1e-4  # the failing parameter, in red


@pytest.mark.parametrize("sampler", ["mala_without_hastings", "long_name_" * 8])
def test_the_plot_title_fits_the_figure(sampler):
    """A one-parameter plot, inconclusive, of the docs' own sampler on eight schools: the
    one-line title ran 130 pixels past each edge of the 7-inch figure."""
    ranks = made_up_ranks(np.random.default_rng(4), 1.0, 0.0)
    check = SBCResult(
        ranks, ["mu"], 99, 0.01, ecdf_pvalues(ranks, 99), np.ones(1), sampler=sampler,
        model="eight_schools_model", stuck_simulations=3,
    )  # fmt: skip
    figure = check.plot()
    figure.canvas.draw()
    title = figure.get_suptitle()
    box = next(t for t in figure.texts if t.get_text() == title)
    extent = box.get_window_extent(figure.canvas.get_renderer())
    assert 0 <= extent.x0 and extent.x1 <= figure.bbox.width, (extent, figure.bbox.width)
    assert sampler in title.replace("\n", "") and "inconclusive" in title


def test_a_small_level_is_calibrated_on_enough_rank_sets_to_be_failed():
    """Each parameter's level is ``alpha / num_params``; calibrated on 20,000 uniform rank
    sets, no p-value could go below 5e-5, so a check of 250 parameters at 0.01 could never
    fail. Ranks all 0 must fail at level 4e-5."""
    ranks = np.zeros((20, 1), int)
    assert ecdf_pvalues(ranks, 9)[0] > 4e-5  # the default calibration's floor
    assert ecdf_pvalues(ranks, 9, level=4e-5)[0] < 4e-5
    assert null_size(4e-5) == 500_000 and null_size(1e-3) == NULL_SIMULATIONS
    with pytest.raises(ValueError, match="smallest level is 2e-05"):
        null_size(1e-5)
    from infer.calibration_checks import SBCInputError, checked_level

    for alpha, num_params in [(0.00014, 7), (0.0003, 15), (0.02442, 1221)]:
        assert checked_level(alpha, num_params) >= 1.9999e-5  # at the limit: round-off only
    with pytest.raises(
        SBCInputError, match=r"Raise alpha \(--alpha on the command line\) to at least 0.02442"
    ):
        checked_level(0.024, 1221)


def test_a_level_below_what_the_test_resolves_is_refused_before_any_run():
    options = dict(observed="y", model_args=(SCALE,), num_simulations=10)
    with pytest.raises(ValueError, match=r"alpha / num_params = 1e-06 / 1 .* Raise alpha"):
        infer.sbc(0, normal_mean, infer.rwmh(), alpha=1e-6, **options)


def test_simulations_that_cannot_fit_are_refused_before_the_prior_is_simulated(monkeypatch):
    """10**8 simulations of one parameter and 1,000 observations: their prior alone holds
    800 GB. The refusal came after the prior was simulated (minutes, and memory enough to
    kill the process)."""
    import numpyro.infer

    def simulated(*args, **kwargs):
        raise AssertionError("the prior was simulated before the memory check")

    monkeypatch.setattr(numpyro.infer, "Predictive", simulated)
    options = dict(observed="y", model_args=(jnp.ones(1000),), num_samples=10)
    with pytest.raises(MemoryError, match=r"with 100000000 simulations .*\(the prior simulations"):
        infer.sbc(0, normal_mean, infer.rwmh(), num_simulations=10**8, **options)


def test_the_memory_check_counts_only_the_sites_ranked_given_data(monkeypatch):
    """A component per observation, drawn only when the model simulates (marginalised given
    data), was counted as posterior draws: 20,000 of them per draw refused an sbc whose
    ranked draws (mu alone) hold 128 kB."""
    from infer import memory

    def mixture(y=None):
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        weights, locs = jnp.array([0.3, 0.7]), jnp.stack([mu - 2.0, mu + 2.0])
        with numpyro.plate("observations", 20_000):
            if y is None:
                component = numpyro.sample("component", dist.Categorical(weights))
                numpyro.sample("y", dist.Normal(locs[component], 1.0))
            else:
                mixed = dist.MixtureSameFamily(dist.Categorical(weights), dist.Normal(locs, 1.0))
                numpyro.sample("y", mixed, obs=y)

    class Reached(Exception):
        pass

    def reached(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(memory, "host_available", lambda: 2 * 10**9)
    monkeypatch.setattr(infer.driver, "sample", reached)
    options = dict(observed="y", num_simulations=20, num_samples=200, num_warmup=10)
    with warnings.catch_warnings(), pytest.raises(Reached):  # the posterior runs would start
        warnings.simplefilter("ignore", UserWarning)  # component is not ranked
        with jax.numpy_rank_promotion("allow"):  # (NumPyro's mixture broadcasts by rank)
            infer.sbc(0, mixture, infer.rwmh(), **options)


def no_latent(y=None):
    numpyro.sample("y", dist.Normal(0.0, 1.0), obs=y)


def nan_data(y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(jnp.log(mu), 1.0), obs=y)  # NaN when mu < 0


def discrete_latent(y=None):
    k = numpyro.sample("k", dist.Bernoulli(0.5))
    numpyro.sample("y", dist.Normal(2.0 * k, 1.0), obs=y)


def mixture_marginalised_given_data(y=None):
    """A component drawn when simulating, summed out given ``y``: the same model."""
    w = numpyro.sample("w", dist.Beta(2.0, 2.0))
    if y is None:
        k = numpyro.sample("k", dist.Bernoulli(w))
        numpyro.sample("y", dist.Normal(3.0 * k, 1.0))
        return
    in_one = jnp.log(w) + dist.Normal(3.0, 1.0).log_prob(y)
    numpyro.factor("y", jnp.logaddexp(in_one, jnp.log1p(-w) + dist.Normal(0.0, 1.0).log_prob(y)))


@pytest.mark.thorough  # a refusal, 3 s
def test_models_sbc_cannot_check_are_refused_with_what_to_do():
    rwmh, options = infer.rwmh(), dict(observed="y", num_simulations=10)
    with pytest.raises(ValueError, match="no latent sample sites"):
        infer.sbc(0, no_latent, rwmh, **options)
    with pytest.raises(ValueError, match=r"simulated NaN or inf in 'y' in \d+ of 10 simulations"):
        infer.sbc(0, nan_data, rwmh, **options)
    with pytest.raises(ValueError, match=r"discrete latent site\(s\) \['k'\].*MixtureSameFamily"):
        infer.sbc(0, discrete_latent, rwmh, **options)
    with pytest.raises(ValueError, match=r"var_names \['k'\] are drawn when the model simulates"):
        infer.sbc(0, mixture_marginalised_given_data, rwmh, var_names=["w", "k"], **options)


@pytest.mark.thorough  # a variant of the refusals above, 6 s
def test_sites_drawn_only_in_simulation_are_left_out_with_a_warning():
    options = dict(observed="y", num_simulations=10, num_chains=1, num_samples=4, num_warmup=10)
    with pytest.warns(UserWarning, match=r"draws \['k'\] only when it simulates"):
        check = infer.sbc(0, mixture_marginalised_given_data, infer.rwmh(), **options)
    assert check.names == ["w"] and check.ranks.shape == (10, 1)


@pytest.mark.thorough  # a note, 2 s
def test_too_few_draws_for_an_ess_are_noted():
    options = dict(observed="y", model_args=(SCALE,), num_simulations=10, num_warmup=30)
    check = infer.sbc(0, normal_mean, infer.rwmh(), num_samples=2, **options)
    assert any("too few for an ESS" in note for note in check.notes), check.notes
    # 8 draws of a chain that barely moves: ESS / draws was 1.5, as for independent draws
    sticky = infer.sbc(0, normal_mean, infer.rwmh(step_size=0.05), num_samples=8, **options)
    assert np.isnan(sticky.ess_ratio).all()
    assert any("8 draws per chain are too few for an ESS" in n for n in sticky.notes)


@pytest.mark.thorough  # a plot's choice of parameters, 4 s; the CLI's SBC plot stays
def test_the_plot_of_many_parameters_shows_the_smallest_pvalues(tmp_path):
    rng = np.random.default_rng(5)
    ranks = np.concatenate([made_up_ranks(rng, 1.0, 0.0, n=59), made_up_ranks(rng, 0.5, 0.0)], 1)
    names = [f"p{i}" for i in range(60)]
    check = SBCResult(ranks, names, 99, 0.01, ecdf_pvalues(ranks, 99, 0.01 / 60), np.ones(60))
    assert check.failed == ["p59"]
    figure = check.plot()
    titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert len(titles) == MAX_PANELS and any(t.startswith("p59:") for t in titles)
    assert "40 parameters of smallest p-value" in figure.get_suptitle()


@pytest.mark.thorough  # an edge case, 2.5 s
def test_chains_that_never_moved_leave_the_check_inconclusive_whatever_the_pvalues():
    """RWMH whose every proposal is rejected: each simulation's chains stay at their starts,
    their ranks tie, and with 10 simulations the ECDF test found nothing and said "passed"."""
    options = dict(observed="y", model_args=(SCALE,), num_simulations=10, num_samples=4)
    frozen = infer.rwmh(step_size=1e6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check = infer.sbc(0, normal_mean, frozen, thin=1, num_warmup=0, **options)
    assert check.stuck_simulations == 10 and check.inconclusive and not check.passed
    assert check.verdict.startswith("INCONCLUSIVE: 10 of 10 simulations")
    assert "INCONCLUSIVE" in repr(check)  # (the tests above that pass moved: passed says so)


def test_stuck_chains_make_the_verdict_inconclusive_even_where_the_test_rejects():
    # a correct sampler run too short (RWMH, 100 warm-up steps) had stuck chains in 3 of 10
    # simulations and was told "FAILED: mu", though the docs say stuck chains leave the
    # check inconclusive whatever the p-values
    ranks = np.zeros((10, 2), int)
    check = SBCResult(ranks, ["mu", "tau"], 20, 0.05, np.array([1e-6, 0.5]), np.ones(2))
    assert check.verdict == "FAILED: mu"
    check = dataclasses.replace(check, stuck_simulations=3)
    assert check.failed == ["mu"] and not check.passed
    assert check.verdict.startswith(
        "INCONCLUSIVE: 3 of 10 simulations had a chain that never moved; the test rejects mu,"
    )
    # the plot's title says so too (it said "failed (1 of 2)")
    title = check.plot().texts[0].get_text()
    assert "inconclusive (stuck chains, rejects 1 of 2)" in title and "failed" not in title


def positive_mean(scale, y=None):
    """``mu ~ N(0, 1)`` with ``positive = mu > 0`` recorded, ``y_i ~ N(mu, scale_i)``."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.deterministic("positive", mu > 0)
    with numpyro.plate("observations", scale.shape[0]):
        numpyro.sample("y", dist.Normal(mu, scale), obs=y)


@pytest.mark.thorough  # an edge case, 10 s
def test_a_ranked_site_that_stays_put_while_the_chain_moves_is_not_a_stuck_chain():
    """Ranking only a discrete deterministic site (the mean's sign, constant over most chains'
    draws) read each such chain as stuck: 'INCONCLUSIVE: 9 of 10 simulations had a chain that
    never moved', from a sampler that mixed. Stuck is judged on the chain's position."""
    options = dict(observed="y", model_args=(SCALE,), num_simulations=10, num_warmup=100)
    check = infer.sbc(0, positive_mean, infer.nuts(), var_names=["positive"], **options)
    assert check.stuck_simulations == 0 and not check.inconclusive, check.verdict
    assert check.names == ["positive"]
