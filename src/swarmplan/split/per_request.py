"""One request's split: the client runs blocks 1..k1 (prefix) and optionally the last k2 blocks (suffix),
the server the rest (docs/split.md §3–4; SplitLLM, Mudvari et al. 2024, reconstructed).

``split_options`` is the dynamic program over the layer stack: state (block, side) with labels (TTFT so
far, decode step so far, client work, server work, client blocks); a change of side pays the transfer of
the hidden state at that boundary; labels that break an SLA or the device's memory are cut as soon as
they do (every later cost is ≥ 0). ``brute_force_options`` evaluates every cut in closed form; the tests
prove the two give the same optimum and the same work frontier.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarmplan.perf.timing import request_service_ms
from swarmplan.split.model import LayerStack

_EPS = 1e-9


@dataclass(frozen=True)
class SplitOption:
    """A split and what it costs (ms)."""

    prefix: int  # k1: blocks 1..k1 on the client
    suffix: int  # k2: blocks L−k2+1..L on the client
    ttft_ms: float
    token_ms: float  # one decode step
    response_ms: float
    client_work_ms: float
    server_work_ms: float

    @property
    def client_blocks(self) -> int:
        return self.prefix + self.suffix

    def server_blocks(self, L: int) -> int:
        return L - self.prefix - self.suffix


def _response(st: LayerStack, ttft: float, tok: float) -> float:
    """docs/model.md §3.3 — T = t_1 + (l_out − 1) · t_tok."""
    return request_service_ms(ttft, tok, st.output_tokens)


def meets_sla(st: LayerStack, ttft: float, tok: float) -> bool:
    return (
        ttft <= st.sla_ttft_ms + _EPS
        and tok <= st.sla_per_token_ms + _EPS
        and _response(st, ttft, tok) <= st.sla_response_ms + _EPS
    )


def evaluate_split(st: LayerStack, prefix: int, suffix: int) -> SplitOption:
    """docs/split.md §3 — closed form of a split's times and work (independent of the DP)."""
    L = st.L
    n_server = L - prefix - suffix
    if prefix < 0 or suffix < 0 or n_server < 0 or (n_server == 0 and suffix > 0):
        raise ValueError(f"no such split: prefix {prefix}, suffix {suffix} of {L}")
    client = list(range(prefix)) + list(range(L - suffix, L))
    server = list(range(prefix, L - suffix))
    ttft = sum(st.client_in[b] for b in client) + sum(st.server_in[b] for b in server)
    tok = sum(st.client_tok[b] for b in client) + sum(st.server_tok[b] for b in server)
    if n_server > 0:
        end = L - suffix  # boundary after the server's last block
        ttft += st.up_in[prefix] + (st.down_in_all[end] if suffix > 0 else st.down_in_last[end])
        tok += st.up_tok[prefix] + st.down_tok[end]
    return SplitOption(
        prefix,
        suffix,
        float(ttft),
        float(tok),
        float(_response(st, ttft, tok)),
        float(sum(st.client_work[b] for b in client)),
        float(sum(st.server_work[b] for b in server)),
    )


def brute_force_options(st: LayerStack) -> list[SplitOption]:
    """Every cut (k1, k2) that fits the device and meets the SLA, in closed form."""
    L, out = st.L, []
    for k1 in range(L + 1):
        for k2 in range(L - k1 + 1):
            if (k2 > 0 and not st.client_suffix) or (k2 > 0 and k1 + k2 == L) or k1 + k2 > st.max_client_blocks:
                continue
            o = evaluate_split(st, k1, k2)
            if meets_sla(st, o.ttft_ms, o.token_ms):
                out.append(o)
    return out


def split_options(st: LayerStack) -> list[SplitOption]:
    """docs/split.md §4 — the DP over the layer stack, block by block. Sides: client prefix, server, client
    suffix. The prefix side has one label (every block so far on the client). A server label (ttft, tok,
    client work, server work, client blocks, k1) exists per prefix length k1 and is extended by each server
    block. A switch to the suffix (or the end of the stack on the server) pays the hidden state's transfer
    and completes the label at once, because everything after it is fixed: the suffix's costs are suffix
    sums. Labels that break an SLA or the device's memory are cut as soon as they do (later costs are ≥ 0).
    O(L · min(L, memory cap)) label steps; returns every SLA-feasible split (duplicates by cost dropped)."""
    L, cap = st.L, st.max_client_blocks
    l_rest = st.output_tokens - 1
    # Plain floats: the loops touch every label of every block (numpy scalars are slow there).
    c_in, c_tok, s_in, s_tok = (x.tolist() for x in (st.client_in, st.client_tok, st.server_in, st.server_tok))
    c_w, s_w = st.client_work.tolist(), st.server_work.tolist()
    up_in, up_tok = st.up_in.tolist(), st.up_tok.tolist()
    down_all, down_last, down_tok = st.down_in_all.tolist(), st.down_in_last.tolist(), st.down_tok.tolist()
    # Suffix sums: the client running blocks b..L−1 (0-based) to the end.
    tail = [(0.0, 0.0, 0.0)] * (L + 1)
    for b in range(L - 1, -1, -1):
        t = tail[b + 1]
        tail[b] = (t[0] + c_in[b], t[1] + c_tok[b], t[2] + c_w[b])
    t_max, k_max, r_max = st.sla_ttft_ms + _EPS, st.sla_per_token_ms + _EPS, st.sla_response_ms + _EPS

    def alive(ttft, tok, nc):
        return nc <= cap and ttft <= t_max and tok <= k_max and ttft + l_rest * tok <= r_max

    done: list[SplitOption] = []

    def finish(ttft, tok, cw, sw, k1, suffix):
        if meets_sla(st, ttft, tok):
            done.append(SplitOption(k1, suffix, ttft, tok, _response(st, ttft, tok), cw, sw))

    prefix = (0.0, 0.0, 0.0)  # (ttft, tok, client work) of blocks 0..b−1 on the client
    server: list[tuple] = []  # (ttft, tok, cw, sw, nc, k1)
    for b in range(L):
        nxt = []
        # Server labels: extend by block b on the server, or end the server part before b (client suffix b..L−1).
        for ttft, tok, cw, sw, nc, k1 in server:
            if st.client_suffix and nc + (L - b) <= cap:
                tt, tk, w = tail[b]
                finish(ttft + down_all[b] + tt, tok + down_tok[b] + tk, cw + w, sw, k1, L - b)
            cand = (ttft + s_in[b], tok + s_tok[b], cw, sw + s_w[b], nc, k1)
            if alive(cand[0], cand[1], nc):
                nxt.append(cand)
        # Leave the prefix before block b: the hidden state goes up, block b runs on the server.
        pt, pk, pw = prefix
        cand = (pt + up_in[b] + s_in[b], pk + up_tok[b] + s_tok[b], pw, s_w[b], b, b)
        if alive(cand[0], cand[1], b):
            nxt.append(cand)
        server = nxt
        prefix = (pt + c_in[b], pk + c_tok[b], pw + c_w[b])
    for ttft, tok, cw, sw, nc, k1 in server:  # the last hidden state comes back for the client's LM head
        finish(ttft + down_last[L], tok + down_tok[L], cw, sw, k1, 0)
    if L <= cap:  # every block on the client: no transfer at all
        finish(prefix[0], prefix[1], prefix[2], 0.0, L, 0)
    return done


def work_frontier(options: list[SplitOption]) -> list[SplitOption]:
    """The options the knapsack needs: least server work for each client work, fastest on ties
    (docs/split.md §5), sorted by increasing client work."""
    best: list[SplitOption] = []
    for o in sorted(options, key=lambda o: (o.client_work_ms, o.server_work_ms, o.response_ms)):
        if not best or o.server_work_ms < best[-1].server_work_ms - _EPS:
            best.append(o)
    return best


def best_split(options: list[SplitOption]) -> SplitOption | None:
    """docs/split.md §4 — the split of least server work; on ties the fastest, then the least client work."""
    if not options:
        return None
    return min(options, key=lambda o: (round(o.server_work_ms, 9), round(o.response_ms, 9), o.client_work_ms))


def fastest_split(st: LayerStack) -> SplitOption:
    """The split of least response time ignoring the SLA (for the message when no split meets it)."""
    free = LayerStack(
        **{**st.__dict__, "sla_response_ms": float("inf"), "sla_ttft_ms": float("inf"), "sla_per_token_ms": float("inf")}
    )
    return min(brute_force_options(free), key=lambda o: o.response_ms)
