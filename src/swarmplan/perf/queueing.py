"""Theorem-4 bounds on the mean response time under JFFC (docs/model.md §14.4; Sun, He, Hou 2026, Thm. 4).

Chains l = 1..K sorted by decreasing service rate μ_l with capacities c_l act as c_l parallel servers each.
The number in system is bounded by birth–death chains with birth rate λ and death rates
  fastest-first ν̄_n = Σ_l μ_l min(c_l, (n − Σ_{l'<l} c_l')⁺)   (lower bound on the mean),
  slowest-first ν̲_n = Σ_l μ_l min(c_l, (n − Σ_{l'>l} c_l')⁺)   (upper bound),
both equal to ν = Σ_l c_l μ_l for n ≥ C = Σ_l c_l; the tail is geometric with ρ = λ/ν. Little's law turns
the mean number into the mean response time. Computed in logs (the products under/overflow for large C).
"""

from __future__ import annotations

import numpy as np

from swarmplan.errors import NoSolutionError


def _death_rates(mu: np.ndarray, caps: np.ndarray, fastest_first: bool) -> np.ndarray:
    """ν_n for n = 1..C in O(C + K): the chains fill one after another in the given order, so for n in the
    l-th chain's interval (a_l, a_l + c_l] every chain before it is full and it holds n − a_l; ν_n is the
    full chains' Σ μ c plus μ_l (n − a_l). Equal, up to the order of float additions, to the C × K sum of
    the module docstring (``_death_rates_reference``), which needs C·K memory (GBs at 10⁴ servers)."""
    order = np.arange(len(mu)) if fastest_first else np.arange(len(mu))[::-1]
    m, c = mu[order], caps[order]
    start = np.cumsum(c) - c
    full = np.cumsum(m * c) - m * c
    which = np.repeat(np.arange(len(c)), c)  # the chain whose interval holds n, for n = 1..C
    n = np.arange(1, int(c.sum()) + 1)
    return full[which] + m[which] * (n - start[which])


def _death_rates_reference(mu: np.ndarray, caps: np.ndarray, fastest_first: bool) -> np.ndarray:
    """The module docstring's sums written out (C × K), kept as the tested reference."""
    C = int(caps.sum())
    n = np.arange(1, C + 1)[:, None]
    ahead = (np.cumsum(caps) - caps) if fastest_first else (C - np.cumsum(caps))
    return (mu[None, :] * np.minimum(caps[None, :], np.maximum(n - ahead[None, :], 0))).sum(axis=1)


def _mean_number(lam: float, x: np.ndarray, nu: float) -> float:
    C = len(x)
    rho = lam / nu
    logp = np.concatenate([[0.0], np.cumsum(np.log(lam) - np.log(x))])  # log Π_{i≤n} λ/x_i, n = 0..C
    logz_terms = np.concatenate([logp[:C], [logp[C] - np.log1p(-rho)]])
    shift = logz_terms.max()
    z = np.exp(logz_terms - shift).sum()
    phi = np.exp(logp - shift) / z
    return float((np.arange(C) * phi[:C]).sum() + phi[C] * (rho / (1 - rho) ** 2 + C / (1 - rho)))


def jffc_response_bounds_ms(service_ms, capacities, rate_per_ms: float) -> tuple[float, float]:
    """(lower, upper) bound on the mean response time (ms) of JFFC with exponential service of mean
    ``service_ms`` on each chain. Raises SwarmplanError when λ ≥ ν (the chains cannot keep up)."""
    mu = 1.0 / np.asarray(service_ms, dtype=float)
    caps = np.asarray(capacities, dtype=np.int64)
    keep = caps > 0
    mu, caps = mu[keep], caps[keep]
    order = np.argsort(-mu, kind="stable")
    mu, caps = mu[order], caps[order]
    nu = float((mu * caps).sum())
    if rate_per_ms >= nu:
        raise NoSolutionError(
            "workload.rate_per_s",
            f"arrival rate {rate_per_ms * 1000:.3g}/s ≥ the chains' total "
            f"service rate {nu * 1000:.3g}/s: the queue grows without bound",
            "lower the rate or add chains",
        )
    lower = _mean_number(rate_per_ms, _death_rates(mu, caps, True), nu) / rate_per_ms
    upper = _mean_number(rate_per_ms, _death_rates(mu, caps, False), nu) / rate_per_ms
    return lower, upper
