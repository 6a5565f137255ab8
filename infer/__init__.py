"""infer: probabilistic inference on JAX.

Samplers are recipes (``infer.rwmh()``, ``infer.nuts()``, ...) that one driver,
:func:`infer.sample`, runs over many vectorised chains; the result converts to an ArviZ
``DataTree`` in one call.

Example:
    >>> import infer
    >>> from models import targets
    >>> result = infer.sample(0, targets.get("banana"), infer.rwmh(), num_chains=4)
    >>> infer.summary(result)
"""

from infer import envelopes
from infer.algorithms.independent_mh import as_top_level_api as independent_mh
from infer.algorithms.mala import as_top_level_api as mala
from infer.algorithms.mh import as_top_level_api as mh
from infer.algorithms.rejection import EnvelopeWarning
from infer.algorithms.rejection import as_top_level_api as rejection
from infer.algorithms.rwmh import as_top_level_api as rwmh
from infer.base import Kernel, Sampler, SamplingAlgorithm
from infer.driver import clear_cache, sample
from infer.numpyro_adapter import hmc, nuts
from infer.proposal import Proposal
from infer.result import Result, summary
from infer.target import GroundTruth, Target

__version__ = "0.1.0"

__all__ = [
    "EnvelopeWarning",
    "GroundTruth",
    "Kernel",
    "Proposal",
    "Result",
    "Sampler",
    "SamplingAlgorithm",
    "Target",
    "clear_cache",
    "envelopes",
    "hmc",
    "independent_mh",
    "mala",
    "mh",
    "nuts",
    "rejection",
    "rwmh",
    "sample",
    "summary",
]
