"""Runtime: split execution gives single-process generate()'s tokens; servers never exceed their slots."""

import asyncio
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from swarmplan.runtime.client import ChainRunner, Connections, Refused, RequestRecord  # noqa: E402
from swarmplan.runtime.live import LiveSlots  # noqa: E402
from swarmplan.runtime.model import Head, build_reference, preset_arch, reference_generate  # noqa: E402
from swarmplan.runtime.server import StageServer  # noqa: E402
from swarmplan.runtime.wire import Link, client_handshake, read_frame, send_frame  # noqa: E402

ARCH = preset_arch("llama-tiny", seed=7)
SECRET = os.urandom(16)
# Spans (1-based first block, count) of in-process servers: uneven, overlapping, entered part-way.
SPANS = {0: (1, 4), 1: (1, 1), 2: (2, 2), 3: (4, 1), 4: (2, 3), 5: (2, 1)}


@pytest.fixture(scope="module")
def reference():
    return build_reference(ARCH)


async def _with_servers(spans, slots, body):
    servers, ports = {}, {}
    for j, (first, n) in spans.items():
        srv = StageServer(
            dict(
                arch=ARCH.to_dict(),
                first_block=first,
                n_blocks=n,
                slots=slots,
                secret=SECRET.hex(),
                links={"client:0": [1.0, None]},
            )
        )
        servers[j] = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
        ports[j] = servers[j].sockets[0].getsockname()[1]
    try:
        return await body(ports)
    finally:
        for s in servers.values():
            s.close()


def _runner(ports, live, clock=lambda: 0.0):
    head = Head(ARCH)
    conns = Connections("127.0.0.1", ports, SECRET, "client:0")
    span = [SPANS[j][1] if j in SPANS else 0 for j in range(max(SPANS) + 1)]
    return ChainRunner(head, conns, {j: Link(1.0) for j in ports}, live, span, clock)


@pytest.mark.parametrize(
    "chain",
    [
        [(0, 4)],  # one server, the whole model
        [(1, 1), (4, 3)],  # two servers, 1 + 3 blocks
        [(1, 1), (2, 2), (0, 1)],  # three: the last enters a 4-block span at its 4th block
        [(1, 1), (5, 1), (2, 1), (3, 1)],  # four: the third enters its span part-way
    ],
)
def test_tokens_equal_single_process_generate(reference, chain):
    prompt = [3, 141, 59, 26, 5]
    want = reference_generate(reference, prompt, 10)

    async def body(ports):
        live = LiveSlots([100] * 6)
        runner = _runner(ports, live)
        rec = RequestRecord(0, 0.0, prompt, 10)
        await runner.run(rec, [j for j, _ in chain], [n for _, n in chain])
        return rec, live

    rec, live = asyncio.run(_with_servers(SPANS, 100, body))
    assert rec.tokens == want
    assert live.running == [0] * 6  # every session released with its last step


def test_replay_after_partial_generation_continues_the_same_tokens(reference):
    """A request that moves to another chain mid-way replays prompt + tokens so far (the failure path)."""
    prompt = [9, 8, 7]
    want = reference_generate(reference, prompt, 8)

    async def body(ports):
        runner = _runner(ports, LiveSlots([100] * 6))
        rec = RequestRecord(0, 0.0, prompt, 8)
        rec.tokens = want[:3]  # as if 3 tokens were generated on another chain before it failed
        await runner.run(rec, [1, 4], [1, 3])
        return rec

    assert asyncio.run(_with_servers(SPANS, 100, body)).tokens == want


def test_full_server_refuses_and_never_exceeds_its_slots():
    async def body(ports):
        live = LiveSlots([5] * 6)
        runner = _runner(ports, live)
        hidden = np.zeros((1, 2, ARCH.hidden), np.float32)
        r, w = await asyncio.open_connection("127.0.0.1", ports[0])
        await client_handshake(r, w, SECRET, "client:0")
        replies = []
        for sid in range(3):  # 4 + 1 blocks fit in 5 slots; a further 1-block session does not
            n = 4 if sid == 0 else 1
            await send_frame(w, Link(), {"op": "prefill", "session": str(sid), "skip": 4 - n, "n": n}, hidden)
            replies.append((await read_frame(r))[0])
        await send_frame(w, Link(), {"op": "close", "session": "0"})
        await read_frame(r)
        await send_frame(w, Link(), {"op": "prefill", "session": "3", "skip": 0, "n": 4}, hidden)
        after = (await read_frame(r))[0]
        await send_frame(w, Link(), {"op": "ping"})
        ping = (await read_frame(r))[0]
        # The runner sees the refusal as Refused (the client then backs off).
        with pytest.raises(Refused):
            await runner.run(RequestRecord(9, 0.0, [1, 2], 3), [0], [4])
        w.close()
        return replies, after, ping, live

    replies, after, ping, live = asyncio.run(_with_servers({0: (1, 4)}, 5, body))
    assert [x["ok"] for x in replies] == [True, True, False] and replies[2]["error"] == "full"
    assert after["ok"] and after["free"] == 0
    assert ping["peak"] == 5  # never above the 5 slots
    assert live.running[0] == 0


def test_wrong_secret_is_refused():
    async def body(ports):
        r, w = await asyncio.open_connection("127.0.0.1", ports[0])
        await client_handshake(r, w, b"not the secret", "client:0")
        with pytest.raises(ConnectionError):
            await read_frame(r)  # the server closed the connection
            await send_frame(w, Link(), {"op": "ping"})
            await read_frame(r)
        w.close()
        return True

    assert asyncio.run(_with_servers({0: (1, 4)}, 5, body))
