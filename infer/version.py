"""The package version, in a module of its own so that any module can read it without
importing the whole package, and the versions of the libraries a run's numbers depend on."""

__version__ = "0.1.0"


def versions() -> dict[str, str]:
    """``{"infer": ..., "jax": ..., "jaxlib": ..., "numpyro": ..., "arviz_base": ...}``: what
    a saved run records, and what ``infer --version`` prints."""
    import arviz_base
    import jax
    import jaxlib
    import numpyro

    return {
        "infer": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpyro": numpyro.__version__,
        "arviz_base": arviz_base.__version__,
    }
