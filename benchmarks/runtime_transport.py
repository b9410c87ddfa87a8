"""The runtime's own cost: tokens/s of a request split over N server processes at zero emulated delay, against
single-process greedy generation of the same seeded model (docs/runtime.md §7).

    python benchmarks/runtime_transport.py [--model llama-small] [--servers 1 2 4] [--tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import numpy as np


def single_process(arch, prompt, tokens) -> float:
    from swarmplan.runtime.model import build_reference, reference_generate

    ref = build_reference(arch)
    reference_generate(ref, prompt, 4)  # warm-up
    t0 = time.perf_counter()
    reference_generate(ref, prompt, tokens)
    return tokens / (time.perf_counter() - t0)


def split(arch, prompt, tokens, n_servers) -> tuple[float, float]:
    """(tokens/s, mean server forward ms per token): the gap to single-process is transport + client work."""
    from swarmplan.runtime.client import ChainRunner, Connections, RequestRecord
    from swarmplan.runtime.launch import ServerGroup, ServerSpec
    from swarmplan.runtime.live import LiveSlots
    from swarmplan.runtime.model import Head
    from swarmplan.runtime.wire import Link

    L = arch.n_layers
    cuts = np.linspace(0, L, n_servers + 1).round().astype(int)
    specs = [ServerSpec(j, f"s{j}", int(cuts[j]) + 1, int(cuts[j + 1] - cuts[j]), 64) for j in range(n_servers)]
    secret = os.urandom(16)
    with ServerGroup(arch, specs, secret) as group:

        async def go():
            head = Head(arch)
            live = LiveSlots([64] * n_servers)
            runner = ChainRunner(
                head,
                Connections("127.0.0.1", group.ports, secret, "client:0"),
                {j: Link() for j in range(n_servers)},
                live,
                [s.n_blocks for s in specs],
                time.perf_counter,
            )
            servers, blocks = list(range(n_servers)), [s.n_blocks for s in specs]
            await runner.run(RequestRecord(0, 0.0, prompt, 4), servers, blocks)  # warm-up
            t0 = time.perf_counter()
            await runner.run(RequestRecord(1, 0.0, prompt, tokens), servers, blocks)
            return tokens / (time.perf_counter() - t0)

        return asyncio.run(go())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-small")
    ap.add_argument("--servers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--tokens", type=int, default=64)
    args = ap.parse_args()
    import torch

    from swarmplan.runtime.model import preset_arch

    torch.set_num_threads(1)
    arch = preset_arch(args.model)
    prompt = list(range(1, 17))
    base = single_process(arch, prompt, args.tokens)
    print(f"{args.model}: {arch.n_layers} blocks × hidden {arch.hidden}, {args.tokens} tokens, 1 thread per process")
    print(f"single-process generate(): {base:8.1f} tokens/s")
    for n in args.servers:
        rate = split(arch, prompt, args.tokens, n)
        print(
            f"runtime, {n} server(s), 0 ms RTT: {rate:8.1f} tokens/s  ({rate / base:.2f}× single-process; "
            f"{1000 / rate - 1000 / base:+.2f} ms per token of transport and client work)"
        )


if __name__ == "__main__":
    main()
