"""Regenerate the pictures in docs/images: `python docs/make_figures.py`.

`python docs/make_figures.py NAME ...` makes only the named ones (`--help` lists them).
Runs `infer compare` with its defaults (the banana target; rejection, RWMH, MALA, NUTS) into
a temporary folder and copies the report's pictures that the docs show; draws the ARS hull,
the ADVI and AIS pictures; and copies the generative models' pictures from the MNIST quality
run (`python benchmarks/generative_quality.py --data mnist`) when it exists.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import infer  # noqa: E402
from infer import cli  # noqa: E402
from infer.algorithms import ars  # noqa: E402
from models import targets  # noqa: E402

SHOWN = ["forest.png", "pair_nuts.png", "rank_mala.png", "trace_rwmh.png", "ess_nuts.png"]


def compare_figures(images: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        cli.main(["compare", "--out", folder, "--no-progress"])
        for name in SHOWN:
            shutil.copyfile(Path(folder) / "banana" / name, images / name)
            print(f"wrote {images / name}")


def ars_figure(images: Path) -> None:
    """Gamma(3): the tangent hull after a short run with 6 slots, the squeeze, the density,
    and a histogram of draws from the full (32-point) sampler."""
    from scipy import stats

    logdensity_fn = lambda x: 2.0 * jnp.log(x) - x  # noqa: E731
    _, _, hull = ars.sample(
        jax.random.key(0), logdensity_fn, 50, (0.0, np.inf), [1.0, 4.0], max_points=6
    )
    env = ars.envelope(hull, 0.0, np.inf, derivative_free=False)
    xs = jnp.linspace(0.01, 12.0, 600)
    upper = np.exp(np.asarray(ars.upper_hull(env, xs)))
    count = int(hull.count)
    px, ph = np.asarray(hull.x[:count]), np.asarray(hull.h[:count])
    result = infer.sample(
        0,
        infer.Target(logdensity_fn, init=jnp.asarray(2.0), name="gamma_3"),
        infer.ars(domain=(0.0, np.inf)),
        num_samples=100_000,
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(xs, np.exp(logdensity_fn(xs)), "k", label="f(x) = x² e^(-x)")
    left.plot(xs, upper, "C0", label=f"upper hull ({count} tangents)")
    left.plot(px, np.exp(ph), "C3", ls="--", label="squeeze (chords)")
    left.plot(px, np.exp(ph), "C3o")
    left.set(title="The hull after a few rejections", xlabel="x", ylim=(0, 0.8))
    left.legend()
    z = 2.0  # normalising constant of x^2 e^-x
    right.hist(
        np.ravel(result.draws["x"]),
        bins=120,
        range=(0, 12),
        density=True,
        color="C0",
        alpha=0.6,
        label="100,000 ARS draws",
    )
    right.plot(xs, stats.gamma(3).pdf(xs), "k", label="Gamma(3) density")
    right.set(
        title=f"Draws ({result.info['density_evaluations_needed_per_draw']:.4f} evaluations "
        "per draw needed)",
        xlabel="x",
    )
    right.legend()
    del z
    fig.tight_layout()
    fig.savefig(images / "ars_hull.png", dpi=100)
    plt.close(fig)
    print(f"wrote {images / 'ars_hull.png'}")


def advi_figures(images: Path) -> None:
    target = targets.get("eight_schools")
    fit = infer.advi(0, target, "fullrank", num_steps=5000)
    nuts = infer.sample(0, target, infer.nuts(target_accept=0.95), num_chains=4, num_samples=1000)
    infer.plot(fit, "elbo", path=images / "advi_elbo.png")
    infer.plot({"advi_fullrank": fit, "nuts": nuts}, "dist", path=images / "advi_vs_nuts.png")
    print(
        f"wrote {images / 'advi_elbo.png'} and advi_vs_nuts.png (k-hat {fit.info['pareto_k']:.2f})"
    )


def ais_figures(images: Path) -> None:
    """The conjugate Gaussian of the AIS docs: log-weight histograms, and the bracket closing
    on the exact log Z as temperatures are added."""
    from models.targets import evidence

    target, prior, exact, mu_true = evidence.conjugate_gaussian(0)
    runs = {}
    for num_temperatures in (10, 30, 100, 300):
        runs[num_temperatures] = infer.ais(
            0,
            target,
            prior,
            num_temperatures=num_temperatures,
            num_chains=256,
            exact_posterior_draws=mu_true,
        )
    fig, ax = plt.subplots(figsize=(6, 4))
    last = runs[300]
    ax.hist(last.log_weights, bins=40, alpha=0.6, label="forward log w (lower bound)")
    ax.hist(-last.reverse_log_weights, bins=40, alpha=0.6, label="reverse -log w (upper bound)")
    ax.axvline(exact, color="k", label=f"exact log Z = {exact:.2f}")
    ax.set(title="AIS log weights, 300 temperatures, 256 chains", xlabel="log weight")
    ax.legend()
    fig.tight_layout()
    fig.savefig(images / "ais_weights.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ts = np.array(list(runs))
    low = np.array([r.log_z for r in runs.values()])
    high = np.array([r.log_z_upper for r in runs.values()])
    ax.errorbar(
        ts,
        low,
        yerr=[r.log_z_se for r in runs.values()],
        marker="o",
        capsize=3,
        label="forward AIS (lower)",
    )
    ax.errorbar(
        ts,
        high,
        yerr=[r.log_z_upper_se for r in runs.values()],
        marker="s",
        capsize=3,
        label="reverse AIS (upper)",
    )
    ax.axhline(exact, color="k", ls="--", label="exact log Z")
    ax.set(xscale="log", xlabel="temperatures", ylabel="log Z", title="Bidirectional bracket")
    ax.legend()
    fig.tight_layout()
    fig.savefig(images / "ais_bracket.png", dpi=100)
    plt.close(fig)
    print(f"wrote {images / 'ais_weights.png'} and ais_bracket.png")


def generative_figures(images: Path) -> None:
    quality = Path("infer-output") / "quality" / "mnist"
    out = images / "generative"
    out.mkdir(exist_ok=True)
    for model in ("vae", "gan", "nade", "aae"):
        for kind in ("samples", "reconstructions", "loss"):
            source = quality / model / f"{kind}.png"
            if source.exists():
                shutil.copyfile(source, out / f"{model}_mnist_{kind}.png")
                print(f"wrote {out / f'{model}_mnist_{kind}.png'}")


FIGURES = {
    "compare": compare_figures,
    "ars": ars_figure,
    "advi": advi_figures,
    "ais": ais_figures,
    "generative": generative_figures,
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"which pictures to make, among {', '.join(FIGURES)} (default: all)",
    )
    names = parser.parse_args(argv).names or list(FIGURES)
    unknown = [name for name in names if name not in FIGURES]
    if unknown:
        parser.error(f"unknown picture {', '.join(unknown)}; choose among {', '.join(FIGURES)}")
    images = Path(__file__).parent / "images"
    images.mkdir(exist_ok=True)
    for name in names:
        FIGURES[name](images)


if __name__ == "__main__":
    main()
