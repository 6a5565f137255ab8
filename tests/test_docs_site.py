"""The documentation site builds in strict mode: every link resolves, every page is in the nav,
and every docstring the API reference shows parses as Google style."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="the docs tools come with the `dev` extra")
pytest.importorskip("mkdocstrings_handlers.python", reason="the docs tools come with `dev`")


@pytest.mark.slow  # 6 s
def test_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert (site / "index.html").is_file()
    api_page = site / "api" / "sampling" / "index.html"
    assert api_page.is_file()
    html = api_page.read_text()
    assert 'id="infer.sample"' in html
    assert "num_chains" in html  # the signature of infer.sample is rendered
    assert (site / "images" / "forest.png").is_file()  # the guides' pictures travel with them
