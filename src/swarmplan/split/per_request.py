"""One request's split: the client runs blocks 1..k1 (prefix) and optionally the last k2 blocks (suffix),
the server the rest (docs/split.md §3–4; SplitLLM, Mudvari et al. 2024, reconstructed).

``split_options`` is the dynamic program over the layer stack: state (block, side) with labels (TTFT so
far, decode step so far, client work, server work, client blocks); a change of side pays the transfer of
the hidden state at that boundary. Labels dominated in every coordinate are dropped and labels that
already break an SLA or the device's memory are cut (every later cost is ≥ 0), so what survives at the
end is every SLA-feasible split that is not beaten on all counts. ``brute_force_options`` evaluates every
cut in closed form; the tests prove the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarmplan.perf.timing import request_service_ms
from swarmplan.split.model import LayerStack

_EPS = 1e-9
PREFIX, SERVER, SUFFIX = 0, 1, 2


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
    return (ttft <= st.sla_ttft_ms + _EPS and tok <= st.sla_per_token_ms + _EPS
            and _response(st, ttft, tok) <= st.sla_response_ms + _EPS)


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
    return SplitOption(prefix, suffix, float(ttft), float(tok), float(_response(st, ttft, tok)),
                       float(sum(st.client_work[b] for b in client)), float(sum(st.server_work[b] for b in server)))


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


def _dominates(a: tuple, b: tuple) -> bool:
    return all(x <= y + _EPS for x, y in zip(a[:5], b[:5]))


def _prune(labels: list[tuple]) -> list[tuple]:
    """Keep labels no other label dominates (equal labels: keep the first)."""
    labels.sort(key=lambda x: (x[3], x[2], x[0], x[1], x[4]))
    kept: list[tuple] = []
    for lab in labels:
        if not any(_dominates(k, lab) for k in kept):
            kept.append(lab)
    return kept


def split_options(st: LayerStack) -> list[SplitOption]:
    """docs/split.md §4 — the DP over the layer stack. Label = (ttft, tok, client work, server work,
    client blocks, prefix, suffix start). Returns the surviving SLA-feasible splits."""
    L, cap = st.L, st.max_client_blocks
    l_rest = st.output_tokens - 1

    def alive(ttft, tok, nc):
        return (nc <= cap and ttft <= st.sla_ttft_ms + _EPS and tok <= st.sla_per_token_ms + _EPS
                and ttft + l_rest * tok <= st.sla_response_ms + _EPS)

    # states[side] = labels after the blocks processed so far.
    states: list[list[tuple]] = [[(0.0, 0.0, 0.0, 0.0, 0, 0, -1)], [], []]
    for b in range(L):
        nxt: list[list[tuple]] = [[], [], []]
        for side in (PREFIX, SERVER, SUFFIX):
            for (ttft, tok, cw, sw, nc, k1, s2) in states[side]:
                # Stay on this side for block b.
                if side == SERVER:
                    cand = (ttft + st.server_in[b], tok + st.server_tok[b], cw, sw + st.server_work[b], nc, k1, s2)
                else:
                    cand = (ttft + st.client_in[b], tok + st.client_tok[b], cw + st.client_work[b], sw, nc + 1,
                            k1 + (side == PREFIX), s2)
                if alive(cand[0], cand[1], cand[4]):
                    nxt[side].append(cand)
                # Switch side before block b, paying the hidden state's transfer at boundary b.
                if side == PREFIX:
                    cand = (ttft + st.up_in[b] + st.server_in[b], tok + st.up_tok[b] + st.server_tok[b], cw,
                            sw + st.server_work[b], nc, k1, s2)
                    if alive(cand[0], cand[1], cand[4]):
                        nxt[SERVER].append(cand)
                elif side == SERVER and st.client_suffix:
                    cand = (ttft + st.down_in_all[b] + st.client_in[b], tok + st.down_tok[b] + st.client_tok[b],
                            cw + st.client_work[b], sw, nc + 1, k1, b)
                    if alive(cand[0], cand[1], cand[4]):
                        nxt[SUFFIX].append(cand)
        states = [_prune(x) for x in nxt]
    out = []
    for side, labels in enumerate(states):
        for (ttft, tok, cw, sw, nc, k1, s2) in labels:
            if side == SERVER:  # the last hidden state comes back for the client's LM head
                ttft, tok = ttft + st.down_in_last[L], tok + st.down_tok[L]
            if not meets_sla(st, ttft, tok):
                continue
            suffix = L - s2 if side == SUFFIX else 0
            out.append(SplitOption(k1, suffix, float(ttft), float(tok), float(_response(st, ttft, tok)),
                                   float(cw), float(sw)))
    return out


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
    free = LayerStack(**{**st.__dict__, "sla_response_ms": float("inf"), "sla_ttft_ms": float("inf"),
                         "sla_per_token_ms": float("inf")})
    return min(brute_force_options(free), key=lambda o: o.response_ms)
