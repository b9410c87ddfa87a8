"""A request's first-token and per-token time on a chain (docs/model.md §3.3), shared by both event loops."""

from __future__ import annotations

from swarmplan.perf.model import PerfModel


class ChainTimer:
    """t_1(p) and t_tok(p) for a request's client and input length; the per-(client, l_in) rows are cached
    as Python lists because the loops call this once per request."""

    def __init__(self, pm: PerfModel):
        self.pm = pm
        self.tau = pm.tau_ms.tolist()
        self.rtt_rows = [row.tolist() for row in pm.rtt_ms]
        self._input_rows: dict[tuple[int, int], tuple[list[float], list[float]]] = {}

    def times(self, client: int, input_tokens: int, servers, blocks) -> tuple[float, float]:
        rows = self._input_rows.get((client, input_tokens))
        if rows is None:
            rows = self._input_rows[(client, input_tokens)] = (
                self.pm.rtt_in_for(input_tokens)[client].tolist(), self.pm.tau_in_for(input_tokens).tolist())
        rtt_in, tau_in = rows
        rtt, tau = self.rtt_rows[client], self.tau
        t1 = tok = 0.0
        for j, k in zip(servers, blocks):
            t1 += rtt_in[j] + tau_in[j] * k
            tok += rtt[j] + tau[j] * k
        return t1, tok
