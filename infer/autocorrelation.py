"""Geyer's integrated autocorrelation time of chains, as ArviZ computes it for the ESS
(initial positive and monotone sequences, ArviZ's truncation), from autocovariances by FFT:
for :mod:`infer.chain_stats_kernels`. Series are ``(num_series, num_chains, n)``, centred."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from scipy.fftpack import next_fast_len

from infer.batchwise import batchwise_cond
from infer.chain_ranks import FAST_FROM


def _geyer_tau(rho, num_draws):
    """ArviZ's integrated autocorrelation time from the autocorrelations ``rho`` of its lags
    ``0..len(rho)-1`` for chains of ``num_draws`` draws: Geyer's initial positive sequence, its
    monotone version, and ArviZ's last-term rule. Returns ``(tau, exact)``: ``exact`` is False
    when ``rho`` stops before the lag where Geyer's sum does (then ``tau`` means nothing).
    ``num_draws`` may be traced (padded draws: ``rho`` holds their lags, and more)."""
    most = max((rho.shape[0] - 2) // 2, 0)  # the last pair rho holds
    limit = jnp.maximum((num_draws - 3) // 2, 0)  # the largest pair ArviZ's loop can reach
    known = jnp.minimum(limit, most)
    pairs = rho[: 2 * (most + 1)].reshape(most + 1, 2).at[0, 0].set(1.0)
    pair_sums = pairs.sum(axis=1)
    index = jnp.arange(most + 1)
    stops = ~(pair_sums > 0) & (index < jnp.minimum(known + 1, limit))
    found = stops.any()
    stop = jnp.where(found, jnp.argmax(stops), known)
    monotone = lax.cummin(pair_sums)
    body = jnp.sum(jnp.where(index < stop, monotone, 0.0))
    last_even, last_pair = pairs[stop, 0], pair_sums[stop]
    tail = jnp.where((last_pair >= 0) | (last_even > 0), last_even, 0.0)
    tau = -1 + 2 * body + tail
    exact = found | (known == limit)
    return jnp.where(jnp.isnan(rho[1]), jnp.nan, tau), exact


def _tau(centred, between, fft_len, count=None):
    """Geyer's ``(tau, exact)`` of each series of ``centred`` (num_series, num_chains, n),
    from its chains' mean autocovariance at the lags ``0..fft_len - n`` (those a circular
    correlation of that length gets without wrapping round); ``between``: the variance of the
    chain means (num_series,). Padded series: ``count`` real draws, then zeros."""
    n = centred.shape[2]
    lags = min(fft_len - n, n - 1) + 1
    spectrum = jnp.fft.rfft(centred, n=fft_len, axis=2)
    power = (jnp.abs(spectrum) ** 2).mean(axis=1)  # chains averaged: irfft is linear
    n = n if count is None else count  # padded: the real draws, and zeros after them
    mean_acov = jnp.fft.irfft(power, n=fft_len, axis=1)[:, :lags] / n
    mean_var = mean_acov[:, 0] * n / (n - 1)
    var_plus = mean_var * (n - 1) / n + between
    rho = 1 - (mean_var[:, None] - mean_acov) / var_plus[:, None]
    return jax.vmap(lambda r: _geyer_tau(r, n))(rho)


def _fft_lengths(num_chains, n):
    """The FFT lengths of every lag (as ArviZ: ``next_fast_len(2 n)``) and, for series of
    :data:`FAST_FROM` draws and more, of the first ``max(n // 8, 32)`` lags, where Geyer's sum
    stops for all but slowly mixing chains; None for the second when it would not pay."""
    full = next_fast_len(2 * n)
    short = next_fast_len(n + max(n // 8, 32))
    return full, short if short < 0.75 * full and num_chains * n >= FAST_FROM else None


def _every_lag(tau, exact, centred, between):
    return _tau(centred, between, _fft_lengths(*centred.shape[1:])[0])[0]


# Geyer's tau from the first lags where that was exact, else from every lag (for a batch of
# parameters under vmap: from every lag when any of the batch needs it).
_tau_or_every_lag = batchwise_cond(
    lambda tau, exact, centred, between: ~exact.all(),
    _every_lag,
    lambda tau, exact, centred, between: tau,
)


def integrated_time(centred, between, count=None):
    """Geyer's ``tau`` of each series of ``centred`` (num_series, num_chains, n) (see
    :func:`_tau`), from the first lags' autocovariances when Geyer's sum stops within them,
    else from every lag's (always, for padded series: ``count`` real draws, then zeros).
    ``between``: the variance of each series' chain means (num_series,)."""
    full, short = _fft_lengths(*centred.shape[1:])
    if count is not None:
        return _tau(centred, between, full, count)[0]
    if short is None:
        return _tau(centred, between, full)[0]
    tau, exact = _tau(centred, between, short)
    return _tau_or_every_lag(tau, exact, centred, between)
