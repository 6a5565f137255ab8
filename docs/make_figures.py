"""Regenerate the pictures in docs/images: `python docs/make_figures.py`.

Runs `infer compare` with its defaults (the banana target; rejection, RWMH, MALA, NUTS) into
a temporary folder and copies the report's pictures that the docs show.
"""

import shutil
import tempfile
from pathlib import Path

from infer import cli

SHOWN = ["forest.png", "pair_nuts.png", "rank_mala.png", "trace_rwmh.png", "ess_nuts.png"]


def main() -> None:
    images = Path(__file__).parent / "images"
    images.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        cli.main(["compare", "--out", folder, "--no-progress"])
        for name in SHOWN:
            shutil.copyfile(Path(folder) / "banana" / name, images / name)
            print(f"wrote {images / name}")


if __name__ == "__main__":
    main()
