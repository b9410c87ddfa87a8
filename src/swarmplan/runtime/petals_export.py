"""A placement as PETALS server launch commands (docs/model.md §15; petals.md §12).

Each server that holds blocks gets ``python -m petals.cli.run_server MODEL --block_indices a−1:a−1+m``
(PETALS spans are 0-based, end-exclusive, and strict: such a server never moves). Under swarmplan's memory
model the server's KV pool must be the memory left after the weights (and PETALS' autograd reserve, kept
as a safety margin): --attn_cache_tokens = ⌊(M − s_m m − A) / (m · KV bytes per token per block)⌋, and
--inference_max_length must cover a request's tokens.
"""

from __future__ import annotations

import math
import shlex

from swarmplan.perf import memory
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement

HF_REPOS = {
    "bloom-176b": "bigscience/bloom",
    "llama-2-70b": "meta-llama/Llama-2-70b-hf",
    "llama-2-7b": "meta-llama/Llama-2-7b-hf",
    "llama-3-8b": "meta-llama/Meta-Llama-3-8B",
}


def attn_cache_tokens(pm: PerfModel, j: int, n_blocks: int) -> int:
    """docs/model.md §15 — tokens per block so that the pool fills the memory left on server j."""
    kv = memory.kv_bytes_per_token_per_block(pm.swarm.model)
    free_bytes = (pm.memory_gb[j] - pm.block_gb * n_blocks - pm.autograd_gb) * 1e9
    return max(0, math.floor(free_bytes / (n_blocks * kv)))


def petals_commands(pm: PerfModel, pl: Placement, initial_peers: str = "$INITIAL_PEERS") -> list[str]:
    model = pm.swarm.model
    repo = HF_REPOS.get(model.name, "<model repository>")
    lines = [f"# {pl.method} placement of {model.name} on {pm.swarm.scenario} (docs/model.md §15)"]
    if pl.memory_model == "proposed":
        lines.append(
            f"# KV pools leave PETALS' autograd reserve ({pm.autograd_gb:.3g} GB) free, so each server has "
            "somewhat fewer cache slots than the plan's memory model assumed"
        )
    for j, (span, m) in enumerate(zip(pl.petals_block_indices(), pl.n_blocks.tolist())):
        if span is None:
            continue
        args = [
            "python",
            "-m",
            "petals.cli.run_server",
            repo,
            "--block_indices",
            span,
            "--initial_peers",
            initial_peers,
            "--public_name",
            pm.swarm.server_names[j],
            "--quant_type",
            model.quant,
            "--torch_dtype",
            model.dtype,
        ]
        if pl.memory_model == "proposed":
            args += [
                "--attn_cache_tokens",
                str(attn_cache_tokens(pm, j, m)),
                "--inference_max_length",
                str(pm.swarm.cache_tokens),
            ]
        lines.append(" ".join(a if a.startswith("$") else shlex.quote(a) for a in args))
    return lines
