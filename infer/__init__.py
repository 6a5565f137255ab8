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

from infer.startup import quiet_interrupts_while_starting

quiet_interrupts_while_starting()  # when this is the `infer` command: see startup.py

# arviz-base imports NumPyro through a lazy loader, and a NumPyro first loaded that way loses
# submodule attributes (numpyro.distributions.distribution), which breaks NumPyro models: the
# LazyLoader problem of networkx#5838. Loading NumPyro for real first avoids it.
import numpyro as _numpyro  # noqa: E402

_numpyro.__version__  # noqa: B018 (the attribute access completes a lazy load, if any)

from infer import envelopes  # noqa: E402
from infer.algorithms.ars_sampler import as_top_level_api as ars  # noqa: E402
from infer.algorithms.independent_mh import as_top_level_api as independent_mh  # noqa: E402
from infer.algorithms.mala import as_top_level_api as mala  # noqa: E402
from infer.algorithms.mh import as_top_level_api as mh  # noqa: E402
from infer.algorithms.rejection import EnvelopeWarning  # noqa: E402
from infer.algorithms.rejection import as_top_level_api as rejection  # noqa: E402
from infer.algorithms.rwmh import as_top_level_api as rwmh  # noqa: E402
from infer.algorithms.sgld import as_top_level_api as sgld  # noqa: E402
from infer.annealed import AISResult, ais  # noqa: E402
from infer.base import (  # noqa: E402
    Adaptation,
    ExactSampler,
    Kernel,
    MarkovSampler,
    Sampler,
    SamplingAlgorithm,
)
from infer.calibration import SBCResult, sbc  # noqa: E402
from infer.compilation_cache import enable_compilation_cache  # noqa: E402
from infer.convergence import converged  # noqa: E402
from infer.diagnostics import DiagnosticWarning, compare  # noqa: E402
from infer.driver import sample  # noqa: E402
from infer.joining import concat  # noqa: E402
from infer.numpyro_adapter import hmc, nuts  # noqa: E402
from infer.placement import clear_cache  # noqa: E402
from infer.plots import plot  # noqa: E402
from infer.posterior_predictive import predictive  # noqa: E402
from infer.proposal import Proposal  # noqa: E402
from infer.registry import register  # noqa: E402
from infer.result import Result, summary  # noqa: E402
from infer.result_file import load  # noqa: E402
from infer.run_state import ChainState  # noqa: E402
from infer.store import ZarrStore, open_store  # noqa: E402
from infer.target import GroundTruth, Target  # noqa: E402
from infer.variational import advi  # noqa: E402
from infer.version import __version__  # noqa: E402

enable_compilation_cache()

__all__ = [
    "__version__",
    "Adaptation",
    "ChainState",
    "DiagnosticWarning",
    "ExactSampler",
    "MarkovSampler",
    "EnvelopeWarning",
    "GroundTruth",
    "Kernel",
    "Proposal",
    "Result",
    "SBCResult",
    "Sampler",
    "SamplingAlgorithm",
    "Target",
    "ZarrStore",
    "AISResult",
    "advi",
    "ais",
    "ars",
    "clear_cache",
    "compare",
    "concat",
    "converged",
    "enable_compilation_cache",
    "envelopes",
    "hmc",
    "independent_mh",
    "load",
    "mala",
    "mh",
    "nuts",
    "open_store",
    "plot",
    "predictive",
    "register",
    "rejection",
    "rwmh",
    "sample",
    "sbc",
    "sgld",
    "summary",
]
