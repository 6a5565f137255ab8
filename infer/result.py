"""What :func:`infer.sample` returns, its conversion to an ArviZ ``DataTree`` (built once per
result), joining results (:func:`concat`), and saving and loading them.

This is the one boundary where a kernel's per-step diagnostics get their ArviZ
``sample_stats`` names (:data:`STAT_NAMES`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from infer import draw_blocks, validation
from infer.base import settings_json
from infer.caller import INFER_FRAMES
from infer.draws_checks import (
    TIMING_NAMES,
    check_labels,
    checked_count,
    checked_dims,
    checked_draw,
    checked_info,
    checked_stats,
    checked_timing,
    warn_if_transposed,
)
from infer.io import save_netcdf
from infer.reported_names import check_truth_shapes
from infer.target import GroundTruth

FORMAT = "infer.Result/1"
#: The names :meth:`Result.save` writes NetCDF under ("" for a name without a suffix).
NETCDF_SUFFIXES = ("", ".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5")
#: Kernel Info field -> ArviZ ``sample_stats`` name, where they differ. Fields not listed keep
#: their names (the built-in kernels already use ArviZ's: ``acceptance_rate``, ``diverging``,
#: ``n_steps``, ``tree_depth``, ``energy``, ``step_size``).
STAT_NAMES = {
    "logdensity": "lp",
    "is_divergent": "diverging",
    "num_integration_steps": "n_steps",
    "num_trajectory_expansions": "tree_depth",
}


def arviz_stat_names(infos: dict, logdensity) -> dict:
    """name -> array of ``sample_stats``: a kernel's diagnostics under ArviZ's names, plus the
    log density as ``lp``."""
    stats = {STAT_NAMES.get(name, name): value for name, value in infos.items()}
    stats["lp"] = logdensity
    return stats


#: ArviZ groups beside ``posterior`` and ``sample_stats`` a result may carry.
EXTRA_GROUPS = (
    "log_likelihood",
    "observed_data",
    "constant_data",
    "posterior_predictive",
    "prior",
    "prior_predictive",
    "predictions",
    "predictions_constant_data",
)

UNKNOWN_TIMING = {name: float("nan") for name in TIMING_NAMES}


@dataclass(eq=False)  # draws are arrays: results compare as objects; compare draws for runs
class Result:
    """Draws, per-step diagnostics, timing and costs of one run.

    Attributes:
        draws: name -> array ``(num_chains, num_samples, *event_shape)``, constrained space.
        stats: name -> array ``(num_chains, num_samples)``: per-step diagnostics under ArviZ's
            ``sample_stats`` names where they exist (``lp``, ``acceptance_rate``,
            ``diverging``, ``step_size``, ``n_steps``, ``tree_depth``, ``energy``) plus
            ``is_accepted``.
        timing: seconds: ``compile`` (0 when the compiled program was reused), ``warmup``,
            ``sampling``, ``total`` (the whole call). A run resumed from a checkpoint folder
            counts every process's ``warmup`` and ``sampling`` (all its draws' steps, so
            that rates per second cover them), and this call's ``compile`` and ``total``:
            ``sampling`` may then exceed ``total``.
        num_logdensity_evals: log-density evaluations over all chains, warm-up included.
        num_grad_evals: gradient evaluations over all chains, warm-up included.
        sampler: the sampler's name; ``settings``: its options.
        seed: the seed (an int, or a key's data as a list).
        target: the target's name.
        num_warmup, thin: as :func:`infer.sample` ran them (``num_warmup`` 0 for an exact
            sampler, which takes no warm-up).
        info: run-level facts: for rejection the acceptance rate, ``log_envelope`` and envelope
            violations; for MCMC the final step size of each chain; with ``until=``, why the
            run stopped (``info["until"]["stopped"]``).
        ground_truth: the target's known moments, if any.
        state: where a Markov-chain run's chains stand (:class:`infer.run_state.ChainState`),
            so that ``infer.sample(..., resume=result)`` continues them; ``None`` for exact
            samplers, ADVI, and results loaded from a file or made with :meth:`from_draws`.

        groups: further ArviZ groups, name -> (variable -> array): ``log_likelihood``
            (``(num_chains, num_samples, *observation_shape)``), ``observed_data`` and
            ``constant_data`` for targets that have them (NumPyro models); and what
            :func:`infer.predictive` adds: ``posterior_predictive``, ``prior``,
            ``prior_predictive`` (``predictions`` and ``predictions_constant_data`` for a
            target on new data).
        dims: variable name -> the names of its dimensions after ``(chain, draw)`` in every
            group (ArviZ's ``dims``; a NumPyro target's plates), from the target's ``dims``;
            the others are ``<name>_dim_<i>``.
        versions: package -> version of those that made the run, as a saved file recorded
            them (:func:`infer.load`); ``None`` for a run of this process (the versions
            installed now, which ``save`` and ``to_arviz`` record).

    A result is treated as immutable: ``to_arviz()`` builds its ``DataTree`` once and returns
    the same one afterwards.
    """

    draws: dict
    stats: dict
    timing: dict
    num_logdensity_evals: int
    num_grad_evals: int
    sampler: str
    settings: dict
    seed: object
    target: str
    num_warmup: int
    thin: int
    info: dict = field(default_factory=dict)
    ground_truth: GroundTruth | None = None
    state: object = None
    groups: dict = field(default_factory=dict)
    dims: dict = field(default_factory=dict)
    versions: dict | None = None
    _tree: object = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_draws(
        cls,
        draws: dict,
        stats: dict | None = None,
        *,
        sampler: str = "external",
        target: str = "external",
        timing: dict | None = None,
        ground_truth: GroundTruth | None = None,
        info: dict | None = None,
        num_logdensity_evals: int = 0,
        num_grad_evals: int = 0,
        dims: dict | None = None,
    ) -> Result:
        """A result from draws made elsewhere (another library, a file), so that
        :func:`infer.compare`, :func:`infer.plot` and :meth:`save` work on them.

        Args:
            draws: name -> array ``(num_chains, num_samples, *event_shape)``; True/False
                draws are kept as 0/1 (``int8``), which ArviZ's statistics can read.
            stats: name -> array ``(num_chains, num_samples)``, ArviZ ``sample_stats`` names
                (``diverging``, ``acceptance_rate``, ...), or ``None``.
            sampler: the sampler's name, to show.
            target: the target's name, to show.
            timing: seconds (``compile``, ``warmup``, ``sampling``, ``total``); unknown ones
                are NaN, and so are the per-second columns of :func:`infer.compare`.
            ground_truth: as in :class:`Result`.
            info: as in :class:`Result`; ``info["superchains"]``, the number of
                superchains of consecutive chains (for nested R-hat), must divide the chains.
            num_logdensity_evals: the run's cost in log-density evaluations, 0 when unknown.
            num_grad_evals: the run's cost in gradient evaluations, 0 when unknown.
            dims: as in :class:`Result` (``{"theta": ["school"]}``).

        Raises:
            ValueError, TypeError: for draws or stats of inconsistent shapes, timing under
                other names, labels that are not strings, a ground truth that is not a
                :class:`~infer.GroundTruth`.

        Warns:
            UserWarning: when the draws have more chains than draws per chain and no
                superchains: perhaps a ``(num_samples, num_chains, ...)`` array (emcee's
                ``get_chain()``), which would make the ESS far too high.
        """
        if isinstance(draws, dict) and not draws:
            raise ValueError(
                "draws is empty: give a dict of name -> array (num_chains, num_samples, ...)."
            )
        if not isinstance(draws, dict):
            raise TypeError(
                "draws must be a non-empty dict of name -> array (num_chains, num_samples, ...); "
                f"got {type(draws).__name__}."
            )
        arrays = {name: checked_draw(name, value) for name, value in draws.items()}
        lead = next(iter(arrays.values())).shape[:2]
        for name, value in arrays.items():
            if value.shape[:2] != lead:
                raise ValueError(
                    f"draws[{name!r}] has (num_chains, num_samples) = {value.shape[:2]} but "
                    f"the first draw has {lead}; all must share them."
                )
        warn_if_transposed(arrays, info)
        stat_arrays = checked_stats(stats, lead)
        check_labels(sampler=sampler, target=target, ground_truth=ground_truth)
        check_truth_shapes(ground_truth, {n: v[0, 0] for n, v in arrays.items()}, "draws")
        return cls(
            draws=arrays,
            stats=stat_arrays,
            timing={**UNKNOWN_TIMING, **checked_timing(timing)},
            num_logdensity_evals=checked_count("num_logdensity_evals", num_logdensity_evals),
            num_grad_evals=checked_count("num_grad_evals", num_grad_evals),
            sampler=sampler,
            settings={},
            seed=None,
            target=target,
            num_warmup=0,
            thin=1,
            info=checked_info(info, lead[0]),
            ground_truth=ground_truth,
            dims=checked_dims(dims, arrays),
        )

    def dim_names(self, name: str) -> list[str]:
        """The names of the axes of ``draws[name]`` after ``(chain, draw)``, as the ArviZ
        ``DataTree`` names them (``dims``, then ``<name>_dim_<i>`` with ``i`` from 0)."""
        if name not in self.draws:
            raise KeyError(
                f"{name!r} is not a draw of this result; its draws: {sorted(self.draws)}."
            )
        named = list(self.dims.get(name, []))
        rank = np.ndim(self.draws[name]) - 2
        return named + [f"{name}_dim_{i}" for i in range(rank - len(named))]

    @property
    def num_chains(self) -> int:
        return next(iter(self.draws.values())).shape[0]

    @property
    def num_samples(self) -> int:
        return next(iter(self.draws.values())).shape[1]

    @property
    def acceptance_rate(self) -> float:
        """Accepted proposals over proposals: the mean MH acceptance probability after warm-up
        for MCMC, the fraction of proposals accepted for rejection sampling."""
        if "acceptance_rate" in self.info:
            return float(self.info["acceptance_rate"])
        if "acceptance_rate" in self.stats:
            # in float64: a run's chain-major views and its loaded copy sum in other orders
            return float(np.mean(self.stats["acceptance_rate"], dtype=np.float64))
        return float("nan")

    @property
    def num_divergent(self) -> int:
        """Divergent transitions after warm-up, over all chains."""
        if "diverging" in self.stats:  # a stored run's read in blocks
            return draw_blocks.count(self.stats["diverging"])
        return 0

    def attrs(self) -> dict:
        """Run facts as NetCDF-safe attributes (strings and numbers)."""
        from infer.version import versions

        return {
            "infer_format": FORMAT,
            "sampler": self.sampler,
            "sampler_settings": settings_json(self.settings),
            "target": self.target,
            "seed": settings_json(self.seed),
            "num_warmup": self.num_warmup,
            "thin": self.thin,
            "num_logdensity_evals": self.num_logdensity_evals,
            "num_grad_evals": self.num_grad_evals,
            "timing": settings_json(self.timing),
            "info": settings_json(self.info),
            "ground_truth": "" if self.ground_truth is None else _truth_json(self.ground_truth),
            "versions": settings_json(versions() if self.versions is None else self.versions),
        }

    def to_arviz(self):
        """An ArviZ ``DataTree`` with groups ``posterior`` and ``sample_stats`` (none for an
        exact sampler's draws, which have no per-step statistics), and those the
        result holds besides (``log_likelihood``, ``observed_data``, ``constant_data`` of a
        NumPyro model or a target with ``loglik_fn``; ``posterior_predictive``, ``prior``,
        ``prior_predictive``, ``predictions`` from :func:`infer.predictive`); the run's facts
        are root attributes. Built once (a store's: checked to hold this run still)."""
        getattr(self.draws, "check", lambda: None)()
        if self._tree is None:
            groups = {"posterior": self.draws}
            if self.stats:
                groups["sample_stats"] = self.stats
            groups.update({name: values for name, values in self.groups.items() if values})
            self._tree = _datatree(groups, self.dims, self.attrs())
        return self._tree

    def save(self, path):
        """Write the run's ``DataTree`` (draws, stats and the run's facts as attributes) to
        ``path`` as NetCDF, atomically. The name ends in ``.nc`` (or ``.nc4``, ``.netcdf``,
        ``.cdf``, ``.h5``, ``.hdf5``, or has no suffix): another suffix is refused, ``.zarr``
        too (Zarr stores are what ``infer.sample(..., store=...)`` writes). Returns the
        path."""
        suffix = os.path.splitext(str(path))[1].lower()
        if suffix == ".zarr":
            raise ValueError(
                f"path={str(path)!r} ends in .zarr, but save writes NetCDF: name it "
                f"{str(path)[:-5] + '.nc'!r}. For draws written to a Zarr store as they come, "
                "pass store='run.zarr' to infer.sample."
            )
        if suffix not in NETCDF_SUFFIXES:
            raise ValueError(
                f"path={str(path)!r} ends in {suffix}, but save writes NetCDF (ArviZ's "
                f"format, which infer.load and arviz_base read): name it "
                f"{str(path)[: -len(suffix)] + '.nc'!r}."
            )
        return save_netcdf(_netcdf_ready(self.to_arviz()), path)

    def forget_store(self, message: str) -> None:
        """The store this result's draws are read from was replaced by another run: reading
        its draws or statistics raises ``ValueError(message)`` from now on."""
        from infer.store import Gone

        self.draws = self.stats = Gone(message)
        self.groups, self._tree = {}, None

    def __repr__(self) -> str:
        if not isinstance(self.draws, dict):  # its store was replaced
            return f"Result(sampler={self.sampler!r}, target={self.target!r}, draws gone)"
        shapes = ", ".join(f"{k}: {v.shape}" for k, v in self.draws.items())
        return (
            f"Result(sampler={self.sampler!r}, target={self.target!r}, draws={{{shapes}}}, "
            f"acceptance_rate={self.acceptance_rate:.3f}, "
            f"sampling_seconds={self.timing.get('sampling', float('nan')):.3g})"
        )


def _datatree(groups: dict, dims: dict, attrs: dict):
    """ArviZ's ``from_dict`` of ``groups``, with each variable's ``dims`` cut to the axes it
    has in each group (an observed site's log likelihood can have fewer than its values)."""
    import arviz_base
    import xarray as xr

    _warn_unknown_dims(dims, groups)
    fit_lengths, new_lengths = _axis_lengths(groups, dims)
    datasets = {}
    for group, values in groups.items():
        lead = _lead(group)
        named = {
            name: list(dims[name])[: max(np.ndim(value) - lead, 0)]
            for name, value in values.items()
            if name in dims
        }
        if group.endswith("constant_data"):  # a model's argument, named like a site at most
            family = new_lengths if group.startswith("predictions") else fit_lengths
            named = {
                name: axes
                for name, axes in named.items()
                if all(
                    family.get(a, n) == n
                    for a, n in zip(axes, np.shape(values[name]), strict=False)
                )
            }
        with warnings.catch_warnings():  # infer's axes are (chain, draw): nothing to guess
            warnings.filterwarnings("ignore", "Found chain dimension to be longer than draw")
            datasets[group] = arviz_base.dict_to_dataset(
                values,
                dims=named,
                sample_dims=[] if lead == 0 else None,
                skip_event_dims="log_likelihood" in group,
            )
    tree = xr.DataTree.from_dict(datasets)
    tree.attrs = attrs
    return tree


def _lead(group: str) -> int:
    """The axes before a variable's own in ``group``: (chain, draw), none for the data."""
    return 0 if "data" in group else 2


def _axis_lengths(groups: dict, dims: dict) -> tuple[dict, dict]:
    """Axis name -> length in the groups of the fit and in those of predictions at new
    inputs, from the variables ``dims`` names (constant data aside). An argument named like
    a site (``constant_data``) takes the site's axis names only where its lengths agree:
    else ArviZ would pair two axes of different lengths under one name, silently."""
    fit, new = {}, {}
    for group, values in groups.items():
        if group.endswith("constant_data"):
            continue
        lengths = new if group.startswith("predictions") else fit
        for name, value in values.items():
            shape = np.shape(value)[_lead(group) :]
            for axis, length in zip(dims.get(name, []), shape, strict=False):
                lengths.setdefault(axis, length)
    return fit, new


def _warn_unknown_dims(dims: dict, groups: dict) -> None:
    """Warn about ``dims`` entries that name no variable of any group (a misspelt name would
    otherwise leave the variable's axes unnamed without a word)."""
    known = {name for values in groups.values() for name in values}
    unknown = sorted(set(dims) - known)
    if unknown:
        warnings.warn(
            f"dims names {unknown}, which no group of this result holds, so they name "
            f"nothing; the variables are {sorted(known)}. Check the spelling.",
            skip_file_prefixes=INFER_FRAMES,
        )


def _netcdf_ready(tree):
    """``tree`` without what NetCDF cannot hold and a store's Zarr tree carries: its arrays'
    Zarr encodings, and boolean attributes (written as 0/1)."""
    tree = tree.map_over_datasets(lambda node: node.drop_encoding())
    for node in tree.subtree:
        node.attrs = {
            k: int(v) if isinstance(v, bool | np.bool_) else v for k, v in node.attrs.items()
        }
    return tree


def _truth_json(truth: GroundTruth) -> str:
    return settings_json(
        {
            "mean": truth.mean,
            "std": truth.std,
            "source": truth.source,
            "mean_se": truth.mean_se,
            "std_se": truth.std_se,
        }
    )


def summary(result: Result, **kwargs):
    """ArviZ's summary table (``arviz_stats.summary``) of the posterior draws.

    Keyword arguments go to ``arviz_stats.summary``. Its ``ess_tail`` is at ArviZ's default
    tail probabilities, not at the 5% and 95% quantiles of :func:`infer.compare`'s tail ESS,
    so the two tables' tail ESS differ: compare runs within one of them. NumPy's warnings of
    NaN, constant or overflowing draws are left out, as :func:`infer.compare` leaves them:
    the table shows those as NaN or inf, and the run warned of them at the user's line.
    """
    hint = "For draws made elsewhere: infer.summary(infer.Result.from_draws(draws))."
    validation.instance_of("result", result, Result, hint)
    import arviz_stats

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return arviz_stats.summary(result.to_arviz(), **kwargs)
