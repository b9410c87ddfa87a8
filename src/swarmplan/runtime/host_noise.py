"""The host's own noise floor for per-request predictions (docs/runtime.md §8.7).

A prediction made before a run cannot know how fast the host's CPU will be for each request. On a shared VM
the same forward work varies from one request to the next: one request's forwards (a prompt and its decode
steps through a few blocks), repeated back to back in one process, vary in CPU time with a coefficient of
variation of 0.13–0.22 on this project's 2-core host (a plain NumPy matmul loop: 0.056). `validate` reports
this CV beside its errors so that a per-request error can be read against what the host allows.
"""

from __future__ import annotations

import time

import numpy as np

from swarmplan.runtime.model import LlamaArch, Stage, new_cache


def forward_noise(
    arch: LlamaArch, blocks: int = 4, l_in: int = 16, l_out: int = 32, rounds: int = 20, device: str = "cpu"
) -> dict:
    """CPU time of one request's forwards (a prefill of ``l_in`` tokens and ``l_out`` − 1 decode steps through
    ``blocks`` blocks), the identical work ``rounds`` times back to back after two warm-up rounds: mean, CV
    (std / mean), min and max in ms."""
    import torch

    torch.set_num_threads(1)
    stage = Stage(arch, 1, max(1, min(blocks, arch.n_layers)), device)
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randn(1, l_in, arch.hidden, generator=gen).to(device)
    step = torch.randn(1, 1, arch.hidden, generator=gen).to(device)
    cpu = []
    with torch.no_grad():
        for _ in range(rounds + 2):
            cache, c0 = new_cache(), time.thread_time()
            stage.forward(prompt, cache, 0)
            for p in range(l_out - 1):
                stage.forward(step, cache, l_in + p)
            cpu.append((time.thread_time() - c0) * 1000.0)
    cpu = np.asarray(cpu[2:])
    return {
        "mean_ms": float(cpu.mean()),
        "cv": float(cpu.std() / cpu.mean()),
        "min_ms": float(cpu.min()),
        "max_ms": float(cpu.max()),
        "rounds": rounds,
    }
