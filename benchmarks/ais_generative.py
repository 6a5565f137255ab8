"""Cost and result of AIS log-likelihoods for the MNIST VAE and AAE decoders and GAN generator.

Uses the models trained by ``benchmarks/generative_quality.py --data mnist`` (in
``infer-output/quality/mnist``) and scores test images with
``models.annealed_evaluation.evaluate_ais``: for the VAE beside the IWAE-5000 bound on the
same images (AIS should not come out lower beyond its error), for the GAN with the
observation noise chosen on validation images. Reports gradient evaluations per image and
seconds, on whatever device JAX runs on. Results go to
``benchmarks/results/ais_generative_<platform>.json``.

Run: ``python benchmarks/ais_generative.py`` (``--images``, ``--temperatures``, ``--chains``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax

from infer.cli import format_ais
from infer.io import write_atomically
from models import annealed_evaluation, training

RESULTS = Path(__file__).parent / "results"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--temperatures", type=int, default=300)
    parser.add_argument("--chains", type=int, default=16)
    parser.add_argument("--runs", type=Path, default=Path("infer-output/quality/mnist"))
    args = parser.parse_args(argv)
    platform = jax.devices()[0].platform
    rows = {}
    for model in ("vae", "aae", "gan"):
        trained = training.load(args.runs / model)
        report = annealed_evaluation.evaluate_ais(
            trained,
            num_images=args.images,
            num_temperatures=args.temperatures,
            num_chains=args.chains,
        )
        print(format_ais(report), flush=True)
        rows[model] = report
    path = RESULTS / f"ais_generative_{platform}.json"
    record = {"platform": platform, "device": str(jax.devices()[0]), "models": rows}
    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1)))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
