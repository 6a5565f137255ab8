"""What :func:`infer.sample` returns, and its conversion to an ArviZ ``DataTree``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infer.base import settings_json
from infer.target import GroundTruth

FORMAT = "infer.Result/1"
UNKNOWN_TIMING = {
    "compile": float("nan"),
    "warmup": float("nan"),
    "sampling": float("nan"),
    "total": float("nan"),
}


@dataclass
class Result:
    """Draws, per-step diagnostics, timing and costs of one run.

    Attributes:
        draws: name -> array ``(num_chains, num_samples, *event_shape)``, constrained space.
        stats: name -> array ``(num_chains, num_samples)``: per-step diagnostics under ArviZ's
            ``sample_stats`` names where they exist (``lp``, ``acceptance_rate``,
            ``diverging``, ``step_size``, ``n_steps``, ``tree_depth``, ``energy``) plus
            ``is_accepted``.
        timing: seconds: ``compile`` (0 when the compiled program was reused), ``warmup``,
            ``sampling``, ``total`` (the whole call).
        num_logdensity_evals: log-density evaluations over all chains, warm-up included.
        num_grad_evals: gradient evaluations over all chains, warm-up included.
        sampler: the sampler's name; ``settings``: its options.
        seed: the seed (an int, or a key's data as a list).
        target: the target's name.
        num_warmup, thin: as passed to :func:`infer.sample`.
        info: run-level facts: for rejection the acceptance rate, ``log_envelope`` and envelope
            violations; for MCMC the final step size of each chain.
        ground_truth: the target's known moments, if any.
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
    ) -> Result:
        """A result from draws made elsewhere (another library, a file), so that
        :func:`infer.compare`, :func:`infer.plot` and :meth:`save` work on them.

        Args:
            draws: name -> array ``(num_chains, num_samples, *event_shape)``.
            stats: name -> array ``(num_chains, num_samples)``, ArviZ ``sample_stats`` names
                (``diverging``, ``acceptance_rate``, ...), or ``None``.
            sampler, target: names to show.
            timing: seconds (``compile``, ``warmup``, ``sampling``, ``total``); unknown ones
                are NaN, and so are the per-second columns of :func:`infer.compare`.
            ground_truth, info: as in :class:`Result`.
            num_logdensity_evals, num_grad_evals: the run's cost, 0 when unknown.

        Raises:
            ValueError, TypeError: for draws or stats of inconsistent shapes.
        """
        if not isinstance(draws, dict) or not draws:
            raise TypeError(
                "draws must be a non-empty dict of name -> array (num_chains, num_samples, ...); "
                f"got {type(draws).__name__}."
            )
        arrays = {}
        for name, value in draws.items():
            if not isinstance(name, str):
                raise TypeError(f"draw names must be strings; got {name!r}.")
            value = np.asarray(value)
            if value.ndim < 2:
                raise ValueError(
                    f"draws[{name!r}] has shape {value.shape}; expected (num_chains, "
                    "num_samples, ...). A single chain needs a leading axis of 1."
                )
            arrays[name] = value
        lead = next(iter(arrays.values())).shape[:2]
        for name, value in arrays.items():
            if value.shape[:2] != lead:
                raise ValueError(
                    f"draws[{name!r}] has (num_chains, num_samples) = {value.shape[:2]} but "
                    f"the first draw has {lead}; all must share them."
                )
        stat_arrays = {}
        for name, value in (stats or {}).items():
            value = np.asarray(value)
            if value.shape != lead:
                raise ValueError(
                    f"stats[{name!r}] has shape {value.shape}; expected {lead} "
                    "(num_chains, num_samples)."
                )
            stat_arrays[name] = value
        return cls(
            draws=arrays,
            stats=stat_arrays,
            timing={**UNKNOWN_TIMING, **(timing or {})},
            num_logdensity_evals=int(num_logdensity_evals),
            num_grad_evals=int(num_grad_evals),
            sampler=sampler,
            settings={},
            seed=None,
            target=target,
            num_warmup=0,
            thin=1,
            info=dict(info or {}),
            ground_truth=ground_truth,
        )

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
            return float(np.mean(self.stats["acceptance_rate"]))
        return float("nan")

    @property
    def num_divergent(self) -> int:
        """Divergent transitions after warm-up, over all chains."""
        if "diverging" in self.stats:
            return int(np.sum(self.stats["diverging"]))
        return 0

    def attrs(self) -> dict:
        """Run facts as NetCDF-safe attributes (strings and numbers)."""
        import arviz_base
        import jax
        import numpyro

        import infer

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
            "versions": settings_json(
                {
                    "infer": infer.__version__,
                    "jax": jax.__version__,
                    "numpyro": numpyro.__version__,
                    "arviz_base": arviz_base.__version__,
                }
            ),
        }

    def to_arviz(self):
        """An ArviZ ``DataTree`` with groups ``posterior`` and ``sample_stats``; the run's
        facts (sampler, settings, seed, timing, package versions) are root attributes."""
        import arviz_base

        groups = {"posterior": self.draws}
        if self.stats:
            groups["sample_stats"] = self.stats
        return arviz_base.from_dict(groups, attrs={"/": self.attrs()})

    def save(self, path):
        """Write the run's ``DataTree`` (draws, stats and the run's facts as attributes) to
        ``path`` as NetCDF, atomically. Returns the path."""
        from infer.io import save_netcdf

        return save_netcdf(self.to_arviz(), path)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {v.shape}" for k, v in self.draws.items())
        return (
            f"Result(sampler={self.sampler!r}, target={self.target!r}, draws={{{shapes}}}, "
            f"acceptance_rate={self.acceptance_rate:.3f}, "
            f"sampling_seconds={self.timing.get('sampling', float('nan')):.3g})"
        )


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


def truth_from_json(text: str) -> GroundTruth | None:
    """The inverse of the ``ground_truth`` attribute written by :meth:`Result.attrs`."""
    import json

    if not text:
        return None
    record = json.loads(text)

    def arrays(mapping):
        return None if mapping is None else {k: np.asarray(v) for k, v in mapping.items()}

    return GroundTruth(
        mean=arrays(record["mean"]),
        std=arrays(record["std"]),
        source=record["source"],
        mean_se=arrays(record["mean_se"]),
        std_se=arrays(record["std_se"]),
    )


def summary(result: Result, **kwargs):
    """ArviZ's summary table (``arviz_stats.summary``) of the posterior draws.

    Keyword arguments go to ``arviz_stats.summary``.
    """
    import arviz_stats

    return arviz_stats.summary(result.to_arviz(), **kwargs)
