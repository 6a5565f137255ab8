"""Regenerate the pictures of docs/sbc.md: `python docs/make_sbc_figures.py`.

Simulation-based calibration on the non-centred eight schools model: NUTS (200 simulations,
which passes) into docs/images/sbc_nuts.png, and MALA with its Hastings correction switched
off (100 simulations, which fails) into docs/images/sbc_broken.png. Prints each check's table
and timing. About a minute on two CPU cores.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import infer  # noqa: E402
from infer.algorithms import mala  # noqa: E402
from infer.cli import sbc_table  # noqa: E402
from models.targets import EIGHT_SCHOOLS_SIGMA, eight_schools_model  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"


class UncorrectedMALA(mala.MALA):
    """MALA without the Hastings term of its acceptance: a deliberately broken sampler."""

    name = "mala_without_hastings"
    build_kernel_fn = staticmethod(
        lambda logdensity_fn: mala.build_kernel(logdensity_fn, hastings_correction=False)
    )


def check(name: str, sampler, **options) -> None:
    result = infer.sbc(
        0, eight_schools_model, sampler, observed="y", model_args=(EIGHT_SCHOOLS_SIGMA,),
        **options,
    )  # fmt: skip
    path = IMAGES / f"sbc_{name}.png"
    result.plot(path=path)
    timing = result.timing
    print(f"\n{sampler.name}: {result.num_simulations} simulations\n{sbc_table(result)}")
    print(
        f"{timing['total']:.1f} s: the first simulation {timing['first']:.1f} s, then "
        f"{timing['per_simulation']:.3f} s each; {result.compiled_simulations} compiled; "
        f"{result.divergent_simulations} with divergences; wrote {path}"
    )


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    check("nuts", infer.nuts(), num_simulations=200)
    check("broken", UncorrectedMALA(covariance="diagonal"), num_simulations=100, thin=10)
