"""Parallax's phase-1 layer allocation (GradientHQ/parallax, scheduling/layer_allocation.py,
DynamicProgrammingLayerAllocator; related-work.md §5) on swarmplan's model (docs/capacity.md §4.1).

1. Each node's layer capacity: weights in at most half of its memory (Parallax's ``param_mem_ratio``),
   within the GPU's clamp. Nodes are sorted by capacity, largest first.
2. For every pipeline count k, a DP over the sorted nodes finds s*(k), the fewest nodes (stages) that
   complete k disjoint pipelines of L layers; Parallax picks the k maximising k² / s*(k) (concurrency ×
   pipelines per stage, i.e. many pipelines with few stages each).
3. Each pipeline's layers are split by water-filling: proportional to the nodes' compute power, capped by
   their capacity (λ by bisection with Σ min(c_i, λ F_i) = L), integerised by floors plus largest
   remainders; stages in decreasing capacity order.
4. Nodes left over join where the per-layer KV hosting power is lowest (Parallax's dynamic ``join``).
KV cache: Parallax sizes it to 30 % of the memory and caps a node at 16 concurrent requests by default.
Compute power: the GPU's TFLOPS where known, else the inverse of its prefill time per token (∝ TFLOPS,
docs/model.md §12). Embedding and LM-head memory are not modelled (swarmplan's blocks are the layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from math import floor

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement

PARAM_SHARE = 0.5  # Parallax Node.param_mem_ratio
KV_SHARE = 0.3  # Parallax Node.kvcache_mem_ratio
MAX_CONCURRENT = 16  # Parallax Node.max_concurrent_requests


def layer_capacity(pm: PerfModel) -> np.ndarray:
    c = np.floor(PARAM_SHARE * pm.memory_gb / pm.block_gb + 1e-9).astype(np.int64)
    return np.minimum(np.minimum(c, pm.max_blocks), pm.L)


def compute_power(pm: PerfModel) -> np.ndarray:
    tf = np.asarray(pm.swarm.tflops, dtype=float)
    proxy = 1.0 / np.where(pm.prefill_slope > 0, pm.prefill_slope, pm.tau_ms)
    return np.where(np.isfinite(tf) & (tf > 0), tf, proxy)


def min_stages(caps: list[int], L: int, k: int) -> tuple[float, list[list[int]]]:
    """s*(k): the fewest nodes (in the given order, each used at most once, each contributing its whole
    capacity) that complete k pipelines of L layers; and the pipelines (node positions). inf if impossible."""
    n = len(caps)
    suffix = [0] * (n + 1)
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] + caps[i]

    @cache
    def dp(i: int, open_: tuple, done: int) -> tuple[float, tuple]:
        if done == k and not open_:
            return 0, ()
        if i == n:
            return float("inf"), ()
        new_needed = k - done - len(open_)
        if new_needed < 0 or suffix[i] < sum(open_) + max(0, new_needed) * L or done + len(open_) + (n - i) < k:
            return float("inf"), ()
        best, how = dp(i + 1, open_, done)[0], ("skip",)
        for j, r in enumerate(open_):
            if j and open_[j - 1] == r:
                continue  # equal residuals: same state
            rest = list(open_[:j] + open_[j + 1 :])
            left = r - caps[i]
            if left <= 0:
                cost = 1 + dp(i + 1, tuple(rest), done + 1)[0]
            else:
                cost = 1 + dp(i + 1, tuple(sorted(rest + [left])), done)[0]
            if cost < best:
                best, how = cost, ("join", r)
        if new_needed > 0:
            left = L - caps[i]
            cost = 1 + (dp(i + 1, open_, done + 1)[0] if left <= 0 else dp(i + 1, tuple(sorted(open_ + (left,))), done)[0])
            if cost < best:
                best, how = cost, ("start",)
        return best, how

    total = dp(0, (), 0)[0]
    if total == float("inf"):
        return total, []
    pipes: list[tuple[int, list[int]]] = []  # (residual, nodes) of open pipelines
    closed: list[list[int]] = []
    i, done = 0, 0
    while not (done == k and not pipes):
        state = tuple(sorted(r for r, _ in pipes))
        _, how = dp(i, state, done)
        if how[0] == "join":
            idx = next(t for t, (r, _) in enumerate(pipes) if r == how[1])
            r, nodes = pipes.pop(idx)
            nodes.append(i)
            if r - caps[i] <= 0:
                closed.append(nodes)
                done += 1
            else:
                pipes.append((r - caps[i], nodes))
        elif how[0] == "start":
            if L - caps[i] <= 0:
                closed.append([i])
                done += 1
            else:
                pipes.append((L - caps[i], [i]))
        i += 1
    dp.cache_clear()
    return total, closed


def choose_pipelines(caps: list[int], L: int) -> tuple[int, list[list[int]], dict[int, float]]:
    """Parallax's choice: k maximising k²/s*(k) over k = 1..min(n, Σ caps // L) (first on ties)."""
    scores: dict[int, float] = {}
    best_k, best_pipes, best = 0, [], -1.0
    for k in range(1, min(len(caps), sum(caps) // L) + 1):
        s, pipes = min_stages(caps, L, k)
        if s == float("inf"):
            continue
        scores[k] = k * k / s
        if scores[k] > best:
            best, best_k, best_pipes = scores[k], k, pipes
    return best_k, best_pipes, scores


def water_fill(caps: list[int], power: list[float], L: int, iterations: int = 40) -> list[int]:
    """Layers ∝ power, capped by capacity: λ with Σ min(c_i, λF_i) = L by bisection, then floors plus the
    largest remainders (ties to the earlier node)."""
    lo, hi = 0.0, max(c / p for c, p in zip(caps, power))
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if sum(min(c, mid * p) for c, p in zip(caps, power)) >= L:
            hi = mid
        else:
            lo = mid
    target = [min(c, hi * p) for c, p in zip(caps, power)]
    counts = [min(c, int(floor(t))) for c, t in zip(caps, target)]
    left = L - sum(counts)
    for _, i in sorted(((t - n, -i) for i, (t, n) in enumerate(zip(target, counts))), reverse=True):
        if left <= 0:
            break
        i = -i
        if counts[i] < caps[i]:
            counts[i] += 1
            left -= 1
    for i in range(len(counts)):  # anything still left (rounding): first nodes with room
        take = min(caps[i] - counts[i], left)
        counts[i] += take
        left -= take
    return counts


def parallax_slots(pm: PerfModel, n_blocks: np.ndarray) -> np.ndarray:
    """KV slots: 30 % of the memory, and at most 16 concurrent requests on all the node's blocks."""
    kv = np.floor(KV_SHARE * pm.memory_gb / pm.kv_gb + 1e-9).astype(np.int64)
    return np.where(n_blocks > 0, np.minimum(kv, MAX_CONCURRENT * n_blocks), 0)


_CACHE: dict[int, tuple] = {}


def parallax_placement_cached(pm: PerfModel) -> Placement:
    """Parallax's allocation does not depend on the arrival rate: computed once per swarm."""
    import weakref

    hit = _CACHE.get(id(pm))
    if hit is not None and hit[0]() is pm:
        return hit[1]
    pl = parallax_placement(pm)
    if len(_CACHE) > 16:
        _CACHE.clear()
    _CACHE[id(pm)] = (weakref.ref(pm), pl)
    return pl


def parallax_placement(pm: PerfModel) -> Placement:
    L = pm.L
    cap = layer_capacity(pm)
    order = sorted(range(pm.n_servers), key=lambda j: (-int(cap[j]), j))
    caps = [int(cap[j]) for j in order]
    if sum(caps) < L:
        raise SwarmplanError(
            "servers",
            f"with half of each GPU's memory for weights (Parallax's rule) the servers hold only {sum(caps)} of {L} blocks",
            "add servers or use another method",
        )
    k, pipes, scores = choose_pipelines(caps, L)
    power = compute_power(pm)
    start = np.zeros(pm.n_servers, dtype=np.int64)
    m = np.zeros(pm.n_servers, dtype=np.int64)
    for pipe in pipes:
        nodes = sorted((order[p] for p in pipe), key=lambda j: (-int(cap[j]), j))
        counts = water_fill([int(cap[j]) for j in nodes], [float(power[j]) for j in nodes], L)
        at = 1
        for j, c in zip(nodes, counts):
            if c > 0:
                start[j], m[j] = at, c
                at += c
    kv_per_layer = np.zeros(L + 1)  # per layer (1-based): KV memory of its hosts per hosted layer
    for j in np.flatnonzero(m):
        kv_per_layer[start[j] : start[j] + m[j]] += KV_SHARE * pm.memory_gb[j] / m[j]
    for j in order:  # left-over nodes join at the lightest layer (ties: lowest layer)
        if m[j] > 0 or cap[j] < 1:
            continue
        a = int(np.argmin(kv_per_layer[1:])) + 1
        c = int(min(cap[j], L - a + 1))
        start[j], m[j] = a, c
        kv_per_layer[a : a + c] += KV_SHARE * pm.memory_gb[j] / c
    return Placement(
        method="parallax",
        start=start,
        n_blocks=m,
        cache_slots=parallax_slots(pm, m),
        memory_model="proposed",
        info={"pipelines": k, "pipeline_nodes": [[order[p] for p in pipe] for pipe in pipes], "scores": scores},
    )


@dataclass(frozen=True)
class ParallaxOptions:
    """Parallax's allocation has no options here (its defaults: half the memory for weights, 30 % KV)."""


def _parallax(ctx, _: ParallaxOptions) -> Placement:
    return parallax_placement_cached(ctx.pm)


from swarmplan.placement.registry import PlacementMethod, register_placement

register_placement(
    PlacementMethod(
        "parallax",
        "proposed",
        "Parallax: k²/stages pipelines, water-filled layers, left-overs at the lightest layer (docs/capacity.md §4.1)",
        ParallaxOptions,
        _parallax,
    )
)
