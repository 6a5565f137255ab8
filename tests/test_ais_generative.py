"""AIS as a likelihood evaluator for decoder-based models: exact on a linear-Gaussian VAE
(where log p(x) is known), and `infer evaluate --method ais` as a user runs it."""

import json

import jax
import numpy as np
import pytest
from flax import nnx
from stats_checks import threshold
from test_generative import LinearGaussianVAE

from infer.cli import main
from models.generative import annealed_evaluation, evaluation, training, vae
from models.generative.commands import format_ais

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out


@pytest.mark.thorough  # 11 s; AIS's bracket of a known normaliser (test_ais.py) stays
def test_ais_recovers_the_exact_log_likelihood_of_a_linear_gaussian_vae():
    model = LinearGaussianVAE(nnx.Rngs(3))
    images = np.asarray(jax.random.normal(jax.random.key(1), (6, 1, 3)) * 2.0)
    exact = model.exact_log_prob(images)
    graphdef, params = nnx.split(model)
    scores = annealed_evaluation.ais_per_image(
        vae.decoder_logdensity_fn(graphdef),
        params,
        model.latent_dim,
        images,
        jax.random.key(0),
        num_temperatures=200,
        num_chains=64,
        batch=3,
    )
    assert scores.log_p.shape == (6,)
    z = np.abs(scores.log_p - exact) / scores.log_p_se
    assert np.all(z < threshold(6)), (scores.log_p, exact, scores.log_p_se)
    # AIS comes at least as close to the truth as IWAE with as many samples as it has chains.
    iwae = evaluation.bound_per_image(model, images, jax.random.key(2), 64)
    slack = threshold(6) * scores.log_p_se
    assert np.all(np.abs(scores.log_p - exact) <= np.abs(iwae - exact) + slack)
    assert scores.grads_per_image == 64 * 200 * 11


@pytest.mark.thorough
def test_evaluate_with_ais_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "vae"
    assert main(["train", "vae", "--epochs", "2", "--out", str(run), "--no-progress"]) == 0
    code = main(
        [
            "evaluate", "vae", "--run", str(run), "--method", "ais", "--ais-images", "4",
            "--temperatures", "20", "--chains", "4", "--iwae", "50", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    shown = capsys.readouterr().out
    assert "NLL ais" in shown and "gradients per scored image" in shown
    report = json.loads((run / "evaluation_ais.json").read_text())
    assert report["scored_images"] == 4 and report["cost"]["grads_per_image"] == 4 * 20 * 11
    assert np.isfinite(report["nll_ais"]["mean"]) and "nll_iwae_50" in report
    gain, baseline = report["improvement_over_baseline"], report["nll_independent_pixels"]
    assert gain["mean"] == pytest.approx(baseline["mean"] - report["nll_ais"]["mean"], rel=1e-9)
    assert gain["standard_error"] > 0  # paired over the 4 images
    # after 2 epochs the VAE is level with independent pixels (0.02 +- 0.29 nats apart with
    # jax 0.12.1): the line says which side this run fell on, as the JSON does
    side = "better" if gain["mean"] >= 0 else "worse"
    assert f"{side} than independent pixels by {abs(gain['mean']):.2f} ± " in shown
    # per image: the annealing alone (it held compilation, the pilot and a batch padded to 25)
    cost = report["cost"]
    assert 0 < cost["scoring_seconds"] < cost["seconds"]
    assert cost["seconds_per_image"] == pytest.approx(cost["scoring_seconds"] / 4, rel=1e-12)


@pytest.mark.thorough
def test_gan_noise_is_chosen_on_validation_images(tmp_path):
    trained = training.train("gan", "digits", epochs=2, seed=0, out=None, progress=False)
    report = annealed_evaluation.evaluate_ais(
        trained, num_images=3, num_temperatures=20, num_chains=4, num_validation=6,
        noise_grid=(0.1, 0.4),
    )  # fmt: skip
    candidates = report["validation_log_p_by_noise_std"]
    assert set(candidates) == {"0.1", "0.4"}
    assert report["noise_std"] == max((0.1, 0.4), key=lambda s: candidates[str(s)])
    assert report["scored_images"] == 3 and np.isfinite(report["nll_ais"]["mean"])
    assert "nll_independent_pixels" not in report  # its Gaussian noise model is not comparable
    cost = report["cost"]  # the search is timed too (it was left out: 5 s said, 43 s taken)
    assert 0 < cost["noise_search_seconds"] < cost["seconds"]
    # grid x images x the search's cheaper path (2 chains, 20 temperatures, 10 leapfrog)
    assert cost["noise_search_grads"] == 2 * 6 * 2 * 20 * (10 + 1)
    for bad, match in (
        ({"noise_grid": ()}, "noise_grid must hold"),
        ({"num_validation": 400}, "leaving none to score"),
    ):
        with pytest.raises(ValueError, match=match):
            annealed_evaluation.evaluate_ais(trained, num_images=3, **bad)


@pytest.mark.parametrize(
    ("grid", "num_validation", "match"),
    [
        ((), 50, r"noise_grid must hold at least one positive .*; got \(\)"),  # was max() of []
        ((0.1, -0.2), 50, "noise_grid must hold"),
        ((0.1,), 359, "num_validation=359 would take every one of the 359 test images"),
    ],
)
def test_the_noise_search_is_checked_before_it_runs(grid, num_validation, match):
    with pytest.raises(ValueError, match=match):
        annealed_evaluation.check_noise_search(grid, num_validation, 359)
    annealed_evaluation.check_noise_search((0.1, 0.2), 50, 359)  # the defaults' kind passes


@pytest.mark.thorough  # a refusal, 3 s
def test_ais_is_refused_for_models_without_a_latent_code(tmp_path, capsys):
    run = tmp_path / "nade"
    command = ["train", "nade", "--epochs", "1", "--out", str(run), "--no-progress"]
    assert main([*command, "--validation", "0.2"]) == 0
    assert "kept epoch 1 (lowest validation loss" in capsys.readouterr().out
    assert main(["evaluate", "nade", "--run", str(run), "--method", "ais"]) == 2
    shown = capsys.readouterr().err
    assert "no latent code" in shown
    assert "the capability 'decoder_density'" in shown and "which vae, gan, aae have" in shown
    with pytest.raises(ValueError, match="nade lacks the capability 'decoder_density'"):
        annealed_evaluation.evaluate_ais(training.load(run))


@pytest.mark.thorough  # 10 s: trains 20 epochs for a warning
def test_weights_whose_ess_is_near_one_are_said_to_be_unusable():
    """One temperature: AIS is importance sampling from the prior, and for a trained decoder
    one chain carries each image's estimate. The report and the command's text say so."""
    trained = training.train("vae", "digits", epochs=20, seed=0, out=None, progress=False)
    report = annealed_evaluation.evaluate_ais(
        trained, num_images=5, num_temperatures=1, num_chains=16
    )
    ess = report["ais_ess"]
    assert ess["images_below_2"] >= 3 and not ess["usable"]  # median 1.3 here
    shown = format_ais(report)
    assert f"ESS is below 2 on {ess['images_below_2']} of 5 images" in shown
    assert "the AIS estimate is not usable" in shown


def test_ais_per_image_refuses_images_of_another_shape_and_bad_counts():
    """Images shaped (2, 8, 1) or (2, 1, 1) given to an 8x8 VAE broadcast against its
    decoder's output and were scored; num_temperatures=0 failed in NumPy's convolve and an
    int seed in JAX's key check, neither naming the argument."""
    from models.generative import gan

    model = vae.VAE((8, 8), latent_dim=2, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    logdensity = vae.decoder_logdensity_fn(graphdef)
    images = (np.random.default_rng(0).random((2, 8, 8)) < 0.5).astype(np.float32)
    small = dict(num_temperatures=4, num_chains=2, num_leapfrog=1)
    for shape in ((2, 8, 1), (2, 1, 1)):
        with pytest.raises(ValueError, match=r"model's output, \(8, 8\) each .* got images shaped"):
            annealed_evaluation.ais_per_image(
                logdensity, params, 2, np.ones(shape, np.float32), 0, **small
            )
    with pytest.raises(ValueError, match=r"num_temperatures must be an integer >= 1; got 0"):
        annealed_evaluation.ais_per_image(
            logdensity, params, 2, images, 0, **dict(small, num_temperatures=0)
        )
    by_seed = annealed_evaluation.ais_per_image(logdensity, params, 2, images, 0, **small)
    by_key = annealed_evaluation.ais_per_image(
        logdensity, params, 2, images, jax.random.key(0), **small
    )
    np.testing.assert_array_equal(by_seed.log_p, by_key.log_p)
    # a GAN's observation noise as a JAX scalar (it said "must be a positive finite number")
    generator = gan.GAN((8, 8), latent_dim=2, rngs=nnx.Rngs(0))
    gan_density = gan.generator_logdensity_fn(nnx.split(generator)[0], jax.numpy.float32(0.2))
    value = gan_density(nnx.split(generator)[1], np.zeros(2, np.float32), images[0])
    with pytest.raises(ValueError, match=r"model's output"):
        gan_density(nnx.split(generator)[1], np.zeros(2, np.float32), images[0, :, :1])
    assert np.isfinite(value)
