"""Test configuration: settings that catch mistakes early, and shared statistical checks."""

import jax
import pytest

import infer  # noqa: F401  (loads NumPyro before any test module imports ArviZ)

# Implicit rank promotion hides shape bugs (diffrax and equinox do the same).
jax.config.update("jax_numpy_rank_promotion", "raise")

SEEDS = (0, 1, 2)


@pytest.fixture(params=SEEDS, ids=lambda seed: f"seed{seed}")
def seed(request):
    """Statistical tests run on several seeds: passing must not hinge on one."""
    return request.param
