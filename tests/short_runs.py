"""The short run that ``test_driver.py`` and ``test_resume.py`` share: one target, one set of
samplers and one shape and warm-up, so that a sampler's programs, compiled by the first test
that runs it, serve every other (``num_warmup`` and the target are part of a program; the
number of draws is not). ``conftest.py`` runs the two files on one worker."""

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

import infer

NORMAL_3D = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(3), name="normal_3d")
SAMPLERS = {
    "rwmh": infer.rwmh(),
    "rwmh_dense": infer.rwmh(covariance="dense"),
    "mala": infer.mala(covariance="diagonal"),
    "nuts": infer.nuts(),
    "hmc": infer.hmc(num_steps=5),
    "independent_mh": infer.independent_mh(dist.Normal(jnp.zeros(3), 2.0)),
    "mh": infer.mh(lambda key, x: x + 0.5 * jax.random.normal(key, x.shape), None),
}
SHORT = {"num_chains": 3, "num_warmup": 40}
